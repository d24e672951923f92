package main

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hotcast/hotcast/daemon/api"
	"github.com/hotcast/hotcast/internal/labtest"
	"github.com/hotcast/hotcast/internal/netnstest"
)

var (
	srcS = netip.MustParseAddr("2001:db8:40::2")
	grpG = netip.MustParseAddr("ff3e::1:1")
	grpL = netip.MustParseAddr("ff02::1:5")
)

// fastpath is a sender, a router running hotcastd and three receivers:
//
//	snd:s0 --- ge3:rtr:ge1 --- h1:rcv1
//	               rtr:ge2 --- h2:rcv2
//	               rtr:ge4 --- h3:rcv3
type fastpath struct {
	snd, rtr *netnstest.NS
	s0       *netnstest.Link
	rcv      []*labtest.Receiver
	d        *labtest.Daemon
}

const fastpathYAML = `
sysname: E2E
api: {socket: "%SOCKET%"}
bpf: {pin-path: "%PIN%"}
multicast:
  routing-enable: true
  upstream: {interface: ge3, mode: static}
  static-routes:
    - {group: "ff3e::1:1", source: "2001:db8:40::2", interfaces: [ge1, ge2]}
interfaces:
  - name: ge1
  - name: ge2
  - name: ge3
  - name: ge4
`

func newFastpath(t *testing.T) *fastpath {
	t.Helper()
	return newFastpathYAML(t, fastpathYAML)
}

func newFastpathYAML(t *testing.T, yaml string) *fastpath {
	t.Helper()
	f := &fastpath{snd: netnstest.New(t, "snd"), rtr: netnstest.New(t, "rtr")}
	f.s0, _ = netnstest.Veth(t, f.snd, "s0", f.rtr, "ge3")
	for _, n := range []string{"1", "2", "4"} {
		ns := netnstest.New(t, "rcv")
		_, h := netnstest.Veth(t, f.rtr, "ge"+n, ns, "h"+n)
		f.rcv = append(f.rcv, labtest.NewReceiver(t, h))
	}
	d, ctl := labtest.Binaries(t)
	f.d = labtest.StartDaemon(t, f.rtr, d, ctl, yaml)
	return f
}

func (f *fastpath) counts(t *testing.T, g netip.Addr) []uint64 {
	var out []uint64
	for _, r := range f.rcv {
		out = append(out, r.Count(t, g))
	}
	return out
}

func TestDaemonForwardsAndDisplays(t *testing.T) {
	f := newFastpath(t)
	st := labtest.StartStream(t, f.s0, srcS, []netip.Addr{grpG, grpL}, 200)
	time.Sleep(time.Second)
	n := st.Stop()
	labtest.Eventually(t, 3*time.Second, "copies at receivers 1 and 2", func() bool {
		c := f.counts(t, grpG)
		return c[0] == n && c[1] == n
	})
	if c := f.counts(t, grpG); c[2] != 0 {
		t.Errorf("receiver 3 got %d frames of a group not routed to it", c[2])
	}
	if c := f.counts(t, grpL); c[0]+c[1]+c[2] != 0 {
		t.Errorf("link-local group forwarded: %v", c)
	}

	var ft api.ForwardingTable
	f.d.CtlJSON(&ft, "display", "multicast", "forwarding-table")
	if len(ft.Routes) != 1 {
		t.Fatalf("routes %+v", ft.Routes)
	}
	r := ft.Routes[0]
	if r.Source != srcS.String() || r.Group != grpG.String() || r.Incoming != "ge3" || strings.Join(r.Outgoing, ",") != "ge1,ge2" || r.Packets != n || strings.Join(r.Flags, ",") != "static" {
		t.Errorf("route %+v, want (%s, %s) ge3 -> ge1,ge2 with %d packets, static", r, srcS, grpG, n)
	}
	if ft.Reasons["forwarded"] != n || ft.Reasons["egress_sent"] != 2*n {
		t.Errorf("reasons %v", ft.Reasons)
	}
	if ft.Gates["ge1"] != "forward" {
		t.Errorf("gates %v", ft.Gates)
	}
	out := string(f.d.Ctl("display", "multicast", "forwarding-table"))
	for _, want := range []string{"(2001:db8:40::2, ff3e::1:1)", "Incoming interface: ge3", "1: ge1 (forward)", "2: ge2 (forward)", "Matched"} {
		if !strings.Contains(out, want) {
			t.Errorf("display lacks %q:\n%s", want, out)
		}
	}
}

