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

// TestReferenceDevices converts the reference's DeviceA and DeviceB
// configuration files and checks that the result loads to the same Config as
// the hand translations configs/deviceA.yaml and configs/deviceB.yaml.
func TestReferenceDevices(t *testing.T) {
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
			want, err := config.Load(filepath.Join("..", "..", "..", "configs", dev+".yaml"))
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range hotcastOnly(got, want) {
				t.Logf("hotcast-only field set from the hand-written file: %s", d)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("converted config differs from configs/%s.yaml:\n got  %+v\n want %+v", dev, got, want)
			}
		})
	}
}

// TestReferenceMatchesWithoutNormalising: today the hand-written files set
// hotcast-only keys to their defaults only, so the converted file loads to
// exactly the same Config, untouched.
func TestReferenceMatchesWithoutNormalising(t *testing.T) {
	for _, dev := range []string{"deviceA", "deviceB"} {
		res := convertFile(t, dev+".vrp", Options{})
		want, err := config.Load(filepath.Join("..", "..", "..", "configs", dev+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
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

func TestDeviceD(t *testing.T) {
	res := convertFile(t, "deviceD.vrp", Options{})
	golden(t, "deviceD.golden", res.YAML)
	golden(t, "deviceD.warnings.golden", warningsText(res.Warnings))
	c := res.Config
	if c.Multicast.RoutingEnable {
		t.Error("DeviceD: routing-enable true without an MLD interface")
	}
	if got := ifNames(c); got != "ge1 ge2 ge3" {
		t.Errorf("DeviceD interfaces = %q, want ge1 ge2 ge3 (Loopback0 and NULL0 left out)", got)
	}
	assertWarnings(t, res.Warnings, map[int]string{33: "--map Loopback0=NAME", 35: "inside \"interface Loopback0\"", 39: "PIM", 40: "PIM"})

	// With a name for the loopback and an explicit upstream, DeviceD keeps
	// routing on.
	res = convertFile(t, "deviceD.vrp", Options{Map: map[string]string{"LoopBack0": "lo"}, Upstream: "GigabitEthernet0/1/2"})
	c = res.Config
	if got := ifNames(c); got != "ge1 ge2 ge3 lo" {
		t.Errorf("interfaces = %q, want ge1 ge2 ge3 lo", got)
	}
	if lo := c.Interface("lo"); lo == nil || len(lo.Addresses) != 1 || lo.Addresses[0] != netip.MustParsePrefix("2001:db8:22::22/64") {
		t.Errorf("lo = %+v, want address 2001:db8:22::22/64", lo)
	}
	if !c.Multicast.RoutingEnable || c.Multicast.Upstream.Interface != "ge2" {
		t.Errorf("multicast = %+v, want routing on, upstream ge2", c.Multicast)
	}
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
	lines := strings.Split(string(readTestdata(t, dev+".vrp")), "\n")
	out := append([]string{}, lines[:n-1]...)
	out = append(out, repl...)
	out = append(out, lines[n:]...)
	return []byte(strings.Join(out, "\n"))
}

func TestInterfaceMapping(t *testing.T) {
	a := readTestdata(t, "deviceA.vrp")
	tests := []struct {
		name string
		src  []byte
		opts Options
		want map[string]string // VRP-derived checks: profile interface, LAN interface name
	}{
		{"default", a, Options{}, map[string]string{"profile": "ge2", "lan": "ge2"}},
		{"map with space, lower case", a, Options{Map: map[string]string{"gigabitethernet 0/1/2": "lan0"}}, map[string]string{"profile": "lan0", "lan": "lan0"}},
		{"map by abbreviation", a, Options{Map: map[string]string{"GE0/1/2": "lan0", "GE0/1/3": "wan0"}}, map[string]string{"profile": "lan0", "lan": "lan0", "upstream": "wan0"}},
		{"file uses spaced lower-case name", edit(t, "deviceA", 13, " vrrp6-id 1 interface gigabitethernet 0/1/2"), Options{}, map[string]string{"profile": "ge2"}},
		{"file interface line spaced", edit(t, "deviceA", 28, "interface gigabitethernet 0/1/2"), Options{Map: map[string]string{"GigabitEthernet0/1/2": "eth1"}}, map[string]string{"profile": "eth1", "lan": "eth1"}},
		{"upstream by VRP name", a, Options{Upstream: "gigabitethernet 0/1/1"}, map[string]string{"upstream": "ge1"}},
		{"upstream by Linux name", a, Options{Upstream: "ge1"}, map[string]string{"upstream": "ge1"}},
		{"subinterface", edit(t, "deviceA", 43, "interface GigabitEthernet0/1/3.100"), Options{}, map[string]string{"upstream": "ge3.100"}},
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
			for _, i := range c.Interfaces {
				if i.MLD.Enable {
					got["lan"] = i.Name
				}
			}
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
		{"upstream ambiguous", edit(t, "deviceA", 7, " peer-ipv6 2001:DB8:99::2 source-ipv6 2001:DB8:99::1 port 1025"), Options{}, ErrUpstream,
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
