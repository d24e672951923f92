package main

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"

	"github.com/hotcast/hotcast/internal/stats"
)

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{5}, 5},
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		if got := stats.Median(tc.in); got != tc.want {
			t.Errorf("Median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestSummarize(t *testing.T) {
	s := []Sample{
		{Variant: "sink", Fanout: 2, Path: pathHotcast, Baseline: baselineBridge, Round: 1, Offered: 300, Receivers: []float64{300, 300}},
		{Variant: "sink", Fanout: 2, Path: pathKernel, Baseline: baselineBridge, Round: 1, Offered: 1000, Receivers: []float64{100, 80}},
		{Variant: "sink", Fanout: 2, Path: pathHotcast, Baseline: baselineBridge, Round: 2, Offered: 500, Receivers: []float64{500, 500}},
		{Variant: "sink", Fanout: 2, Path: pathKernel, Baseline: baselineBridge, Round: 2, Offered: 1000, Receivers: []float64{200, 200}, Bystanders: []float64{0}},
		{Variant: "sink", Fanout: 2, Path: pathHotcast, Baseline: baselineBridge, Round: 3, Offered: 400, Receivers: []float64{400, 400}},
		{Variant: "sink", Fanout: 2, Path: pathKernel, Baseline: baselineBridge, Round: 3, Offered: 1000, Receivers: []float64{150, 150}},
		{Variant: "socket", Fanout: 1, Path: pathKernel, Baseline: baselineIP6MR, Round: 1, Offered: 10, Receivers: []float64{10}},
		{Variant: "socket", Fanout: 1, Path: pathHotcast, Baseline: baselineIP6MR, Round: 1, Offered: 10, Receivers: []float64{9}},
	}
	got := Summarize(s)
	// hotcast delivered all it was offered: generator-bound; the kernel a
	// sixth of it.
	want := Row{Fanout: 2, Baseline: baselineBridge, OfferedKernel: 1000, OfferedHotcast: 400, Kernel: 150, Hotcast: 400, BoundHotcast: true, Rounds: 3}
	if len(got["sink"]) != 1 || got["sink"][0] != want {
		t.Fatalf("sink rows %+v, want [%+v]", got["sink"], want)
	}
	if r := got["sink"][0].Ratio(); r < 2.66 || r > 2.67 {
		t.Errorf("ratio %v, want 8/3", r)
	}
	if r := got["socket"][0]; r.Kernel != 10 || r.Hotcast != 9 || r.Ratio() != 0.9 || r.Baseline != baselineIP6MR {
		t.Errorf("socket row %+v", r)
	}
	// 9 of 10 is 90%: below the 98% line; the kernel's 10 of 10 is on it.
	if r := got["socket"][0]; !r.BoundKernel || r.BoundHotcast || r.Bound() != "kernel" {
		t.Errorf("socket row bounds %+v: %q", r, r.Bound())
	}
	if (Row{Hotcast: 5}).Ratio() != 0 {
		t.Error("ratio with a silent kernel path must be 0, not Inf")
	}

	var md bytes.Buffer
	WriteMarkdown(&md, s, []string{"sink", "socket"})
	for _, w := range []string{
		"| 2 | bridge | 1,000 | 150 | 400 | 400 | 2.67x | **hotcast** |",
		"| 1 | ip6mr | 10 | 10 | 10 | 9 | 0.90x | **kernel** |",
		"### Sink", "### Socket", "lower bound",
	} {
		if !strings.Contains(md.String(), w) {
			t.Errorf("markdown lacks %q:\n%s", w, md.String())
		}
	}
	var csv bytes.Buffer
	if err := WriteCSV(&csv, s); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(csv.String()), "\n")
	// Header + one line per receiver (2*6 + 1 bystander + 2*1).
	if len(lines) != 1+12+1+2 {
		t.Fatalf("%d csv lines:\n%s", len(lines), csv.String())
	}
	if !strings.Contains(csv.String(), "sink,2,kernel,2,0.000,1000.0,0.0,h3,false,0.0,bridge,,0.0") {
		t.Errorf("bystander line missing:\n%s", csv.String())
	}
}