// TestDaemonRestartNoLoss restarts hotcastd (SIGTERM, then SIGKILL) while a
// stream runs: the pinned dataplane forwards on, not a frame is lost.
func TestDaemonRestartNoLoss(t *testing.T) {
	f := newFastpath(t)
	st := labtest.StartStream(t, f.s0, srcS, []netip.Addr{grpG}, 1000)
	time.Sleep(300 * time.Millisecond)
	f.d.Stop()
	time.Sleep(300 * time.Millisecond)
	f.d.Start()
	time.Sleep(300 * time.Millisecond)
	f.d.Kill()
	time.Sleep(300 * time.Millisecond)
	f.d.Start()
	time.Sleep(300 * time.Millisecond)
	n := st.Stop()
	labtest.Eventually(t, 3*time.Second, "every frame at receivers 1 and 2", func() bool {
		c := f.counts(t, grpG)
		return c[0] == n && c[1] == n
	})
	if !strings.Contains(f.d.Log(), "adopted pinned dataplane") {
		t.Errorf("restarted daemon did not adopt the pins:\n%s", f.d.Log())
	}
	var ft api.ForwardingTable
	f.d.CtlJSON(&ft, "display", "multicast", "forwarding-table")
	if len(ft.Routes) != 1 || ft.Routes[0].Packets != n {
		t.Errorf("after restarts: routes %+v, want one with %d packets", ft.Routes, n)
	}
}

// TestDaemonCleanup: --cleanup detaches the programs and removes the pins.
func TestDaemonCleanup(t *testing.T) {
	f := newFastpath(t)
	f.d.Stop()
	d, _ := labtest.Binaries(t)
	if out, err := f.rtr.Command(context.Background(), d, "--config", f.d.Config, "--cleanup").CombinedOutput(); err != nil {
		t.Fatalf("cleanup: %v\n%s", err, out)
	}
	if _, err := os.Stat(f.d.PinPath); !os.IsNotExist(err) {
		t.Errorf("pins remain: %v", err)
	}
	st := labtest.StartStream(t, f.s0, srcS, []netip.Addr{grpG}, 200)
	time.Sleep(300 * time.Millisecond)
	st.Stop()
	time.Sleep(100 * time.Millisecond)
	if c := f.counts(t, grpG); c[0]+c[1] != 0 {
		t.Errorf("forwarding after cleanup: %v", c)
	}
	if out, err := exec.Command("ip", "-n", f.rtr.Name, "link", "show", "ge1").CombinedOutput(); err != nil || strings.Contains(string(out), "xdp") {
		t.Errorf("program still attached: %s %v", out, err)
	}
}

// TestBadConfigStartsNothing: an invalid config stops the start with the
// key path, and nothing is pinned.
func TestBadConfigStartsNothing(t *testing.T) {
	netnstest.RequireRoot(t)
	d, _ := labtest.Binaries(t)
	dir := t.TempDir()
	pin := filepath.Join("/sys/fs/bpf/hotcast", netnstest.UniqueName("bad"))
	cfg := filepath.Join(dir, "bad.yaml")
	yaml := "sysname: X\nbpf: {pin-path: " + pin + "}\nmulticast:\n  routing-enable: true\n  upstreem: {interface: ge3}\ninterfaces:\n  - name: ge3\n    vrrp6:\n      - {vrid: 1, virtual-ip: [fe80::1], priority: 0}\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(d, "--config", cfg).CombinedOutput()
	if err == nil {
		t.Fatalf("hotcastd accepted a bad config:\n%s", out)
	}
	for _, want := range []string{"multicast.upstreem", "interfaces[0].vrrp6[0].priority"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("error does not name %s:\n%s", want, out)
		}
	}
	if _, err := os.Stat(pin); !os.IsNotExist(err) {
		t.Errorf("bad config pinned something: %v", err)
	}
}

// TestDaemonCloneEgress: interfaces with egress: clone receive their
// copies through TC bpf_clone_redirect, counted as forwarded_clone.
func TestDaemonCloneEgress(t *testing.T) {
	yaml := strings.Replace(fastpathYAML, "  - name: ge1\n  - name: ge2\n", "  - {name: ge1, egress: clone}\n  - {name: ge2, egress: clone}\n", 1)
	if yaml == fastpathYAML {
		t.Fatal("test config not changed")
	}
	f := newFastpathYAML(t, yaml)
	st := labtest.StartStream(t, f.s0, srcS, []netip.Addr{grpG}, 200)
	time.Sleep(500 * time.Millisecond)
	n := st.Stop()
	labtest.Eventually(t, 3*time.Second, "copies at receivers 1 and 2", func() bool {
		c := f.counts(t, grpG)
		return c[0] == n && c[1] == n
	})
	var ft api.ForwardingTable
	f.d.CtlJSON(&ft, "display", "multicast", "forwarding-table")
	if ft.Reasons["forwarded_clone"] != n || ft.Reasons["forwarded"] != 0 || ft.Reasons["egress_sent"] != 2*n {
		t.Errorf("reasons %v, want %d forwarded_clone and %d egress_sent", ft.Reasons, n, 2*n)
	}
}
