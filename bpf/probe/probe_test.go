package probe

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// fake is a Prober whose facts a test sets; the zero value of each error
// field means "present".
type fake struct {
	release  string
	fsMagic  int64
	fsAt     string // "" means the probed path itself
	fsErr    error
	progs    map[ebpf.ProgramType]error
	maps     map[ebpf.MapType]error
	dp       error
	tcx      error
	bcast    error
	devprog  error
	live     error
	ip6mr    bool
	sockets  map[[3]int]error
	links    []Link
	feats    map[int]XDPFeatures
	featsErr error
	asked    []int // ifindexes XDPFeatures was asked for
}

func (f *fake) KernelRelease() (string, error) { return f.release, nil }
func (f *fake) StatFS(path string) (int64, string, error) {
	at := f.fsAt
	if at == "" {
		at = path
	}
	return f.fsMagic, at, f.fsErr
}
func (f *fake) ProgramType(pt ebpf.ProgramType) error { return f.progs[pt] }
func (f *fake) MapType(mt ebpf.MapType) error         { return f.maps[mt] }
func (f *fake) Dataplane() error                      { return f.dp }
func (f *fake) TCX() error                            { return f.tcx }
func (f *fake) DevmapBroadcast() error                { return f.bcast }
func (f *fake) DevmapProgram() error                  { return f.devprog }
func (f *fake) XDPLiveFrames() error                  { return f.live }
func (f *fake) FileExists(path string) (bool, error) {
	if path != IP6MRFile {
		return false, fmt.Errorf("unexpected path %s", path)
	}
	return f.ip6mr, nil
}
func (f *fake) Socket(domain, typ, proto int) error { return f.sockets[[3]int{domain, typ, proto}] }
func (f *fake) Links() ([]Link, error)              { return f.links, nil }
func (f *fake) XDPFeatures(idx []int) (map[int]XDPFeatures, error) {
	f.asked = idx
	if f.featsErr != nil {
		return nil, f.featsErr
	}
	out := map[int]XDPFeatures{}
	for _, i := range idx {
		if v, ok := f.feats[i]; ok {
			out[i] = v
		}
	}
	return out, nil
}

const (
	vethNative = XDPActBasic | XDPActRedirect | XDPActRxSG // a veth whose peer has neither XDP nor GRO
	nicNative  = XDPActBasic | XDPActRedirect | XDPActNDOXmit | XDPActRxSG
)

// healthy is this machine's kind: everything but ip6mr, a NIC with full
// native XDP, a veth without ndo-xmit, a tunnel, loopback.
func healthy() *fake {
	return &fake{
		release: "6.18.0",
		fsMagic: unix.BPF_FS_MAGIC,
		links: []Link{
			{Name: "lo", Index: 1, Kind: "device", Loopback: true},
			{Name: "ge2", Index: 3, Kind: "veth", Ethernet: true},
			{Name: "ge1", Index: 2, Kind: "device", Ethernet: true},
			{Name: "tun0", Index: 4, Kind: "tuntap"},
			{Name: "ifb0", Index: 5, Kind: "ifb", Ethernet: true},
		},
		feats: map[int]XDPFeatures{2: nicNative, 3: vethNative, 4: 0, 5: 0},
	}
}

func find(t *testing.T, r *Report, name, ifname string) Check {
	t.Helper()
	for _, c := range r.Checks {
		if c.Name == name && c.Interface == ifname {
			return c
		}
	}
	t.Fatalf("no check %s %s in %+v", name, ifname, r.Checks)
	return Check{}
}

