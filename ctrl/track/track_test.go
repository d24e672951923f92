package track

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hotcast/hotcast/bpf"
	"github.com/hotcast/hotcast/ctrl/vrrp6"
)

// recorder is a fake fast path, host and follower that logs every call
// in order.
type recorder struct {
	mu    sync.Mutex
	calls []string
}

func (r *recorder) add(format string, a ...any) {
	r.mu.Lock()
	r.calls = append(r.calls, fmt.Sprintf(format, a...))
	r.mu.Unlock()
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.calls
	r.calls = nil
	return c
}

func (r *recorder) SetVRRPMaster(ifindex int, vrid uint8, vips []netip.Addr, master bool) error {
	r.add("vrrp %d/%d %v %v", ifindex, vrid, vips, master)
	return nil
}

func (r *recorder) SetIface(ifindex int, e bpf.Iface) error {
	gate := "forward"
	if e.Gate == bpf.GateMuted {
		gate = "muted"
	}
	r.add("iface %d %s src %s clone %v", ifindex, gate, e.SrcMAC, e.Clone)
	return nil
}

func (r *recorder) SetVirtual(ifindex int, vips []netip.Addr, vmac net.HardwareAddr, master bool) {
	r.add("host %d %v %s %v", ifindex, vips, vmac, master)
}

func (r *recorder) MoveVirtual(ifindex int, gone, added []netip.Addr) {
	r.add("host move %d -%v +%v", ifindex, gone, added)
}

func (r *recorder) follower(name string) Follower {
	return FollowerFunc(func(m bool) { r.add("%s %v", name, m) })
}

var (
	own  = net.HardwareAddr{2, 0, 0, 0, 0, 2}
	vmac = vrrp6.VirtualMAC(1)
	vips = []netip.Addr{netip.MustParseAddr("fe80::1"), netip.MustParseAddr("2001:db8::50")}
)