func TestKpps(t *testing.T) {
	for in, want := range map[float64]string{0: "0", 999.6: "1,000", 1234567: "1,234,567", 123456: "123,456"} {
		if got := kpps(in); got != want {
			t.Errorf("kpps(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestUDPFrame(t *testing.T) {
	mac := []byte{2, 0, 0, 0, 0, 1}
	f, err := udpFrame(mac, srcAddr, grpAddr, 64, udpPort, 80)
	if err != nil {
		t.Fatal(err)
	}
	if len(f) != 80 {
		t.Fatalf("frame is %d bytes", len(f))
	}
	g := grpAddr.As16()
	if !bytes.Equal(f[0:6], []byte{0x33, 0x33, g[12], g[13], g[14], g[15]}) || !bytes.Equal(f[6:12], mac) {
		t.Errorf("ethernet addresses % x", f[:12])
	}
	if et := binary.BigEndian.Uint16(f[12:]); et != 0x86dd {
		t.Errorf("ethertype %#x", et)
	}
	ip := f[ethLen:]
	if ip[0]>>4 != 6 || ip[6] != 17 || ip[7] != 64 {
		t.Errorf("ipv6 header % x", ip[:8])
	}
	if pl := binary.BigEndian.Uint16(ip[4:]); pl != 80-ethLen-ip6Len {
		t.Errorf("payload length %d", pl)
	}
	if netip.AddrFrom16([16]byte(ip[8:24])) != srcAddr || netip.AddrFrom16([16]byte(ip[24:40])) != grpAddr {
		t.Errorf("ipv6 addresses")
	}
	// A correct checksum sums (with the pseudo-header) to 0xffff.
	udp := ip[ip6Len:]
	var sum uint32
	for i := 0; i < 32; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[8+i:]))
	}
	sum += uint32(len(udp)) + 17
	for i := 0; i+1 < len(udp); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(udp[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	if sum != 0xffff {
		t.Errorf("udp checksum does not verify: sum %#x", sum)
	}

	for _, bad := range []struct {
		name string
		size int
		dst  netip.Addr
		mac  []byte
	}{
		{"short", minSize - 1, grpAddr, mac},
		{"unicast group", 80, srcAddr, mac},
		{"bad mac", 80, grpAddr, mac[:5]},
	} {
		if _, err := udpFrame(bad.mac, srcAddr, bad.dst, 64, udpPort, bad.size); err == nil {
			t.Errorf("%s: no error", bad.name)
		}
	}
}

func TestTrafgenConfig(t *testing.T) {
	got := trafgenConfig([]byte{0x33, 0x00, 0xff})
	if got != "{\n0x33, 0x00, 0xff\n}\n" {
		t.Errorf("config %q", got)
	}
	long := trafgenConfig(make([]byte, 17))
	if strings.Count(long, "\n") != 4 || strings.HasSuffix(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(long), "}")), ",") {
		t.Errorf("17-byte config %q", long)
	}
}

func TestCompact6(t *testing.T) {
	if got := compact6("ff3e::b:1"); got != "ff3e:0000:0000:0000:0000:0000:000b:0001" {
		t.Errorf("compact6 = %q", got)
	}
}

