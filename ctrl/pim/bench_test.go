package pim

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotcast/hotcast/internal/clock"
	"github.com/hotcast/hotcast/internal/clock/clocktest"
)

// The PIM-SM benchmarks of bench/pim.md. One Router with an upstream
// interface (ifindex 1, "up": the PIM neighbour benchUpNbr, RPF' of every
// source) and a downstream LAN (ifindex 2, "down": the PIM router
// benchDownNbr, which sends the joins, its Hello received first). The
// (S,G) entries are SSM: entry k is group ff3e::(1+k/spg), source
// 2001:db8:5::(1+k%spg) (spg sources per group). The joins received are
// packed as hotcast packs its own (packJoinPrunes, 1500-octet MTU): with
// one source per group, 32 group sets per message.
//
// The Router and Interfaces run on the system clock, as in the daemon
// (clocktest.Fake keeps every stopped timer in a slice until Advance,
// which would charge the fake clock's bookkeeping to the Router), except
// in BenchmarkJoinPeriodic and BenchmarkUpstreamRestart, which need time
// to pass. Run them on one core: go test -run '^$' -bench . -cpu 1
// ./ctrl/pim/. Environment: HC_BENCH=1 adds the 100 000-entry sizes;
// HC_BENCH_SPG=1,1000 (say) replaces the sources-per-group layouts (1
// and 100); HC_BENCH_HEAPPROFILE=dir makes BenchmarkSGMemory write a
// heap profile with the entries in place.

var (
	benchUpLL    = netip.MustParseAddr("fe80::1")   // ours on "up"
	benchUpNbr   = netip.MustParseAddr("fe80::100") // the upstream router
	benchDownLL  = netip.MustParseAddr("fe80::2")   // ours on "down"
	benchDownNbr = netip.MustParseAddr("fe80::200") // the downstream router
	benchSrcPfx  = netip.MustParsePrefix("2001:db8:5::/48")
)

// benchSizes are the (S,G) counts: 10 000, and 100 000 with HC_BENCH=1.
func benchSizes() []int {
	if os.Getenv("HC_BENCH") != "" {
		return []int{10_000, 100_000}
	}
	return []int{10_000}
}

func benchGroup(i int) netip.Addr {
	i++
	return netip.AddrFrom16([16]byte{0xff, 0x3e, 12: byte(i >> 24), 13: byte(i >> 16), 14: byte(i >> 8), 15: byte(i)})
}

func benchSource(i int) netip.Addr {
	i++
	return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0x00, 0x05, 12: byte(i >> 24), 13: byte(i >> 16), 14: byte(i >> 8), 15: byte(i)})
}

// benchSets returns the group sets of n (S,G) entries, spg sources per
// group, as joins or as prunes.
func benchSets(n, spg int, join bool) []GroupSet {
	var sets []GroupSet
	for k := 0; k < n; k += spg {
		set := GroupSet{Group: SingleGroup(benchGroup(k / spg))}
		for j := 0; j < spg && k+j < n; j++ {
			if join {
				set.Joins = append(set.Joins, SG(benchSource(j)))
			} else {
				set.Prunes = append(set.Prunes, SG(benchSource(j)))
			}
		}
		sets = append(sets, set)
	}
	return sets
}

// benchJPs packs n (S,G) joins (or prunes) to us as the downstream router
// sends them: within a 1500-octet MTU, Holdtime 210 s.
func benchJPs(n, spg int, join bool) []*JoinPrune {
	return packJoinPrunes(benchDownLL, uint16(DefaultJoinPruneHoldtime/time.Second), benchSets(n, spg, join), DefaultMTU-ipv6HeaderLen)
}

