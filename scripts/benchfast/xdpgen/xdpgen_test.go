package xdpgen

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"

	"github.com/hotcast/hotcast/bpf/bpftest"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

var testGroup = netip.MustParseAddr("ff3e::c:1")

// testFrame is an Ethernet/IPv6/UDP frame of 80 bytes to testGroup (the
// sink counts IPv6 multicast by group; nothing else is read).
func testFrame(srcMAC []byte) []byte {
	b := make([]byte, 80)
	g := testGroup.As16()
	copy(b[0:6], []byte{0x33, 0x33, g[12], g[13], g[14], g[15]})
	copy(b[6:12], srcMAC)
	binary.BigEndian.PutUint16(b[12:], 0x86dd)
	ip := b[14:]
	ip[0] = 0x60
	binary.BigEndian.PutUint16(ip[4:], uint16(len(b)-14-40))
	ip[6], ip[7] = 17, 64
	s := netip.MustParseAddr("fd00:c::1").As16()
	copy(ip[8:24], s[:])
	copy(ip[24:40], g[:])
	return b
}

// pair is a generator namespace holding gen0 and a receiver namespace
// holding its peer rcv0 with a counting sink (drop mode) on it.
type pair struct {
	genNS, rcvNS string // /var/run/netns paths
	gen          netlink.Link
	genNL        *netlink.Handle
	sink         *bpftest.Sink
}

func inNS(t *testing.T, path string, f func() error) {
	t.Helper()
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		h, err := netns.GetFromPath(path)
		if err != nil {
			ch <- err
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			ch <- err
			return
		}
		ch <- f()
	}()
	if err := <-ch; err != nil {
		t.Fatal(err)
	}
}

func newNS(t *testing.T, name string) string {
	t.Helper()
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	return "/var/run/netns/" + name
}

func newPair(t *testing.T) *pair {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("privileged test in CI without root")
		}
		t.Skip("needs root (network namespaces, XDP)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skipf("ip (iproute2) not installed: %v", err)
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	tag := hex.EncodeToString(b)
	p := &pair{genNS: newNS(t, "hcxg"+tag+"-gen"), rcvNS: newNS(t, "hcxg"+tag+"-rcv")}
	genH, err := netns.GetFromPath(p.genNS)
	if err != nil {
		t.Fatal(err)
	}
	defer genH.Close()
	rcvH, err := netns.GetFromPath(p.rcvNS)
	if err != nil {
		t.Fatal(err)
	}
	defer rcvH.Close()
	if p.genNL, err = netlink.NewHandleAt(genH); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.genNL.Close)
	rcvNL, err := netlink.NewHandleAt(rcvH)
	if err != nil {
		t.Fatal(err)
	}
	defer rcvNL.Close()
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "gen0"}, PeerName: "rcv0", PeerNamespace: netlink.NsFd(int(rcvH))}
	if err := p.genNL.LinkAdd(v); err != nil {
		t.Fatalf("add veth: %v", err)
	}
	if p.gen, err = p.genNL.LinkByName("gen0"); err != nil {
		t.Fatal(err)
	}
	rcv, err := rcvNL.LinkByName("rcv0")
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []struct {
		h *netlink.Handle
		l netlink.Link
	}{{p.genNL, p.gen}, {rcvNL, rcv}} {
		if err := x.h.LinkSetUp(x.l); err != nil {
			t.Fatal(err)
		}
	}
	// The sink is what gives rcv0 NAPI, so it takes XDP frames at all.
	inNS(t, p.rcvNS, func() error {
		var err error
		p.sink, err = bpftest.AttachSink(rcv.Attrs().Index, true)
		return err
	})
	t.Cleanup(func() { _ = p.sink.Close() })
	return p
}

// received is what the sink counted for the group.
func (p *pair) received(t *testing.T) uint64 {
	t.Helper()
	m, err := p.sink.Counts()
	if err != nil {
		t.Fatal(err)
	}
	return m[testGroup]
}

// dropped is gen0's tx_dropped: frames the peer's ring had no room for.
func (p *pair) dropped(t *testing.T) uint64 {
	t.Helper()
	l, err := p.genNL.LinkByName("gen0")
	if err != nil {
		t.Fatal(err)
	}
	return l.Attrs().Statistics.TxDropped
}

