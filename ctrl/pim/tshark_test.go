package pim

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// wireFrame is one PIM message as it leaves a router: PIM inside IPv6
// (next header 103) inside Ethernet.
type wireFrame struct {
	name     string
	m        Message
	src, dst netip.Addr
	hopLimit byte
	pim      []byte // the marshalled message
	raw      []byte // the whole frame as captured, when it was
}

func newWireFrame(t *testing.T, name string, m Message, src, dst netip.Addr) wireFrame {
	t.Helper()
	b, err := Marshal(m, src, dst)
	if err != nil {
		t.Fatalf("%s: Marshal: %v", name, err)
	}
	hl := byte(HopLimit) // link-local messages to ALL-PIM-ROUTERS
	if !dst.IsMulticast() {
		hl = 64 // Register and Register-Stop are unicast and routed
	}
	return wireFrame{name: name, m: m, src: src, dst: dst, hopLimit: hl, pim: b}
}

func (f wireFrame) bytes() []byte {
	if f.raw != nil {
		return f.raw
	}
	return ethernetFrame(f.dst, append(ipv6Header(f.src, f.dst, IPProtocol, f.hopLimit, len(f.pim)), f.pim...))
}

func writePcap(t *testing.T, path string, frames []wireFrame) {
	t.Helper()
	var buf bytes.Buffer
	w := newPcapWriter(&buf)
	ts := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for i, f := range frames {
		w.write(ts.Add(time.Duration(i)*time.Millisecond), f.bytes())
	}
	if w.err != nil {
		t.Fatal(w.err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// tshark runs tshark on a capture file with a private HOME (no user
// preferences) and without name resolution. tshark warns on stderr when
// run as root, and still reads files.
func tshark(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("tshark", append([]string{"-n"}, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark %v: %v\n%s", args, err, stderr.String())
	}
	return string(out)
}

func needTshark(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("tshark"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("tshark missing in CI: %v", err)
		}
		t.Skip("tshark not installed (Debian package tshark; make deps-test)")
	}
}

// The tshark fields compared, in the order of the -T fields output.
var tsharkFields = []string{
	"frame.number", "ipv6.nxt", "ipv6.hlim", "ipv6.src", "ipv6.dst",
	"pim.version", "pim.type", "pim.cksum.status", "pim.optiontype",
	"pim.holdtime", "pim.t", "pim.propagation_delay", "pim.override_interval",
	"pim.dr_priority", "pim.generation_id", "pim.address_list_ip6",
	"pim.upstream_neighbor_ip6", "pim.numgroups", "pim.group_ip6", "pim.mask_len",
	"pim.numjoins", "pim.numprunes", "pim.join_ip6", "pim.prune_ip6",
	"pim.source_addr.flags", "pim.unicast_ipv6",
	"pim.rpt", "pim.metric_pref", "pim.metric",
	"pim.register_flag.border", "pim.register_flag.null_register",
}

func join[T any](xs []T, f func(T) string) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = f(x)
	}
	return strings.Join(s, ",")
}

func b01(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func u[T ~uint8 | ~uint16 | ~uint32 | int](v T) string { return strconv.FormatUint(uint64(v), 10) }

// expectFields is what tshark must decode from f: the value of each
// field, its occurrences joined with commas. Fields left out must be
// empty, so that tshark finds nothing the message does not have.
func expectFields(f wireFrame) map[string]string {
	e := map[string]string{
		"ipv6.nxt": "103", "ipv6.hlim": u(f.hopLimit),
		"ipv6.src": f.src.String(), "ipv6.dst": f.dst.String(),
		"pim.version": "2", "pim.type": u(f.m.Type()),
		"pim.cksum.status": "1", // PROTO_CHECKSUM_E_GOOD
	}
	addr := func(a netip.Addr) string { return a.String() }
	flags := func(s Source) string {
		var v byte
		if s.Sparse {
			v |= sourceFlagS
		}
		if s.Wildcard {
			v |= sourceFlagW
		}
		if s.RPT {
			v |= sourceFlagR
		}
		return fmt.Sprintf("0x%02x", v)
	}
	switch m := f.m.(type) {
	case *Hello:
		var types []string
		if m.Holdtime != nil {
			types = append(types, u(OptHoldtime))
			e["pim.holdtime"] = u(*m.Holdtime)
		}
		if d := m.LANPruneDelay; d != nil {
			types = append(types, u(OptLANPruneDelay))
			e["pim.t"] = b01(d.Tracking)
			e["pim.propagation_delay"] = u(d.PropagationDelay)
			e["pim.override_interval"] = u(d.OverrideInterval)
		}
		if m.DRPriority != nil {
			types = append(types, u(OptDRPriority))
			e["pim.dr_priority"] = u(*m.DRPriority)
		}
		if m.GenerationID != nil {
			types = append(types, u(OptGenerationID))
			e["pim.generation_id"] = u(*m.GenerationID)
		}
		if len(m.Addresses) > 0 {
			types = append(types, u(OptAddressList))
			e["pim.address_list_ip6"] = join(m.Addresses, addr)
			e["pim.unicast_ipv6"] = e["pim.address_list_ip6"]
		}
		for _, o := range m.Unknown {
			types = append(types, u(o.Type))
		}
		e["pim.optiontype"] = strings.Join(types, ",")
	case *JoinPrune:
		e["pim.upstream_neighbor_ip6"] = m.UpstreamNeighbor.String()
		e["pim.unicast_ipv6"] = m.UpstreamNeighbor.String()
		e["pim.numgroups"] = u(len(m.Groups))
		e["pim.holdtime"] = u(m.Holdtime)
		var groups, masks, joins, prunes, nj, np, fl []string
		for _, g := range m.Groups {
			groups = append(groups, g.Group.Addr.String())
			masks = append(masks, u(g.Group.MaskLen))
			nj = append(nj, u(len(g.Joins)))
			np = append(np, u(len(g.Prunes)))
			for _, s := range g.Joins {
				joins = append(joins, s.Addr.String())
				masks = append(masks, u(s.MaskLen))
				fl = append(fl, flags(s))
			}
			for _, s := range g.Prunes {
				prunes = append(prunes, s.Addr.String())
				masks = append(masks, u(s.MaskLen))
				fl = append(fl, flags(s))
			}
		}
		e["pim.group_ip6"] = strings.Join(groups, ",")
		e["pim.mask_len"] = strings.Join(masks, ",")
		e["pim.numjoins"] = strings.Join(nj, ",")
		e["pim.numprunes"] = strings.Join(np, ",")
		e["pim.join_ip6"] = strings.Join(joins, ",")
		e["pim.prune_ip6"] = strings.Join(prunes, ",")
		e["pim.source_addr.flags"] = strings.Join(fl, ",")
	case *Register:
		e["pim.register_flag.border"] = b01(m.Border)
		e["pim.register_flag.null_register"] = b01(m.Null)
		// The inner packet is decoded as IPv6 too.
		s, g, _ := m.Inner()
		e["ipv6.src"] += "," + s.String()
		e["ipv6.dst"] += "," + g.String()
		e["ipv6.nxt"] += "," + u(m.Packet[6])
		e["ipv6.hlim"] += "," + u(m.Packet[7])
	case *RegisterStop:
		e["pim.group_ip6"] = m.Group.Addr.String()
		e["pim.mask_len"] = u(m.Group.MaskLen)
		e["pim.unicast_ipv6"] = m.Source.String()
	case *Assert:
		e["pim.group_ip6"] = m.Group.Addr.String()
		e["pim.mask_len"] = u(m.Group.MaskLen)
		e["pim.unicast_ipv6"] = m.Source.String()
		e["pim.rpt"] = b01(m.RPT)
		e["pim.metric_pref"] = u(m.MetricPreference)
		e["pim.metric"] = u(m.Metric)
	}
	return e
}

// tsharkBad matches what tshark prints for a packet it finds wrong:
// malformed or short packets, bad checksums, expert warnings and errors.
var tsharkBad = regexp.MustCompile(`(?i)malformed|incorrect|\[bad|checksum status: bad|expert info \((warning|error)|exception occurred|short frame|unknown`)

// tsharkCheck writes frames to a capture, has tshark decode it, and checks
// every frame's fields and that the verbose decode has no warning.
func tsharkCheck(t *testing.T, frames []wireFrame) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pim.pcap")
	writePcap(t, path, frames)
	if keep := os.Getenv("PIM_PCAP_KEEP"); keep != "" {
		writePcap(t, keep, frames) // to look at it by hand
	}

	verbose := tshark(t, "-r", path, "-V")
	for _, frame := range splitFrames(verbose) {
		for _, line := range strings.Split(frame.text, "\n") {
			if tsharkBad.MatchString(line) && !allowedUnknown(line) {
				t.Errorf("frame %d (%s): tshark -V: %s", frame.n, frames[frame.n-1].name, strings.TrimSpace(line))
			}
		}
		if !strings.Contains(frame.text, "Protocol Independent Multicast") {
			t.Errorf("frame %d (%s): not decoded as PIM", frame.n, frames[frame.n-1].name)
		}
	}
	if n := len(splitFrames(verbose)); n != len(frames) {
		t.Fatalf("tshark -V decoded %d frames, wrote %d", n, len(frames))
	}

	args := []string{"-r", path, "-T", "fields", "-E", "separator=|", "-E", "occurrence=a", "-E", "aggregator=,"}
	for _, f := range tsharkFields {
		args = append(args, "-e", f)
	}
	lines := strings.Split(strings.TrimRight(tshark(t, args...), "\n"), "\n")
	if len(lines) != len(frames) {
		t.Fatalf("tshark -T fields: %d lines for %d frames", len(lines), len(frames))
	}
	for i, line := range lines {
		got := map[string]string{}
		vals := strings.Split(line, "|")
		if len(vals) != len(tsharkFields) {
			t.Fatalf("frame %d: %d fields, want %d: %q", i+1, len(vals), len(tsharkFields), line)
		}
		for j, f := range tsharkFields {
			got[f] = vals[j]
		}
		// tshark lists an encoded group twice (the subtree and the address).
		got["pim.group_ip6"] = strings.Join(slices.Compact(strings.Split(got["pim.group_ip6"], ",")), ",")
		if got["frame.number"] != strconv.Itoa(i+1) {
			t.Fatalf("line %d is frame %q", i+1, got["frame.number"])
		}
		want := expectFields(frames[i])
		for _, f := range tsharkFields[1:] {
			if got[f] != want[f] {
				t.Errorf("frame %d (%s): %s = %q, want %q", i+1, frames[i].name, f, got[f], want[f])
			}
		}
	}
}

// allowedUnknown: tshark prints the unknown Hello options the codec is
// asked to send as "Unknown", which is the point of sending them.
func allowedUnknown(line string) bool {
	l := strings.TrimSpace(line)
	return strings.HasPrefix(l, "Option 100: Unknown") || strings.HasPrefix(l, "Option 65100: Unknown") ||
		strings.HasPrefix(l, "Unknown: ")
}

type decodedFrame struct {
	n    int
	text string
}

var frameLine = regexp.MustCompile(`(?m)^Frame (\d+):`)

func splitFrames(out string) []decodedFrame {
	idx := frameLine.FindAllStringSubmatchIndex(out, -1)
	var fs []decodedFrame
	for i, m := range idx {
		end := len(out)
		if i+1 < len(idx) {
			end = idx[i+1][0]
		}
		n, _ := strconv.Atoi(out[m[2]:m[3]])
		fs = append(fs, decodedFrame{n: n, text: out[m[0]:end]})
	}
	return fs
}

// TestTsharkDecodes: every message type, as hotcast marshals it, decodes
// in tshark with good checksums, no malformed or warning markers and the
// fields hotcast meant.
func TestTsharkDecodes(t *testing.T) {
	needTshark(t)
	var frames []wireFrame
	for _, tc := range sampleMessages() {
		frames = append(frames, newWireFrame(t, tc.name, tc.m, tc.src, tc.dst))
	}
	// A Join/Prune as large as the group count allows, and Hellos as an
	// Interface sends them.
	big := &JoinPrune{UpstreamNeighbor: llC, Holdtime: 210}
	for i := range 255 {
		g := netip.AddrFrom16([16]byte{0xff, 0x0e, 14: byte(i >> 8), 15: byte(i)})
		big.Groups = append(big.Groups, GroupSet{Group: SingleGroup(g), Joins: []Source{SG(src1), SG(src2)}, Prunes: []Source{SGRpt(dr)}})
	}
	frames = append(frames, newWireFrame(t, "join-prune-255-groups", big, llA, AllPIMRouters))
	frames = append(frames, interfaceFrames(t)...)
	tsharkCheck(t, frames)
}

// TestTsharkSeesBadChecksum is the control for TestTsharkDecodes: with one
// checksum bit flipped, tshark does report the checksum as bad, so its
// silence above means something.
func TestTsharkSeesBadChecksum(t *testing.T) {
	needTshark(t)
	var frames []wireFrame
	for _, tc := range sampleMessages() {
		f := newWireFrame(t, tc.name, tc.m, tc.src, tc.dst)
		f.pim[3] ^= 0x01
		frames = append(frames, f)
	}
	path := filepath.Join(t.TempDir(), "bad.pcap")
	writePcap(t, path, frames)
	out := tshark(t, "-r", path, "-T", "fields", "-e", "pim.cksum.status")
	for i, s := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if s != "0" { // PROTO_CHECKSUM_E_BAD
			t.Errorf("frame %d (%s): checksum status %q with a flipped checksum, want 0 (bad)", i+1, frames[i].name, s)
		}
	}
	verbose := tshark(t, "-r", path, "-V")
	if n := strings.Count(verbose, " incorrect, should be "); n != len(frames) {
		t.Errorf("tshark -V: %d \"incorrect\" checksums for %d bad frames", n, len(frames))
	}
	if !tsharkBad.MatchString(verbose) {
		t.Error("the warning pattern TestTsharkDecodes relies on misses a bad checksum")
	}
}
