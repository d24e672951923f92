// Package benchmaps_test measures RBS replication end to end in one
// process: two rbs.Service over real TCP (loopback of a test namespace),
// the receiver's entries going through a real ctrl/mld Interface into a
// ctrl/mroute Table over a real bpf.Dataplane, as daemon wires
// them (mldbackup.Binding → mld.Import/Upsert → OnUpdates → Table.SetMemberships →
// BPF routes map).
//
// The quick tests run with the package tests (root needed); the 100k-entry
// batch and the latency run (bench_test.go) are built only with -tags
// hcbench and run only with HC_BENCH=1 (scripts/bench-rbs). With
// HC_BENCH_OUT=dir they write their result table to dir/<test>.md.
package benchmaps_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotcast/hotcast/bpf"
	"github.com/hotcast/hotcast/ctrl/mld"
	"github.com/hotcast/hotcast/ctrl/mroute"
	"github.com/hotcast/hotcast/internal/netnstest"
	"github.com/hotcast/hotcast/sync/mldbackup"
	"github.com/hotcast/hotcast/sync/rbs"
)

const (
	oif      = 1 // lo: exists in every namespace, so the devmap accepts it from any thread
	upstream = 2 // only a number in the route
	backupID = 10
)

var (
	srcAddr  = netip.MustParseAddr("2001:db8:10::1") // dials (lower)
	peerAddr = netip.MustParseAddr("2001:db8:10::2") // listens
	reporter = netip.MustParseAddr("fe80::99")
)

// countingDP is the table's dataplane: the real one, plus the time at which
// routes were written.
type countingDP struct {
	dp      *bpf.Dataplane
	put     atomic.Int64  // routes written
	calls   atomic.Int64  // ReplaceRoutes calls
	spent   atomic.Int64  // ns inside ReplaceRoutes
	target  int64         // close reached when put reaches target
	reached chan struct{} // closed once
	once    sync.Once
	at      atomic.Int64 // unix ns when target was reached

	mu      sync.Mutex
	waiters map[netip.Addr]chan time.Time
}

func (c *countingDP) ReplaceRoutes(rs []bpf.Route) error {
	t0 := time.Now()
	err := c.dp.ReplaceRoutes(rs)
	now := time.Now()
	c.spent.Add(int64(now.Sub(t0)))
	c.calls.Add(1)
	if err != nil {
		return err
	}
	if n := c.put.Add(int64(len(rs))); c.target > 0 && n >= c.target {
		c.once.Do(func() { c.at.Store(now.UnixNano()); close(c.reached) })
	}
	c.mu.Lock()
	for _, r := range rs {
		if ch := c.waiters[r.Group]; ch != nil {
			ch <- now
			delete(c.waiters, r.Group)
		}
	}
	c.mu.Unlock()
	return nil
}

func (c *countingDP) DeleteRoutes(ks []bpf.RouteKey) error { return c.dp.DeleteRoutes(ks) }

// wait returns a channel receiving the time group g's route is written.
func (c *countingDP) wait(g netip.Addr) chan time.Time {
	ch := make(chan time.Time, 1)
	c.mu.Lock()
	c.waiters[g] = ch
	c.mu.Unlock()
	return ch
}

// memSource is the sender's table.
type memSource struct {
	mu      sync.Mutex
	entries []rbs.MLDEntry
	mld     *mld.Interface // when set, its groups are the snapshot
}

