//go:build linux

package vrrp6

import (
	"errors"
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// vethPair creates vr0 <-> vr1 in a fresh network namespace entered by
// the (locked) calling thread; cleanup restores the original namespace.
func vethPair(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (CAP_NET_ADMIN, CAP_NET_RAW)")
	}
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Skipf("netns: %v", err)
	}
	ns, err := netns.New()
	if err != nil {
		orig.Close()
		runtime.UnlockOSThread()
		t.Skipf("new netns: %v", err)
	}
	t.Cleanup(func() {
		if err := netns.Set(orig); err != nil {
			t.Errorf("restore netns: %v", err)
		}
		ns.Close()
		orig.Close()
		runtime.UnlockOSThread()
	})
	la := netlink.NewLinkAttrs()
	la.Name = "vr0"
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: "vr1"}); err != nil {
		t.Fatalf("add veth: %v", err)
	}
	for _, name := range []string{"vr0", "vr1"} {
		l, err := netlink.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := netlink.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
	}
}

// An advert sent as a raw frame on vr0 is received on vr1's raw socket
// with hop limit 255, destination ff02::12 and a valid checksum.
func TestConnVeth(t *testing.T) {
	vethPair(t)
	a, err := Listen("vr0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Listen("vr1", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	src := netip.MustParseAddr("fe80::a")
	adv := &Advert{VRID: 1, Priority: 200, MaxAdvertInterval: 100, Addrs: testVIPs}
	frame, err := BuildAdvertFrame(adv, src)
	if err != nil {
		t.Fatal(err)
	}
	na, err := BuildUnsolicitedNA(1, testVIPs[1], testVIPs[1])
	if err != nil {
		t.Fatal(err)
	}
	if err := a.SendUnsolicitedNA(na); err != nil {
		t.Fatal(err)
	}
	if err := b.ip.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	// The link may still be settling: resend until one arrives.
	got := make(chan Received, 1)
	go func() {
		buf := make([]byte, 2048)
		rx, err := b.Read(buf)
		if err != nil {
			t.Errorf("read: %v", err)
			close(got)
			return
		}
		rx.Payload = append([]byte(nil), rx.Payload...)
		got <- rx
	}()
	var rx Received
	var ok bool
	for i := 0; i < 50 && !ok; i++ {
		if err := a.SendAdvert(frame); err != nil {
			t.Fatal(err)
		}
		select {
		case rx, ok = <-got:
			if !ok {
				t.FailNow()
			}
		case <-time.After(100 * time.Millisecond):
		}
	}
	if !ok {
		t.Fatal("no advert received on vr1")
	}
	if rx.Src.WithZone("") != src || rx.Dst != GroupAddr || rx.HopLimit != 255 {
		t.Fatalf("received %+v", rx)
	}
	if err := VerifyChecksum(rx.Src, rx.Dst, rx.Payload); err != nil {
		t.Fatal(err)
	}
	p, err := Parse(rx.Payload)
	if err != nil || p.Priority != 200 || p.VRID != 1 {
		t.Fatalf("parse: %+v, %v", p, err)
	}

	// Serve hands packets to the Demux and returns nil on Close.
	d := NewDemux("vr1", nil)
	done := make(chan error, 1)
	go func() { done <- b.Serve(d) }()
	b.ip.SetReadDeadline(time.Time{})
	b.Close()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Serve after Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after Close")
	}
}

// After the interface went down and up again, the first advert is sent:
// the packet socket's pending ENETDOWN (set by af_packet when the link
// went down) must not swallow it. Seen end to end as a new Master's first
// advert lost after a link flap, so the old Master stayed Master for one
// more advert interval.
func TestConnSendAfterLinkFlap(t *testing.T) {
	vethPair(t)
	a, err := Listen("vr0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Listen("vr1", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	frame, err := BuildAdvertFrame(&Advert{VRID: 7, Priority: 100, MaxAdvertInterval: 100, Addrs: testVIPs}, netip.MustParseAddr("fe80::a"))
	if err != nil {
		t.Fatal(err)
	}
	vr0, err := netlink.LinkByName("vr0")
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetDown(vr0); err != nil {
		t.Fatal(err)
	}
	if err := a.SendAdvert(frame); err == nil {
		t.Fatal("send on a down link succeeded")
	}
	if err := netlink.LinkSetUp(vr0); err != nil {
		t.Fatal(err)
	}
	// The kernel activates the queue (and reports the link up) from its
	// link-watch work, up to a second later; until then frames vanish in
	// the noop qdisc without an error. The daemon, too, restarts VRRP only
	// on the up event, so wait for it as the daemon does.
	deadline := time.Now().Add(3 * time.Second)
	for {
		l, err := netlink.LinkByName("vr0")
		if err == nil && l.Attrs().OperState == netlink.OperUp {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("vr0 not operationally up")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := a.SendAdvert(frame); err != nil {
		t.Fatalf("first send after the link came back: %v", err)
	}
	if err := b.ip.SetReadDeadline(time.Now().Add(2 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	rx, err := b.Read(buf)
	if err != nil {
		t.Fatalf("the first advert after the link came back did not arrive: %v", err)
	}
	if p, err := Parse(rx.Payload); err != nil || p.VRID != 7 {
		t.Fatalf("received %+v, %v", p, err)
	}
}