// benchWire is jps on the wire, as the socket hands them to HandlePacket.
func benchWire(tb testing.TB, jps []*JoinPrune) []Packet {
	out := make([]Packet, 0, len(jps))
	for _, jp := range jps {
		b, err := Marshal(jp, benchDownNbr, AllPIMRouters)
		if err != nil {
			tb.Fatal(err)
		}
		if len(b)+ipv6HeaderLen > DefaultMTU {
			tb.Fatalf("%d octets: beyond the MTU", len(b))
		}
		out = append(out, Packet{Src: benchDownNbr, Dst: AllPIMRouters, HopLimit: HopLimit, Payload: b})
	}
	return out
}

// benchSender counts what an Interface sends (Hellos may come from the
// system clock's goroutines).
type benchSender struct{ msgs, jps, octets atomic.Int64 }

func (s *benchSender) SendPIM(_ netip.Addr, b []byte) error {
	s.msgs.Add(1)
	if MessageType(b[0]&0x0f) == TypeJoinPrune {
		s.jps.Add(1)
	}
	s.octets.Add(int64(len(b)))
	return nil
}

type benchRouter struct {
	r        *Router
	up, down *Interface
	upTx     benchSender // what goes to the upstream router
	downTx   benchSender
	updates  atomic.Int64 // RouteUpdates delivered
}

// newBenchRouter builds the Router: no entry limit, t_periodic period
// (the rate benchmarks take an hour, so that no Join Timer fires in the
// measured loop), the downstream router's Hello received when downNbr
// (without it this router is the DR of "down", for local listeners).
func newBenchRouter(tb testing.TB, clk clock.Clock, period time.Duration, downNbr bool) *benchRouter {
	tb.Helper()
	br := &benchRouter{}
	rpf := &StaticRPF{}
	rpf.Set(benchSrcPfx, RPFRoute{Ifindex: 1, Nexthop: benchUpNbr, Preference: 1, Metric: 10})
	r, err := NewRouter(RouterConfig{
		RPF:             rpf,
		JoinPrunePeriod: period,
		MaxEntries:      -1,
		Clock:           clk,
		OnRoutes:        func(us []RouteUpdate) { br.updates.Add(int64(len(us))) },
	})
	if err != nil {
		tb.Fatal(err)
	}
	br.r = r
	mk := func(ifx int, name string, ll netip.Addr, tx *benchSender) *Interface {
		cfg := DefaultConfig(name, ll)
		cfg.Clock = clk
		cfg.Sender = tx
		cfg.OnEvent = r.HandleEvent
		cfg.OnMessage = r.HandleMessage
		ifc, err := New(cfg)
		if err != nil {
			tb.Fatal(err)
		}
		if err := r.AddInterface(ifx, ifc, IfaceOptions{}); err != nil {
			tb.Fatal(err)
		}
		ifc.Start()
		return ifc
	}
	br.up = mk(1, "up", benchUpLL, &br.upTx)
	br.down = mk(2, "down", benchDownLL, &br.downTx)
	benchHello(tb, br.up, benchUpNbr, 7)
	if downNbr {
		benchHello(tb, br.down, benchDownNbr, 7)
	}
	return br
}

// benchHello hands ifc a Hello from src that never expires.
func benchHello(tb testing.TB, ifc *Interface, src netip.Addr, genID uint32) {
	h := &Hello{Holdtime: new(uint16(HoldtimeForever)), DRPriority: new(uint32(1)), GenerationID: new(genID),
		LANPruneDelay: &LANPruneDelay{PropagationDelay: 500, OverrideInterval: 2500}}
	b, err := Marshal(h, src, AllPIMRouters)
	if err != nil {
		tb.Fatal(err)
	}
	if d := ifc.HandlePacket(Packet{Src: src, Dst: AllPIMRouters, HopLimit: HopLimit, Payload: b}); d != DropNone {
		tb.Fatalf("hello from %v dropped: %v", src, d)
	}
}

