package bpf

import (
	"bytes"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hotcast/hotcast/internal/netnstest"
)

// TestAdoptAfterInterfacesRecreated: the daemon dies (its handles close,
// the pins stay), its interfaces are deleted and made again under the same
// names in a new namespace (a container restarted), and the pinned
// dataplane is opened there. The kernel severed the pinned links and took
// the deleted interfaces out of the outgoing sets; adoption drops the
// links (one log line per interface), the routes arriving on an interface
// that is gone and the entries (ifaces, virtual MACs and IPs) of such
// interfaces, and moves the routes whose set was emptied to no set. The
// new interfaces of those names are then attached afresh and forward.
func TestAdoptAfterInterfacesRecreated(t *testing.T) {
	pin := filepath.Join("/sys/fs/bpf/hotcast", netnstest.UniqueName("test"))
	t.Cleanup(func() { _ = Cleanup(pin) })
	g2 := netip.MustParseAddr("ff3e::2:2")

	tp := newTopo(t)
	gone := netnstest.Dummy(t, tp.rtr, "gone0") // not made again
	d := tp.router(t, pin)
	tp.rtr.Do(t, func() error {
		if err := d.AttachTC(tp.r[0].Name, tp.r[0].Index); err != nil {
			return err
		}
		if _, err := d.EnsureIface(gone.Index, Iface{Gate: GateForward, SrcMAC: gone.MAC}); err != nil {
			return err
		}
		if err := d.SetVRRPMaster(tp.r[0].Index, 1, []netip.Addr{vip}, true); err != nil {
			return err
		}
		if err := d.SetVRRPMaster(gone.Index, 2, []netip.Addr{vipLL}, true); err != nil {
			return err
		}
		return d.ReplaceRoutes([]Route{
			{RouteKey: RouteKey{Source: srcS, Group: grpG}, IIf: tp.r0.Index, OIfs: []int{tp.r[0].Index, tp.r[1].Index}},
			{RouteKey: RouteKey{Group: g2}, IIf: gone.Index, OIfs: []int{tp.r[0].Index}},
		})
	})
	tp.send(t, frame{src: srcS, dst: grpG, hopLimit: 64}, 50)
	tp.waitCounts(t, grpG, [3]uint64{50, 50, 0})
	d.Close() // the daemon is killed: its handles go, the pins stay

	h := tp.rtr.Handle(t)
	for _, name := range []string{"r0", "r1", "r2", "r3", "gone0"} {
		l, err := h.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.LinkDel(l); err != nil {
			t.Fatalf("delete %s: %v", name, err)
		}
	}

	tp2 := newTopo(t)     // the same interface names, in new namespaces
	var logs bytes.Buffer // written only inside Do
	var d2 *Dataplane
	tp2.rtr.Do(t, func() error {
		var err error
		d2, err = Open(Options{PinPath: pin, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		return err
	})
	t.Cleanup(func() { d2.Close() })
	if !d2.Adopted() {
		t.Fatal("pinned dataplane not adopted")
	}
	if a := d2.Attached(); len(a) != 0 {
		t.Errorf("severed links kept: attached %v", a)
	}
	if n := strings.Count(logs.String(), "pinned links dropped"); n != 4 {
		t.Errorf("%d log lines about severed links, want one per interface (4):\n%s", n, logs.String())
	}
	rs, err := d2.Routes()
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || rs[0].Group != grpG || rs[0].IIf != tp.r0.Index || len(rs[0].OIfs) != 0 {
		t.Errorf("adopted routes %+v: want only (S,G), from r0's ifindex, with no outgoing interface left", rs)
	}
	if _, err := d2.Iface(gone.Index); err == nil {
		t.Errorf("ifaces entry of the interface that is gone (%d) kept", gone.Index)
	}
	var vr ingressHcVip
	if err := d2.maps.Vips.Lookup(ingressHcVipKey{Ifindex: uint32(gone.Index), Addr: vipLL.As16()}, &vr); err == nil {
		t.Errorf("virtual ip of the interface that is gone kept")
	}

	// Attached afresh, the routes reconciled to the new ifindexes: it
	// forwards.
	tp2.rtr.Do(t, func() error {
		for _, l := range append([]*netnstest.Link{tp2.r0}, tp2.r[:]...) {
			if err := d2.Attach(l.Name, l.Index); err != nil {
				return err
			}
			if _, err := d2.EnsureIface(l.Index, Iface{Gate: GateForward, SrcMAC: l.MAC}); err != nil {
				return err
			}
		}
		return d2.ReplaceRoutes([]Route{{RouteKey: RouteKey{Source: srcS, Group: grpG}, IIf: tp2.r0.Index, OIfs: []int{tp2.r[0].Index, tp2.r[1].Index}}})
	})
	for _, p := range []string{"links/xdp/r0", "links/tci/r3"} {
		if _, err := os.Stat(filepath.Join(pin, p)); err != nil {
			t.Errorf("pin %s after attaching afresh: %v", p, err)
		}
	}
	tp2.send(t, frame{src: srcS, dst: grpG, hopLimit: 64}, 50)
	tp2.waitCounts(t, grpG, [3]uint64{50, 50, 0})
}
