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
	"os"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	rtrace "runtime/trace"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hotcast/hotcast/bpf"
	"github.com/hotcast/hotcast/ctrl/mld"
	"github.com/hotcast/hotcast/ctrl/mroute"
	"github.com/hotcast/hotcast/internal/hugeheap"
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

	lastStart atomic.Int64 // unix ns of the last ReplaceRoutes call
	failed    atomic.Bool  // a ReplaceRoutes call failed
}

func (c *countingDP) ReplaceRoutes(rs []bpf.Route) error {
	t0 := time.Now()
	c.lastStart.Store(t0.UnixNano())
	err := c.dp.ReplaceRoutes(rs)
	now := time.Now()
	c.spent.Add(int64(now.Sub(t0)))
	c.calls.Add(1)
	if err != nil {
		c.failed.Store(true)
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
	snapped time.Time      // when the last Snapshot returned
}

func (s *memSource) Snapshot(backupID uint32) []rbs.MLDEntry {
	es := s.snapshot()
	s.snapped = time.Now()
	return es
}

func (s *memSource) snapshot() []rbs.MLDEntry {
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
	upsertAt     atomic.Int64 // unix ns of the last real-time Upsert
}

func (s *sink) Upsert(id uint32, e rbs.MLDEntry) error {
	s.upsertAt.Store(time.Now().UnixNano())
	return s.Binding.Upsert(id, e)
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
	pubAt    atomic.Int64 // unix ns of the sender's last Publish
	opts     harnessOpts
	// prefaulted is what the receiver's heap prefault did (hotcastd's
	// rbs.Config.BatchBegin, daemon/heap.go), one per batch begun; nil
	// when the receiver prefaults nothing.
	prefaulted chan hugeheap.Populated
}

// harnessOpts vary the harness.
type harnessOpts struct {
	withTxMLD   bool // the sender has an MLD interface, fed by the latency test
	tolerateDP  bool // a refused route batch is recorded, not a test error (scale runs)
	noSenderLoc bool // the sender runs in another process (the receiver only)
}

// newHarness builds the pair; the sender has an MLD interface of its own
// (fed with reports by the latency test) when withTxMLD.
func newHarness(t testing.TB, withTxMLD bool) *harness {
	t.Helper()
	return newHarnessOpts(t, harnessOpts{withTxMLD: withTxMLD})
}

func newHarnessOpts(t testing.TB, o harnessOpts) *harness {
	t.Helper()
	withTxMLD := o.withTxMLD
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
	h := &harness{t: t, ns: ns, src: &memSource{}, opts: o}
	h.dp = &countingDP{dp: dp, reached: make(chan struct{}), waiters: map[netip.Addr]chan time.Time{}}
	h.table = mroute.New(h.dp, upstream, nil)

	cfg := mld.DefaultConfig("rx0", netip.MustParseAddr("fe80::2"))
	cfg.MaxGroups = -1
	// As daemon's applyMLD: one table batch per run of updates.
	cfg.OnUpdates = func(us []mld.Update) {
		t0 := time.Now()
		cs := mroute.MLDChanges(us, nil)
		if err := h.table.SetMemberships(oif, cs); err != nil && !o.tolerateDP {
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
			h.pubAt.Store(time.Now().UnixNano())
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
	base := rbs.Config{Port: rbs.DefaultPort, ReconnectMin: 20 * time.Millisecond, ReconnectMax: 200 * time.Millisecond, MaxBatchEntries: 1 << 21}
	rxc := base
	rxc.Name, rxc.SysName, rxc.Source, rxc.Peer, rxc.Listen = "rx", "B", peerAddr, srcAddr, listen
	// As hotcastd's batchBegin (daemon/heap.go): the standby's heap made
	// resident while the batch arrives. HC_BENCH_NO_PREFAULT=1 compares.
	if pf := heapSetup.Prefaulter(); pf != nil && os.Getenv("HC_BENCH_NO_PREFAULT") != "1" {
		h.prefaulted = make(chan hugeheap.Populated, 1)
		rxc.BatchBegin = func(_ uint32, count int) {
			_ = pf.Start(hugeheap.BatchBytes(count), func(p hugeheap.Populated) {
				select {
				case h.prefaulted <- p:
				default:
				}
			})
		}
	}
	h.rx = rbs.New(rxc, nil)
	h.sink = &sink{Binding: mldbackup.Bind(h.rxMLD, nil)}
	h.rxp = h.rx.AddProfile(rbs.ProfileConfig{Name: "p", BackupID: backupID}, nil, h.sink)
	h.rxp.SetRole(rbs.RoleBackup)
	services := []*rbs.Service{h.rx}
	if !o.noSenderLoc {
		txc := base
		txc.Name, txc.SysName, txc.Source, txc.Peer, txc.Dial = "tx", "A", srcAddr, peerAddr, dial
		h.tx = rbs.New(txc, nil)
		h.txp = h.tx.AddProfile(rbs.ProfileConfig{Name: "p", BackupID: backupID}, h.src, nil)
		h.txp.SetRole(rbs.RoleBackup)
		services = append(services, h.tx)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, s := range services {
		wg.Go(func() {
			if err := s.Run(ctx); err != nil {
				t.Errorf("rbs run: %v", err)
			}
		})
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	if o.noSenderLoc {
		return h // the other process dials
	}
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
	n     int
	total time.Duration // SetRole(Master) at the sender → last route written
	// Stages, in order: the sender's Snapshot; encode + TCP + decode up
	// to the receiver's ReplaceAll (BatchEnd); mld Import (conversion and
	// MLD state, without the route apply); route apply (MLDChanges +
	// Table.SetMemberships, bpf.ReplaceRoutes included); in ReplaceRoutes.
	snapshot, wire, imp, apply, dpTime time.Duration
	calls                              int64
	gcs                                uint32              // GC cycles during the batch (both sides)
	gcPause                            time.Duration       // their stop-the-world pauses
	allocPerEntry                      float64             // bytes allocated per entry, both sides
	faults                             int64               // minor page faults during the batch (both sides)
	peakHeap                           uint64              // heap mapped and not released at the end of the batch
	rss, rssHuge                       uint64              // the process's RSS at the end of the batch, and of it AnonHugePages
	prefault                           *hugeheap.Populated // the receiver's heap prefault, if one ran
	user, sys                          time.Duration       // CPU time of the process during the batch
	dpFailed                           bool                // the routes map refused the batch
}

// runBatch makes the sender Master with n entries and waits until all n
// routes are in the receiver's BPF routes map.
func runBatch(t testing.TB, n int) batchResult {
	h := newHarness(t, false)
	h.src.entries = batchEntries(n)
	h.dp.target = int64(n)
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	f0 := minorFaults(t)
	var ru0, ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	start := time.Now()
	h.txp.SetRole(rbs.RoleMaster)
	select {
	case <-h.dp.reached:
	case <-time.After(60 * time.Second):
		t.Fatalf("%d routes after 60 s, want %d (rx %+v)", h.dp.put.Load(), n, h.rxp.Status())
	}
	done := time.Unix(0, h.dp.at.Load())
	f1 := minorFaults(t)
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	runtime.ReadMemStats(&m1)
	rss, rssHuge := rssRollup(t)
	var pf *hugeheap.Populated
	if h.prefaulted != nil && hugeheap.BatchBytes(n) > 0 {
		select {
		case p := <-h.prefaulted:
			pf = &p
		case <-time.After(time.Until(done.Add(2 * time.Second))):
			// it outlasted the batch by far (or met a busy prefaulter)
		}
	}
	if path := os.Getenv("HC_BENCH_HEAPPROFILE"); path != "" {
		// What the standby (and the sender's table) hold after the batch.
		writeHeapProfile(t, path)
	}
	// The batch is acknowledged once applied.
	deadline := time.Now().Add(10 * time.Second)
	for h.rxp.Status().Sync != rbs.SyncReceiverInSync || h.txp.Status().Sync != rbs.SyncSenderInSync {
		if time.Now().After(deadline) {
			t.Fatalf("not in sync: tx %+v rx %+v", h.txp.Status(), h.rxp.Status())
		}
		time.Sleep(time.Millisecond)
	}
	h.checkBatch(t, n)
	s := h.sink
	return batchResult{
		n: n, total: done.Sub(start),
		snapshot: h.src.snapped.Sub(start), wire: s.replaceAllAt.Sub(h.src.snapped),
		imp: s.importDone.Sub(s.replaceAllAt) - time.Duration(h.applyNS.Load()), apply: time.Duration(h.applyNS.Load()),
		calls: h.dp.calls.Load(), dpTime: time.Duration(h.dp.spent.Load()),
		gcs: m1.NumGC - m0.NumGC, gcPause: time.Duration(m1.PauseTotalNs - m0.PauseTotalNs),
		allocPerEntry: float64(m1.TotalAlloc-m0.TotalAlloc) / float64(n),
		faults:        f1 - f0, peakHeap: m1.HeapSys - m1.HeapReleased,
		rss: rss, rssHuge: rssHuge, prefault: pf,
		user: time.Duration(ru1.Utime.Nano() - ru0.Utime.Nano()), sys: time.Duration(ru1.Stime.Nano() - ru0.Stime.Nano()),
	}
}

func writeHeapProfile(t testing.TB, path string) {
	runtime.GC()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		t.Fatal(err)
	}
}

// rssRollup is the process's RSS and the part of it in anonymous huge
// pages (/proc/self/smaps_rollup).
func rssRollup(t testing.TB) (rss, huge uint64) {
	b, err := os.ReadFile("/proc/self/smaps_rollup")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		k, v, _ := strings.Cut(line, ":")
		n, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "Rss":
			rss = n << 10
		case "AnonHugePages":
			huge = n << 10
		}
	}
	return rss, huge
}

// minorFaults is the process's minor page faults so far: first touches of
// memory, which cost this VM about 15 µs per 4 KiB page.
func minorFaults(t testing.TB) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return ru.Minflt
}

// batchEntries are n EXCLUDE {} entries, as a standby mostly holds.
func batchEntries(n int) []rbs.MLDEntry {
	es := make([]rbs.MLDEntry, n)
	for i := range es {
		es[i] = rbs.MLDEntry{Group: group(0x10000000 + uint32(i)), FilterMode: rbs.FilterExclude, Compat: 2, GroupTimerMs: 260000, LastReporter: reporter}
	}
	return es
}

// checkBatch checks that the receiver's map and MLD state hold the batch.
func (h *harness) checkBatch(t testing.TB, n int) {
	t.Helper()
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
}

func group(i uint32) netip.Addr {
	return netip.AddrFrom16([16]byte{0xff, 0x0e, 10: 0x01, 11: 0x00, 12: byte(i >> 24), 13: byte(i >> 16), 14: byte(i >> 8), 15: byte(i)})
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1e3) }

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