func TestValidate(t *testing.T) {
	ok := Config{Rounds: 1, Duration: 1, Fanouts: []int{1, 8}, Variants: []string{"sink", "socket"}, Size: 80,
		Generator: genXDP, Baseline: baselineBridge, IngressGRO: true}
	if err := ok.validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*Config){
		"rounds":     func(c *Config) { c.Rounds = 0 },
		"duration":   func(c *Config) { c.Duration = 0 },
		"fanouts":    func(c *Config) { c.Fanouts = nil },
		"fanout 0":   func(c *Config) { c.Fanouts = []int{0} },
		"fanout 31":  func(c *Config) { c.Fanouts = []int{31} },
		"variant":    func(c *Config) { c.Variants = []string{"tc"} },
		"size":       func(c *Config) { c.Size = 20 },
		"generator":  func(c *Config) { c.Generator = "pktgen" },
		"baseline":   func(c *Config) { c.Baseline = "smcroute" },
		"xdp no gro": func(c *Config) { c.IngressGRO = false },
	} {
		c := ok
		c.Fanouts = append([]int(nil), ok.Fanouts...)
		mut(&c)
		if err := c.validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestGeneratorBound(t *testing.T) {
	for _, tc := range []struct {
		offered float64
		rcv     []float64
		want    bool
	}{
		{1000, []float64{980, 980}, true},
		{1000, []float64{970, 995}, true}, // the mean (982.5) is what counts
		{1000, []float64{970, 985}, false},
		{1000, []float64{979, 979}, false},
		{0, []float64{0}, false},
		{1000, nil, false},
	} {
		s := Sample{Offered: tc.offered, Receivers: tc.rcv}
		if got := s.GeneratorBound(); got != tc.want {
			t.Errorf("offered %v receivers %v: bound %v, want %v", tc.offered, tc.rcv, got, tc.want)
		}
	}
	// A row with no hotcast runs is not flagged for hotcast.
	rows := Summarize([]Sample{{Variant: "sink", Fanout: 1, Path: pathKernel, Offered: 5, Receivers: []float64{5}}})
	if r := rows["sink"][0]; !r.BoundKernel || r.BoundHotcast {
		t.Errorf("kernel-only row %+v", r)
	}
}

func TestResolveBaseline(t *testing.T) {
	for _, tc := range []struct {
		flag   string
		ip6mr  bool
		want   string
		inNote string
	}{
		{"auto", true, baselineIP6MR, "has CONFIG_IPV6_MROUTE"},
		{"auto", false, baselineBridge, "no CONFIG_IPV6_MROUTE (/proc/net/ip6_mr_vif absent)"},
		{"bridge", true, baselineBridge, "as asked"},
		{"bridge", false, baselineBridge, "no CONFIG_IPV6_MROUTE"},
		{"ip6mr", true, baselineIP6MR, "as asked"},
	} {
		got, note, err := resolveBaseline(tc.flag, tc.ip6mr)
		if err != nil || got != tc.want || !strings.Contains(note, tc.inNote) {
			t.Errorf("resolveBaseline(%q, %v) = %q, %q, %v; want %q with %q", tc.flag, tc.ip6mr, got, note, err, tc.want, tc.inNote)
		}
	}
	if _, _, err := resolveBaseline("ip6mr", false); err == nil || !strings.Contains(err.Error(), "CONFIG_IPV6_MROUTE") {
		t.Errorf("ip6mr without the kernel option: %v", err)
	}
	if _, _, err := resolveBaseline("smcroute", true); err == nil {
		t.Error("unknown baseline accepted")
	}
}

func TestParseMDB(t *testing.T) {
	// iproute2 6.1's `bridge -j mdb show dev br0`.
	js := `[{"mdb":[{"index":2,"dev":"br0","port":"r2","grp":"ff3e::b:1","state":"temp","flags":[]},` +
		`{"index":2,"dev":"br0","port":"r2","grp":"ff02::1:ffce:e2ff","state":"temp","flags":[]},` +
		`{"index":2,"dev":"br0","port":"r1","grp":"ff3e::b:1","state":"temp","flags":[]},` +
		`{"index":2,"dev":"br0","port":"br0","grp":"ff02::6a","state":"temp","flags":[]}],"router":{}}]`
	got, err := parseMDB([]byte(js), "ff3e::b:1")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "r1,r2" {
		t.Errorf("ports %v, want r1,r2", got)
	}
	if got, err := parseMDB([]byte(`[{"mdb":[],"router":{}}]`), "ff3e::b:1"); err != nil || len(got) != 0 {
		t.Errorf("empty mdb: %v, %v", got, err)
	}
	if _, err := parseMDB([]byte("not json"), "ff3e::b:1"); err == nil {
		t.Error("garbage accepted")
	}
}

func TestDefaultRouterCPU(t *testing.T) {
	for _, tc := range []struct {
		gen          string
		genCPU, ncpu int
		want         int
	}{
		{genXDP, 0, 2, 1},
		{genXDP, 1, 2, 0},
		{genXDP, -1, 2, 0},
		{genXDP, 0, 1, -1},
		{genTrafgen, 0, 2, -1},
	} {
		if got := defaultRouterCPU(tc.gen, tc.genCPU, tc.ncpu); got != tc.want {
			t.Errorf("defaultRouterCPU(%s, %d, %d) = %d, want %d", tc.gen, tc.genCPU, tc.ncpu, got, tc.want)
		}
	}
}
