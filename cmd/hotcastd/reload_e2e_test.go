package main

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/hotcast/hotcast/cmd/internal/api"
	"github.com/hotcast/hotcast/internal/labtest"
)

// TestReloadStaticRoutes: SIGHUP applies static route changes as a
// difference while a stream runs (the unchanged receiver loses nothing),
// refuses an invalid file and changes it cannot apply in place, keeping the
// running configuration.
func TestReloadStaticRoutes(t *testing.T) {
	f := newFastpath(t)
	g2 := netip.MustParseAddr("ff3e::1:2")
	st := labtest.StartStream(t, f.s0, srcS, []netip.Addr{grpG, g2}, 500)
	time.Sleep(300 * time.Millisecond)

	// ge2 leaves (S,G1); a new (S,G2) goes to ge4.
	next := strings.Replace(fastpathYAML, `interfaces: [ge1, ge2]}`, `interfaces: [ge1]}
    - {group: "ff3e::1:2", source: "2001:db8:40::2", interfaces: [ge4]}`, 1)
	f.d.Reload(next)
	labtest.Eventually(t, 3*time.Second, "reloaded routes", func() bool {
		var ft api.ForwardingTable
		f.d.CtlJSON(&ft, "display", "multicast", "forwarding-table")
		return len(ft.Routes) == 2 && strings.Join(ft.Routes[0].Outgoing, ",")+"|"+strings.Join(ft.Routes[1].Outgoing, ",") == "ge1|ge4"
	})
	time.Sleep(300 * time.Millisecond)
	before := f.counts(t, g2)

	// An invalid file and an unsupported change are refused; routes stay.
	// One at a time: the file is rewritten for each signal, and signals
	// arriving together coalesce.
	f.d.Reload("sysname: [")
	labtest.Eventually(t, 3*time.Second, "the broken file refused", func() bool { return strings.Contains(f.d.Log(), "configuration refused") })
	f.d.Reload(strings.Replace(next, "  - name: ge4\n", "  - name: ge4\n    mld: {enable: true}\n", 1))
	labtest.Eventually(t, 3*time.Second, "the MLD change refused", func() bool { return strings.Contains(f.d.Log(), "needs a restart") })
	time.Sleep(500 * time.Millisecond)
	n := st.Stop()
	labtest.Eventually(t, 3*time.Second, "every frame of G1 at receiver 1", func() bool { return f.counts(t, grpG)[0] == n })
	c := f.counts(t, g2)
	if c[2] <= before[2] || c[0] != 0 || c[1] != 0 {
		t.Errorf("G2 after reload: %v (before the refused reloads %v), want only receiver 3 and still flowing", c, before)
	}
	if c := f.counts(t, grpG); c[1] >= n {
		t.Errorf("receiver 2 kept getting G1 after it was removed: %d of %d", c[1], n)
	}
	log := f.d.Log()
	for _, want := range []string{"reload: static routes applied", "configuration refused", "needs a restart"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q", want)
		}
	}
}