func (s *memSource) Snapshot(uint32) []rbs.MLDEntry {
	if s.mld != nil {
		now := time.Now()
		var out []rbs.MLDEntry
		for _, g := range s.mld.Groups() {
			out = append(out, mldbackup.ToEntry(g, now))
		}
		return out
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.entries
}

// sink is the daemon's sink, mldbackup.Binding, with the batch timed.
type sink struct {
	*mldbackup.Binding

	replaceAllAt time.Time
	importDone   time.Time
}

func (s *sink) ReplaceAll(id uint32, es []rbs.MLDEntry) error {
	s.replaceAllAt = time.Now()
	err := s.Binding.ReplaceAll(id, es)
	s.importDone = time.Now()
	return err
}

type harness struct {
	t        testing.TB
	ns       *netnstest.NS
	tx, rx   *rbs.Service
	txp, rxp *rbs.Profile
	src      *memSource
	sink     *sink
	txMLD    *mld.Interface
	rxMLD    *mld.Interface
	table    *mroute.Table
	dp       *countingDP
	applyNS  atomic.Int64 // time spent applying MLD updates to the table
}

// newHarness builds the pair; the sender has an MLD interface of its own
// (fed with reports by the latency test) when withTxMLD.
func newHarness(t testing.TB, withTxMLD bool) *harness {
	t.Helper()
	ns := netnstest.New(t, "rbsb")
	for _, a := range []netip.Addr{srcAddr, peerAddr} {
		if out, err := exec.Command("ip", "-n", ns.Name, "addr", "add", a.String()+"/128", "dev", "lo", "nodad").CombinedOutput(); err != nil {
			t.Fatalf("add %s: %v %s", a, err, out)
		}
	}
	dp, err := bpf.Open(bpf.Options{})
	if err != nil {
		t.Fatalf("open dataplane: %v", err)
	}
	t.Cleanup(func() { dp.Close() })
	// As the daemon's EnsureIface does for every interface at start.
	if err := dp.PrepareSet([]int{oif}); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, ns: ns, src: &memSource{}}
	h.dp = &countingDP{dp: dp, reached: make(chan struct{}), waiters: map[netip.Addr]chan time.Time{}}
	h.table = mroute.New(h.dp, upstream, nil)

	cfg := mld.DefaultConfig("rx0", netip.MustParseAddr("fe80::2"))
	cfg.MaxGroups = -1
	// As daemon's applyMLD: one table batch per run of updates.
	cfg.OnUpdates = func(us []mld.Update) {
		t0 := time.Now()
		cs := mroute.MLDChanges(us, nil)
		if err := h.table.SetMemberships(oif, cs); err != nil {
			t.Errorf("set %d memberships: %v", len(cs), err)
		}
		h.applyNS.Add(int64(time.Since(t0)))
	}
	if h.rxMLD, err = mld.New(cfg); err != nil {
		t.Fatal(err)
	}
	h.rxMLD.SetQuerierAllowed(false)
	h.rxMLD.Start()
	t.Cleanup(h.rxMLD.Stop)

	if withTxMLD {
		tc := mld.DefaultConfig("tx0", netip.MustParseAddr("fe80::1"))
		tc.MaxGroups = -1
		tc.OnChange = func(gs mld.GroupState) {
			if err := h.txp.Publish(rbs.OpUpsert, mldbackup.ToEntry(gs, time.Now())); err != nil {
				t.Errorf("publish: %v", err)
			}
		}
		tc.OnDelete = func(g netip.Addr) {
			_ = h.txp.Publish(rbs.OpDelete, rbs.MLDEntry{Group: g, FilterMode: rbs.FilterInclude, Compat: 2})
		}
		if h.txMLD, err = mld.New(tc); err != nil {
			t.Fatal(err)
		}
		h.txMLD.SetQuerierAllowed(false)
		h.txMLD.Start()
		t.Cleanup(h.txMLD.Stop)
		h.src.mld = h.txMLD
	}

	dial := func(ctx context.Context) (net.Conn, error) {
		var c net.Conn
		err := ns.Run(func() error {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: srcAddr.AsSlice()}}
			var err error
			c, err = d.DialContext(ctx, "tcp", netip.AddrPortFrom(peerAddr, rbs.DefaultPort).String())
			return err
		})
		return c, err
	}
	listen := func(ctx context.Context) (net.Listener, error) {
		var ln net.Listener
		err := ns.Run(func() error {
			var lc net.ListenConfig
			var err error
			ln, err = lc.Listen(ctx, "tcp", netip.AddrPortFrom(peerAddr, rbs.DefaultPort).String())
			return err
		})
		return ln, err
	}
	base := rbs.Config{Port: rbs.DefaultPort, ReconnectMin: 20 * time.Millisecond, ReconnectMax: 200 * time.Millisecond, MaxBatchEntries: 1 << 20}
	txc, rxc := base, base
	txc.Name, txc.SysName, txc.Source, txc.Peer, txc.Dial = "tx", "A", srcAddr, peerAddr, dial
	rxc.Name, rxc.SysName, rxc.Source, rxc.Peer, rxc.Listen = "rx", "B", peerAddr, srcAddr, listen
	h.tx, h.rx = rbs.New(txc, nil), rbs.New(rxc, nil)
	h.sink = &sink{Binding: mldbackup.Bind(h.rxMLD, nil)}
	h.txp = h.tx.AddProfile(rbs.ProfileConfig{Name: "p", BackupID: backupID}, h.src, nil)
	h.rxp = h.rx.AddProfile(rbs.ProfileConfig{Name: "p", BackupID: backupID}, nil, h.sink)
	h.txp.SetRole(rbs.RoleBackup)
	h.rxp.SetRole(rbs.RoleBackup)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, s := range []*rbs.Service{h.rx, h.tx} {
		wg.Go(func() {
			if err := s.Run(ctx); err != nil {
				t.Errorf("rbs run: %v", err)
			}
		})
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	deadline := time.Now().Add(5 * time.Second)
	for h.rxp.Status().Sync != rbs.SyncIdle || h.txp.Status().Sync != rbs.SyncIdle {
		if time.Now().After(deadline) {
			t.Fatalf("session not up: tx %v, rx %v", h.tx.Status(), h.rx.Status())
		}
		time.Sleep(5 * time.Millisecond)
	}
	return h
}

// batchResult is one batch measurement.
type batchResult struct {
	n                           int
	total, transfer, imp, apply time.Duration
	calls                       int64
	dpTime                      time.Duration
}

