//go:build hcbench

package e2epim

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hotcast/hotcast/daemon/api"
	"github.com/hotcast/hotcast/internal/labtest"
)

// benchPIMPPS is the stream's rate: the first packet's resolution is
// 1 ms.
const benchPIMPPS = 1000

// pimBenchRun is one measured join, every time from the host's first
// MLDv2 report for the group (seen leaving the host on its link).
type pimBenchRun struct {
	report   time.Duration // the report after the join's setsockopt
	lhrWC    time.Duration // the LHR's (*,G) joined towards the RP
	tree     time.Duration // the RP's (*,G) with the LHR's join (register case)
	source   time.Duration // the source's start (register case)
	first    time.Duration // the first packet at the host
	firstHL  uint8         // its hop limit: 62 registered, 61 native
	rpJoined time.Duration // the RP's (S,G) joined towards the FHR
	lhrSPT   time.Duration // the LHR's (S,G) joined on the SPT with its (S,G) route in the fast path
	fhrPrune time.Duration // the FHR's Register state Prune (register case; -1: Prune before the join)
	fhrReg   bool          // the FHR registered again after the join (streaming case)
	dups     int           // duplicates at the host in the run
	lost     int           // sequence numbers missing after the first arrival
}

// TestBenchPIMFirstPacket measures, in the register topology of
// TestRegisterPath (FHR, RP, LHR, a host; the RP is not the first hop),
// the time from a host's first MLD report to the first packet at the
// host, to the LHR's switch to the SPT and to the FHR's Register state
// Prune, in two cases: the source starts once the RP tree is there (its
// first packets come through Registers), and the source streams already
// (the RP sent Register-Stop when nobody listened, so it must join the
// SPT anew). Each run uses a new group, so that no state of a previous
// run (the (S,G) entries live for their 210 s Keepalive Timer) changes
// the next. Built only with -tags hcbench and run only with HC_BENCH=1
// (scripts/bench-pim); HC_BENCH_RUNS (default 5) runs per case. Writes
// bench/pim-e2e.md.
func TestBenchPIMFirstPacket(t *testing.T) {
	labtest.BenchRequested(t, "scripts/bench-pim")
	runs := labtest.BenchRuns(t, 5)
	l := newRegLab(t, "")
	var groups []netip.Addr
	for i := range runs {
		groups = append(groups, netip.MustParseAddr(fmt.Sprintf("ff0e::3:%x", i+1)), netip.MustParseAddr(fmt.Sprintf("ff0e::4:%x", i+1)))
	}
	meter := newRegMeter(t, l.h1, groups...)
	var reg, streaming []pimBenchRun
	for i := range runs {
		r := benchRegisterCase(t, l, meter, groups[2*i])
		t.Logf("register run %d: report %s after the setsockopt; LHR (*,G) %s, tree %s, source %s, first packet %s (hop limit %d), RP joined %s, LHR SPT %s, FHR Prune %s; %d duplicates, %d lost",
			i, ms(r.report), ms(r.lhrWC), ms(r.tree), ms(r.source), ms(r.first), r.firstHL, ms(r.rpJoined), ms(r.lhrSPT), ms(r.fhrPrune), r.dups, r.lost)
		reg = append(reg, r)
		r = benchStreamingCase(t, l, meter, groups[2*i+1])
		t.Logf("streaming run %d: report %s after the setsockopt; LHR (*,G) %s, first packet %s (hop limit %d), RP joined %s, LHR SPT %s, FHR registered again %v; %d duplicates, %d lost",
			i, ms(r.report), ms(r.lhrWC), ms(r.first), r.firstHL, ms(r.rpJoined), ms(r.lhrSPT), r.fhrReg, r.dups, r.lost)
		streaming = append(streaming, r)
	}
	md := pimBenchMarkdown(reg, streaming)
	t.Log("\n" + md)
	if err := os.WriteFile(filepath.Join("..", "..", "bench", "pim-e2e.md"), []byte(md), 0o644); err != nil {
		t.Fatal(err)
	}
}

