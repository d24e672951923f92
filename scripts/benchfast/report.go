package main

import (
	"encoding/csv"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// Row is one line of a variant's table: medians over rounds.
type Row struct {
	Fanout int
	// Offered rates (median per path): the generator shares its CPU with
	// the router, so what it manages depends on the path.
	OfferedKernel, OfferedHotcast float64
	Kernel, Hotcast               float64 // median per-receiver pps
	Rounds                        int
}

// Ratio is hotcast over kernel (0 when the kernel delivered nothing).
func (r Row) Ratio() float64 {
	if r.Kernel == 0 {
		return 0
	}
	return r.Hotcast / r.Kernel
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Summarize groups samples into one table per variant, in the order the
// variants and fan-outs first appear.
func Summarize(samples []Sample) map[string][]Row {
	type key struct {
		v string
		n int
	}
	type acc struct{ offK, offH, k, h []float64 }
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
		case pathHotcast:
			a.h = append(a.h, s.PerReceiver())
			a.offH = append(a.offH, s.Offered)
		}
	}
	out := map[string][]Row{}
	for _, k := range order {
		a := accs[k]
		out[k.v] = append(out[k.v], Row{
			Fanout: k.n, OfferedKernel: median(a.offK), OfferedHotcast: median(a.offH),
			Kernel: median(a.k), Hotcast: median(a.h),
			Rounds: min(len(a.k), len(a.h)),
		})
	}
	return out
}

var variantTitle = map[string]string{
	"sink":   "Sink receivers (XDP count-and-drop on every receiving veth end)",
	"socket": "Socket receivers (GRO on, one UDP socket joined to the group per receiver)",
}

// WriteMarkdown prints a Markdown table per variant.
func WriteMarkdown(w io.Writer, samples []Sample, variants []string) {
	tables := Summarize(samples)
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
		fmt.Fprintln(w, "| N | offered pps (kernel / hotcast run) | kernel pps/receiver (median) | hotcast pps/receiver (median) | ratio |")
		fmt.Fprintln(w, "|--:|--:|--:|--:|--:|")
		for _, r := range rows {
			fmt.Fprintf(w, "| %d | %s / %s | %s | %s | %.2fx |\n", r.Fanout, kpps(r.OfferedKernel), kpps(r.OfferedHotcast), kpps(r.Kernel), kpps(r.Hotcast), r.Ratio())
		}
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

// WriteCSV writes one line per sample and receiver.
func WriteCSV(w io.Writer, samples []Sample) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"variant", "fanout", "path", "round", "seconds", "offered_pps", "accepted_pps", "receiver", "in_route", "pps"})
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }
	for _, s := range samples {
		base := []string{s.Variant, strconv.Itoa(s.Fanout), s.Path, strconv.Itoa(s.Round), strconv.FormatFloat(s.Seconds, 'f', 3, 64), f(s.Offered), f(s.Accepted)}
		for i, r := range s.Receivers {
			_ = cw.Write(append(slices.Clone(base), "h"+strconv.Itoa(i+1), "true", f(r)))
		}
		for i, r := range s.Bystanders {
			_ = cw.Write(append(slices.Clone(base), "h"+strconv.Itoa(len(s.Receivers)+i+1), "false", f(r)))
		}
	}
	cw.Flush()
	return cw.Error()
}
