package e2e

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/hotcast/hotcast/internal/labtest"
	"github.com/hotcast/hotcast/internal/netnstest"
)

// restartYAML: a static (S,G) from up0 to lan0, and a VRRP6 group on lan0
// so that all three kinds of pinned links (xdp, tci, tc) exist. No MLD.
const restartYAML = `
sysname: RESTART
api: {socket: "%SOCKET%"}
bpf: {pin-path: "%PIN%"}
multicast:
  routing-enable: true
  upstream: {interface: up0, mode: static}
  static-routes:
    - {group: "ff3e::7:1", source: "2001:db8:40::2", interfaces: [lan0]}
interfaces:
  - name: up0
  - name: lan0
    addresses: ["2001:db8:7::1/64"]
    vrrp6:
      - {vrid: 7, virtual-ip: ["fe80::7"], priority: 200, advertise-interval: 100ms}
`

// restartTopo is snd:s0 --- up0:rtr:lan0 --- h0:rcv, made in fresh
// namespaces.
type restartTopo struct {
	rtr *netnstest.NS
	s0  *netnstest.Link
	rcv *labtest.Receiver
}

func newRestartTopo(t *testing.T) restartTopo {
	t.Helper()
	snd, rtr, rcv := netnstest.New(t, "snd"), netnstest.New(t, "rtr"), netnstest.New(t, "rcv")
	s0, _ := netnstest.Veth(t, snd, "s0", rtr, "up0")
	_, h0 := netnstest.Veth(t, rtr, "lan0", rcv, "h0")
	return restartTopo{rtr: rtr, s0: s0, rcv: labtest.NewReceiver(t, h0)}
}

// forwards streams the static route's group from the sender and waits
// until the receiver has counted frames of it.
func (tp restartTopo) forwards(t *testing.T, step string) {
	t.Helper()
	src, g := netip.MustParseAddr("2001:db8:40::2"), netip.MustParseAddr("ff3e::7:1")
	before := tp.rcv.Count(t, g)
	s := labtest.StartStream(t, tp.s0, src, []netip.Addr{g}, 200)
	defer s.Stop()
	deadline := time.Now().Add(5 * time.Second)
	for tp.rcv.Count(t, g) < before+100 {
		if time.Now().After(deadline) {
			t.Fatalf("%s: the receiver counted %d of %d frames", step, tp.rcv.Count(t, g)-before, s.Sent())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRestartAfterNamespaceRecreated: hotcastd is killed (SIGKILL: a crash
// or the OOM killer), its interfaces are deleted and made again under the
// same names in a new namespace (a container or lab restarted), and it is
// started again with the same pins. It must come up, drop the pinned links
// the kernel severed, attach the new interfaces of those names, reconcile
// its routes to their ifindexes, and forward.
func TestRestartAfterNamespaceRecreated(t *testing.T) {
	b := build(t)
	first := newRestartTopo(t)
	d := labtest.StartDaemon(t, first.rtr, b.hotcastd, b.hotcastctl, restartYAML)
	first.forwards(t, "first start")

	d.Kill()
	// Delete the router's interfaces (their peers go with them): what
	// deleting the namespace does to them. The namespace itself stays
	// for the test's clean-up (hotcastd --cleanup runs in it).
	h := first.rtr.Handle(t)
	for _, name := range []string{"up0", "lan0"} {
		l, err := h.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.LinkDel(l); err != nil {
			t.Fatalf("delete %s: %v", name, err)
		}
	}
	second := newRestartTopo(t)
	d.NS = second.rtr
	d.Start() // fails the test if the daemon exits at start
	log := d.Log()
	if !strings.Contains(log, "pinned links dropped") {
		t.Errorf("no log line about the severed links dropped:\n%s", log)
	}
	if n := strings.Count(log, "pinned links dropped"); n != 2 {
		t.Errorf("%d log lines about severed links, want one per interface (2)", n)
	}
	second.forwards(t, "after the restart in the new namespace")
}