// TestBatchToMaps is the quick version: 5000 entries.
func TestBatchToMaps(t *testing.T) {
	r := runBatch(t, 5000)
	if r.calls != 1 {
		t.Errorf("the batch took %d route writes, want 1", r.calls)
	}
	t.Logf("5000 entries: %s to the map", r.total)
}

// join is one real-time measurement: the report at the sender to the
// route in the receiver's map, in three stages.
type join struct {
	total time.Duration
	tx    time.Duration // report → Publish (the sender's MLD)
	wire  time.Duration // Publish → the receiver's Upsert (rbs: queue, TCP, decode)
	rx    time.Duration // Upsert → route written (MLD, table, ReplaceRoutes)
	gc    bool          // a GC cycle ran during the join
	// faults are the process's minor page faults from the report until
	// the route was seen written (any goroutine's: the harness's too).
	faults int64
}

func runLatency(t *testing.T, n int, load bool) []join {
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
	runtime.GC()
	gcs := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	var js []join
	for i := range n {
		g := group(0x30000000 + uint32(i))
		ch := h.dp.wait(g)
		metrics.Read(gcs)
		gc0 := gcs[0].Value.Uint64()
		if rtrace.IsEnabled() {
			rtrace.Log(context.Background(), "join", fmt.Sprint("start ", i))
		}
		f0 := minorFaults(t)
		t0 := time.Now()
		report(g)
		select {
		case at := <-ch:
			pub, up := time.Unix(0, h.pubAt.Load()), time.Unix(0, h.sink.upsertAt.Load())
			metrics.Read(gcs)
			js = append(js, join{total: at.Sub(t0), tx: pub.Sub(t0), wire: up.Sub(pub), rx: at.Sub(up), gc: gcs[0].Value.Uint64() != gc0, faults: minorFaults(t) - f0})
			if rtrace.IsEnabled() {
				rtrace.Log(context.Background(), "join", fmt.Sprint("done ", i, " ", at.Sub(t0)))
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("join %d (%s) never reached the receiver's map", i, g)
		}
		time.Sleep(2 * time.Millisecond)
	}
	if st := h.rxp.Status(); st.BatchesReceived != 1 || st.ResyncsRequested != 0 {
		t.Errorf("receiver: %d batches, %d resyncs: the deltas did not flow in one epoch", st.BatchesReceived, st.ResyncsRequested)
	}
	h.checkSame(t)
	return js
}

// checkSame checks that both sides hold the same entries.
func (h *harness) checkSame(t testing.TB) {
	t.Helper()
	now := time.Now()
	tx, rx := h.txMLD.Groups(), h.rxMLD.Groups()
	if len(tx) != len(rx) {
		t.Fatalf("sender holds %d groups, receiver %d", len(tx), len(rx))
	}
	for i := range tx {
		a, b := mldbackup.ToEntry(tx[i], now), mldbackup.ToEntry(rx[i], now)
		a.GroupTimerMs, b.GroupTimerMs, a.V1HostMs, b.V1HostMs = 0, 0, 0, 0 // restarted on arrival
		if !a.Equal(b) {
			t.Fatalf("group %d: sender %+v, receiver %+v", i, a, b)
		}
	}
}

// TestLatencyQuick checks the real-time path with 20 joins.
func TestLatencyQuick(t *testing.T) {
	js := runLatency(t, 20, false)
	t.Logf("20 joins: first %s, last %s", js[0].total, js[len(js)-1].total)
}