func start(t *testing.T) (*Tracker, *recorder, context.Context) {
	t.Helper()
	rec := &recorder{}
	tr := New(rec, rec, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tr.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return tr, rec, ctx
}

func transition(to vrrp6.State) vrrp6.Transition {
	return vrrp6.Transition{Interface: "ge2", VRID: 1, To: to, Time: time.Now(), VirtualMAC: vmac, VirtualAddrs: vips}
}

func sync1(t *testing.T, tr *Tracker, ctx context.Context) {
	t.Helper()
	if err := tr.Sync(ctx); err != nil {
		t.Fatal(err)
	}
}

func want(t *testing.T, rec *recorder, w ...string) {
	t.Helper()
	if got := rec.take(); !slices.Equal(got, w) {
		t.Fatalf("calls\n got  %q\n want %q", got, w)
	}
}

// The switchover order: virtual MAC and IPs, then gate and source MAC,
// then the querier and the profile, then the host's addresses.
func TestTransitionOrder(t *testing.T) {
	tr, rec, ctx := start(t)
	tr.Configure(Iface{Index: 3, Name: "ge2", MAC: own, Track: 1, Querier: rec.follower("querier"),
		Profiles: map[uint8][]Follower{1: {rec.follower("profile1")}}})
	sync1(t, tr, ctx)
	want(t, rec, "querier false") // no state yet: the gate stays as found

	tr.Transition(3, transition(vrrp6.StateMaster))
	sync1(t, tr, ctx)
	want(t, rec,
		fmt.Sprintf("vrrp 3/1 %v true", vips),
		"iface 3 forward src "+vmac.String()+" clone false",
		"querier true",
		"profile1 true",
		fmt.Sprintf("host 3 %v %s true", vips, vmac))
	if st, ok := tr.Status(3, 1); !ok || !st.Master || st.GateDelay <= 0 {
		t.Fatalf("status %+v %v", st, ok)
	}

	tr.Transition(3, transition(vrrp6.StateBackup))
	sync1(t, tr, ctx)
	want(t, rec,
		fmt.Sprintf("vrrp 3/1 %v false", vips),
		"iface 3 muted src "+own.String()+" clone false",
		"querier false",
		"profile1 false",
		fmt.Sprintf("host 3 %v %s false", vips, vmac))

	// Backup again (e.g. from Initialize): no host churn for an unchanged
	// Backup.
	tr.Transition(3, transition(vrrp6.StateBackup))
	sync1(t, tr, ctx)
	want(t, rec,
		fmt.Sprintf("vrrp 3/1 %v false", vips),
		"iface 3 muted src "+own.String()+" clone false",
		"querier false",
		"profile1 false")
}

// A group the interface does not track changes its own virtual MAC and
// its profile, never the gate.
func TestUntrackedGroup(t *testing.T) {
	tr, rec, ctx := start(t)
	tr.Configure(Iface{Index: 3, Name: "ge2", MAC: own, Track: 1, Querier: rec.follower("querier")})
	sync1(t, tr, ctx)
	rec.take()
	tg := transition(vrrp6.StateMaster)
	tg.VRID, tg.VirtualMAC = 2, vrrp6.VirtualMAC(2)
	tr.Transition(3, tg)
	sync1(t, tr, ctx)
	want(t, rec, fmt.Sprintf("vrrp 3/2 %v true", vips), fmt.Sprintf("host 3 %v %s true", vips, tg.VirtualMAC))
}

// Reconfiguring: tracking off forwards with the own MAC and queries;
// tracking on again takes the state last seen, without a transition.
func TestConfigureResyncs(t *testing.T) {
	tr, rec, ctx := start(t)
	cfg := Iface{Index: 3, Name: "ge2", MAC: own, Track: 1, Querier: rec.follower("querier")}
	tr.Configure(cfg)
	tr.Transition(3, transition(vrrp6.StateMaster))
	sync1(t, tr, ctx)
	rec.take()

	off := cfg
	off.Track = 0
	tr.Configure(off)
	sync1(t, tr, ctx)
	want(t, rec, "iface 3 forward src "+own.String()+" clone false", "querier true")

	tr.Configure(cfg)
	sync1(t, tr, ctx)
	want(t, rec, "iface 3 forward src "+vmac.String()+" clone false", "querier true")

	// Same tracking, only the querier handle changes (MLD restarted):
	// the role is handed to it, the gate is not rewritten.
	again := cfg
	again.Querier = rec.follower("querier2")
	tr.Configure(again)
	sync1(t, tr, ctx)
	want(t, rec, "querier2 true")

	clone := cfg
	clone.Clone = true
	tr.Configure(clone)
	sync1(t, tr, ctx)
	want(t, rec, "iface 3 forward src "+vmac.String()+" clone true", "querier true")
}

// An interface that tracks nothing forwards with its own MAC from the
// start.
func TestUntrackedInterface(t *testing.T) {
	tr, rec, ctx := start(t)
	tr.Configure(Iface{Index: 4, Name: "ge3", MAC: own, Querier: rec.follower("querier")})
	sync1(t, tr, ctx)
	want(t, rec, "iface 4 forward src "+own.String()+" clone false", "querier true")
}

func TestVirtualAddrsMove(t *testing.T) {
	tr, rec, ctx := start(t)
	newVIPs := []netip.Addr{vips[0], netip.MustParseAddr("2001:db8::51")}
	tr.VirtualAddrs(3, vrrp6.AddrChange{Interface: "ge2", VRID: 1, State: vrrp6.StateBackup, Old: vips, New: newVIPs})
	tr.VirtualAddrs(3, vrrp6.AddrChange{Interface: "ge2", VRID: 1, State: vrrp6.StateMaster, Old: vips, New: newVIPs})
	sync1(t, tr, ctx)
	gone := []netip.Addr{vips[1]}
	want(t, rec,
		fmt.Sprintf("vrrp 3/1 %v false", gone),
		fmt.Sprintf("vrrp 3/1 %v true", newVIPs),
		fmt.Sprintf("host move 3 -%v +%v", gone, newVIPs))
}

// Posting never blocks, even under a lock the tracker's followers take,
// and events from many goroutines are all applied.
func TestPostFromUnderLock(t *testing.T) {
	tr, rec, ctx := start(t)
	var mu sync.Mutex
	tr.Configure(Iface{Index: 3, Name: "ge2", MAC: own, Track: 1,
		Querier: FollowerFunc(func(bool) { mu.Lock(); mu.Unlock() })})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for k := range 50 {
				mu.Lock() // as vrrp6 holds its router lock while reporting
				s := vrrp6.StateBackup
				if k%2 == 0 {
					s = vrrp6.StateMaster
				}
				tr.Transition(3, transition(s))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	sync1(t, tr, ctx)
	n := 0
	for _, c := range rec.take() {
		if len(c) > 4 && c[:4] == "vrrp" {
			n++
		}
	}
	if n != 400 {
		t.Fatalf("%d transitions applied, want 400", n)
	}
	tr.Remove(3)
	sync1(t, tr, ctx)
	if _, ok := tr.Status(3, 1); ok {
		t.Fatal("status kept after Remove")
	}
}