// local makes the listeners on "down" want every source of sets
// (INCLUDE, one SetLocalMembership per group, as MLD reports them), or
// nothing when leave.
func (br *benchRouter) local(tb testing.TB, sets []GroupSet, leave bool) {
	var ss []netip.Addr
	for _, set := range sets {
		ss = ss[:0]
		if !leave {
			for _, s := range set.Joins {
				ss = append(ss, s.Addr)
			}
		}
		if err := br.r.SetLocalMembership(2, set.Group.Addr, false, ss); err != nil {
			tb.Fatal(err)
		}
	}
}

func (br *benchRouter) stop() {
	br.up.Stop()
	br.down.Stop()
}

func (br *benchRouter) feedMsgs(jps []*JoinPrune) {
	for _, jp := range jps {
		br.r.HandleMessage(Received{Interface: "down", Src: benchDownNbr, Dst: AllPIMRouters, Message: jp})
	}
}

func (br *benchRouter) feedWire(tb testing.TB, pkts []Packet) {
	for _, p := range pkts {
		if d := br.down.HandlePacket(p); d != DropNone {
			tb.Fatalf("join/prune dropped: %v", d)
		}
	}
}

// check fails unless the Router holds want entries, joined upstream,
// and dropped nothing.
func (br *benchRouter) check(tb testing.TB, want int) {
	tb.Helper()
	br.r.mu.Lock()
	n, joined := br.r.entries, 0
	for _, gs := range br.r.groups {
		for _, e := range gs.src {
			if e.up.joined && e.up.nbr == benchUpNbr {
				joined++
			}
		}
	}
	st := br.r.stats
	br.r.mu.Unlock()
	if n != want || joined != want {
		tb.Fatalf("%d entries, %d joined upstream; want %d", n, joined, want)
	}
	for why, c := range st.JPDrops {
		if c != 0 {
			tb.Fatalf("%d join/prune drops: %v", c, JPDropReason(why))
		}
	}
}

// BenchmarkJoinPruneRx is the downstream Join/Prune processing rate: n
// (S,G) joins (spg sources per group) received from the downstream router
// create the state (first join: downstream Join, Expiry Timer, upstream
// Join sent, route exported), refresh it (the same joins again, as the
// periodic ones of t_periodic later: ET re-armed, nothing sent), and
// prune it away (one neighbour on the LAN: NoInfo at once, upstream Prune
// sent, entries deleted). path=msg hands parsed messages to
// Router.HandleMessage; path=wire hands the octets to
// Interface.HandlePacket (checksum, parse, neighbour check, then the
// Router). create and prune use a fresh Router per iteration (a cold
// heap and maps, as after a restart); the other phase runs untimed.
// Custom metric: sg/s, entries processed per second.
func BenchmarkJoinPruneRx(b *testing.B) {
	for _, n := range benchSizes() {
		for _, spg := range benchSPG() {
			for _, path := range []string{"msg", "wire"} {
				for _, phase := range []string{"create", "refresh", "prune"} {
					b.Run(fmt.Sprintf("sg=%d/spg=%d/path=%s/phase=%s", n, spg, path, phase), func(b *testing.B) {
						benchJPRx(b, n, spg, path == "wire", phase)
					})
				}
			}
		}
	}
}