// benchRegisterCase: the host joins, the LHR's join reaches the RP, the
// source starts; its first packets reach the host through Registers.
func benchRegisterCase(t *testing.T, l *regLab, meter *regMeter, g netip.Addr) pimBenchRun {
	srcS := regSrc.String()
	w := benchWatch(t, l, g)
	joined := time.Now()
	leave := labtest.Join(t, l.h1, g, netip.Addr{})
	// The RP tree, polled without pause: the source starts as soon as
	// it is there.
	var tree time.Time
	for deadline := time.Now().Add(10 * time.Second); ; {
		e := l.rp.pimRoute("", g)
		if e != nil && slices.ContainsFunc(e.Downstreams, func(d api.PIMDownstream) bool { return d.Interface == "ge3" && d.Joined }) {
			tree = time.Now()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v: no RP (*,G) with the LHR's join 10 s after the join", g)
		}
	}
	if e := l.rp.pimRoute(srcS, g); e != nil {
		t.Fatalf("RP has (S,G) state of %v before the source starts: %+v", g, e)
	}
	src := time.Now()
	stream := labtest.StartStream(t, l.s0, regSrc, []netip.Addr{g}, benchPIMPPS)
	var r pimBenchRun
	t0 := benchReport(t, meter, g, joined, &r)
	r.tree, r.source = tree.Sub(t0), src.Sub(t0)
	benchFinish(t, l, meter, g, w, t0, &r)
	if at, ok := w.when("FHR Prune"); ok {
		r.fhrPrune = at.Sub(t0)
	} else {
		t.Errorf("%v: the FHR never went to Register state Prune", g)
	}
	benchCleanup(t, l, stream, leave, g)
	return r
}

// benchStreamingCase: the source streams with nobody listening (the RP
// answered its Registers with Register-Stop: the FHR's Register state is
// Prune), then the host joins; the RP must join the SPT anew.
func benchStreamingCase(t *testing.T, l *regLab, meter *regMeter, g netip.Addr) pimBenchRun {
	srcS := regSrc.String()
	stream := labtest.StartStream(t, l.s0, regSrc, []netip.Addr{g}, benchPIMPPS)
	labtest.Eventually(t, 10*time.Second, "the FHR in Register state Prune with nobody listening", func() bool {
		return hasFlag(l.fhr.pimRoute(srcS, g), "RegisterPrune")
	})
	if e := l.rp.pimRoute(srcS, g); e == nil || e.Joined {
		t.Fatalf("RP's (S,G) of %v before the join: %+v, want the entry the Registers made, not joined", g, e)
	}
	w := benchWatch(t, l, g)
	joined := time.Now()
	leave := labtest.Join(t, l.h1, g, netip.Addr{})
	r := pimBenchRun{fhrPrune: -1}
	t0 := benchReport(t, meter, g, joined, &r)
	benchFinish(t, l, meter, g, w, t0, &r)
	_, r.fhrReg = w.when("FHR Register")
	benchCleanup(t, l, stream, leave, g)
	return r
}

// benchReport is t0 of a run: the host's first MLDv2 report for g after
// the join's setsockopt at joined (its kernel sends it at once).
func benchReport(t *testing.T, meter *regMeter, g netip.Addr, joined time.Time, r *pimBenchRun) time.Time {
	var at time.Time
	labtest.Eventually(t, 2*time.Second, "the host's MLD report", func() bool {
		var ok bool
		at, ok = meter.report(g, joined)
		return ok
	})
	r.report = at.Sub(joined)
	return at
}

