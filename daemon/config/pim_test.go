package config

import (
	"errors"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// pimBase is base running PIM-SM on every interface: no
// multicast.upstream (PIM finds it by RPF), the static route's incoming
// given explicitly, a loopback with the RP address and a pim section
// with every key.
func pimBase(t *testing.T) string {
	t.Helper()
	return edit(t,
		"  upstream:\n    interface: ge3\n    mode: static\n", "",
		"    addresses: [2001:db8:10::1/64]\n", "    addresses: [2001:db8:10::1/64]\n    pim: {mode: sm}\n",
		"    remote-backup-profile: profile1\n", "    remote-backup-profile: profile1\n"+
			"    pim:\n      mode: sm\n      hello-interval: 10s\n      dr-priority: 0\n      ignore-dr-state: true\n      ignore-assert-state: true\n",
		"    addresses: [2001:db8:20::1/64]\n", "    addresses: [2001:db8:20::1/64]\n    pim: {mode: sm, dr-priority: 4294967295}\n",
	) + `loopback:
  interface: lo
  addresses: [2001:db8:22::22/128]
pim:
  static-rp:
    - address: 2001:db8:22::22
    - address: 2001:db8:22::23
      group-range: ff0e::/16
  ssm-range: ff3e::/16
  spt-switch: never
  accept-register: [2001:db8:40::/64]
  accept-register-sources: [2001:db8:41::/64, 2001:db8:42::1/128]
  join-prune-interval: 30s
  join-prune-holdtime: 105s
`
}

// pimEdit applies old/new pairs to pimBase, each old occurring once.
func pimEdit(t *testing.T, pairs ...string) string {
	t.Helper()
	s := pimBase(t)
	for i := 0; i+1 < len(pairs); i += 2 {
		if n := strings.Count(s, pairs[i]); n != 1 {
			t.Fatalf("pimEdit: %q occurs %d times in pimBase", pairs[i], n)
		}
		s = strings.Replace(s, pairs[i], pairs[i+1], 1)
	}
	return s
}

func TestPIMConfig(t *testing.T) {
	c, err := LoadBytes([]byte(pimBase(t)))
	if err != nil {
		t.Fatalf("LoadBytes(pimBase): %v", err)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate of a loaded config: %v", err)
	}
	want := &PIM{
		StaticRPs: []StaticRP{
			{Address: netip.MustParseAddr("2001:db8:22::22"), GroupRange: netip.MustParsePrefix("ff00::/8")},
			{Address: netip.MustParseAddr("2001:db8:22::23"), GroupRange: netip.MustParsePrefix("ff0e::/16")},
		},
		SSMRange:              netip.MustParsePrefix("ff3e::/16"),
		SPTSwitch:             SPTSwitchNever,
		AcceptRegister:        []netip.Prefix{netip.MustParsePrefix("2001:db8:40::/64")},
		AcceptRegisterSources: []netip.Prefix{netip.MustParsePrefix("2001:db8:41::/64"), netip.MustParsePrefix("2001:db8:42::1/128")},
		JoinPruneInterval:     30 * time.Second,
		JoinPruneHoldtime:     105 * time.Second,
	}
	if !reflect.DeepEqual(c.PIM, want) {
		t.Errorf("pim:\n got %+v\nwant %+v", c.PIM, want)
	}
	if got := c.PIMSettings(); !reflect.DeepEqual(got, *want) {
		t.Errorf("PIMSettings() = %+v", got)
	}
	wantIf := map[string]InterfacePIM{
		"ge1": {Mode: PIMModeSM, HelloInterval: DefaultPIMHelloInterval, DRPriority: DefaultPIMDRPriority},
		"ge2": {Mode: PIMModeSM, HelloInterval: 10 * time.Second, DRPriority: 0, IgnoreDRState: true, IgnoreAssertState: true},
		"ge3": {Mode: PIMModeSM, HelloInterval: DefaultPIMHelloInterval, DRPriority: 1<<32 - 1},
	}
	for name, w := range wantIf {
		if ifc := c.Interface(name); ifc == nil || ifc.PIM == nil || *ifc.PIM != w {
			t.Errorf("%s pim = %+v, want %+v", name, ifc.PIM, w)
		}
	}
	wantLo := Loopback{Interface: "lo", Addresses: []netip.Prefix{netip.MustParsePrefix("2001:db8:22::22/128")}}
	if !reflect.DeepEqual(c.Loopback, wantLo) {
		t.Errorf("loopback = %+v, want %+v", c.Loopback, wantLo)
	}
	if !c.PIMEnabled() || c.Multicast.Upstream != (Upstream{Mode: UpstreamStatic}) {
		t.Errorf("PIMEnabled %v, upstream %+v", c.PIMEnabled(), c.Multicast.Upstream)
	}
	if r := c.Multicast.StaticRoutes[0]; r.Incoming != "ge3" {
		t.Errorf("static route incoming %q, want ge3", r.Incoming)
	}
}

// TestPIMDefaults: what the pim keys default to, and PIM on interfaces
// without a pim section.
func TestPIMDefaults(t *testing.T) {
	const minimal = `
sysname: R
multicast: {routing-enable: true}
interfaces:
  - name: eth0
    pim: {mode: sm}
  - name: eth1
    mld: {enable: true}
    pim: {mode: sm}
`
	c, err := LoadBytes([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if c.PIM != nil {
		t.Errorf("pim = %+v, want nil without a pim section", c.PIM)
	}
	def := PIM{SSMRange: netip.MustParsePrefix("ff30::/12"), SPTSwitch: SPTSwitchImmediate,
		JoinPruneInterval: 60 * time.Second, JoinPruneHoldtime: 210 * time.Second}
	if got := c.PIMSettings(); !reflect.DeepEqual(got, def) || !reflect.DeepEqual(DefaultPIM(), def) {
		t.Errorf("PIMSettings() = %+v, DefaultPIM() = %+v, want %+v", got, DefaultPIM(), def)
	}
	wantIf := InterfacePIM{Mode: PIMModeSM, HelloInterval: 30 * time.Second, DRPriority: 1}
	if p := c.Interface("eth0").PIM; p == nil || *p != wantIf {
		t.Errorf("eth0 pim = %+v, want %+v", p, wantIf)
	}
	if c.Loopback.Interface != "lo" || c.Loopback.Addresses != nil {
		t.Errorf("loopback = %+v, want lo without addresses", c.Loopback)
	}

	// pim: {} is a section with every default; a static RP without a
	// range serves every group.
	c, err = LoadBytes([]byte(minimal + "pim: {}\nloopback: {addresses: [2001:db8::1/128]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.PIM == nil || !reflect.DeepEqual(*c.PIM, def) || c.Loopback.Interface != "lo" {
		t.Errorf("pim: {}: %+v, loopback %+v", c.PIM, c.Loopback)
	}
	c, err = LoadBytes([]byte(minimal + "pim: {static-rp: [{address: 2001:db8::9}]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if rp := c.PIM.StaticRPs; len(rp) != 1 || rp[0].GroupRange != AllGroups() || AllGroups() != netip.MustParsePrefix("ff00::/8") {
		t.Errorf("static-rp without group-range: %+v", rp)
	}
	if DefaultSSMRange() != netip.MustParsePrefix("ff30::/12") {
		t.Errorf("DefaultSSMRange() = %v", DefaultSSMRange())
	}

	// A null pim is as absent; pim: {} on an interface lacks its mode.
	c, err = LoadBytes([]byte("sysname: R\npim:\ninterfaces: [{name: eth0, pim: }]\n"))
	if err != nil || c.PIM != nil || c.Interfaces[0].PIM != nil {
		t.Errorf("null pim: %v, %+v", err, c)
	}
	_, err = LoadBytes([]byte("sysname: R\nmulticast: {routing-enable: true}\ninterfaces: [{name: eth0, pim: {}}]\n"))
	if fes := FieldErrors(err); len(fes) != 1 || fes[0].Path != "interfaces[0].pim.mode" || !errors.Is(err, ErrRequired) {
		t.Errorf("pim: {} on an interface: %v, want only interfaces[0].pim.mode: required", err)
	}
}

// TestPIMInvalid: each bad PIM or loopback value is reported, at exactly
// its key path and nowhere else.
func TestPIMInvalid(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		paths []string // every error path expected, sorted
		msg   string   // substring of the first error's message
		is    error    // optional sentinel of the first error
	}{
		{"unknown pim key", pimEdit(t, "  spt-switch: never\n", "  spt-switch: never\n  bsr: {}\n"),
			[]string{"pim.bsr"}, "unknown key", ErrUnknownKey},
		{"unknown static-rp key", pimEdit(t, "    - address: 2001:db8:22::22\n", "    - address: 2001:db8:22::22\n      preferred: true\n"),
			[]string{"pim.static-rp[0].preferred"}, "unknown key", ErrUnknownKey},
		{"unknown interface pim key", pimEdit(t, "{mode: sm}", "{mode: sm, silent: true}"),
			[]string{"interfaces[0].pim.silent"}, "unknown key", ErrUnknownKey},
		{"unknown loopback key", pimEdit(t, "  interface: lo\n", "  interface: lo\n  name: lo\n"),
			[]string{"loopback.name"}, "unknown key", ErrUnknownKey},
		{"pim not a map", pimEdit(t, "{mode: sm}", "sm"),
			[]string{"interfaces[0].pim"}, "expected a map", ErrType},

		{"rp address missing", pimEdit(t, "    - address: 2001:db8:22::23\n", "    - address:\n"),
			[]string{"pim.static-rp[1].address"}, "required", ErrRequired},
		{"rp address garbage", pimEdit(t, "    - address: 2001:db8:22::22\n", "    - address: rp1\n"),
			[]string{"pim.static-rp[0].address"}, "invalid IPv6 address", nil},
		{"rp address multicast", pimEdit(t, "    - address: 2001:db8:22::22\n", "    - address: ff0e::1\n"),
			[]string{"pim.static-rp[0].address"}, "not a global unicast", nil},
		{"rp address link-local", pimEdit(t, "    - address: 2001:db8:22::22\n", "    - address: fe80::22\n"),
			[]string{"pim.static-rp[0].address"}, "not a global unicast", nil},
		{"rp address unspecified", pimEdit(t, "    - address: 2001:db8:22::22\n", "    - address: \"::\"\n"),
			[]string{"pim.static-rp[0].address"}, "not a global unicast", nil},
		{"rp address IPv4", pimEdit(t, "    - address: 2001:db8:22::22\n", "    - address: 10.0.0.1\n"),
			[]string{"pim.static-rp[0].address"}, "not an IPv6 address", nil},
		{"group range unicast", pimEdit(t, "      group-range: ff0e::/16\n", "      group-range: 2001:db8::/32\n"),
			[]string{"pim.static-rp[1].group-range"}, "not a multicast range", nil},
		{"group range wider than ff00::/8", pimEdit(t, "      group-range: ff0e::/16\n", "      group-range: fe00::/7\n"),
			[]string{"pim.static-rp[1].group-range"}, "not a multicast range", nil},
		{"group range host bits", pimEdit(t, "      group-range: ff0e::/16\n", "      group-range: ff0e::1/16\n"),
			[]string{"pim.static-rp[1].group-range"}, "write ff0e::/16", nil},
		{"group range not a prefix", pimEdit(t, "      group-range: ff0e::/16\n", "      group-range: \"ff0e::\"\n"),
			[]string{"pim.static-rp[1].group-range"}, "invalid IPv6 prefix", nil},
		{"group range duplicate", pimEdit(t, "      group-range: ff0e::/16\n", "      group-range: ff00::/8\n"),
			[]string{"pim.static-rp[1].group-range"}, "first used at pim.static-rp[0].group-range", ErrDuplicate},
		{"group range inside ssm", pimEdit(t, "      group-range: ff0e::/16\n", "      group-range: ff3e:0:0:0:0:0:1::/112\n"),
			[]string{"pim.static-rp[1].group-range"}, "inside pim.ssm-range ff3e::/16", nil},
		{"group range inside default ssm", pimEdit(t, "  ssm-range: ff3e::/16\n", "", "      group-range: ff0e::/16\n", "      group-range: ff35::/16\n"),
			[]string{"pim.static-rp[1].group-range"}, "inside pim.ssm-range ff30::/12", nil},
		{"ssm range unicast", pimEdit(t, "  ssm-range: ff3e::/16\n", "  ssm-range: 2001:db8::/32\n"),
			[]string{"pim.ssm-range"}, "not a multicast range", nil},
		{"ssm range garbage", pimEdit(t, "  ssm-range: ff3e::/16\n", "  ssm-range: ssm\n"),
			[]string{"pim.ssm-range"}, "invalid IPv6 prefix", nil},
		{"spt-switch bogus", pimEdit(t, "  spt-switch: never\n", "  spt-switch: infinity\n"),
			[]string{"pim.spt-switch"}, "want \"immediate\" or \"never\"", nil},
		{"accept-register garbage", pimEdit(t, "  accept-register: [2001:db8:40::/64]\n", "  accept-register: [2001:db8:40::/64, any]\n"),
			[]string{"pim.accept-register[1]"}, "invalid IPv6 prefix", nil},
		{"accept-register multicast", pimEdit(t, "  accept-register: [2001:db8:40::/64]\n", "  accept-register: [ff0e::/16]\n"),
			[]string{"pim.accept-register[0]"}, "multicast range", nil},
		{"accept-register-sources host bits", pimEdit(t, "2001:db8:41::/64", "2001:db8:41::1/64"),
			[]string{"pim.accept-register-sources[0]"}, "write 2001:db8:41::/64", nil},
		{"accept-register-sources IPv4", pimEdit(t, "2001:db8:41::/64", "10.0.0.0/8"),
			[]string{"pim.accept-register-sources[0]"}, "not an IPv6 prefix", nil},
		{"join-prune-interval 0", pimEdit(t, "  join-prune-interval: 30s\n", "  join-prune-interval: 0s\n"),
			[]string{"pim.join-prune-interval"}, "1s..", nil},
		{"join-prune-interval fraction", pimEdit(t, "  join-prune-interval: 30s\n", "  join-prune-interval: 30.5s\n"),
			[]string{"pim.join-prune-interval"}, "whole number of seconds", nil},
		{"join-prune-interval not a duration", pimEdit(t, "  join-prune-interval: 30s\n", "  join-prune-interval: 30\n"),
			[]string{"pim.join-prune-interval"}, "duration", ErrType},
		{"join-prune-holdtime below interval", pimEdit(t, "  join-prune-holdtime: 105s\n", "  join-prune-holdtime: 20s\n"),
			[]string{"pim.join-prune-holdtime"}, "less than pim.join-prune-interval 30s", nil},
		{"join-prune-interval above default holdtime", pimEdit(t, "  join-prune-holdtime: 105s\n", "", "  join-prune-interval: 30s\n", "  join-prune-interval: 300s\n"),
			[]string{"pim.join-prune-holdtime"}, "3m30s is less than pim.join-prune-interval 5m0s", nil},
		{"join-prune-holdtime too long", pimEdit(t, "  join-prune-holdtime: 105s\n", "  join-prune-holdtime: 65536s\n"),
			[]string{"pim.join-prune-holdtime"}, "18h12m15s", nil},
		{"join-prune-holdtime fraction", pimEdit(t, "  join-prune-holdtime: 105s\n", "  join-prune-holdtime: 105500ms\n"),
			[]string{"pim.join-prune-holdtime"}, "whole number of seconds", nil},

		{"mode missing", pimEdit(t, "{mode: sm}", "{hello-interval: 30s}"),
			[]string{"interfaces[0].pim.mode"}, "required", ErrRequired},
		{"mode dm", pimEdit(t, "{mode: sm}", "{mode: dm}"),
			[]string{"interfaces[0].pim.mode"}, "PIM-SM only", ErrUnsupported},
		{"mode bogus", pimEdit(t, "{mode: sm}", "{mode: sparse}"),
			[]string{"interfaces[0].pim.mode"}, "want \"sm\"", nil},
		{"hello-interval 0", pimEdit(t, "      hello-interval: 10s\n", "      hello-interval: 0s\n"),
			[]string{"interfaces[1].pim.hello-interval"}, "1s..5h0m0s", nil},
		{"hello-interval too long", pimEdit(t, "      hello-interval: 10s\n", "      hello-interval: 18001s\n"),
			[]string{"interfaces[1].pim.hello-interval"}, "1s..5h0m0s", nil},
		{"hello-interval fraction", pimEdit(t, "      hello-interval: 10s\n", "      hello-interval: 1500ms\n"),
			[]string{"interfaces[1].pim.hello-interval"}, "whole number of seconds", nil},
		{"dr-priority negative", pimEdit(t, "      dr-priority: 0\n", "      dr-priority: -1\n"),
			[]string{"interfaces[1].pim.dr-priority"}, "0..4294967295", nil},
		{"dr-priority too large", pimEdit(t, "{mode: sm, dr-priority: 4294967295}", "{mode: sm, dr-priority: 4294967296}"),
			[]string{"interfaces[2].pim.dr-priority"}, "0..4294967295", nil},
		{"dr-priority fraction", pimEdit(t, "      dr-priority: 0\n", "      dr-priority: 0.5\n"),
			[]string{"interfaces[1].pim.dr-priority"}, "expected an integer", ErrType},
		{"ignore-dr-state not a bool", pimEdit(t, "      ignore-dr-state: true\n", "      ignore-dr-state: \"yes\"\n"),
			[]string{"interfaces[1].pim.ignore-dr-state"}, "true or false", ErrType},
		{"pim without routing", pimEdit(t, "  routing-enable: true\n", "  routing-enable: false\n", "  static-routes:\n    - group: ff3e::1:1\n      source: 2001:db8:40::2\n      incoming: ge3\n      interfaces: [ge2]\n", ""),
			[]string{"interfaces[0].pim", "interfaces[1].pim", "interfaces[2].pim"}, "needs multicast.routing-enable: true", nil},
		{"mld interface without pim", pimEdit(t, "    pim:\n      mode: sm\n      hello-interval: 10s\n      dr-priority: 0\n      ignore-dr-state: true\n      ignore-assert-state: true\n", ""),
			[]string{"interfaces[1].pim"}, "PIM's local members", ErrRequired},
		{"pim section without pim interfaces", pimEdit(t,
			"    pim: {mode: sm}\n", "",
			"    pim:\n      mode: sm\n      hello-interval: 10s\n      dr-priority: 0\n      ignore-dr-state: true\n      ignore-assert-state: true\n", "",
			"    pim: {mode: sm, dr-priority: 4294967295}\n", "",
			"  routing-enable: true\n", "  routing-enable: true\n  upstream: {interface: ge3}\n"),
			[]string{"pim"}, "no interface runs pim", nil},

		{"upstream interface with pim", pimEdit(t, "  routing-enable: true\n", "  routing-enable: true\n  upstream: {interface: ge3}\n"),
			[]string{"multicast.upstream"}, "RPF through the kernel FIB", nil},
		{"upstream unknown interface with pim", pimEdit(t, "  routing-enable: true\n", "  routing-enable: true\n  upstream: {interface: ge9}\n"),
			[]string{"multicast.upstream"}, "remove multicast.upstream", nil},
		{"mld-proxy with pim", pimEdit(t, "  routing-enable: true\n", "  routing-enable: true\n  upstream: {mode: mld-proxy}\n"),
			[]string{"multicast.upstream"}, "must not be set when interfaces run pim", nil},
		{"static route incoming missing with pim", pimEdit(t, "      incoming: ge3\n", ""),
			[]string{"multicast.static-routes[0].incoming"}, "with pim there is no multicast.upstream.interface", ErrRequired},

		{"loopback interface is an interface", pimEdit(t, "  interface: lo\n", "  interface: ge1\n"),
			[]string{"loopback.interface"}, "also interfaces[0].name", nil},
		{"lo among interfaces", pimEdit(t, "loopback:\n  interface: lo\n  addresses: [2001:db8:22::22/128]\n", "",
			"  - name: ge3\n", "  - name: lo\n    addresses: [2001:db8:22::22/128]\n  - name: ge3\n",
			"      interfaces: [ge2]\n", "      interfaces: [ge2, lo]\n"),
			[]string{"loopback.interface"}, "defaults to \"lo\"", nil},
		{"loopback interface bad name", pimEdit(t, "  interface: lo\n", "  interface: lo/0\n"),
			[]string{"loopback.interface"}, "invalid interface name", nil},
		{"loopback address link-local", pimEdit(t, "  addresses: [2001:db8:22::22/128]\n", "  addresses: [fe80::22/64]\n"),
			[]string{"loopback.addresses[0]"}, "not a global unicast", nil},
		{"loopback address multicast", pimEdit(t, "  addresses: [2001:db8:22::22/128]\n", "  addresses: [2001:db8:22::22/128, ff0e::1/128]\n"),
			[]string{"loopback.addresses[1]"}, "not a unicast address", nil},
		{"loopback address ::1", pimEdit(t, "  addresses: [2001:db8:22::22/128]\n", "  addresses: [\"::1/128\"]\n"),
			[]string{"loopback.addresses[0]"}, "not a unicast address", nil},
		{"loopback address garbage", pimEdit(t, "  addresses: [2001:db8:22::22/128]\n", "  addresses: [2001:db8:22::22]\n"),
			[]string{"loopback.addresses[0]"}, "invalid IPv6 prefix", nil},
		{"loopback address on an interface too", pimEdit(t, "  addresses: [2001:db8:22::22/128]\n", "  addresses: [2001:db8:20::1/128]\n"),
			[]string{"loopback.addresses[0]"}, "first used at interfaces[2].addresses[0]", ErrDuplicate},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		if seen[tt.name] {
			t.Fatalf("duplicate case name %q", tt.name)
		}
		seen[tt.name] = true
		t.Run(tt.name, func(t *testing.T) {
			c, err := LoadBytes([]byte(tt.yaml))
			if err == nil {
				t.Fatalf("LoadBytes succeeded, want errors at %q", tt.paths)
			}
			if c != nil {
				t.Error("LoadBytes returned a Config with an error")
			}
			fes := FieldErrors(err)
			var paths []string
			for _, fe := range fes {
				paths = append(paths, fe.Path)
			}
			if !slices.Equal(paths, tt.paths) {
				t.Fatalf("error paths %q, want %q:\n%v", paths, tt.paths, err)
			}
			if !strings.Contains(fes[0].Error(), tt.paths[0]+": ") || !strings.Contains(fes[0].Error(), tt.msg) {
				t.Errorf("error %q does not name %s or mention %q", fes[0], tt.paths[0], tt.msg)
			}
			if tt.is != nil && !errors.Is(fes[0], tt.is) {
				t.Errorf("%q does not wrap %v", fes[0], tt.is)
			}
		})
	}
}

// TestUpstreamWithoutPIM: without PIM, multicast.upstream stays required
// with routing on, and static routes still default to it.
func TestUpstreamWithoutPIM(t *testing.T) {
	_, err := LoadBytes([]byte(edit(t, "  upstream:\n    interface: ge3\n    mode: static\n", "")))
	if fes := FieldErrors(err); len(fes) != 1 || fes[0].Path != "multicast.upstream.interface" || !errors.Is(err, ErrRequired) {
		t.Errorf("no upstream, no pim: %v", err)
	}
	_, err = LoadBytes([]byte(edit(t, "  upstream:\n    interface: ge3\n    mode: static\n", "", "      incoming: ge3\n", "")))
	var paths []string
	for _, fe := range FieldErrors(err) {
		paths = append(paths, fe.Path)
	}
	if want := []string{"multicast.static-routes[0].incoming", "multicast.upstream.interface"}; !slices.Equal(paths, want) ||
		!strings.Contains(err.Error(), "multicast.upstream.interface is not set to default to") {
		t.Errorf("no upstream, no incoming: %q\n%v", paths, err)
	}
}

func TestDiffPIM(t *testing.T) {
	a, err := LoadBytes([]byte(pimBase(t)))
	if err != nil {
		t.Fatal(err)
	}
	if d := DiffPIM(a, a); !d.Empty() || d.Err() != nil || d.Strings() != nil || d.Refused() != nil {
		t.Errorf("DiffPIM(a, a) = %+v, want none", d)
	}
	load := func(y string) *Config {
		t.Helper()
		c, err := LoadBytes([]byte(y))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	// The same configuration with the interfaces in another order is no
	// change.
	reordered := *a
	reordered.Interfaces = slices.Clone(a.Interfaces)
	slices.Reverse(reordered.Interfaces)
	if d := DiffPIM(a, &reordered); !d.Empty() {
		t.Errorf("reordered interfaces: %v", d.Strings())
	}

	tests := []struct {
		name    string
		new     string
		want    PIMChange
		refused []string
		errs    []string
	}{
		{"static rp", pimEdit(t, "    - address: 2001:db8:22::22\n", "    - address: 2001:db8:22::24\n"),
			PIMChange{PIM: true},
			[]string{"pim modified (changing PIM needs a restart of hotcastd)"},
			[]string{"pim: changing PIM needs a restart of hotcastd"}},
		{"timer", pimEdit(t, "  join-prune-interval: 30s\n", ""), PIMChange{PIM: true}, nil, []string{"pim: changing PIM needs a restart of hotcastd"}},
		{"section removed", pimEdit(t, "pim:\n  static-rp:\n    - address: 2001:db8:22::22\n    - address: 2001:db8:22::23\n      group-range: ff0e::/16\n  ssm-range: ff3e::/16\n  spt-switch: never\n  accept-register: [2001:db8:40::/64]\n  accept-register-sources: [2001:db8:41::/64, 2001:db8:42::1/128]\n  join-prune-interval: 30s\n  join-prune-holdtime: 105s\n", ""),
			PIMChange{PIM: true}, nil, nil},
		{"loopback address", pimEdit(t, "  addresses: [2001:db8:22::22/128]\n", "  addresses: [2001:db8:22::22/128, 2001:db8:22::23/128]\n"),
			PIMChange{Loopback: true},
			[]string{"loopback modified (changing the loopback addresses needs a restart of hotcastd)"},
			[]string{"loopback: changing the loopback addresses needs a restart of hotcastd"}},
		{"interface parameter", pimEdit(t, "      hello-interval: 10s\n", "      hello-interval: 20s\n"),
			PIMChange{Interfaces: []NamedChange{{"ge2", Modified}}},
			[]string{"interfaces[ge2].pim modified (changing PIM needs a restart of hotcastd)"},
			[]string{"interfaces[ge2].pim: changing PIM needs a restart of hotcastd"}},
		{"pim off on an interface", pimEdit(t, "    pim: {mode: sm}\n", ""),
			PIMChange{Interfaces: []NamedChange{{"ge1", Removed}}},
			[]string{"interfaces[ge1].pim removed (stopping PIM on an interface needs a restart of hotcastd)"}, nil},
		{"interface with pim added and removed", pimEdit(t,
			"  - name: ge1\n    addresses: [2001:db8:10::1/64]\n    pim: {mode: sm}\n", "",
			"loopback:\n", "  - {name: ge4, pim: {mode: sm}}\n  - {name: ge5}\nloopback:\n"),
			PIMChange{Interfaces: []NamedChange{{"ge4", Added}, {"ge1", Removed}}},
			[]string{"interfaces[ge4].pim added (starting PIM on an interface needs a restart of hotcastd)",
				"interfaces[ge1].pim removed (stopping PIM on an interface needs a restart of hotcastd)"},
			[]string{"interfaces[ge4].pim: starting PIM on an interface needs a restart of hotcastd",
				"interfaces[ge1].pim: stopping PIM on an interface needs a restart of hotcastd"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := load(tt.new)
			d := DiffPIM(a, b)
			if !reflect.DeepEqual(d, tt.want) {
				t.Fatalf("DiffPIM = %+v, want %+v", d, tt.want)
			}
			if d.Empty() {
				t.Error("Empty() with changes")
			}
			if tt.refused != nil && !slices.Equal(d.Refused(), tt.refused) {
				t.Errorf("Refused() = %q, want %q", d.Refused(), tt.refused)
			}
			// Each refused entry starts with the change as Strings names it.
			for i, r := range d.Refused() {
				if change, _, _ := strings.Cut(r, " ("); change != d.Strings()[i] {
					t.Errorf("Refused()[%d] = %q, Strings()[%d] = %q", i, r, i, d.Strings()[i])
				}
			}
			err := d.Err()
			if !errors.Is(err, ErrRestartRequired) {
				t.Errorf("Err() = %v, want ErrRestartRequired", err)
			}
			fes := FieldErrors(err)
			if len(fes) != len(d.Strings()) {
				t.Errorf("Err() has %d field errors for %d changes", len(fes), len(d.Strings()))
			}
			if tt.errs != nil {
				var got []string
				for _, fe := range fes {
					got = append(got, fe.Error())
				}
				if !slices.Equal(got, tt.errs) {
					t.Errorf("Err() = %q, want %q", got, tt.errs)
				}
			}
			for _, op := range tt.want.Interfaces {
				if d.Interface(op.Name) != op.Op {
					t.Errorf("Interface(%s) = %v, want %v", op.Name, d.Interface(op.Name), op.Op)
				}
			}
			if d.Interface("nosuch") != Unchanged {
				t.Error("Interface(nosuch) changed")
			}
		})
	}

	// Diff itself does not see a change of PIM alone: the reload must ask
	// DiffPIM.
	b := load(pimEdit(t, "      hello-interval: 10s\n", "      hello-interval: 20s\n", "    - address: 2001:db8:22::22\n", "    - address: 2001:db8:22::24\n"))
	if cs := Diff(a, b); !cs.Empty() {
		t.Errorf("Diff of a PIM-only change = %v", cs.Strings())
	}
}