func benchJPRx(b *testing.B, n, spg int, wire bool, phase string) {
	joins, prunes := benchJPs(n, spg, true), benchJPs(n, spg, false)
	var wJoins, wPrunes []Packet
	if wire {
		wJoins, wPrunes = benchWire(b, joins), benchWire(b, prunes)
	}
	feed := func(br *benchRouter, join bool) {
		switch {
		case wire && join:
			br.feedWire(b, wJoins)
		case wire:
			br.feedWire(b, wPrunes)
		case join:
			br.feedMsgs(joins)
		default:
			br.feedMsgs(prunes)
		}
	}
	const period = time.Hour
	var br *benchRouter
	if phase == "refresh" {
		br = newBenchRouter(b, clock.System{}, period, true)
		feed(br, true)
		br.check(b, n)
		runtime.GC()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		switch phase {
		case "create":
			b.StopTimer()
			br = newBenchRouter(b, clock.System{}, period, true)
			runtime.GC()
			b.StartTimer()
			feed(br, true)
			b.StopTimer()
			br.check(b, n)
			feed(br, false)
			br.check(b, 0)
			br.stop()
			b.StartTimer()
		case "refresh":
			feed(br, true)
		case "prune":
			b.StopTimer()
			br = newBenchRouter(b, clock.System{}, period, true)
			feed(br, true)
			br.check(b, n)
			runtime.GC()
			b.StartTimer()
			feed(br, false)
			b.StopTimer()
			br.check(b, 0)
			br.stop()
			b.StartTimer()
		}
	}
	b.StopTimer()
	if phase == "refresh" {
		br.check(b, n)
		if tx := br.upTx.jps.Load(); tx > int64(len(joins)) {
			// The creating joins' upstream joins: a refresh sends none.
			b.Fatalf("%d join/prunes upstream for %d received", tx, len(joins))
		}
		feed(br, false)
		br.stop()
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "sg/s")
	b.ReportMetric(float64(len(joins)), "msgs/op")
}

// heapInUse is the live heap after a collection. The sleep lets the
// scheduler clear the runtime's stopped timers (it keeps them, and what
// their functions reference, in its timer heap until it cleans it), so
// that an earlier Router's state is not freed during the next reading.
func heapInUse() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	time.Sleep(20 * time.Millisecond)
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkSGMemory is the heap each (S,G) entry costs the Router, the
// Interfaces and their timers (system clock): side=downstream, n (S,G)
// joins received from the downstream router (downstream state with its
// Expiry Timer, upstream state with its Join Timer, the exported route,
// the RPF cache); side=upstream, n (S,G) wanted by local listeners
// (SetLocalMembership, INCLUDE with the group's sources, as MLD reports
// them): the listener record, upstream state and Join Timer, the route.
// What is fed is built before the first reading, and every Router is
// emptied (its timers stopped) before the next. Custom metric: B/sg.
func BenchmarkSGMemory(b *testing.B) {
	for _, n := range benchSizes() {
		for _, spg := range benchSPG() {
			for _, side := range []string{"downstream", "upstream"} {
				b.Run(fmt.Sprintf("sg=%d/spg=%d/side=%s", n, spg, side), func(b *testing.B) {
					benchMemory(b, n, spg, side == "upstream")
				})
			}
		}
	}
}

func benchMemory(b *testing.B, n, spg int, local bool) {
	joins, prunes := benchJPs(n, spg, true), benchJPs(n, spg, false)
	sets := benchSets(n, spg, true)
	var perSG float64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		br := newBenchRouter(b, clock.System{}, time.Hour, !local)
		before := heapInUse()
		b.StartTimer()
		if local {
			br.local(b, sets, false)
		} else {
			br.feedMsgs(joins)
		}
		b.StopTimer()
		after := heapInUse()
		br.check(b, n)
		perSG += (float64(after) - float64(before)) / float64(n)
		if dir := os.Getenv("HC_BENCH_HEAPPROFILE"); dir != "" && i == 0 {
			// What the entries hold: go tool pprof -sample_index=inuse_space.
			writeHeapProfile(b, filepath.Join(dir, strings.ReplaceAll(b.Name(), "/", "_")+".heap"))
		}
		if local {
			br.local(b, sets, true)
		} else {
			br.feedMsgs(prunes)
		}
		br.check(b, 0)
		br.stop()
		b.StartTimer()
	}
	b.ReportMetric(perSG/float64(b.N), "B/sg")
}