// benchWatch is the timeline of one run, from the API.
func benchWatch(t *testing.T, l *regLab, g netip.Addr) *regWatch {
	srcS := regSrc.String()
	return newRegWatch(t, map[string]func() bool{
		"LHR (*,G)": func() bool { e := l.lhr.pimRoute("", g); return e != nil && e.Joined },
		"RP joined": func() bool { e := l.rp.pimRoute(srcS, g); return e != nil && e.Joined },
		"LHR SPT": func() bool {
			e := l.lhr.pimRoute(srcS, g)
			if e == nil || !e.Joined || !hasFlag(e, "SPT") {
				return false
			}
			rt := regRoute(l.lhr, srcS, g)
			return rt != nil && rt.Incoming == "ge3" && slices.Contains(rt.Outgoing, "ge1")
		},
		"FHR Prune":    func() bool { return hasFlag(l.fhr.pimRoute(srcS, g), "RegisterPrune") },
		"FHR Register": func() bool { return hasFlag(l.fhr.pimRoute(srcS, g), "Register") },
	})
}

// benchFinish waits for the first packet and the LHR's SPT, and fills
// in the times of r.
func benchFinish(t *testing.T, l *regLab, meter *regMeter, g netip.Addr, w *regWatch, t0 time.Time, r *pimBenchRun) {
	labtest.Eventually(t, 10*time.Second, "the first packet and the LHR on the SPT", func() bool {
		_, first := meter.first(g, 0)
		_, spt := w.when("LHR SPT")
		_, rpj := w.when("RP joined")
		_, prune := w.when("FHR Prune")
		return first && spt && rpj && prune
	})
	// The switch is over once the FHR stops registering: a second more
	// shows the duplicates and losses of the run.
	time.Sleep(1500 * time.Millisecond)
	w.Stop()
	a, _ := meter.first(g, 0)
	r.first, r.firstHL = a.at.Sub(t0), a.hl
	at, _ := w.when("LHR SPT")
	r.lhrSPT = at.Sub(t0)
	at, _ = w.when("LHR (*,G)")
	r.lhrWC = at.Sub(t0)
	at, _ = w.when("RP joined")
	r.rpJoined = at.Sub(t0)
	p := summarise(meter.arrivals(g))
	r.dups, r.lost = p.dups, len(p.missing)
}

// benchCleanup stops the run's source and leaves its group, and waits
// for the RP's (*,G) to go (the routers are idle for the next run).
func benchCleanup(t *testing.T, l *regLab, stream *labtest.Stream, leave func(), g netip.Addr) {
	stream.Stop()
	leave()
	labtest.Eventually(t, 10*time.Second, "the RP's (*,G) to go after the leave", func() bool { return l.rp.pimRoute("", g) == nil })
}

func ms(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 1, 64) }

