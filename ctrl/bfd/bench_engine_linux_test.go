//go:build linux && hcbench

package bfd

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotcast/hotcast/internal/labtest"
	"github.com/hotcast/hotcast/internal/netnstest"
)

// TestBenchEngineJitter measures the engine at 3.3 ms x 3 between two
// Managers in two namespaces across a veth pair: how late the measured
// side's periodic transmissions leave against their (jittered) deadlines,
// the gaps between their kernel arrivals at the peer (a gap over 9.9 ms
// is a Down at a peer with Detect Mult 3), how late the measured side
// declares Down after its Detection Time expired (the peer is muted every
// 400 ms), and the Downs nobody caused. Cells: idle; two external CPU
// hogs (busy shell loops, as many as this box has cores); two busy
// goroutines in this process, allocating (they compete with the engine
// threads for the Go runtime's Ps, and run the GC) or only spinning; the
// in-process ones also with GOMAXPROCS = cores + 2 (a spare P for each of
// the two engines); each with the engine at SCHED_FIFO, the first three
// also at SCHED_OTHER. HC_BENCH_CELLS=n runs only the last n cells.
//
// Built only with -tags hcbench and run only with HC_BENCH=1:
//
//	HC_BENCH=1 go test -tags hcbench -run TestBenchEngineJitter -v -timeout 30m ./ctrl/bfd
//
// HC_BENCH_SECONDS (default 15) is the length of each cell; HC_BENCH_OUT
// a directory for the table (engine-jitter.md).
func TestBenchEngineJitter(t *testing.T) {
	labtest.BenchRequested(t, "go test -tags hcbench ./ctrl/bfd")
	secs := 15
	if s := os.Getenv("HC_BENCH_SECONDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("HC_BENCH_SECONDS=%q", s)
		}
		secs = n
	}
	cores := runtime.NumCPU()
	type cell struct {
		load       string
		prio       int
		gomaxprocs int
	}
	var cells []cell
	for _, load := range []string{"idle", "external", "in-process"} {
		for _, prio := range []int{DefaultRealtimePriority, -1} {
			cells = append(cells, cell{load, prio, cores})
		}
	}
	cells = append(cells,
		cell{"in-process-spin", DefaultRealtimePriority, cores},
		cell{"in-process-spin", DefaultRealtimePriority, cores + 2},
		cell{"in-process", DefaultRealtimePriority, cores + 2})
	if only := os.Getenv("HC_BENCH_CELLS"); only != "" {
		n, err := strconv.Atoi(only)
		if err != nil || n < 1 || n > len(cells) {
			t.Fatalf("HC_BENCH_CELLS=%q", only)
		}
		cells = cells[len(cells)-n:]
	}
	md := fmt.Sprintf("| load | engine thread | GOMAXPROCS | tx sent | tx late p50 | p99 | p99.9 | max | max gap at peer | gaps > 9.9 ms | detect late p50 | p99 | max | Downs declared | unexpected Downs |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, c := range cells {
		r := runEngineCell(t, c.load, c.prio, c.gomaxprocs, cores, time.Duration(secs)*time.Second)
		policy := "SCHED_FIFO 10"
		if c.prio < 0 {
			policy = "SCHED_OTHER"
		}
		if r.policy != policy {
			policy = r.policy
		}
		us := func(d time.Duration) string { return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond)) }
		ms := func(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }
		row := fmt.Sprintf("| %s | %s | %d | %d | %s | %s | %s | %s | %s | %d | %s | %s | %s | %d | %d |",
			c.load, policy, c.gomaxprocs, len(r.late),
			us(labtest.Percentile(r.late, 0.5)), us(labtest.Percentile(r.late, 0.99)), us(labtest.Percentile(r.late, 0.999)), us(labtest.Max(r.late)),
			ms(labtest.Max(r.gaps)), r.over,
			us(labtest.Percentile(r.detect, 0.5)), us(labtest.Percentile(r.detect, 0.99)), us(labtest.Max(r.detect)), len(r.detect), r.unexpected)
		t.Log(row)
		md += row + "\n"
	}
	t.Log("\n" + md)
	if dir := os.Getenv("HC_BENCH_OUT"); dir != "" {
		if err := os.WriteFile(filepath.Join(dir, "engine-jitter.md"), []byte(md), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

type cellResult struct {
	policy     string
	late       []time.Duration
	gaps       []time.Duration
	over       int
	detect     []time.Duration
	unexpected int
}

// txRecorder notes, with the session's lock held, how late each periodic
// transmission of the measured session left against its deadline.
type txRecorder struct {
	s    Sender
	m    *Manager
	name string
	sess *Session
	on   *atomic.Bool
	mu   sync.Mutex
	late []time.Duration
}

func (r *txRecorder) Send(b []byte) error {
	now := time.Now()
	err := r.s.Send(b)
	if r.sess == nil {
		r.sess = r.m.demux.Session(r.name)
	}
	// Only sends made from the transmit timer (whose callback cleared
	// tx.t) while Up and not polling are periodic.
	if s := r.sess; s != nil && r.on.Load() && s.tx.t == nil && s.state == StateUp && !s.polling {
		if d := now.Sub(s.tx.deadline); d >= 0 {
			r.mu.Lock()
			r.late = append(r.late, d)
			r.mu.Unlock()
		}
	}
	return err
}

func runEngineCell(t *testing.T, load string, prio, gomaxprocs, cores int, dur time.Duration) cellResult {
	t.Helper()
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(gomaxprocs))
	nsA, nsB := netnstest.New(t, "bja"), netnstest.New(t, "bjb")
	la, lb := netnstest.Veth(t, nsA, "bfj0", nsB, "bfj1")
	llA, llB := la.WaitLinkLocal(t), lb.WaitLinkLocal(t)

	ma, err := NewManager(EngineConfig{NetNS: nsA.Path(), RealtimePriority: prio})
	if err != nil {
		t.Fatal(err)
	}
	defer ma.Close()
	mb, err := NewManager(EngineConfig{NetNS: nsB.Path(), RealtimePriority: prio})
	if err != nil {
		t.Fatal(err)
	}
	defer mb.Close()

	// recording: A is Up and the peer is not muted (steady state).
	var recording atomic.Bool
	rec := &txRecorder{m: ma, name: "a", on: &recording}
	ma.wrapSender = func(_ string, s Sender) Sender { rec.s = s; return rec }
	bMute := &muter{}
	mb.wrapSender = func(_ string, s Sender) Sender { bMute.s = s; return bMute }
	var (
		gapMu sync.Mutex
		last  time.Time
		gaps  []time.Duration
	)
	mb.tapRx = func(rx Received) {
		if !recording.Load() || !rx.Src.IsValid() || rx.Src != llA {
			return
		}
		gapMu.Lock()
		defer gapMu.Unlock()
		if !last.IsZero() {
			gaps = append(gaps, rx.Time.Sub(last))
		}
		last = rx.Time
	}
	sub, err := ma.Subscribe("a")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if err := ma.Add(Config{Name: "a", Interface: la.Name, Local: llA, Peer: llB, DesiredMinTx: fast, RequiredMinRx: fast, DetectMult: 3}); err != nil {
		t.Fatal(err)
	}
	if err := mb.Add(Config{Name: "b", Interface: lb.Name, Local: llB, Peer: llA, DesiredMinTx: fast, RequiredMinRx: fast, DetectMult: 3}); err != nil {
		t.Fatal(err)
	}
	waitChange(t, sub.C, "Up", func(c StateChange) bool { return c.To == StateUp })

	stop := func() {}
	switch load {
	case "external":
		stop = cpuHogs(t, cores)
	case "in-process", "in-process-spin":
		alloc := load == "in-process"
		quit := make(chan struct{})
		var wg sync.WaitGroup
		for range cores {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var sink []byte
				for {
					select {
					case <-quit:
						return
					default:
					}
					// Busy, and (in-process) allocating so that the GC
					// runs too.
					for i := range 1000 {
						if alloc {
							sink = make([]byte, 256)
						} else if len(sink) > i {
							sink[i]++
						}
					}
					_ = sink
				}
			}()
		}
		stop = func() { close(quit); wg.Wait() }
	}
	defer stop()

	var r cellResult
	r.policy = ma.Stats().Engine.Policy
	muted := false
	var muteAt time.Time
	recording.Store(true)
	end := time.Now().Add(dur)
	tick := time.NewTicker(400 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(end) {
		select {
		case c := <-sub.C:
			switch {
			case c.To == StateDown && c.From == StateUp && muted && c.Silent():
				r.detect = append(r.detect, c.Time.Sub(c.LastRx.Add(c.DetectTime)))
				bMute.muted.Store(false)
				muted = false
			case c.To == StateUp && !muted:
				gapMu.Lock()
				last = time.Time{}
				gapMu.Unlock()
				recording.Store(true)
			case c.To == StateDown && c.From == StateUp:
				r.unexpected++
				t.Logf("%s: unexpected Down %+v", load, c)
			}
		case <-tick.C:
			if !muted {
				if st, _ := ma.Session("a"); st.State == StateUp {
					recording.Store(false)
					bMute.muted.Store(true)
					muted, muteAt = true, time.Now()
				}
			} else if time.Since(muteAt) > time.Second {
				t.Logf("%s: no Down 1 s after muting the peer", load)
				bMute.muted.Store(false)
				muted = false
			}
		}
	}
	recording.Store(false)
	rec.mu.Lock()
	r.late = append(r.late, rec.late...)
	rec.mu.Unlock()
	gapMu.Lock()
	r.gaps = gaps
	gapMu.Unlock()
	for _, g := range r.gaps {
		if g > 3*fast {
			r.over++
		}
	}
	return r
}