func TestHealthyKernelNoConfig(t *testing.T) {
	f := healthy()
	r := Evaluate(f, Want{})
	if r.ExitCode() != 0 || r.KernelExitCode() != 0 {
		t.Fatalf("exit %d / kernel %d, want 0: %+v", r.ExitCode(), r.KernelExitCode(), r.Missing(MissingRequired))
	}
	want := []string{CheckKernel, CheckBPFFS, CheckProgXDP, CheckProgSchedCLS, CheckMapDevMapHash, CheckMapArrayOfMaps,
		CheckDataplane, CheckTCX, CheckDevmapBroadcast, CheckDevmapProg, CheckXDPLiveFrames, CheckIP6MR, CheckAFPacket, CheckRawIPv6,
		CheckXDP, CheckXDP, CheckXDP}
	var got []string
	for _, c := range r.Checks {
		got = append(got, c.Name)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("checks %v, want %v", got, want)
	}
	// Every Ethernet interface but loopback, sorted; tun0 is not Ethernet.
	var names []string
	for _, i := range r.Interfaces {
		names = append(names, i.Name)
	}
	if !slices.Equal(names, []string{"ge1", "ge2", "ifb0"}) {
		t.Errorf("interfaces %v, want [ge1 ge2 ifb0]", names)
	}
	if slices.Contains(f.asked, 1) {
		t.Errorf("asked xdp-features of loopback: %v", f.asked)
	}
	if c := find(t, r, CheckXDP, "ge1"); c.Verdict != OK || !strings.Contains(c.Reason, "native XDP (basic, redirect, ndo-xmit, rx-sg)") {
		t.Errorf("ge1: %+v", c)
	}
	if c := find(t, r, CheckXDP, "ge2"); c.Verdict != OK {
		t.Errorf("ge2 (veth, native): %+v", c)
	}
	if c := find(t, r, CheckXDP, "ifb0"); c.Verdict != MissingOptional || !strings.Contains(c.Reason, "generic only") ||
		!strings.Contains(c.Reason, "bpf.xdp-mode: generic") {
		t.Errorf("ifb0 (no native XDP): %+v", c)
	}
	if c := find(t, r, CheckIP6MR, ""); c.Verdict != MissingOptional || !strings.Contains(c.Reason, "CONFIG_IPV6_MROUTE") ||
		!strings.Contains(c.Reason, "AF_PACKET") {
		t.Errorf("ip6mr absent: %+v", c)
	}
	if r.Interfaces[0].XDP != XDPNative || r.Interfaces[2].XDP != XDPGenericOnly || r.Interfaces[0].Mode != "" {
		t.Errorf("interfaces %+v", r.Interfaces)
	}
	if !r.Uses.TCX || !r.Uses.DevmapBroadcast || r.Uses.MLDReceive != "AF_PACKET" || r.Uses.IP6MR {
		t.Errorf("uses %+v", r.Uses)
	}
	if r.Kernel != "6.18.0" {
		t.Errorf("kernel %q", r.Kernel)
	}
}

func TestIP6MRPresent(t *testing.T) {
	f := healthy()
	f.ip6mr = true
	c := find(t, Evaluate(f, Want{}), CheckIP6MR, "")
	if c.Verdict != OK || !strings.Contains(c.Reason, "does not use it") {
		t.Errorf("ip6mr present: %+v", c)
	}
}

