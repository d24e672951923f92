//go:build hcbench

package benchmaps_test

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hotcast/hotcast/bpf"
	"github.com/hotcast/hotcast/ctrl/mld"
	"github.com/hotcast/hotcast/ctrl/mroute"
	"github.com/hotcast/hotcast/internal/hugeheap"
	"github.com/hotcast/hotcast/internal/labtest"
	"github.com/hotcast/hotcast/sync/mldbackup"
	"github.com/hotcast/hotcast/sync/rbs"
)

// The benchmarks of scripts/bench-rbs: built only with -tags hcbench, run
// only with HC_BENCH=1. Each prints its table and states every target as
// met or missed; none fails on a figure (speed is not asserted).

// Targets (issue 13).
const (
	batchTarget  = 500 * time.Millisecond // every 100k batch
	p99Target    = time.Millisecond       // real-time p99, idle and loaded
	maxTarget    = 5 * time.Millisecond   // real-time max, loaded
	benchRounds  = 5                      // runs per figure
	latencyJoins = 1000                   // joins per latency run
)

// prefaultCell is a batch's heap prefault for the table: up to which MiB
// of the marked heap, how long, and its page faults.
func prefaultCell(p *hugeheap.Populated) string {
	switch {
	case p == nil:
		return "none"
	case p.Err != nil:
		return fmt.Sprintf("%d MiB, %s, stopped: %v", p.Bytes()>>20, ms(p.Took), p.Err)
	}
	return fmt.Sprintf("%d MiB in %s (%d faults)", p.Bytes()>>20, ms(p.Took), p.Faults)
}

