package probe

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteJSON writes r as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes r as tables: the checks, the interfaces, what hotcast
// will use, and the result.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tINTERFACE\tVERDICT\tREASON")
	for _, c := range r.Checks {
		ifname := c.Interface
		if ifname == "" {
			ifname = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Name, ifname, c.Verdict, c.Reason)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Interfaces) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "INTERFACE\tIFINDEX\tKIND\tDRIVER XDP\tXDP FEATURES\tHOTCAST ATTACHES")
		for _, i := range r.Interfaces {
			idx, kind, xdp, feats, mode := "-", dash(i.Kind), dash(i.XDP), dash(strings.Join(i.XDPFeatures, ",")), dash(i.Mode)
			if i.Index != 0 {
				idx = fmt.Sprint(i.Index)
			} else {
				kind = "(absent)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", i.Name, idx, kind, xdp, feats, mode)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "\nhotcast uses: %s\n", r.Uses)
	req, opt := r.Missing(MissingRequired), len(r.Missing(MissingOptional))
	if len(req) == 0 {
		_, err := fmt.Fprintf(w, "result: ok (0 required missing, %d optional missing)\n", opt)
		return err
	}
	kernel := 0
	for _, c := range req {
		if c.OfKernel() {
			kernel++
		}
	}
	_, err := fmt.Fprintf(w, "result: FAIL (%d required missing: %d of the kernel, %d of this namespace's interfaces; %d optional missing)\n",
		len(req), kernel, len(req)-kernel, opt)
	return err
}

// String is Uses in one line.
func (u Uses) String() string {
	var parts []string
	switch u.XDPMode {
	case "":
		parts = append(parts, "XDP in the configured bpf.xdp-mode")
	default:
		parts = append(parts, "XDP "+u.XDPMode)
	}
	if u.TCX {
		parts = append(parts, "tcx for the TC programs")
	}
	if u.DevmapBroadcast {
		parts = append(parts, "devmap broadcast for the copies")
	}
	parts = append(parts, "MLD received on "+u.MLDReceive)
	if !u.IP6MR {
		parts = append(parts, "no ip6mr")
	}
	return strings.Join(parts, "; ")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