// Each kernel feature hotcast needs fails the report when missing; the
// optional ones never do.
func TestKernelFeatureVerdicts(t *testing.T) {
	missing := fmt.Errorf("probe: %w", ebpf.ErrNotSupported)
	rawICMP := [3]int{unix.AF_INET6, unix.SOCK_RAW, unix.IPPROTO_ICMPV6}
	rawVRRP := [3]int{unix.AF_INET6, unix.SOCK_RAW, 112}
	packet := [3]int{unix.AF_PACKET, unix.SOCK_RAW, 0}
	tests := []struct {
		check string
		want  Verdict
		set   func(*fake)
		text  string // in the reason
	}{
		{CheckProgXDP, MissingRequired, func(f *fake) { f.progs = map[ebpf.ProgramType]error{ebpf.XDP: missing} }, "no XDP programs"},
		{CheckProgSchedCLS, MissingRequired, func(f *fake) { f.progs = map[ebpf.ProgramType]error{ebpf.SchedCLS: missing} }, "SchedCLS"},
		{CheckMapDevMapHash, MissingRequired, func(f *fake) { f.maps = map[ebpf.MapType]error{ebpf.DevMapHash: missing} }, "DevMapHash"},
		{CheckMapArrayOfMaps, MissingRequired, func(f *fake) { f.maps = map[ebpf.MapType]error{ebpf.ArrayOfMaps: missing} }, "ArrayOfMaps"},
		{CheckDataplane, MissingRequired, func(f *fake) { f.dp = fmt.Errorf("load ingress program: invalid argument\nverifier log line") }, "do not load: load ingress program: invalid argument"},
		{CheckTCX, MissingRequired, func(f *fake) { f.tcx = missing }, "6.6+"},
		{CheckDevmapBroadcast, MissingRequired, func(f *fake) { f.bcast = missing }, "BPF_F_BROADCAST"},
		{CheckDevmapProg, MissingRequired, func(f *fake) { f.devprog = missing }, "BPF_XDP_DEVMAP"},
		{CheckAFPacket, MissingRequired, func(f *fake) { f.sockets = map[[3]int]error{packet: missing} }, "CONFIG_PACKET"},
		{CheckRawIPv6, MissingRequired, func(f *fake) { f.sockets = map[[3]int]error{rawICMP: missing} }, "raw IPv6"},
		{CheckRawIPv6, MissingRequired, func(f *fake) { f.sockets = map[[3]int]error{rawVRRP: missing} }, "raw IPv6"},
		{CheckXDPLiveFrames, MissingOptional, func(f *fake) { f.live = missing }, "only the benchmark generator"},
		{CheckBPFFS, MissingRequired, func(f *fake) { f.fsErr = unix.EIO }, "statfs"},
		// Not root: said so, and still a failure (hotcastd could not run either).
		{CheckTCX, MissingRequired, func(f *fake) { f.tcx = fmt.Errorf("load: %w", unix.EPERM) }, "run as root"},
		{CheckXDPLiveFrames, MissingOptional, func(f *fake) { f.live = fmt.Errorf("load: %w", unix.EPERM) }, "run as root"},
	}
	for _, tt := range tests {
		t.Run(tt.check+"/"+tt.text, func(t *testing.T) {
			f := healthy()
			tt.set(f)
			r := Evaluate(f, Want{})
			c := find(t, r, tt.check, "")
			if c.Verdict != tt.want || !strings.Contains(c.Reason, tt.text) {
				t.Errorf("%s: %+v, want %s with %q", tt.check, c, tt.want, tt.text)
			}
			if strings.Contains(c.Reason, "\n") {
				t.Errorf("reason has more than one line: %q", c.Reason)
			}
			want := 0
			if tt.want == MissingRequired {
				want = 1
			}
			if r.ExitCode() != want || r.KernelExitCode() != want {
				t.Errorf("exit %d, kernel exit %d, want %d", r.ExitCode(), r.KernelExitCode(), want)
			}
			if n := len(r.Missing(MissingRequired)); n != want {
				t.Errorf("%d required missing, want %d: %+v", n, want, r.Missing(MissingRequired))
			}
		})
	}
}

func TestUsesFollowsProbes(t *testing.T) {
	f := healthy()
	f.tcx = ebpf.ErrNotSupported
	f.bcast = ebpf.ErrNotSupported
	r := Evaluate(f, Want{Config: true, XDPMode: ModeGeneric})
	if r.Uses.TCX || r.Uses.DevmapBroadcast || r.Uses.XDPMode != ModeGeneric {
		t.Errorf("uses %+v", r.Uses)
	}
}

func TestBPFFS(t *testing.T) {
	tests := []struct {
		name    string
		pin     string
		magic   int64
		at      string
		want    Verdict
		inText  string
		exitful bool
	}{
		{"mounted", "", unix.BPF_FS_MAGIC, "", OK, "/sys/fs/bpf is on a bpffs", false},
		{"pin dir not made yet", "/sys/fs/bpf/hotcast/A", unix.BPF_FS_MAGIC, "/sys/fs/bpf", OK, "at /sys/fs/bpf; hotcastd creates the rest", false},
		{"unmounted, hotcastd mounts it", "/sys/fs/bpf/hotcast/A", unix.SYSFS_MAGIC, "/sys/fs", MissingOptional, "hotcastd mounts one", false},
		{"unmounted, no config", "", unix.SYSFS_MAGIC, "/sys/fs", MissingOptional, "hotcastd mounts one", false},
		{"pin path elsewhere", "/run/hotcast/bpf", unix.TMPFS_MAGIC, "/run", MissingRequired, "not on a bpffs and not under /sys/fs/bpf", true},
		{"prefix is not a parent", "/sys/fs/bpfx/A", unix.SYSFS_MAGIC, "/sys/fs", MissingRequired, "not under /sys/fs/bpf", true},
		{"other bpffs", "/run/bpf/A", unix.BPF_FS_MAGIC, "/run/bpf", OK, "on a bpffs", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := healthy()
			f.fsMagic, f.fsAt = tt.magic, tt.at
			w := Want{}
			if tt.pin != "" {
				w = Want{Config: true, PinPath: tt.pin, XDPMode: ModeNative}
			}
			r := Evaluate(f, w)
			c := find(t, r, CheckBPFFS, "")
			if c.Verdict != tt.want || !strings.Contains(c.Reason, tt.inText) {
				t.Errorf("%+v, want %s with %q", c, tt.want, tt.inText)
			}
			if got := r.KernelExitCode() != 0; got != tt.exitful {
				t.Errorf("kernel exit %d", r.KernelExitCode())
			}
		})
	}
}