// settled waits until the sink's count stops moving (the peer's NAPI has
// drained its ring) and returns it.
func (p *pair) settled(t *testing.T) uint64 {
	t.Helper()
	last := p.received(t)
	for range 50 {
		time.Sleep(20 * time.Millisecond)
		n := p.received(t)
		if n == last {
			return n
		}
		last = n
	}
	return last
}

// TestCount sends a fixed number of frames and finds every one of them at
// the receiver, or counted as dropped by the veth (its ring full).
func TestCount(t *testing.T) {
	p := newPair(t)
	const n = 100_000
	g, err := Start(context.Background(), Config{
		NetNS: p.genNS, Ifindex: p.gen.Attrs().Index, Frame: testFrame(p.gen.Attrs().HardwareAddr),
		CPU: 0, Count: n, Chunk: 4096,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if g.Sent() != n {
		t.Fatalf("sent %d, want %d", g.Sent(), n)
	}
	got, drops := p.settled(t), p.dropped(t)
	t.Logf("sent %d at %.0f pps: received %d, dropped %d", g.Sent(), g.Rate(), got, drops)
	if got == 0 {
		t.Fatal("the receiver got nothing")
	}
	// Sent undercounts by what a run interrupted by a signal had sent
	// before the library restarted it whole (whole batches, less than a
	// chunk); nothing else may differ.
	if got+drops < n || got+drops >= n+4096 || (got+drops-n)%DefaultBatch != 0 {
		t.Errorf("received %d + dropped %d = %d, want %d (plus whole batches of an interrupted run)", got, drops, got+drops, n)
	}
}

// TestRunUntilStopped runs the generator until Stop and checks its count
// against the receiver's.
func TestRunUntilStopped(t *testing.T) {
	p := newPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	g, err := Start(ctx, Config{NetNS: p.genNS, Ifindex: p.gen.Attrs().Index, Frame: testFrame(p.gen.Attrs().HardwareAddr), CPU: -1})
	if err != nil {
		t.Fatal(err)
	}
	if g.Sent() == 0 {
		t.Error("Start returned before the first chunk went out")
	}
	time.Sleep(300 * time.Millisecond)
	if err := g.Stop(); err != nil {
		t.Fatal(err)
	}
	sent := g.Sent()
	if sent%DefaultChunk != 0 {
		t.Errorf("sent %d: not whole chunks", sent)
	}
	if r := g.Rate(); r <= 0 {
		t.Errorf("rate %.0f", r)
	}
	// Stopped means stopped: no frame after Stop returned.
	got, drops := p.settled(t), p.dropped(t)
	time.Sleep(100 * time.Millisecond)
	if again := p.received(t); again != got {
		t.Errorf("received %d more frames after Stop", again-got)
	}
	t.Logf("sent %d at %.0f pps: received %d, dropped %d", sent, g.Rate(), got, drops)
	// As in TestCount: Sent may miss the whole batches of a run a signal
	// interrupted (the library restarts it whole).
	if got == 0 || got+drops < sent || got+drops >= sent+DefaultChunk || (got+drops-sent)%DefaultBatch != 0 {
		t.Errorf("received %d + dropped %d, want %d sent (plus whole batches of an interrupted run)", got, drops, sent)
	}
}

func TestConfigErrors(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no ifindex":  {Frame: make([]byte, 60)},
		"short frame": {Ifindex: 1, Frame: make([]byte, 13)},
		"batch":       {Ifindex: 1, Frame: make([]byte, 60), Batch: 257},
	} {
		if _, err := Start(context.Background(), cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestBadInterface: a frame out of an interface that does not exist fails
// at Start, with the ifindex in the message.
func TestBadInterface(t *testing.T) {
	p := newPair(t)
	_, err := Start(context.Background(), Config{NetNS: p.genNS, Ifindex: 9999, Frame: testFrame(make([]byte, 6)), CPU: -1})
	if err == nil {
		t.Fatal("no error for a missing interface")
	}
	t.Log(err)
}