func pimBenchMarkdown(reg, streaming []pimBenchRun) string {
	var b strings.Builder
	date := time.Now().UTC().Format(time.RFC1123)
	if out, err := exec.Command("date").Output(); err == nil {
		date = strings.TrimSpace(string(out))
	}
	fmt.Fprintf(&b, `# PIM-SM: first packet through register, RP join and SPT switchover

Written by `+"`scripts/bench-pim`"+` (TestBenchPIMFirstPacket in internal/e2epim,
`+"`HC_BENCH=1 go test -tags hcbench -run '^TestBenchPIMFirstPacket$' ./internal/e2epim/`"+`)
on %s, kernel %s, %d runs per case.

## Method

The topology of TestRegisterPath (internal/e2epim/register_test.go), three
hotcastd in network namespaces, the RP not the first hop:

    src:s0 --- ge1:FHR:ge2 --- ge2:RP:ge3 --- ge3:LHR:ge1 --- h1

FHR is the source's DR, RP has the RP address on its loopback, LHR runs
MLD on the host's link; `+"`spt-switch: immediate`"+` (the default). The source
sends %d pps of UDP with sequence numbers; a packet socket on h1 records
each frame's arrival (sequence number, hop limit: 62 when it came through
a Register while the FHR had no outgoing interface, 61 natively). Every
time is from the host's join (t0, just before the setsockopt that makes
its kernel send the MLD report). The other times are read through the
API (`+"`display pim routing-table`"+`, `+"`display multicast forwarding-table`"+`),
each condition polled by its own goroutine every 1 ms and timed when the
answer that shows it arrives: an upper bound, 1-3 ms late on this box
(which is why *RP joined* can come after the first packet it causes). Each run uses a new group: the
(S,G) entries of a previous run stay for their 210 s Keepalive Timer.

Two cases:

- **register**: the host joins; once the RP's (*,G) has the LHR's join
  (*tree*), the source starts (*source*). Its first packets reach the host
  through Registers (the RP decapsulates onto the RP tree); the RP joins
  the SPT towards the FHR at the first Register, and answers a Register
  with Register-Stop once native data set its SPT bit (*FHR Prune*).
- **streaming**: the source streams with nobody listening: the RP
  answered its Registers with Register-Stop and the FHR's Register state
  is Prune before the join (*FHR Prune* does not apply; the FHR must not
  register again). At the LHR's (*,G) join the RP's (S,G) (its KAT runs
  from the Registers and Null-Registers) gets an outgoing interface, so the
  RP joins the SPT at once (*RP joined*) and the first packet is native.

Rows: *report*, from the join's setsockopt to the host's first MLDv2 report
for the group leaving h1 (a packet socket on h1): t0, from which every
other row counts; *LHR (\*,G)*, the LHR's (*,G) joined towards the RP;
*tree*, the RP's (*,G) with the LHR's join; *first packet*, at the host
(a); *RP joined*, the RP's (S,G) joined towards the FHR; *LHR SPT* (b),
the LHR's (S,G) joined on the source tree (flag SPT: RPF towards S) with
its (S,G) route from ge3 to the LAN in the fast path; *FHR Prune* (c), the
FHR's (S,G) in Register state Prune (the RP's Register-Stop). *duplicates*
and *lost* (sequence numbers never seen after the first one that
arrived) are the worst run's.

`, date, labtest.KernelRelease(), len(reg), benchPIMPPS)
	col := func(rs []pimBenchRun, f func(pimBenchRun) time.Duration) (string, string) {
		if len(rs) == 0 {
			return "--", "--"
		}
		var xs []time.Duration
		for _, r := range rs {
			xs = append(xs, f(r))
		}
		return ms(labtest.Median(xs)), ms(labtest.Max(xs))
	}
	worst := func(rs []pimBenchRun, f func(pimBenchRun) int) string {
		n := 0
		for _, r := range rs {
			n = max(n, f(r))
		}
		return strconv.Itoa(n)
	}
	b.WriteString("| ms | register: median | register: max | streaming: median | streaming: max |\n|---|---|---|---|---|\n")
	rows := []struct {
		name       string
		f          func(pimBenchRun) time.Duration
		streamNote string
	}{
		{"report (setsockopt to report, before t0)", func(r pimBenchRun) time.Duration { return r.report }, ""},
		{"LHR (\\*,G) joined", func(r pimBenchRun) time.Duration { return r.lhrWC }, ""},
		{"tree: RP (\\*,G) with the LHR's join", func(r pimBenchRun) time.Duration { return r.tree }, "--"},
		{"source start", func(r pimBenchRun) time.Duration { return r.source }, "before the join"},
		{"**(a) first packet at the host**", func(r pimBenchRun) time.Duration { return r.first }, ""},
		{"first packet, from the source's start", func(r pimBenchRun) time.Duration { return r.first - r.source }, "--"},
		{"RP (S,G) joined towards the FHR", func(r pimBenchRun) time.Duration { return r.rpJoined }, ""},
		{"**(b) LHR (S,G) on the SPT**", func(r pimBenchRun) time.Duration { return r.lhrSPT }, ""},
		{"**(c) FHR Register state Prune**", func(r pimBenchRun) time.Duration { return r.fhrPrune }, "Prune before the join"},
	}
	for _, row := range rows {
		rm, rx := col(reg, row.f)
		sm, sx := col(streaming, row.f)
		if row.streamNote != "" {
			sm, sx = row.streamNote, "--"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", row.name, rm, rx, sm, sx)
	}
	fmt.Fprintf(&b, "| duplicates at the host (worst run) | | %s | | %s |\n", worst(reg, func(r pimBenchRun) int { return r.dups }), worst(streaming, func(r pimBenchRun) int { return r.dups }))
	fmt.Fprintf(&b, "| lost at the host (worst run) | | %s | | %s |\n", worst(reg, func(r pimBenchRun) int { return r.lost }), worst(streaming, func(r pimBenchRun) int { return r.lost }))
	b.WriteString(`
## Runs

| case | run | report | LHR (\*,G) | tree | source | first packet | hop limit | RP joined | LHR SPT | FHR Prune | FHR registered again | duplicates | lost |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
`)
	for i, r := range reg {
		fmt.Fprintf(&b, "| register | %d | %s | %s | %s | %s | %s | %d | %s | %s | %s | -- | %d | %d |\n",
			i, ms(r.report), ms(r.lhrWC), ms(r.tree), ms(r.source), ms(r.first), r.firstHL, ms(r.rpJoined), ms(r.lhrSPT), ms(r.fhrPrune), r.dups, r.lost)
	}
	for i, r := range streaming {
		fmt.Fprintf(&b, "| streaming | %d | %s | %s | -- | -- | %s | %d | %s | %s | -- | %v | %d | %d |\n",
			i, ms(r.report), ms(r.lhrWC), ms(r.first), r.firstHL, ms(r.rpJoined), ms(r.lhrSPT), r.fhrReg, r.dups, r.lost)
	}
	b.WriteString(pimBenchBounds)
	return b.String()
}

const pimBenchBounds = `
## What bounds the figures

- **The SPT bit: the first native packet, seen.** The fast path forwards
  an (S,G) route's packets in XDP, unseen; the daemon polls the route
  counters every second for the Keepalive Timer (daemon/pim.go
  pimCounterPoll). The SPT bit cannot wait for that poll: until it is
  set the RP forwards each packet twice onto the RP tree (natively and
  decapsulated from its Register) and the DR keeps registering. An
  (S,G) joined on the source tree without its SPT bit is therefore a
  punt route: its first native packet is replicated in TC and read by
  the packet socket, which sets the bit (Update_SPTbit) and makes the
  route an XDP one again. *FHR Prune* is then a few ms after *RP
  joined* (it was up to 1 s, with ~pps duplicates, when the poll set the
  bit). The *duplicates* left (0-2 in the worst run) are the crossing
  of RFC 7761 §4.4.2: Registers decapsulated between the first native
  packet's arrival and the bit it sets a moment later; packets
  registered before the RP's join whose Registers reach it after the
  bit are dropped there (the *lost* column). At the LHR, in this
  topology RPF'(S) is RPF'(*,G) (the RP), so no (S,G,rpt) prune waits
  for the bit and *LHR SPT* is the (S,G) join and route, set at the
  first packet the (*,G) punt route hands to the daemon.
- **The 100 ms data hold.** The packet sockets hand the Router at most
  one packet per (S,G) per 100 ms (pimDataHold; Registers are sent for
  every packet regardless, after the data arrival, so the source's very
  first packet, the miss that creates the DR's (S,G) state, is
  registered too). The LHR's switch starts at the first punted packet
  of the (*,G) route, which is never held; a packet the Router needed
  inside a hold would wait up to 100 ms.
- **The RP's Keepalive Timer.** In the streaming case the RP joins the SPT
  at the (*,G) join only because its (S,G) exists with a running KAT:
  restarted by each Register, RP_Keepalive_Period (3 x 60 + 5 = 185 s)
  when it answered with Register-Stop, and by each Null-Register the FHR
  sends every (0.5..1.5) x 60 - 5 s while in Prune. Were the RP's (S,G)
  gone (a source silent for longer than its KAT, an RP restart), the
  first packet would wait for the FHR's next Null-Register (up to 85 s),
  which makes the RP's (S,G) again and, with the (*,G) olist, its join.
- **The join's path.** The LHR's (*,G) join goes out when MLD reports the
  membership (no J/P delay on a point-to-point link: the join is
  triggered), the RP's (S,G) join at the first Register: both are one
  link's latency plus a daemon's processing (~1-5 ms here). The test
  process (source, meter, API polling) and the three daemons share the
  box's two cores: maxima include scheduling delays.
`