// runBatch makes the sender Master with n entries and waits until all n
// routes are in the receiver's BPF routes map.
func runBatch(t testing.TB, n int) batchResult {
	h := newHarness(t, false)
	es := make([]rbs.MLDEntry, n)
	for i := range es {
		es[i] = rbs.MLDEntry{Group: group(0x10000000 + uint32(i)), FilterMode: rbs.FilterExclude, Compat: 2, GroupTimerMs: 260000, LastReporter: reporter}
	}
	h.src.entries = es
	h.dp.target = int64(n)
	start := time.Now()
	h.txp.SetRole(rbs.RoleMaster)
	select {
	case <-h.dp.reached:
	case <-time.After(60 * time.Second):
		t.Fatalf("%d routes after 60 s, want %d (rx %+v)", h.dp.put.Load(), n, h.rxp.Status())
	}
	done := time.Unix(0, h.dp.at.Load())
	// The batch is acknowledged once applied.
	deadline := time.Now().Add(10 * time.Second)
	for h.rxp.Status().Sync != rbs.SyncReceiverInSync || h.txp.Status().Sync != rbs.SyncSenderInSync {
		if time.Now().After(deadline) {
			t.Fatalf("not in sync: tx %+v rx %+v", h.txp.Status(), h.rxp.Status())
		}
		time.Sleep(time.Millisecond)
	}
	rs, err := h.dp.dp.Routes()
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != n {
		t.Fatalf("BPF routes map holds %d routes, want %d", len(rs), n)
	}
	for _, r := range rs[:min(len(rs), 100)] {
		if r.IIf != upstream || !slices.Equal(r.OIfs, []int{oif}) || !r.IsStar() || r.Flags&bpf.RouteSynced == 0 {
			t.Fatalf("route %+v", r.Route)
		}
	}
	if got := len(h.rxMLD.Groups()); got != n {
		t.Fatalf("receiver MLD holds %d groups, want %d", got, n)
	}
	s := h.sink
	return batchResult{
		n: n, total: done.Sub(start),
		transfer: s.replaceAllAt.Sub(start), imp: s.importDone.Sub(s.replaceAllAt), apply: time.Duration(h.applyNS.Load()),
		calls: h.dp.calls.Load(), dpTime: time.Duration(h.dp.spent.Load()),
	}
}

func group(i uint32) netip.Addr {
	return netip.AddrFrom16([16]byte{0xff, 0x0e, 10: 0x01, 11: 0x00, 12: byte(i >> 24), 13: byte(i >> 16), 14: byte(i >> 8), 15: byte(i)})
}

func (r batchResult) row() string {
	// Import's duration includes the OnUpdates callback (the route apply).
	return fmt.Sprintf("| %d | **%s** | %s | %s | %s | %s | %d | %s |", r.n, ms(r.total), ms(r.transfer), ms(r.imp-r.apply), ms(r.apply), ms(r.dpTime), r.calls, verdict(r.total <= time.Second))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1e3) }

func verdict(ok bool) string {
	if ok {
		return "yes"
	}
	return "no"
}

// TestBatchToMaps is the quick version: 5000 entries.
func TestBatchToMaps(t *testing.T) {
	r := runBatch(t, 5000)
	if r.calls != 1 {
		t.Errorf("the batch took %d route writes, want 1", r.calls)
	}
	t.Log(r.row())
}

func runLatency(t *testing.T, n int, load bool) []time.Duration {
	h := newHarness(t, true)
	all := netip.MustParseAddr("ff02::16")
	report := func(g netip.Addr) {
		b, err := mld.Marshal(&mld.V2Report{Records: []mld.Record{{Type: mld.ChangeToExclude, Group: g}}}, reporter, all)
		if err != nil {
			t.Fatal(err)
		}
		h.txMLD.HandlePacket(mld.Packet{Src: reporter, Dst: all, HopLimit: 1, RouterAlert: true, Payload: b})
	}
	if load {
		for i := range 10000 {
			report(group(0x20000000 + uint32(i)))
		}
	}
	h.txp.SetRole(rbs.RoleMaster)
	deadline := time.Now().Add(20 * time.Second)
	for h.rxp.Status().Sync != rbs.SyncReceiverInSync {
		if time.Now().After(deadline) {
			t.Fatalf("not in sync: %+v", h.rxp.Status())
		}
		time.Sleep(time.Millisecond)
	}
	var lat []time.Duration
	for i := range n {
		g := group(0x30000000 + uint32(i))
		ch := h.dp.wait(g)
		t0 := time.Now()
		report(g)
		select {
		case at := <-ch:
			lat = append(lat, at.Sub(t0))
		case <-time.After(5 * time.Second):
			t.Fatalf("join %d (%s) never reached the receiver's map", i, g)
		}
		time.Sleep(2 * time.Millisecond)
	}
	if st := h.rxp.Status(); st.BatchesReceived != 1 || st.ResyncsRequested != 0 {
		t.Errorf("receiver: %d batches, %d resyncs: the deltas did not flow in one epoch", st.BatchesReceived, st.ResyncsRequested)
	}
	slices.Sort(lat)
	return lat
}

// TestLatencyQuick checks the real-time path with 20 joins.
func TestLatencyQuick(t *testing.T) {
	lat := runLatency(t, 20, false)
	t.Logf("20 joins: median %s, max %s", lat[len(lat)/2], lat[len(lat)-1])
}
