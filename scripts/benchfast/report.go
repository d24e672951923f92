package main

import (
	"encoding/csv"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/hotcast/hotcast/internal/stats"
)

// Row is one line of a variant's table: medians over rounds.
type Row struct {
	Fanout int
	// Baseline names the kernel path of the row's runs (ip6mr, bridge).
	Baseline string
	// Offered rates (median per path): the generator's, per path (with
	// trafgen sharing its CPU with the router, what it manages depends on
	// the path).
	OfferedKernel, OfferedHotcast float64
	Kernel, Hotcast               float64 // median per-receiver pps
	// BoundKernel and BoundHotcast flag a path whose median delivered is
	// at least 98% of its median offered: the generator set that rate.
	BoundKernel, BoundHotcast bool
	Rounds                    int
}

// bound reports whether delivered is generator-bound against offered.
func bound(delivered, offered float64) bool {
	return offered > 0 && delivered >= generatorBoundShare*offered
}

// Bound names the generator-bound paths of the row ("" for none).
func (r Row) Bound() string {
	var p []string
	if r.BoundKernel {
		p = append(p, pathKernel)
	}
	if r.BoundHotcast {
		p = append(p, pathHotcast)
	}
	return strings.Join(p, ", ")
}

// Ratio is hotcast over kernel (0 when the kernel delivered nothing).
func (r Row) Ratio() float64 {
	if r.Kernel == 0 {
		return 0
	}
	return r.Hotcast / r.Kernel
}

// Summarize groups samples into one table per variant, in the order the
// variants and fan-outs first appear.
func Summarize(samples []Sample) map[string][]Row {
	type key struct {
		v string
		n int
	}
	type acc struct {
		offK, offH, k, h []float64
		baselines        []string
	}
	accs := map[key]*acc{}
	var order []key
	for _, s := range samples {
		k := key{s.Variant, s.Fanout}
		a := accs[k]
		if a == nil {
			a = &acc{}
			accs[k] = a
			order = append(order, k)
		}
		switch s.Path {
		case pathKernel:
			a.k = append(a.k, s.PerReceiver())
			a.offK = append(a.offK, s.Offered)
			if s.Baseline != "" && !slices.Contains(a.baselines, s.Baseline) {
				a.baselines = append(a.baselines, s.Baseline)
			}
		case pathHotcast:
			a.h = append(a.h, s.PerReceiver())
			a.offH = append(a.offH, s.Offered)
		}
	}
	out := map[string][]Row{}
	for _, k := range order {
		a := accs[k]
		r := Row{
			Fanout: k.n, Baseline: strings.Join(a.baselines, "+"),
			OfferedKernel: stats.Median(a.offK), OfferedHotcast: stats.Median(a.offH),
			Kernel: stats.Median(a.k), Hotcast: stats.Median(a.h),
			Rounds: min(len(a.k), len(a.h)),
		}
		r.BoundKernel = len(a.k) > 0 && bound(r.Kernel, r.OfferedKernel)
		r.BoundHotcast = len(a.h) > 0 && bound(r.Hotcast, r.OfferedHotcast)
		out[k.v] = append(out[k.v], r)
	}
	return out
}

var variantTitle = map[string]string{
	"sink":   "Sink receivers (XDP count-and-drop on every receiving veth end)",
	"socket": "Socket receivers (GRO on, one UDP socket joined to the group per receiver)",
}

// WriteMarkdown prints a Markdown table per variant: per path the offered
// rate (the generator's) beside the delivered one, the kernel baseline of
// each row, and the generator-bound paths.
func WriteMarkdown(w io.Writer, samples []Sample, variants []string) {
	tables := Summarize(samples)
	anyBound := false
	for _, v := range variants {
		rows, ok := tables[v]
		if !ok {
			continue
		}
		title := variantTitle[v]
		if title == "" {
			title = v
		}
		fmt.Fprintf(w, "### %s\n\n", title)
		fmt.Fprintln(w, "| N | kernel baseline | kernel: offered pps | kernel: pps/receiver (median) | hotcast: offered pps | hotcast: pps/receiver (median) | ratio | generator-bound (delivered ≥ 98% of offered) |")
		fmt.Fprintln(w, "|--:|---|--:|--:|--:|--:|--:|---|")
		for _, r := range rows {
			b := "no"
			if r.Bound() != "" {
				b = "**" + r.Bound() + "**"
				anyBound = true
			}
			base := r.Baseline
			if base == "" {
				base = "–"
			}
			fmt.Fprintf(w, "| %d | %s | %s | %s | %s | %s | %.2fx | %s |\n", r.Fanout, base,
				kpps(r.OfferedKernel), kpps(r.Kernel), kpps(r.OfferedHotcast), kpps(r.Hotcast), r.Ratio(), b)
		}
		fmt.Fprintln(w)
	}
	if anyBound {
		fmt.Fprintln(w, "A generator-bound path delivered (nearly) everything it was offered: its rate is the generator's, not the path's, which may do more; a ratio with a generator-bound hotcast is a lower bound.")
		fmt.Fprintln(w)
	}
}

// kpps renders a rate with thousands separators.
func kpps(v float64) string {
	s := strconv.FormatInt(int64(v+0.5), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// WriteCSV writes one line per sample and receiver; the last three columns
// (baseline, generator, gen_pps) came after the first ten, which readers of
// older files rely on.
func WriteCSV(w io.Writer, samples []Sample) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"variant", "fanout", "path", "round", "seconds", "offered_pps", "accepted_pps", "receiver", "in_route", "pps", "baseline", "generator", "gen_pps"})
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }
	for _, s := range samples {
		base := []string{s.Variant, strconv.Itoa(s.Fanout), s.Path, strconv.Itoa(s.Round), strconv.FormatFloat(s.Seconds, 'f', 3, 64), f(s.Offered), f(s.Accepted)}
		tail := []string{s.Baseline, s.Generator, f(s.GenRate)}
		for i, r := range s.Receivers {
			_ = cw.Write(slices.Concat(base, []string{"h" + strconv.Itoa(i+1), "true", f(r)}, tail))
		}
		for i, r := range s.Bystanders {
			_ = cw.Write(slices.Concat(base, []string{"h" + strconv.Itoa(len(s.Receivers)+i+1), "false", f(r)}, tail))
		}
	}
	cw.Flush()
	return cw.Error()
}