// The configured bpf.xdp-mode against each driver.
func TestInterfaceVerdicts(t *testing.T) {
	tests := []struct {
		name   string
		mode   string
		iface  WantIface
		set    func(*fake)
		want   Verdict
		inText string
		xdp    string
	}{
		{"native on native NIC", ModeNative, WantIface{Name: "ge1", XDP: true}, nil, OK, "native XDP (basic, redirect, ndo-xmit, rx-sg); bpf.xdp-mode native", XDPNative},
		{"native on generic-only driver", ModeNative, WantIface{Name: "ifb0", XDP: true}, nil, MissingRequired, "set bpf.xdp-mode: generic", XDPGenericOnly},
		{"generic on generic-only driver", ModeGeneric, WantIface{Name: "ifb0", XDP: true}, nil, OK, "generic (SKB) XDP as configured", XDPGenericOnly},
		{"generic on native NIC", ModeGeneric, WantIface{Name: "ge1", XDP: true}, nil, OK, "bpf.xdp-mode: native is faster", XDPNative},
		{"native on veth, peer without XDP or GRO", ModeNative, WantIface{Name: "ge2", XDP: true}, nil, MissingOptional, "its peer needs an XDP program or GRO on", XDPNative},
		{"native on veth, clone egress", ModeNative, WantIface{Name: "ge2", XDP: true, Clone: true}, nil, OK, "bpf.xdp-mode native", XDPNative},
		{"native, peer got GRO", ModeNative, WantIface{Name: "ge2", XDP: true}, func(f *fake) { f.feats[3] = vethNative | XDPActNDOXmit }, OK, "ndo-xmit", XDPNative},
		{"absent", ModeNative, WantIface{Name: "ge9", XDP: true}, nil, MissingRequired, "not in this network namespace", ""},
		{"not Ethernet", ModeGeneric, WantIface{Name: "tun0", XDP: true}, nil, MissingRequired, "not an Ethernet interface (tuntap)", XDPGenericOnly},
		{"nothing attached", ModeNative, WantIface{Name: "ifb0"}, nil, OK, "hotcast attaches nothing here", XDPGenericOnly},
		{"kernel without netdev family, native", ModeNative, WantIface{Name: "ge1", XDP: true},
			func(f *fake) { f.featsErr = fmt.Errorf("family: %w", ebpf.ErrNotSupported) }, MissingOptional, "kernel 6.3+", XDPUnknown},
		{"kernel without netdev family, generic", ModeGeneric, WantIface{Name: "ge1", XDP: true},
			func(f *fake) { f.featsErr = ebpf.ErrNotSupported }, OK, "generic (SKB) XDP as configured", XDPUnknown},
		{"device the family does not list", ModeNative, WantIface{Name: "ge1", XDP: true},
			func(f *fake) { delete(f.feats, 2) }, MissingOptional, "does not list it", XDPUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := healthy()
			if tt.set != nil {
				tt.set(f)
			}
			r := Evaluate(f, Want{Config: true, XDPMode: tt.mode, Interfaces: []WantIface{tt.iface}, Sockets: true})
			c := find(t, r, CheckXDP, tt.iface.Name)
			if c.Verdict != tt.want || !strings.Contains(c.Reason, tt.inText) {
				t.Errorf("%+v, want %s with %q", c, tt.want, tt.inText)
			}
			want := 0
			if tt.want == MissingRequired {
				want = 1
			}
			if r.ExitCode() != want {
				t.Errorf("exit %d, want %d", r.ExitCode(), want)
			}
			// Interfaces depend on the namespace: never hotcastd --check's failure.
			if r.KernelExitCode() != 0 {
				t.Errorf("kernel exit %d, want 0", r.KernelExitCode())
			}
			if len(r.Interfaces) != 1 || r.Interfaces[0].XDP != tt.xdp {
				t.Fatalf("interfaces %+v, want one with xdp %q", r.Interfaces, tt.xdp)
			}
			wantMode := tt.mode
			if !tt.iface.XDP {
				wantMode = "none"
			}
			if r.Interfaces[0].Mode != wantMode {
				t.Errorf("mode %q, want %q", r.Interfaces[0].Mode, wantMode)
			}
		})
	}
}

