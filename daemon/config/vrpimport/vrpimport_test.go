package vrpimport

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hotcast/hotcast/daemon/config"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func warningsText(ws []Warning) []byte {
	var b bytes.Buffer
	for _, w := range ws {
		fmt.Fprintln(&b, w)
	}
	return b.Bytes()
}

func convertFile(t *testing.T, name string, opts Options) *Result {
	t.Helper()
	if opts.Source == "" {
		opts.Source = name
	}
	res, err := Convert(readTestdata(t, name), opts)
	if err != nil {
		t.Fatalf("Convert(%s): %v", name, err)
	}
	return res
}

// hotcastOnly copies onto got the fields of want that VRP has no command
// for, so the comparison covers exactly what the VRP file carries: api
// (socket, metrics), bpf (pin path, XDP mode), multicast.upstream.mode and
// mld.ignore-reports-while-backup (matched by interface name). It returns
// the differences it erased, for the test log.
func hotcastOnly(got, want *config.Config) []string {
	var erased []string
	note := func(what string, a, b any) {
		if !reflect.DeepEqual(a, b) {
			erased = append(erased, fmt.Sprintf("%s: imported %v, hand-written %v", what, a, b))
		}
	}
	note("api", got.API, want.API)
	got.API = want.API
	note("bpf", got.BPF, want.BPF)
	got.BPF = want.BPF
	note("multicast.upstream.mode", got.Multicast.Upstream.Mode, want.Multicast.Upstream.Mode)
	got.Multicast.Upstream.Mode = want.Multicast.Upstream.Mode
	for i := range got.Interfaces {
		if w := want.Interface(got.Interfaces[i].Name); w != nil {
			g := &got.Interfaces[i].MLD
			note(got.Interfaces[i].Name+".mld.ignore-reports-while-backup", g.IgnoreReportsWhileBackup, w.MLD.IgnoreReportsWhileBackup)
			g.IgnoreReportsWhileBackup = w.MLD.IgnoreReportsWhileBackup
		}
	}
	return erased
}

// pimOnly: while a hand-written file is the MLD-edge translation of the
// reference (no interface runs pim, multicast.upstream names the RPF
// interface), it copies onto got what PIM replaces there: the pim and
// loopback sections, each interface's pim and multicast.upstream. Once
// the hand-written file runs PIM it copies nothing. It returns the
// differences it erased, for the test log.
func pimOnly(got, want *config.Config) []string {
	var erased []string
	note := func(what string, a, b any) {
		if !reflect.DeepEqual(a, b) {
			erased = append(erased, fmt.Sprintf("%s: imported %+v, hand-written %+v", what, a, b))
		}
	}
	if want.PIMEnabled() {
		// The hand-written files put both ignore options on both
		// routers' VRRP6 interface (the reference's procedure; its
		// configuration files show one on each): the rest must match.
		for i := range got.Interfaces {
			g, w := got.Interfaces[i].PIM, want.Interface(got.Interfaces[i].Name)
			if g == nil || w == nil || w.PIM == nil {
				continue
			}
			note(got.Interfaces[i].Name+".pim.ignore-*", [2]bool{g.IgnoreDRState, g.IgnoreAssertState}, [2]bool{w.PIM.IgnoreDRState, w.PIM.IgnoreAssertState})
			g.IgnoreDRState, g.IgnoreAssertState = w.PIM.IgnoreDRState, w.PIM.IgnoreAssertState
		}
		return erased
	}
	note("pim", got.PIM, want.PIM)
	got.PIM = want.PIM
	note("loopback", got.Loopback, want.Loopback)
	got.Loopback = want.Loopback
	note("multicast.upstream", got.Multicast.Upstream, want.Multicast.Upstream)
	got.Multicast.Upstream = want.Multicast.Upstream
	for i := range got.Interfaces {
		if w := want.Interface(got.Interfaces[i].Name); w != nil {
			note(got.Interfaces[i].Name+".pim", got.Interfaces[i].PIM, w.PIM)
			got.Interfaces[i].PIM = w.PIM
		}
	}
	return erased
}

// referencePIM checks the PIM the reference's routers convert to:
// pim ipv6 sm on every converted interface, the static RP
// 2001:DB8:22::22 for every group, no multicast.upstream, and the
// interface options of the file.
func referencePIM(t *testing.T, c *config.Config, opts map[string]config.InterfacePIM) {
	t.Helper()
	rp := []config.StaticRP{{Address: netip.MustParseAddr("2001:db8:22::22"), GroupRange: netip.MustParsePrefix("ff00::/8")}}
	if c.PIM == nil || !reflect.DeepEqual(c.PIM.StaticRPs, rp) || c.PIM.SPTSwitch != config.SPTSwitchImmediate {
		t.Errorf("pim = %+v, want static-rp %v", c.PIM, rp)
	}
	if !c.Multicast.RoutingEnable || c.Multicast.Upstream != (config.Upstream{Mode: config.UpstreamStatic}) {
		t.Errorf("multicast = %+v, want routing on and no upstream", c.Multicast)
	}
	for _, ifc := range c.Interfaces {
		want := config.InterfacePIM{Mode: config.PIMModeSM, HelloInterval: config.DefaultPIMHelloInterval, DRPriority: config.DefaultPIMDRPriority}
		if o, ok := opts[ifc.Name]; ok {
			want = o
		}
		if ifc.PIM == nil || *ifc.PIM != want {
			t.Errorf("%s pim = %+v, want %+v", ifc.Name, ifc.PIM, want)
		}
	}
}