func writeHeapProfile(tb testing.TB, path string) {
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if err := pprof.WriteHeapProfile(f); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkRoutes is Router.Routes, the export of every route (what the
// daemon's display and a full resync read), with n (S,G) entries joined
// from downstream. Custom metric: ns/route.
func BenchmarkRoutes(b *testing.B) {
	for _, n := range benchSizes() {
		b.Run(fmt.Sprintf("sg=%d", n), func(b *testing.B) {
			br := newBenchRouter(b, clock.System{}, time.Hour, true)
			defer br.stop()
			br.feedMsgs(benchJPs(n, 1, true))
			br.check(b, n)
			runtime.GC()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if rs := br.r.Routes(); len(rs) != n {
					b.Fatalf("%d routes, want %d", len(rs), n)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n)/float64(b.N), "ns/route")
		})
	}
}

// BenchmarkJoinPeriodic is one t_periodic round upstream: n (S,G) wanted
// by local listeners (spg sources per group), all joined through the
// upstream router; each iteration advances a fake clock by t_periodic
// (60 s), the Join Timer fires, and the Router batches every entry,
// packs the Join/Prunes, and the Interface marshals them (checksum
// included) for the Sender. Custom metrics: sg/s, msgs/op.
func BenchmarkJoinPeriodic(b *testing.B) {
	for _, n := range benchSizes() {
		for _, spg := range benchSPG() {
			b.Run(fmt.Sprintf("sg=%d/spg=%d", n, spg), func(b *testing.B) { benchPeriodic(b, n, spg) })
		}
	}
}

func benchPeriodic(b *testing.B, n, spg int) {
	clk := clocktest.New(t0)
	br := newBenchRouter(b, clk, DefaultJoinPrunePeriod, false)
	defer br.stop()
	br.local(b, benchSets(n, spg, true), false)
	br.check(b, n)
	clk.Advance(DefaultJoinPrunePeriod) // first round: the timers line up
	runtime.GC()
	start := br.upTx.jps.Load()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		clk.Advance(DefaultJoinPrunePeriod)
	}
	b.StopTimer()
	jps := float64(br.upTx.jps.Load()-start) / float64(b.N)
	if want := float64(len(packJoinPrunes(benchUpNbr, 210, benchSets(n, spg, true), DefaultMTU-ipv6HeaderLen))); jps != want {
		b.Fatalf("%.1f join/prunes a round, want %.0f", jps, want)
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "sg/s")
	b.ReportMetric(jps, "msgs/op")
}

// benchSPG are the sources-per-group layouts: 1 and 100, or
// HC_BENCH_SPG's list.
func benchSPG() []int {
	if s := os.Getenv("HC_BENCH_SPG"); s != "" {
		var out []int
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(f)
			if err != nil {
				panic(err)
			}
			out = append(out, n)
		}
		return out
	}
	return []int{1, 100}
}

// BenchmarkUpstreamRestart is an upstream neighbour's restart: its Hello
// with a new Generation ID (HandlePacket), the NeighborRestarted event
// (every group re-derived and re-exported, the Join Timer of every entry
// joined through it cut to t_override, §4.5.7), then the fake clock
// advanced by J/P_Override_Interval: the joins of all n (S,G) (local
// listeners, one source per group) go out in one batch. Custom metric:
// msgs/op, the Join/Prunes sent.
func BenchmarkUpstreamRestart(b *testing.B) {
	for _, n := range benchSizes() {
		b.Run(fmt.Sprintf("sg=%d", n), func(b *testing.B) {
			clk := clocktest.New(t0)
			br := newBenchRouter(b, clk, DefaultJoinPrunePeriod, false)
			defer br.stop()
			br.local(b, benchSets(n, 1, true), false)
			br.check(b, n)
			clk.Advance(time.Second)
			runtime.GC()
			start := br.upTx.jps.Load()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				benchHello(b, br.up, benchUpNbr, uint32(100+i))
				clk.Advance(br.up.JPOverrideInterval())
			}
			b.StopTimer()
			jps := float64(br.upTx.jps.Load()-start) / float64(b.N)
			if want := float64(len(benchJPs(n, 1, true))); jps != want {
				b.Fatalf("%.1f join/prunes a restart, want %.0f", jps, want)
			}
			br.check(b, n)
			b.ReportMetric(jps, "msgs/op")
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "sg/s")
		})
	}
}
