//go:build hcbench

package main

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/hotcast/hotcast/internal/labtest"
)

// failoverRun is one failure of A under a 1000 pps stream per group.
type failoverRun struct {
	gap  time.Duration // longest gap over the three groups and both hosts
	dups uint64
	mdi  time.Duration
}

// runFailover builds the reference topology, fails A at a random point of
// its advert cycle and measures the longest gap at the receivers.
func runFailover(t *testing.T, hot bool, advert time.Duration) failoverRun {
	r := newRef(t, refOpts{hot: hot, advert: advert})
	labtest.Eventually(t, 20*time.Second, "A Master, B Backup", func() bool {
		return vrrpState(t, r.da).State == "Master" && vrrpState(t, r.db).State == "Backup"
	})
	r.joinAll(t)
	labtest.Eventually(t, 10*time.Second, "A learns the three groups", func() bool { return len(learnedRoutes(t, r.da)) == 3 })
	if hot {
		r.waitConverged(t, 5*time.Second, "B holds A's entries")
	} else if got := learnedRoutes(t, r.db); len(got) != 0 {
		t.Fatalf("cold B holds routes: %v", got)
	}
	st := labtest.StartStream(t, r.s0, sS, []netip.Addr{g1, g2, g3}, 1000)
	time.Sleep(500 * time.Millisecond)
	for _, m := range r.meter {
		m.Reset()
	}
	time.Sleep(100*time.Millisecond + rand.N(advert)) // anywhere in the advert cycle
	for _, i := range []string{"ge1", "ge2", "ge3"} {
		setLink(t, r.a, i, "down")
	}
	labtest.Eventually(t, 3*advert+3*time.Second, "B Master", func() bool { return vrrpState(t, r.db).State == "Master" })
	if !hot && !waitFor(10*time.Second, func() bool { return len(learnedRoutes(t, r.db)) == 3 }) {
		t.Fatalf("cold B did not relearn: %v", learnedRoutes(t, r.db))
	}
	time.Sleep(time.Second)
	st.Stop()
	res := failoverRun{mdi: labtest.MasterDownInterval(vrrpState(t, r.db))}
	for host, gs := range map[string][]netip.Addr{"v2": {g1, g3}, "v1": {g2}} {
		for _, g := range gs {
			rep := r.meter[host].Report(g)
			if rep.Received < 500 {
				t.Errorf("%s %s: only %d frames", host, g, rep.Received)
			}
			res.gap = max(res.gap, rep.MaxGap)
			res.dups += rep.Duplicates
		}
	}
	if res.dups != 0 {
		t.Errorf("%d duplicates during the failover", res.dups)
	}
	return res
}

// keepalivedSmcroute is what the issue author measured on this kind of box
// with keepalived + an smcroute notify script: median and max gap.
var keepalivedSmcroute = map[time.Duration][2]float64{
	time.Second:            {3134, 3535},
	100 * time.Millisecond: {312, 357},
	10 * time.Millisecond:  {46.5, 49},
}

// TestBenchFailover measures the failover gap at the receivers, hot (RBS)
// against cold, for three advert intervals, HC_BENCH_RUNS runs each
// (default 7). Built only with -tags hcbench and run only with HC_BENCH=1
// (scripts/bench-rbs).
func TestBenchFailover(t *testing.T) {
	labtest.BenchRequested(t, "scripts/bench-rbs")
	runs := labtest.BenchRuns(t, 7)
	intervals := labtest.BenchIntervals(t)
	csv := "interval_ms,mode,run,gap_ms,mdi_ms,duplicates\n"
	md := "| advert interval | Master_Down_Interval | hot (RBS) median / max | cold median / max | duplicates hot / cold (all runs) | keepalived + smcroute notify, median / max (issue author) |\n|---:|---:|---:|---:|---:|---:|\n"
	for _, adv := range intervals {
		var gaps [2][]time.Duration
		var dups [2]uint64
		var mdi time.Duration
		for i, hot := range []bool{true, false} {
			for n := range runs {
				name := fmt.Sprintf("%s/hot=%v/%d", adv, hot, n)
				t.Run(name, func(t *testing.T) {
					res := runFailover(t, hot, adv)
					t.Logf("gap %s (Master_Down_Interval %s), %d duplicates", res.gap, res.mdi, res.dups)
					gaps[i] = append(gaps[i], res.gap)
					mode := map[bool]string{true: "hot", false: "cold"}[hot]
					csv += fmt.Sprintf("%g,%s,%d,%.3f,%.3f,%d\n", float64(adv.Microseconds())/1e3, mode, n+1, float64(res.gap.Microseconds())/1e3, float64(res.mdi.Microseconds())/1e3, res.dups)
					dups[i] += res.dups
					mdi = res.mdi
				})
			}
		}
		ka := "--"
		if ks, ok := keepalivedSmcroute[adv]; ok {
			ka = fmt.Sprintf("%g / %g ms", ks[0], ks[1])
		}
		md += fmt.Sprintf("| %s | %s | %s / %s | %s / %s | %d / %d | %s |\n", adv, msf(mdi),
			msf(labtest.Median(gaps[0])), msf(labtest.Max(gaps[0])), msf(labtest.Median(gaps[1])), msf(labtest.Max(gaps[1])), dups[0], dups[1], ka)
	}
	md += fmt.Sprintf("\n%d runs per cell; gap = longest interval between consecutive frames of any of the 3 groups at either host, 1000 pps per group.\n", runs)
	t.Log("\n" + md)
	if dir := os.Getenv("HC_BENCH_OUT"); dir != "" {
		if err := os.WriteFile(filepath.Join(dir, "failover.md"), []byte(md), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "failover-gap.csv"), []byte(csv), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func msf(d time.Duration) string {
	return strconv.FormatFloat(float64(d.Microseconds())/1e3, 'f', 1, 64) + " ms"
}