// TestReferenceDevices converts the reference's DeviceA and DeviceB
// configuration files, checks their PIM, and checks that the rest loads to
// the same Config as the hand translations configs/deviceA.yaml and
// configs/deviceB.yaml.
func TestReferenceDevices(t *testing.T) {
	sm := config.InterfacePIM{Mode: config.PIMModeSM, HelloInterval: config.DefaultPIMHelloInterval, DRPriority: config.DefaultPIMDRPriority}
	ignoreDR, ignoreAssert := sm, sm
	ignoreDR.IgnoreDRState = true
	ignoreAssert.IgnoreAssertState = true
	lan := map[string]map[string]config.InterfacePIM{
		"deviceA": {"ge2": ignoreDR},     // pim ipv6 ignore dr-state
		"deviceB": {"ge3": ignoreAssert}, // pim ipv6 ignore assert-state
	}
	for _, dev := range []string{"deviceA", "deviceB"} {
		t.Run(dev, func(t *testing.T) {
			res := convertFile(t, dev+".vrp", Options{})
			golden(t, dev+".golden", res.YAML)
			golden(t, dev+".warnings.golden", warningsText(res.Warnings))

			got, err := config.LoadBytes(res.YAML)
			if err != nil {
				t.Fatalf("LoadBytes(converted): %v", err)
			}
			if !reflect.DeepEqual(got, res.Config) {
				t.Errorf("Result.Config differs from LoadBytes(Result.YAML)")
			}
			referencePIM(t, got, lan[dev])
			want, err := config.Load(filepath.Join("..", "..", "..", "configs", dev+".yaml"))
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range hotcastOnly(got, want) {
				t.Logf("hotcast-only field set from the hand-written file: %s", d)
			}
			for _, d := range pimOnly(got, want) {
				t.Logf("PIM field set from the hand-written MLD-edge file: %s", d)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("converted config differs from configs/%s.yaml:\n got  %+v\n want %+v", dev, got, want)
			}
		})
	}
}

// TestReferenceMatchesWithoutNormalising: today the hand-written files set
// hotcast-only keys to their defaults only, so the converted file loads to
// exactly the same Config, untouched but for what PIM replaces while the
// hand-written files are the MLD-edge translation (pimOnly).
func TestReferenceMatchesWithoutNormalising(t *testing.T) {
	for _, dev := range []string{"deviceA", "deviceB"} {
		res := convertFile(t, dev+".vrp", Options{})
		want, err := config.Load(filepath.Join("..", "..", "..", "configs", dev+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		pimOnly(res.Config, want)
		if !reflect.DeepEqual(res.Config, want) {
			t.Errorf("%s: converted config differs from configs/%s.yaml before normalising (did the hand-written file gain a hotcast-only key? then this test may go)", dev, dev)
		}
	}
}

var citeRE = regexp.MustCompile(`line (\d+): `)

// TestEveryLineAccounted: each command line of the four reference files is
// either cited by a YAML comment (converted), or warned about. Only "#",
// "return" and "ipv6 enable" (implied by every hotcast interface) are
// consumed silently.
func TestEveryLineAccounted(t *testing.T) {
	for _, dev := range []string{"deviceA", "deviceB", "deviceC", "deviceD"} {
		t.Run(dev, func(t *testing.T) {
			src := readTestdata(t, dev+".vrp")
			res := convertFile(t, dev+".vrp", Options{})
			cited := map[int]bool{}
			for _, m := range citeRE.FindAllStringSubmatch(string(res.YAML), -1) {
				n, _ := strconv.Atoi(m[1])
				cited[n] = true
			}
			warned := map[int]bool{}
			for _, w := range res.Warnings {
				warned[w.Line] = true
			}
			for i, l := range strings.Split(string(src), "\n") {
				n, l := i+1, strings.TrimSpace(l)
				switch {
				case l == "" || strings.HasPrefix(l, "#") || l == "return":
					continue
				case l == "ipv6 enable" && !warned[n]:
					continue
				case !cited[n] && !warned[n]:
					t.Errorf("line %d %q neither converted nor warned about", n, l)
				}
			}
		})
	}
}

func TestDeviceC(t *testing.T) {
	res := convertFile(t, "deviceC.vrp", Options{})
	golden(t, "deviceC.golden", res.YAML)
	golden(t, "deviceC.warnings.golden", warningsText(res.Warnings))
	c := res.Config
	if c.Sysname != "DeviceC" || c.Multicast.RoutingEnable || len(c.Interfaces) != 0 || len(c.Services) != 0 {
		t.Errorf("DeviceC: got sysname %q routing %v interfaces %d services %d; want DeviceC, false, 0, 0",
			c.Sysname, c.Multicast.RoutingEnable, len(c.Interfaces), len(c.Services))
	}
	wantWarn := map[int]string{
		4:  "layer-2",               // vlan batch 100
		6:  "routing-enable: false", // no MLD interface
		8:  "left out: a layer-2 port (portswitch, line 9)",
		9:  "layer-2", // portswitch
		14: "left out",
		20: "left out",
		26: "null interface",
	}
	assertWarnings(t, res.Warnings, wantWarn)
}

// TestDeviceD: the reference's RP converts to a PIM router without MLD,
// its LoopBack0 (the RP address) to the loopback section.
func TestDeviceD(t *testing.T) {
	res := convertFile(t, "deviceD.vrp", Options{})
	golden(t, "deviceD.golden", res.YAML)
	golden(t, "deviceD.warnings.golden", warningsText(res.Warnings))
	c := res.Config
	referencePIM(t, c, nil)
	if got := ifNames(c); got != "ge1 ge2 ge3" {
		t.Errorf("DeviceD interfaces = %q, want ge1 ge2 ge3 (LoopBack0 is the loopback section, NULL0 left out)", got)
	}
	lo := config.Loopback{Interface: "lo", Addresses: []netip.Prefix{netip.MustParsePrefix("2001:db8:22::22/64")}}
	if !reflect.DeepEqual(c.Loopback, lo) {
		t.Errorf("loopback = %+v, want %+v", c.Loopback, lo)
	}
	if rp := c.PIM.StaticRPs[0].Address; !c.Loopback.Addresses[0].Contains(rp) || c.Loopback.Addresses[0].Addr() != rp {
		t.Errorf("the RP %s is not DeviceD's loopback address", rp)
	}
	assertWarnings(t, res.Warnings, map[int]string{37: "null interface"})
	for _, w := range res.Warnings {
		if w.Line >= 33 && w.Line <= 35 || w.Line >= 39 || strings.Contains(w.Reason, "routing-enable: false") {
			t.Errorf("unexpected warning %s", w)
		}
	}

	// --map names the loopback's Linux interface.
	res = convertFile(t, "deviceD.vrp", Options{Map: map[string]string{"LoopBack0": "dummy0"}})
	if res.Config.Loopback.Interface != "dummy0" || len(res.Config.Loopback.Addresses) != 1 {
		t.Errorf("loopback with --map LoopBack0=dummy0 = %+v", res.Config.Loopback)
	}

	// An explicit upstream makes DeviceD an MLD-edge router without PIM,
	// as before PIM: the PIM lines are warned about, routing stays on.
	res = convertFile(t, "deviceD.vrp", Options{Map: map[string]string{"LoopBack0": "lo"}, Upstream: "GigabitEthernet0/1/2"})
	c = res.Config
	if got := ifNames(c); got != "ge1 ge2 ge3" {
		t.Errorf("interfaces = %q, want ge1 ge2 ge3", got)
	}
	if !reflect.DeepEqual(c.Loopback, lo) {
		t.Errorf("loopback = %+v, want %+v", c.Loopback, lo)
	}
	if !c.Multicast.RoutingEnable || c.Multicast.Upstream.Interface != "ge2" || c.PIMEnabled() || c.PIM != nil {
		t.Errorf("multicast = %+v, pim %+v; want routing on, upstream ge2, no pim", c.Multicast, c.PIM)
	}
	assertWarnings(t, res.Warnings, map[int]string{16: "--upstream", 23: "--upstream", 30: "--upstream", 39: "--upstream", 40: "--upstream"})
}

func ifNames(c *config.Config) string {
	var n []string
	for _, i := range c.Interfaces {
		n = append(n, i.Name)
	}
	return strings.Join(n, " ")
}

func assertWarnings(t *testing.T, ws []Warning, want map[int]string) {
	t.Helper()
	for line, sub := range want {
		found := false
		for _, w := range ws {
			found = found || w.Line == line && strings.Contains(w.String(), sub)
		}
		if !found {
			t.Errorf("no warning on line %d containing %q; warnings:\n%s", line, sub, warningsText(ws))
		}
	}
}

// edit returns DeviceA's file with line n (1-based) replaced by repl
// (which may hold several lines, or none to delete it).
func edit(t *testing.T, dev string, n int, repl ...string) []byte {
	t.Helper()
	return editBytes(readTestdata(t, dev+".vrp"), n, repl...)
}

func editBytes(b []byte, n int, repl ...string) []byte {
	lines := strings.Split(string(b), "\n")
	out := append([]string{}, lines[:n-1]...)
	out = append(out, repl...)
	out = append(out, lines[n:]...)
	return []byte(strings.Join(out, "\n"))
}

// noPIM turns every PIM line of a VRP file into a comment ("#" at the
// line's indentation), keeping the line numbers: the file of a router
// that runs no PIM, whose upstream the import infers.
func noPIM(b []byte) []byte {
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "pim") || strings.HasPrefix(t, "static-rp") {
			lines[i] = l[:len(l)-len(strings.TrimLeft(l, " "))] + "#"
		}
	}
	return []byte(strings.Join(lines, "\n"))
}