// Sockets are required only when the configuration runs MLD or VRRP6.
func TestSocketsByConfig(t *testing.T) {
	f := healthy()
	f.sockets = map[[3]int]error{{unix.AF_PACKET, unix.SOCK_RAW, 0}: ebpf.ErrNotSupported}
	for _, tt := range []struct {
		w    Want
		want Verdict
	}{
		{Want{}, MissingRequired},
		{Want{Config: true, XDPMode: ModeNative, Sockets: true}, MissingRequired},
		{Want{Config: true, XDPMode: ModeNative}, MissingOptional},
	} {
		r := Evaluate(f, tt.w)
		if c := find(t, r, CheckAFPacket, ""); c.Verdict != tt.want {
			t.Errorf("want %+v: %+v, want %s", tt.w, c, tt.want)
		}
	}
}

func TestWriteText(t *testing.T) {
	f := healthy()
	f.tcx = ebpf.ErrNotSupported
	r := Evaluate(f, Want{Config: true, XDPMode: ModeNative, Interfaces: []WantIface{{Name: "ge1", XDP: true}, {Name: "ge9", XDP: true}}})
	var b bytes.Buffer
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"CHECK ", "VERDICT", "tcx ", "missing-required  no tcx links (6.6+)",
		"INTERFACE  IFINDEX", "ge1        2        device", "ge9        -        (absent)",
		"hotcast uses: XDP native; devmap broadcast for the copies; MLD received on AF_PACKET; no ip6mr",
		"result: FAIL (2 required missing: 1 of the kernel, 1 of this namespace's interfaces; 1 optional missing)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	b.Reset()
	if err := Evaluate(healthy(), Want{}).WriteText(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "result: ok (0 required missing, 2 optional missing)") {
		t.Errorf("healthy output:\n%s", b.String())
	}
}

func TestWriteJSON(t *testing.T) {
	r := Evaluate(healthy(), Want{Config: true, XDPMode: ModeNative, Interfaces: []WantIface{{Name: "ge2", XDP: true}}})
	var b bytes.Buffer
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&back, r) {
		t.Errorf("round trip:\n got %+v\nwant %+v", back, *r)
	}
	var raw map[string]any
	_ = json.Unmarshal(b.Bytes(), &raw)
	ifs := raw["interfaces"].([]any)[0].(map[string]any)
	if ifs["xdp"] != "native" || ifs["mode"] != "native" || ifs["kind"] != "veth" {
		t.Errorf("interface JSON %v", ifs)
	}
	if !strings.Contains(b.String(), `"verdict": "missing-optional"`) {
		t.Errorf("JSON verdict spelling:\n%s", b.String())
	}
}

func TestXDPFeatureNames(t *testing.T) {
	if got := (nicNative | XDPActHWOffload | 1<<9).Names(); !slices.Equal(got, []string{"basic", "redirect", "ndo-xmit", "hw-offload", "rx-sg", "0x200"}) {
		t.Errorf("names %v", got)
	}
	if got := XDPFeatures(0).Names(); len(got) != 0 {
		t.Errorf("names of 0: %v", got)
	}
	if (XDPActBasic).Native() || !(XDPActBasic | XDPActRedirect).Native() {
		t.Error("Native wants basic and redirect")
	}
}