func writeResult(t *testing.T, name, md string) {
	t.Log("\n" + md)
	if dir := os.Getenv("HC_BENCH_OUT"); dir != "" {
		if err := os.WriteFile(filepath.Join(dir, name+".md"), []byte(md), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBenchBatch100k measures a batch backup of 100 000 entries from the
// sender's table to the receiver's BPF routes map, 5 runs, each with a
// harness of its own (torn down before the next), and the standby's
// memory per synced entry.
func TestBenchBatch100k(t *testing.T) {
	labtest.BenchRequested(t, "scripts/bench-rbs")
	const n = 100000
	md := "| run | entries | batch start → last route in the BPF map | sender snapshot | encode, TCP, decode | mld Import | route apply (Derive + map writes) | in bpf.ReplaceRoutes | ReplaceRoutes calls | GC cycles (pauses) | allocated / entry | page faults | heap mapped | RSS (in huge pages) | heap prefault at batch begin | ≤ 0.5 s |\n" +
		"|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:-:|\n"
	var totals []time.Duration
	for i := range benchRounds {
		var r batchResult
		t.Run(fmt.Sprintf("run%d", i+1), func(t *testing.T) { r = runBatch(t, n) })
		totals = append(totals, r.total)
		t.Logf("run %d: CPU user %s sys %s", i+1, ms(r.user), ms(r.sys))
		md += fmt.Sprintf("| %d | %d | **%s** | %s | %s | %s | %s | %s | %d | %d (%s) | %.0f B | %d | %d MiB | %d MiB (%d MiB) | %s | %s |\n", i+1, r.n, ms(r.total), ms(r.snapshot), ms(r.wire), ms(r.imp), ms(r.apply), ms(r.dpTime), r.calls, r.gcs, ms(r.gcPause), r.allocPerEntry, r.faults, r.peakHeap>>20, r.rss>>20, r.rssHuge>>20, prefaultCell(r.prefault), verdict(r.total <= batchTarget))
	}
	md += fmt.Sprintf("\nEvery run ≤ 0.5 s: %s (slowest %s).\n", verdict(labtest.Max(totals) <= batchTarget), ms(labtest.Max(totals)))
	md += "\nThe process's heap at start (`hugeheap.Setup`, as hotcastd's): " + heapSetup.String() + ". Heap mapped: runtime HeapSys − HeapReleased at the batch's end; RSS: the process's (both sides, the harnesses of the earlier runs torn down), AnonHugePages in brackets.\n"
	writeResult(t, "batch", md)
}

// TestBenchLatency measures real-time backup: an MLDv2 report handled by
// the sender's MLD interface → Publish → TCP → receiver Upsert → mld →
// route table → BPF map write, 1000 joins one at a time (2 ms apart), 5
// runs with idle tables and 5 with 10 000 groups on both sides. Beside
// it, the box's own floor: a thread waking a thread on the other CPU.
func TestBenchLatency(t *testing.T) {
	labtest.BenchRequested(t, "scripts/bench-rbs")
	md := "| run | joins | tables | p50 | p90 | p99 | p99.9 | max | joins > 1 ms: tx / wire / rx stage, GC during, page faults during | page faults (joins with any) | p99 ≤ 1 ms | max ≤ 5 ms |\n" +
		"|---:|---:|---|---:|---:|---:|---:|---:|---|---:|:-:|:-:|\n"
	summary := ""
	for _, load := range []bool{false, true} {
		var all []time.Duration
		worstP99, worstMax := time.Duration(0), time.Duration(0)
		for i := range benchRounds {
			var js []join
			t.Run(fmt.Sprintf("load=%v/run%d", load, i+1), func(t *testing.T) { js = runLatency(t, latencyJoins, load) })
			lat := make([]time.Duration, len(js))
			slow := [5]int{}
			faults, faulting := int64(0), 0
			for k, j := range js {
				lat[k] = j.total
				faults += j.faults
				if j.faults > 0 {
					faulting++
				}
				if j.total > time.Millisecond {
					switch max(j.tx, j.wire, j.rx) {
					case j.tx:
						slow[0]++
					case j.wire:
						slow[1]++
					default:
						slow[2]++
					}
					if j.gc {
						slow[3]++
					}
					if j.faults > 0 {
						slow[4]++
					}
				}
			}
			all = append(all, lat...)
			p := func(q float64) time.Duration { return labtest.Percentile(lat, q) }
			tables := "idle"
			if load {
				tables = "10 000 groups each side"
			}
			worstP99, worstMax = max(worstP99, p(0.99)), max(worstMax, labtest.Max(lat))
			maxCell := "-"
			if load {
				maxCell = verdict(labtest.Max(lat) <= maxTarget)
			}
			md += fmt.Sprintf("| %d | %d | %s | %s | %s | %s | %s | %s | %d: %d / %d / %d, %d, %d | %d (%d) | %s | %s |\n", i+1, len(lat), tables, us(p(0.5)), us(p(0.9)), us(p(0.99)), us(p(0.999)), us(labtest.Max(lat)),
				slow[0]+slow[1]+slow[2], slow[0], slow[1], slow[2], slow[3], slow[4], faults, faulting, verdict(p(0.99) <= p99Target), maxCell)
		}
		p := func(q float64) time.Duration { return labtest.Percentile(all, q) }
		what := "idle tables"
		verdicts := fmt.Sprintf("p99 ≤ 1 ms in every run: %s", verdict(worstP99 <= p99Target))
		if load {
			what = "10 000 groups on each side"
			verdicts += fmt.Sprintf("; max ≤ 5 ms in every run: %s", verdict(worstMax <= maxTarget))
		}
		summary += fmt.Sprintf("* %s, all %d joins: p50 %s, p90 %s, p99 %s, p99.9 %s, max %s. %s.\n", what, len(all), us(p(0.5)), us(p(0.9)), us(p(0.99)), us(p(0.999)), us(labtest.Max(all)), verdicts)
	}
	md += "\n" + summary
	md += "\nThe box's floor, without hotcast (a thread writes 8 bytes to a socketpair, a thread on the other CPU (or the same) reads them; 2 ms apart, 1000 times):\n\n" +
		"| threads | p50 | p90 | p99 | p99.9 | max | > 1 ms |\n|---|---:|---:|---:|---:|---:|---:|\n"
	for _, same := range []bool{false, true} {
		lat := wakeProbe(t, 1000, same)
		p := func(q float64) time.Duration { return labtest.Percentile(lat, q) }
		over := 0
		for _, l := range lat {
			if l > time.Millisecond {
				over++
			}
		}
		what := "other CPU"
		if same {
			what = "same CPU"
		}
		md += fmt.Sprintf("| %s | %s | %s | %s | %s | %s | %d |\n", what, us(p(0.5)), us(p(0.9)), us(p(0.99)), us(p(0.999)), us(labtest.Max(lat)), over)
	}
	writeResult(t, "latency", md)
}

func us(d time.Duration) string { return fmt.Sprintf("%d µs", d.Microseconds()) }

// wakeProbe measures how long a thread blocked in read(2) takes to run
// after another thread writes to its socketpair: the box's cost of one
// hand-off between threads, with nothing of hotcast or Go's scheduler in
// it (both threads are locked and pinned).
func wakeProbe(t *testing.T, n int, sameCPU bool) []time.Duration {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	pin := func(cpu int) {
		runtime.LockOSThread()
		var s unix.CPUSet
		s.Set(cpu % runtime.NumCPU())
		if err := unix.SchedSetaffinity(0, &s); err != nil {
			t.Error(err)
		}
	}
	got := make(chan []time.Duration)
	go func() {
		defer runtime.UnlockOSThread()
		if sameCPU {
			pin(0)
		} else {
			pin(1)
		}
		var buf [8]byte
		lat := make([]time.Duration, 0, n)
		for range n {
			if _, err := unix.Read(fds[1], buf[:]); err != nil {
				break
			}
			sent := int64(0)
			for k := range 8 {
				sent |= int64(buf[k]) << (8 * k)
			}
			lat = append(lat, time.Duration(time.Now().UnixNano()-sent))
		}
		got <- lat
	}()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer runtime.UnlockOSThread()
		pin(0)
		var buf [8]byte
		for range n {
			time.Sleep(2 * time.Millisecond)
			v := time.Now().UnixNano()
			for k := range 8 {
				buf[k] = byte(v >> (8 * k))
			}
			if _, err := unix.Write(fds[0], buf[:]); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	<-done
	lat := <-got
	slices.Sort(lat)
	return lat
}

// TestBenchMemory reports what a synced entry costs the standby, for 10k
// and 100k entries: the Go heap of its MLD state, of the route table and
// of the rest (the dataplane's index of the routes, rbs), measured apart
// and together after a batch through the harness, and the kernel memory
// of the routes map.
func TestBenchMemory(t *testing.T) {
	labtest.BenchRequested(t, "scripts/bench-rbs")
	md := "| entries | MLD state | route table | bpf index + rbs | Go heap, all | kernel routes map | total per entry |\n|---:|---:|---:|---:|---:|---:|---:|\n"
	for _, n := range []int{10000, 100000} {
		mldB := heapOf(t, func() any { return importOnly(t, n) })
		tableB := heapOf(t, func() any { return tableOnly(t, n) })
		var all, kern float64
		t.Run(fmt.Sprintf("n=%d", n), func(t *testing.T) { all, kern = standbyMemory(t, n) })
		per := func(b float64) string { return fmt.Sprintf("%.0f B", b/float64(n)) }
		md += fmt.Sprintf("| %d | %s | %s | %s | %s | %s | **%s** |\n", n, per(mldB), per(tableB), per(all-mldB-tableB), per(all), per(kern), per(all+kern))
	}
	md += "\nGo heap: live bytes after a GC (runtime.MemStats.HeapAlloc), with the state held, minus before. Kernel: the routes map's memlock (fdinfo) minus the empty map's; route_stats is a fixed per-CPU array (" +
		fmt.Sprintf("%d slots", bpf.MaxRoutes) + "), not counted per entry.\n"
	writeResult(t, "memory", md)
}

// heapOf is the live heap that the value mk returns keeps.
func heapOf(t *testing.T, mk func() any) float64 {
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	v := mk()
	runtime.GC()
	runtime.ReadMemStats(&m1)
	runtime.KeepAlive(v)
	return float64(int64(m1.HeapAlloc) - int64(m0.HeapAlloc))
}

// importOnly is an MLD interface holding n synced entries, imported as the
// standby does (Binding.ReplaceAll), without routes.
func importOnly(t *testing.T, n int) *mld.Interface {
	cfg := mld.DefaultConfig("rx0", netip.MustParseAddr("fe80::2"))
	cfg.MaxGroups = -1
	cfg.OnUpdates = func([]mld.Update) {}
	ifc, err := mld.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ifc.SetQuerierAllowed(false)
	ifc.Start()
	t.Cleanup(ifc.Stop)
	if err := mldbackup.Bind(ifc, nil).ReplaceAll(backupID, batchEntries(n)); err != nil {
		t.Fatal(err)
	}
	return ifc
}

type nopDP struct{}

func (nopDP) ReplaceRoutes([]bpf.Route) error   { return nil }
func (nopDP) DeleteRoutes([]bpf.RouteKey) error { return nil }

// tableOnly is a route table holding the routes of n synced EXCLUDE {}
// memberships.
func tableOnly(t *testing.T, n int) *mroute.Table {
	tb := mroute.New(nopDP{}, upstream, nil)
	cs := make([]mroute.Change, n)
	m := &mroute.Membership{Star: true, Synced: true}
	for i := range cs {
		cs[i] = mroute.Change{Group: group(0x10000000 + uint32(i)), M: m}
	}
	if err := tb.SetMemberships(oif, cs); err != nil {
		t.Fatal(err)
	}
	return tb
}

// standbyMemory runs a batch of n and returns the standby's live Go heap
// for it and the kernel memory of its routes.
func standbyMemory(t *testing.T, n int) (heap, kernel float64) {
	h := newHarness(t, false)
	k0, _, err := h.dp.dp.RoutesMemory()
	if err != nil {
		t.Fatal(err)
	}
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	h.src.entries = batchEntries(n)
	h.dp.target = int64(n)
	h.txp.SetRole(rbs.RoleMaster)
	select {
	case <-h.dp.reached:
	case <-time.After(60 * time.Second):
		t.Fatalf("%d routes after 60 s, want %d", h.dp.put.Load(), n)
	}
	deadline := time.Now().Add(10 * time.Second)
	for h.txp.Status().Sync != rbs.SyncSenderInSync {
		if time.Now().After(deadline) {
			t.Fatalf("not in sync: tx %+v", h.txp.Status())
		}
		time.Sleep(time.Millisecond)
	}
	h.src.mu.Lock()
	h.src.entries = nil // the sender's table is not the standby's
	h.src.mu.Unlock()
	runtime.GC()
	runtime.ReadMemStats(&m1)
	k1, _, err := h.dp.dp.RoutesMemory()
	if err != nil {
		t.Fatal(err)
	}
	runtime.KeepAlive(h)
	return float64(int64(m1.HeapAlloc) - int64(m0.HeapAlloc)), float64(k1 - k0)
}

// TestBenchScale batch-backs up 100 000, 131 072 (the routes map's
// capacity) and 1 000 000 entries with the sender in a process of its own
// (the test binary again, TestBenchSenderProcess), so that each side's
// peak RSS is its own.
func TestBenchScale(t *testing.T) {
	labtest.BenchRequested(t, "scripts/bench-rbs")
	md := "| entries | batch start → BatchEnd at the standby | mld Import | route apply | in the BPF map | sessions | sender peak RSS | standby peak RSS | standby RSS after |\n|---:|---:|---:|---:|---|---:|---:|---:|---:|\n"
	for _, n := range []int{100000, bpf.MaxRoutes, 1000000} {
		t.Run(fmt.Sprintf("n=%d", n), func(t *testing.T) { md += scaleRow(t, n) + "\n" })
	}
	md += fmt.Sprintf("\nPeak RSS: VmHWM, reset (clear_refs) before each run. The routes map holds %d routes (HC_MAX_ROUTES); the routes of a larger batch are written in runs of 16 384 (mld.MaxUpdateRun), the runs that fit are installed and the others refused by bpf.ReplaceRoutes (their MLD state is kept). Sessions: how many the standby had to establish for the batch (1: no reconnect).\n", bpf.MaxRoutes)
	writeResult(t, "scale", md)
}

func scaleRow(t *testing.T, n int) string {
	h := newHarnessOpts(t, harnessOpts{noSenderLoc: true, tolerateDP: true})
	h.dp.target = int64(n)
	runtime.GC()
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Fatalf("reset peak RSS: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", "--net="+h.ns.Path(), "--", os.Args[0], "-test.run=^TestBenchSenderProcess$", "-test.v", "-test.timeout=5m")
	cmd.Env = append(os.Environ(), "HC_BENCH=1", "HC_BENCH_SENDER="+strconv.Itoa(n))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	field := func(line, key string) int64 {
		for f := range strings.FieldsSeq(line) {
			if v, ok := strings.CutPrefix(f, key+"="); ok {
				x, _ := strconv.ParseInt(v, 10, 64)
				return x
			}
		}
		return 0
	}
	var start time.Time
	var senderHWM int64
	for line := range lines {
		if strings.HasPrefix(line, "SENDER start") {
			start = time.Unix(0, field(line, "at"))
		}
		if strings.HasPrefix(line, "SENDER done") {
			senderHWM = field(line, "hwm")
			break
		}
		if strings.HasPrefix(line, "SENDER failed") {
			t.Fatalf("sender: %s", line)
		}
	}
	if start.IsZero() || senderHWM == 0 {
		t.Fatalf("sender exited without a result (rx %+v)", h.rxp.Status())
	}
	// The sender is in sync: the standby has acknowledged the batch.
	hwm, rss := procStatus(t, "VmHWM"), procStatus(t, "VmRSS")
	s := h.sink
	inMap := fmt.Sprintf("all %d", n)
	if h.dp.failed.Load() || h.dp.put.Load() < int64(n) {
		inMap = fmt.Sprintf("refused (%d routes in the map; capacity %d)", h.dp.put.Load(), bpf.MaxRoutes)
	} else {
		inMap += fmt.Sprintf(", %s after batch start", ms(time.Unix(0, h.dp.at.Load()).Sub(start)))
	}
	apply := time.Duration(h.applyNS.Load())
	return fmt.Sprintf("| %d | %s | %s | %s | %s | %d | %d MiB | %d MiB | %d MiB |", n, ms(s.replaceAllAt.Sub(start)), ms(s.importDone.Sub(s.replaceAllAt)-apply), ms(apply), inMap, h.rx.Status().Stats.Established, senderHWM>>10, hwm>>10, rss>>10)
}

// procStatus is a kB line of /proc/self/status.
func procStatus(t *testing.T, key string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			x, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return x
		}
	}
	t.Fatalf("%s not in /proc/self/status", key)
	return 0
}

// TestBenchSenderProcess is the sender of TestBenchScale, run by it in the
// harness's namespace (HC_BENCH_SENDER=entries): it dials the standby,
// becomes master with its entries, and reports its peak RSS once the
// batch is acknowledged; it exits when its stdin closes.
func TestBenchSenderProcess(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("HC_BENCH_SENDER"))
	if n == 0 {
		t.Skip("the sender process of TestBenchScale")
	}
	src := &memSource{entries: batchEntries(n)}
	cfg := rbs.Config{Name: "tx", SysName: "A", Source: srcAddr, Peer: peerAddr, Port: rbs.DefaultPort,
		ReconnectMin: 20 * time.Millisecond, ReconnectMax: 200 * time.Millisecond, MaxBatchEntries: 1 << 21}
	svc := rbs.New(cfg, nil)
	p := svc.AddProfile(rbs.ProfileConfig{Name: "p", BackupID: backupID}, src, nil)
	p.SetRole(rbs.RoleBackup)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go svc.Run(ctx)
	wait := func(want rbs.SyncState, d time.Duration) {
		deadline := time.Now().Add(d)
		for p.Status().Sync != want {
			if time.Now().After(deadline) {
				fmt.Printf("SENDER failed waiting for %s: %+v %+v\n", want, p.Status(), svc.Status())
				t.FailNow()
			}
			time.Sleep(time.Millisecond)
		}
	}
	wait(rbs.SyncIdle, 10*time.Second)
	runtime.GC()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Fatalf("reset peak RSS: %v", err)
	}
	fmt.Printf("SENDER start at=%d\n", time.Now().UnixNano())
	p.SetRole(rbs.RoleMaster)
	wait(rbs.SyncSenderInSync, 4*time.Minute)
	fmt.Printf("SENDER done hwm=%d rss=%d\n", procStatus(t, "VmHWM"), procStatus(t, "VmRSS"))
	_, _ = bufio.NewReader(os.Stdin).ReadByte() // until the parent closes stdin
}