func TestInterfaceMapping(t *testing.T) {
	a := readTestdata(t, "deviceA.vrp")
	edge := noPIM(a) // the upstream is inferred
	tests := []struct {
		name string
		src  []byte
		opts Options
		want map[string]string // VRP-derived checks: profile interface, LAN interface name
	}{
		{"default", a, Options{}, map[string]string{"profile": "ge2", "lan": "ge2"}},
		{"map with space, lower case", a, Options{Map: map[string]string{"gigabitethernet 0/1/2": "lan0"}}, map[string]string{"profile": "lan0", "lan": "lan0"}},
		{"map by abbreviation", edge, Options{Map: map[string]string{"GE0/1/2": "lan0", "GE0/1/3": "wan0"}}, map[string]string{"profile": "lan0", "lan": "lan0", "upstream": "wan0"}},
		{"map by abbreviation, pim", a, Options{Map: map[string]string{"GE0/1/2": "lan0", "GE0/1/3": "wan0"}}, map[string]string{"profile": "lan0", "lan": "lan0", "upstream": "", "pim": "ge1 lan0 wan0"}},
		{"file uses spaced lower-case name", edit(t, "deviceA", 13, " vrrp6-id 1 interface gigabitethernet 0/1/2"), Options{}, map[string]string{"profile": "ge2"}},
		{"file interface line spaced", edit(t, "deviceA", 28, "interface gigabitethernet 0/1/2"), Options{Map: map[string]string{"GigabitEthernet0/1/2": "eth1"}}, map[string]string{"profile": "eth1", "lan": "eth1"}},
		{"upstream by VRP name", a, Options{Upstream: "gigabitethernet 0/1/1"}, map[string]string{"upstream": "ge1"}},
		{"upstream by Linux name", a, Options{Upstream: "ge1"}, map[string]string{"upstream": "ge1"}},
		{"subinterface", editBytes(edge, 43, "interface GigabitEthernet0/1/3.100"), Options{}, map[string]string{"upstream": "ge3.100"}},
		{"subinterface, pim", edit(t, "deviceA", 43, "interface GigabitEthernet0/1/3.100"), Options{}, map[string]string{"upstream": "", "pim": "ge1 ge2 ge3.100"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Convert(tt.src, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			c := res.Config
			got := map[string]string{
				"profile":  c.Profiles[0].VRRP6.Interface,
				"upstream": c.Multicast.Upstream.Interface,
			}
			var pim []string
			for _, i := range c.Interfaces {
				if i.MLD.Enable {
					got["lan"] = i.Name
				}
				if i.PIM != nil {
					pim = append(pim, i.Name)
				}
			}
			got["pim"] = strings.Join(pim, " ")
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

func TestParseIfName(t *testing.T) {
	good := map[string]string{
		"GigabitEthernet0/1/2":     "gigabitethernet0/1/2",
		"gigabitethernet 0/1/2":    "gigabitethernet0/1/2",
		"GE0/1/2":                  "gigabitethernet0/1/2",
		"ge 0/1/2":                 "gigabitethernet0/1/2",
		"LoopBack0":                "loopback0",
		"Eth-Trunk1":               "eth-trunk1",
		"100GE0/1/1":               "100ge0/1/1",
		"GigabitEthernet0/1/2.100": "gigabitethernet0/1/2.100",
	}
	for in, want := range good {
		k, err := parseIfName(in)
		if err != nil || string(k) != want {
			t.Errorf("parseIfName(%q) = %q, %v; want %q", in, k, err, want)
		}
	}
	for _, in := range []string{"", "0/1/2", "ge", "eth0/", "GigabitEthernet0/1/2=x"} {
		if k, err := parseIfName(in); !errors.Is(err, ErrSyntax) {
			t.Errorf("parseIfName(%q) = %q, %v; want ErrSyntax", in, k, err)
		}
	}
	def := map[string]string{"gigabitethernet0/1/2": "ge2", "gigabitethernet3/0/17": "ge17", "gigabitethernet0/1/2.100": "ge2.100"}
	for in, want := range def {
		if got, ok := defaultLinuxName(ifKey(in)); !ok || got != want {
			t.Errorf("defaultLinuxName(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"loopback0", "null0", "eth-trunk1", "xgigabitethernet0/1/2"} {
		if got, ok := defaultLinuxName(ifKey(in)); ok {
			t.Errorf("defaultLinuxName(%q) = %q, want none", in, got)
		}
	}
}

// TestOptionalCommands covers VRP commands the reference does not use but
// the schema models.
func TestOptionalCommands(t *testing.T) {
	src := edit(t, "deviceA", 38,
		" mld enable",
		" mld version 1",
		" mld timer query 60",
		" mld robust-count 3",
		" mld max-response-time 5",
		" mld lastlistener-queryinterval 2",
		" mld require-router-alert",
		" mld limit 100",
		" vrrp6 vrid 1 timer advertise 200",
		" vrrp6 vrid 1 track interface GigabitEthernet0/1/3 reduced 50",
		" vrrp6 vrid 2 virtual-ip 2001:DB8::51",
		" vrrp6 vrid 2 virtual-ip FE80::2 link-local",
		" vrrp6 vrid 2 preempt-mode disable",
		" vrrp6 vrid 2 timer advertise millisecond 500",
		" ipv6 address 2001:DB8:51::1 64",
		" ipv6 address FE80::9 link-local",
	)
	res, err := Convert(src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ifc := res.Config.Interface("ge2")
	m := ifc.MLD
	if m.Version != 1 || m.QueryInterval.Seconds() != 60 || m.Robustness != 3 || m.MaxResponseTime.Seconds() != 5 ||
		m.LastListenerQueryInterval.Seconds() != 2 || !m.RequireRouterAlert || m.MaxGroups != 100 {
		t.Errorf("mld = %+v", m)
	}
	g1, g2 := ifc.Group(1), ifc.Group(2)
	if g1 == nil || g1.AdvertiseInterval.Seconds() != 2 || len(g1.TrackInterfaces) != 1 || g1.TrackInterfaces[0] != (config.Track{Name: "ge3", Reduced: 50}) {
		t.Errorf("vrrp6 1 = %+v", g1)
	}
	// Link-local first although it came second (RFC 9568 §5.2.9).
	if g2 == nil || g2.VirtualIPs[0] != netip.MustParseAddr("fe80::2") || g2.Preempt || g2.AdvertiseInterval.Milliseconds() != 500 {
		t.Errorf("vrrp6 2 = %+v", g2)
	}
	if len(ifc.Addresses) != 2 || ifc.Addresses[1] != netip.MustParsePrefix("2001:db8:51::1/64") {
		t.Errorf("addresses = %v", ifc.Addresses)
	}
	assertWarnings(t, res.Warnings, map[int]string{53: "link-local address"})
}

func TestBadInput(t *testing.T) {
	tests := []struct {
		name string
		src  []byte
		opts Options
		want error
		msg  string // substring of the error text, with its line number
	}{
		{"vrid 0", edit(t, "deviceA", 32, " vrrp6 vrid 0 virtual-ip FE80::1 link-local"), Options{}, ErrRange,
			"line 32: vrrp6 vrid 0 virtual-ip FE80::1 link-local: out of range: vrrp6 vrid 0, want 1..255"},
		{"vrid not a number", edit(t, "deviceA", 34, " vrrp6 vrid one priority 200"), Options{}, ErrSyntax, "line 34: vrrp6 vrid one priority 200: syntax error"},
		{"priority 300", edit(t, "deviceA", 34, " vrrp6 vrid 1 priority 300"), Options{}, ErrRange, "line 34: vrrp6 vrid 1 priority 300: out of range: priority 300, want 1..255"},
		{"preempt delay", edit(t, "deviceA", 35, " vrrp6 vrid 1 preempt-mode timer delay 4000"), Options{}, ErrRange, "line 35:"},
		{"advertise centiseconds", edit(t, "deviceA", 35, " vrrp6 vrid 1 timer advertise 50"), Options{}, ErrRange, "line 35:"},
		{"advertise millisecond", edit(t, "deviceA", 35, " vrrp6 vrid 1 timer advertise millisecond 300"), Options{}, ErrRange, "line 35:"},
		{"virtual ip garbage", edit(t, "deviceA", 33, " vrrp6 vrid 1 virtual-ip 2001:DB8::zz"), Options{}, ErrSyntax, "line 33: vrrp6 vrid 1 virtual-ip 2001:DB8::zz: syntax error"},
		{"global vip marked link-local", edit(t, "deviceA", 33, " vrrp6 vrid 1 virtual-ip 2001:DB8::50 link-local"), Options{}, ErrSyntax, "line 33:"},
		{"link-local vip unmarked", edit(t, "deviceA", 32, " vrrp6 vrid 1 virtual-ip FE80::1"), Options{}, ErrSyntax, "line 32:"},
		{"no link-local vip", edit(t, "deviceA", 32), Options{}, ErrUnsupported, "line 32: vrrp6 vrid 1 virtual-ip 2001:DB8::50: not supported: vrrp6 vrid 1 has no link-local virtual-ip"},
		{"two link-local vips", edit(t, "deviceA", 33, " vrrp6 vrid 1 virtual-ip FE80::2 link-local"), Options{}, ErrUnsupported, "line 33:"},
		{"ipv4 vip", edit(t, "deviceA", 33, " vrrp6 vrid 1 virtual-ip 10.0.0.1"), Options{}, ErrUnsupported, "line 33:"},
		{"peer-backup cold", edit(t, "deviceA", 12, " peer-backup cold"), Options{}, ErrUnsupported, "line 12: peer-backup cold: not supported: peer-backup cold"},
		{"service-type igmp", edit(t, "deviceA", 10, " service-type igmp"), Options{}, ErrUnsupported, "line 10: service-type igmp:"},
		{"backup-id 0", edit(t, "deviceA", 11, " backup-id 0 remote-backup-service service1"), Options{}, ErrRange, "line 11:"},
		{"backup-id syntax", edit(t, "deviceA", 11, " backup-id 10"), Options{}, ErrSyntax, "line 11:"},
		{"ipv4 rbs", edit(t, "deviceA", 7, " peer 10.0.0.2 source 10.0.0.1 port 1025"), Options{}, ErrUnsupported, "line 7:"},
		{"rbs address", edit(t, "deviceA", 7, " peer-ipv6 2001:DB8:10::2 source-ipv6 nowhere port 1025"), Options{}, ErrSyntax, "line 7:"},
		{"rbs port", edit(t, "deviceA", 7, " peer-ipv6 2001:DB8:10::2 source-ipv6 2001:DB8:10::1 port 70000"), Options{}, ErrRange, "line 7:"},
		{"prefix length", edit(t, "deviceA", 24, " ipv6 address 2001:DB8:10::1/129"), Options{}, ErrSyntax, "line 24:"},
		{"ipv4 address", edit(t, "deviceA", 24, " ipv6 address 10.0.0.1/24"), Options{}, ErrUnsupported, "line 24:"},
		{"eui-64", edit(t, "deviceA", 24, " ipv6 address 2001:DB8:10::/64 eui-64"), Options{}, ErrUnsupported, "line 24:"},
		{"track vrid 0", edit(t, "deviceA", 39, " multicast ipv6 track vrrp6 vrid 0"), Options{}, ErrRange, "line 39:"},
		{"profile interface unmapped", edit(t, "deviceA", 13, " vrrp6-id 1 interface LoopBack0"), Options{}, ErrInterfaceName, "line 13:"},
		{"profile interface missing", edit(t, "deviceA", 13, " vrrp6-id 1 interface GigabitEthernet0/1/9"), Options{}, ErrInterfaceName, "line 13:"},
		{"profile interface syntax", edit(t, "deviceA", 13, " vrrp6-id 1 interface 0/1/2"), Options{}, ErrSyntax, "line 13:"},
		{"interface clash", edit(t, "deviceA", 43, "interface GigabitEthernet0/2/2"), Options{}, ErrInterfaceName,
			"line 43: interface GigabitEthernet0/2/2: interface name: maps to ge2, as does interface GigabitEthernet0/1/2 on line 28"},
		{"upstream ambiguous", editBytes(noPIM(readTestdata(t, "deviceA.vrp")), 7, " peer-ipv6 2001:DB8:99::2 source-ipv6 2001:DB8:99::1 port 1025"), Options{}, ErrUpstream,
			"line 4: multicast ipv6 routing-enable: upstream interface: cannot infer multicast.upstream.interface: want exactly one interface without MLD, VRRP6 or an RBS source address, found ge1, ge3; pass --upstream IF"},
		{"upstream unknown", readTestdata(t, "deviceA.vrp"), Options{Upstream: "ge9"}, ErrUpstream, "--upstream ge9: no such converted interface"},
		{"upstream without routing-enable", edit(t, "deviceA", 4), Options{Upstream: "ge3"}, ErrUpstream, "no multicast ipv6 routing-enable"},
		{"indented outside view", edit(t, "deviceA", 14, "#", " mld enable"), Options{}, ErrSyntax, "line 15: mld enable: syntax error: indented command outside a view"},
		{"not utf-8", edit(t, "deviceA", 2, "sysname Dev\xffA"), Options{}, ErrSyntax, "line 2:"},
		{"empty", []byte("#\n#\nreturn\n"), Options{}, ErrEmpty, "no commands"},
		{"bad map key", readTestdata(t, "deviceA.vrp"), Options{Map: map[string]string{"0/1/2": "x"}}, ErrSyntax, "--map 0/1/2=x"},
		{"empty map value", readTestdata(t, "deviceA.vrp"), Options{Map: map[string]string{"GE0/1/2": ""}}, ErrInterfaceName, "--map GE0/1/2="},
		// Problems only the config package sees come back with the VRP line.
		{"track of a missing group", edit(t, "deviceA", 39, " multicast ipv6 track vrrp6 vrid 2"), Options{}, ErrInvalid,
			"line 39: multicast ipv6 track vrrp6 vrid 2: converted configuration is invalid: interfaces[1].multicast-track-vrrp6:"},
		{"max-response not below query", edit(t, "deviceA", 38, " mld enable", " mld timer query 5", " mld max-response-time 10"), Options{}, ErrInvalid, "line 40: mld max-response-time 10:"},
		{"bad sysname", edit(t, "deviceA", 2, "sysname Device A"), Options{}, ErrInvalid, "line 2: sysname Device A:"},
		{"profile names missing service", edit(t, "deviceA", 11, " backup-id 10 remote-backup-service service9"), Options{}, ErrInvalid, "line 11:"},
		{"interface name too long", readTestdata(t, "deviceA.vrp"), Options{Map: map[string]string{"GE0/1/1": "averyveryverylongname"}}, ErrInvalid, "line 21: interface GigabitEthernet0/1/1:"},
		{"duplicate address", edit(t, "deviceA", 46, " ipv6 address 2001:DB8:10::1/64"), Options{Upstream: "ge3"}, ErrInvalid, "line 46:"},
		// PIM commands.
		{"dr-priority syntax", edit(t, "deviceA", 37, " pim ipv6 hello-option dr-priority high"), Options{}, ErrSyntax, "line 37: pim ipv6 hello-option dr-priority high: syntax error"},
		{"dr-priority range", edit(t, "deviceA", 37, " pim ipv6 hello-option dr-priority 4294967296"), Options{}, ErrRange, "line 37: pim ipv6 hello-option dr-priority 4294967296: out of range: dr-priority 4294967296, want 0..4294967295"},
		{"hello timer range", edit(t, "deviceA", 37, " pim ipv6 timer hello 0"), Options{}, ErrRange, "line 37: pim ipv6 timer hello 0: out of range: hello interval 0, want 1..18000"},
		{"static-rp address", edit(t, "deviceA", 53, " static-rp 2001:DB8:22::zz"), Options{}, ErrSyntax, "line 53: static-rp 2001:DB8:22::zz: syntax error"},
		{"static-rp ipv4", edit(t, "deviceA", 53, " static-rp 10.0.0.22"), Options{}, ErrUnsupported, "line 53:"},
		{"static-rp syntax", edit(t, "deviceA", 53, " static-rp 2001:DB8:22::22 2000 extra"), Options{}, ErrSyntax, "line 53: static-rp 2001:DB8:22::22 2000 extra: syntax error: want static-rp ADDRESS"},
		{"static-rp without address", edit(t, "deviceA", 53, " static-rp"), Options{}, ErrSyntax, "line 53:"},
		{"join-prune timer range", edit(t, "deviceA", 53, " timer join-prune 0"), Options{}, ErrRange, "line 53: timer join-prune 0: out of range"},
		{"ssm-policy syntax", edit(t, "deviceA", 53, " ssm-policy"), Options{}, ErrSyntax, "line 53:"},
		// PIM problems only the config package sees.
		{"link-local rp", edit(t, "deviceA", 53, " static-rp FE80::22"), Options{}, ErrInvalid,
			"line 53: static-rp FE80::22: converted configuration is invalid: pim.static-rp[0].address: fe80::22 is not a global unicast address"},
		{"two rps for every group", edit(t, "deviceA", 53, " static-rp 2001:DB8:22::22", " static-rp 2001:DB8:22::23"), Options{}, ErrInvalid,
			"line 54: static-rp 2001:DB8:22::23: converted configuration is invalid: pim.static-rp[1]"},
		{"holdtime below interval", edit(t, "deviceA", 53, " timer join-prune 300", " holdtime join-prune 200"), Options{}, ErrInvalid,
			"line 54: holdtime join-prune 200: converted configuration is invalid: pim.join-prune-holdtime:"},
		{"mld without pim", edit(t, "deviceA", 36), Options{}, ErrInvalid,
			"line 37: mld enable: converted configuration is invalid: interfaces[1].pim: required: mld.enable is true and other interfaces run pim"},
		{"pim without routing-enable", edit(t, "deviceA", 4), Options{}, ErrInvalid,
			"line 24: pim ipv6 sm: converted configuration is invalid: interfaces[0].pim: needs multicast.routing-enable: true"},
		{"loopback address twice", append(readTestdata(t, "deviceA.vrp"), []byte("interface LoopBack0\n ipv6 address 2001:DB8:20::1/128\n")...), Options{}, ErrInvalid,
			"line 57: ipv6 address 2001:DB8:20::1/128: converted configuration is invalid: loopback.addresses[0]: duplicate"},
		{"loopback mapped onto an interface", readTestdata(t, "deviceD.vrp"), Options{Map: map[string]string{"LoopBack0": "ge1"}}, ErrInvalid,
			"line 33: interface Loopback0: converted configuration is invalid: loopback.interface:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Convert(tt.src, tt.opts)
			if err == nil {
				t.Fatalf("Convert succeeded:\n%s", res.YAML)
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("error %q is not %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not contain %q", err, tt.msg)
			}
		})
	}
}

// TestAllErrorsReported: every bad line is reported, in line order.
func TestAllErrorsReported(t *testing.T) {
	src := edit(t, "deviceA", 34, " vrrp6 vrid 1 priority 0")
	src = bytes.Replace(src, []byte("peer-backup hot"), []byte("peer-backup warm"), 1)
	_, err := Convert(src, Options{})
	les := LineErrors(err)
	var lines []int
	for _, le := range les {
		lines = append(lines, le.Line)
	}
	if fmt.Sprint(lines) != "[12 34]" {
		t.Errorf("error lines = %v, want [12 34]; err: %v", lines, err)
	}
}

// TestSecondInterfaceBlock: a second block for one interface adds to the
// first, and both interface lines are cited.
func TestSecondInterfaceBlock(t *testing.T) {
	src := edit(t, "deviceA", 49, "#", "interface gigabitethernet 0/1/1", " ipv6 address 2001:DB8:11::1/64", "#")
	res, err := Convert(src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ge1 := res.Config.Interface("ge1")
	if len(res.Config.Interfaces) != 3 || len(ge1.Addresses) != 2 || ge1.Addresses[1] != netip.MustParsePrefix("2001:db8:11::1/64") {
		t.Errorf("ge1 = %+v", ge1)
	}
	if !bytes.Contains(res.YAML, []byte("line 21: interface GigabitEthernet0/1/1; line 50: interface gigabitethernet 0/1/1")) {
		t.Errorf("both interface lines not cited:\n%s", res.YAML)
	}
}

func TestIndentedInput(t *testing.T) {
	// Pasted from a document: every line indented by the same amount.
	a := readTestdata(t, "deviceA.vrp")
	var b bytes.Buffer
	for _, l := range strings.SplitAfter(string(a), "\n") {
		if strings.TrimSpace(l) != "" {
			b.WriteString("    ")
		}
		b.WriteString(strings.ReplaceAll(l, "\n", "\r\n"))
	}
	got, err := Convert(b.Bytes(), Options{Source: "deviceA.vrp"})
	if err != nil {
		t.Fatal(err)
	}
	want := convertFile(t, "deviceA.vrp", Options{})
	if !bytes.Equal(got.YAML, want.YAML) {
		t.Errorf("indented CRLF input converts differently:\n%s", got.YAML)
	}
}

func TestUnusedMapWarns(t *testing.T) {
	res := convertFile(t, "deviceA.vrp", Options{Map: map[string]string{"GE0/9/9": "x"}})
	if len(res.Warnings) == 0 || res.Warnings[0].Line != 0 || !strings.Contains(res.Warnings[0].String(), "--map gigabitethernet0/9/9") {
		t.Errorf("first warning %v, want the unused --map", res.Warnings[0])
	}
}

func FuzzImport(f *testing.F) {
	for _, dev := range []string{"deviceA", "deviceB", "deviceC", "deviceD"} {
		f.Add(readTestdata(f, dev+".vrp"), "", "")
	}
	// Named regression seeds.
	f.Add([]byte("sysname X\ninterface GigabitEthernet0/1/2\n vrrp6 vrid 1 track interface GE0/1/2 reduced 5\n"), "", "")
	f.Add([]byte("sysname X\nmulticast ipv6 routing-enable\ninterface GE0/1/1\n mld enable\n"), "GE0/1/1", "ge1")
	f.Add([]byte(" a\n#\n b\n"), "", "")
	f.Add([]byte("interface\n"), "", "")
	f.Add([]byte("sysname #\n"), "GE0/0/0", "x")
	f.Add([]byte("sysname X\nmulticast ipv6 routing-enable\ninterface GE0/1/1\n pim ipv6 sm\n mld enable\npim-ipv6\n static-rp 2001:DB8::1 2000\n"+
		"acl ipv6 number 2000\n rule permit source FF0E::/16\ninterface LoopBack0\n ipv6 address 2001:DB8::1/128\n"), "LoopBack0", "")
	f.Fuzz(func(t *testing.T, src []byte, mapKey, upstream string) {
		opts := Options{Upstream: upstream}
		if mapKey != "" {
			opts.Map = map[string]string{mapKey: "eth0"}
		}
		res, err := Convert(src, opts)
		if err != nil {
			if res != nil {
				t.Fatal("result with an error")
			}
			return
		}
		if res.Config == nil {
			t.Fatal("nil Config without an error")
		}
		c, err := config.LoadBytes(res.YAML)
		if err != nil {
			t.Fatalf("converted YAML does not load: %v\n%s", err, res.YAML)
		}
		if !reflect.DeepEqual(c, res.Config) {
			t.Fatal("Result.Config differs from LoadBytes(Result.YAML)")
		}
		again, err := Convert(src, opts)
		if err != nil || !bytes.Equal(again.YAML, res.YAML) {
			t.Fatalf("conversion is not deterministic: %v", err)
		}
	})
}

// TestYAMLTyping: names that YAML would read as another type (null, bool,
// number) stay strings in the converted file.
func TestYAMLTyping(t *testing.T) {
	ok := 0
	for _, name := range []string{"null", "true", "1025", "1e3", ".inf", "-", "0x1F", "~"} {
		src := bytes.ReplaceAll(readTestdata(t, "deviceA.vrp"), []byte("DeviceA"), []byte(name))
		src = bytes.ReplaceAll(src, []byte("service1"), []byte(name))
		src = bytes.ReplaceAll(src, []byte("profile1"), []byte(name))
		res, err := Convert(src, Options{Map: map[string]string{"GE0/1/1": name}})
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("%q: %v", name, err)
			}
			continue // not a valid hotcast name; the error says so
		}
		c := res.Config
		if c.Sysname != name || c.Services[0].Name != name || c.Profiles[0].Name != name || c.Interfaces[0].Name != name {
			t.Errorf("%q: got sysname %q service %q profile %q interface %q", name, c.Sysname, c.Services[0].Name, c.Profiles[0].Name, c.Interfaces[0].Name)
		}
		ok++
	}
	if ok != 7 { // every name but "~" is a valid hotcast name
		t.Errorf("only %d names converted", ok)
	}
}

// TestPIMCommands covers the PIM commands the reference does not use but
// the import converts, and the ones it warns about.
func TestPIMCommands(t *testing.T) {
	src := edit(t, "deviceA", 37,
		" pim ipv6 ignore dr-state",     // 37
		" pim ipv6 ignore assert-state", // 38
		" pim ipv6 hello-option dr-priority 0",
		" pim ipv6 timer hello 10", // 40
		" pim ipv6 bsr-boundary",   // 41: not modelled
		" pim bsr-boundary",        // 42: IPv4 PIM
	)
	// A second pim-ipv6 view (line 58, in place of the static-rp line; the
	// first is on line 57) and three ACLs.
	src = editBytes(src, 58,
		"pim-ipv6",                        // 58
		" static-rp 2001:DB8:22::23 2000", // 59: one-rule ACL
		" static-rp 2001:DB8:22::24 acl6-name rp3 preferred", // 60: unresolvable ACL
		" static-rp 2001:DB8:22::22",                         // 61
		" spt-switch-threshold infinity",                     // 62
		" timer join-prune 30",                               // 63
		" holdtime join-prune 105",                           // 64
		" ssm-policy 2001",                                   // 65
		" c-bsr 2001:DB8:22::22",                             // 66: not modelled
		"#",
		"acl ipv6 number 2000", // 68
		" rule 5 permit source FF0E::/16",
		"#",
		"acl ipv6 name rp3 basic", // 71
		" rule 5 permit source FF0E:1::/32",
		" rule 10 deny",
		"#",
		"acl ipv6 number 2001", // 75
		" rule permit source FF3E:: 16",
		"#",
	)
	res, err := Convert(src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := res.Config
	want := &config.PIM{
		StaticRPs: []config.StaticRP{
			{Address: netip.MustParseAddr("2001:db8:22::23"), GroupRange: netip.MustParsePrefix("ff0e::/16")},
			{Address: netip.MustParseAddr("2001:db8:22::22"), GroupRange: netip.MustParsePrefix("ff00::/8")},
		},
		SSMRange:          netip.MustParsePrefix("ff3e::/16"),
		SPTSwitch:         config.SPTSwitchNever,
		JoinPruneInterval: 30 * time.Second,
		JoinPruneHoldtime: 105 * time.Second,
	}
	if !reflect.DeepEqual(c.PIM, want) {
		t.Errorf("pim:\n got %+v\nwant %+v", c.PIM, want)
	}
	wantIf := config.InterfacePIM{Mode: config.PIMModeSM, HelloInterval: 10 * time.Second, DRPriority: 0, IgnoreDRState: true, IgnoreAssertState: true}
	if p := c.Interface("ge2").PIM; p == nil || *p != wantIf {
		t.Errorf("ge2 pim = %+v, want %+v", p, wantIf)
	}
	assertWarnings(t, res.Warnings, map[int]string{
		41: "PIM-SM has no equivalent",
		42: "IPv4 PIM",
		59: "group-range ff0e::/16 read from acl ipv6 2000 (line 68)",
		60: "left out: ACL rp3 not translated (acl ipv6 rp3 (line 71) has 2 rules, hotcast reads one), and static-rp 2001:db8:22::22 (line 61) serves every group already",
		65: "ssm-range ff3e::/16 read from acl ipv6 2001 (line 75)",
		66: "PIM-SM has no equivalent",
		68: "hotcast has no ACLs",
		69: "inside \"acl ipv6 number 2000\"",
	})
	assertWarnings(t, res.Warnings, map[int]string{60: "\"preferred\" not converted"})
	// The YAML cites the rule a range came from.
	if !bytes.Contains(res.YAML, []byte("group-range: ff0e::/16 # line 68: acl ipv6 number 2000; line 69: rule 5 permit source FF0E::/16")) {
		t.Errorf("group range not cited:\n%s", res.YAML)
	}

	// An ACL that permits unicast, or is missing, is not a group range.
	for _, tc := range []struct{ rule, why string }{
		{" rule 5 permit source 2001:DB8::/32", "permits 2001:db8::/32, not a range of multicast groups"},
		{" rule 5 deny source FF0E::/16", "is not \"rule permit source PREFIX\""},
		{" rule 5 permit source FF0E::/16 time-range work", "is not \"rule permit source PREFIX\""},
	} {
		res, err := Convert(editBytes(src, 69, tc.rule), Options{})
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Config.PIM.StaticRPs[0].GroupRange; got != config.AllGroups() {
			t.Errorf("%s: group range %v, want ff00::/8", tc.rule, got)
		}
		assertWarnings(t, res.Warnings, map[int]string{59: tc.why})
	}
	res, err = Convert(editBytes(src, 59, " static-rp 2001:DB8:22::23 2999"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	assertWarnings(t, res.Warnings, map[int]string{59: "no acl ipv6 2999 in the configuration"})
	// A rule permitting any group is ff00::/8; then the RP without an
	// ACL (line 61) would be a second RP for it.
	res, err = Convert(editBytes(editBytes(src, 69, " rule permit"), 61, " #"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rps := res.Config.PIM.StaticRPs; len(rps) != 1 || rps[0].GroupRange != config.AllGroups() {
		t.Errorf("static-rp with an ACL permitting any group: %+v", rps)
	}
	assertWarnings(t, res.Warnings, map[int]string{59: "group-range ff00::/8 read from acl ipv6 2000", 60: "left out"})
	// An untranslated ssm-policy keeps the default range.
	res, err = Convert(editBytes(src, 76, " rule permit source FF3E::/16 logging"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Config.PIM.SSMRange != config.DefaultSSMRange() {
		t.Errorf("untranslated ssm-policy: %v, want the default", res.Config.PIM.SSMRange)
	}
	assertWarnings(t, res.Warnings, map[int]string{65: "ACL 2001 not translated (its rule (line 76) is not \"rule permit source PREFIX\"): pim.ssm-range stays ff30::/12"})
}

// TestPIMNotConverted: the PIM lines are warned about, and the upstream
// inferred, when --upstream asks for the MLD edge or no interface runs
// pim ipv6 sm; pim lines on an interface without pim ipv6 sm are warned
// about while PIM runs elsewhere; no pim-ipv6 view means no RP.
func TestPIMNotConverted(t *testing.T) {
	res := convertFile(t, "deviceA.vrp", Options{Upstream: "GE0/1/3"})
	c := res.Config
	if c.PIMEnabled() || c.PIM != nil || c.Multicast.Upstream.Interface != "ge3" {
		t.Errorf("--upstream: pim %v %+v, upstream %q", c.PIMEnabled(), c.PIM, c.Multicast.Upstream.Interface)
	}
	assertWarnings(t, res.Warnings, map[int]string{25: "--upstream makes hotcast an MLD edge router", 37: "--upstream", 52: "--upstream", 53: "--upstream"})

	src := readTestdata(t, "deviceA.vrp")
	for _, n := range []int{25, 36, 47} { // every pim ipv6 sm
		src = editBytes(src, n, " #")
	}
	res, err := Convert(src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c := res.Config; c.PIMEnabled() || c.PIM != nil || c.Multicast.Upstream.Interface != "ge3" {
		t.Errorf("no pim ipv6 sm: pim %+v, upstream %q", c.PIM, c.Multicast.Upstream.Interface)
	}
	assertWarnings(t, res.Warnings, map[int]string{37: "no converted interface has \"pim ipv6 sm\"", 52: "runs no PIM", 53: "runs no PIM", 43: "ge3 inferred"})

	// ge1 without pim ipv6 sm but with a pim option; no pim-ipv6 view.
	src = editBytes(readTestdata(t, "deviceA.vrp"), 25, " pim ipv6 timer hello 10")
	src = editBytes(editBytes(src, 53, "#"), 52, "#")
	res, err = Convert(src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c := res.Config; c.Interface("ge1").PIM != nil || c.Interface("ge2").PIM == nil || c.PIM != nil {
		t.Errorf("ge1 pim %+v, ge2 pim %+v, pim %+v", c.Interface("ge1").PIM, c.Interface("ge2").PIM, c.PIM)
	}
	assertWarnings(t, res.Warnings, map[int]string{25: "the interface has no \"pim ipv6 sm\" (line 21", 0: "no pim-ipv6 static-rp"})

	// A pim-ipv6 view with nothing hotcast models.
	res, err = Convert(editBytes(readTestdata(t, "deviceA.vrp"), 53, " c-bsr 2001:DB8:22::22"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Config.PIM != nil {
		t.Errorf("pim = %+v, want none", res.Config.PIM)
	}
	assertWarnings(t, res.Warnings, map[int]string{52: "nothing in the view that hotcast models", 53: "no equivalent"})

	// A second loopback block adds to the first, and lines hotcast does
	// not model inside it are warned about; one without an address is
	// not converted.
	d := append(readTestdata(t, "deviceD.vrp"), []byte("interface LoopBack0\n ipv6 address 2001:DB8:23::23/128\n pim ipv6 sm\n isis ipv6 enable 1\n description RP\n")...)
	res, err = Convert(d, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if lo := res.Config.Loopback; len(lo.Addresses) != 2 || lo.Addresses[1] != netip.MustParsePrefix("2001:db8:23::23/128") {
		t.Errorf("loopback = %+v", lo)
	}
	assertWarnings(t, res.Warnings, map[int]string{45: "no PIM on the loopback", 46: "IS-IS", 47: "in interface LoopBack0"})
	if !bytes.Contains(res.YAML, []byte("interface: lo # line 33: interface Loopback0; line 43: interface LoopBack0")) {
		t.Errorf("both loopback lines not cited:\n%s", res.YAML)
	}
	res, err = Convert(editBytes(readTestdata(t, "deviceD.vrp"), 35, " #"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Config.Loopback.Addresses) != 0 {
		t.Errorf("loopback = %+v, want no addresses", res.Config.Loopback)
	}
	assertWarnings(t, res.Warnings, map[int]string{33: "the loopback has no ipv6 address"})
}
