package daemon

import (
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/hotcast/hotcast/bpf"
	"github.com/hotcast/hotcast/ctrl/mroute"
	"github.com/hotcast/hotcast/daemon/config"
)

func loadConfig(t *testing.T, yaml string) *config.Config {
	t.Helper()
	c, err := config.LoadBytes([]byte(yaml))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, yaml)
	}
	return c
}

func edit(t *testing.T, s string, pairs ...string) string {
	t.Helper()
	for i := 0; i < len(pairs); i += 2 {
		if strings.Count(s, pairs[i]) != 1 {
			t.Fatalf("%q is not in the configuration exactly once", pairs[i])
		}
		s = strings.Replace(s, pairs[i], pairs[i+1], 1)
	}
	return s
}

// TestReloadRefused: which changes Reload applies in place and which it
// refuses (with the reason), from the reference's DeviceA configuration
// (ge2 is bound to the remote backup profile).
func TestReloadRefused(t *testing.T) {
	b, err := os.ReadFile("../configs/static/deviceA.yaml")
	if err != nil {
		t.Fatal(err)
	}
	base := string(b)
	d := &Daemon{cfg: loadConfig(t, base), log: slog.New(slog.DiscardHandler)}
	// The profile and the interface's binding to it.
	profiles := base[strings.Index(base, "remote-backup-profiles:\n"):strings.Index(base, "interfaces:\n")]
	const binding = "    remote-backup-profile: profile1       #  remote-backup-profile profile1\n"
	moveProfile := []string{binding, "", "      interface: ge2\n", "      interface: ge4\n", "  - name: ge3 ",
		"  - name: ge4\n    mld: {enable: true}\n    vrrp6: [{vrid: 1, virtual-ip: [fe80::4]}]\n    remote-backup-profile: profile1\n  - name: ge3 "}
	for _, tc := range []struct {
		name    string
		edits   []string
		refused []string // substrings, one per refused change; none: applied in place
	}{
		{"mld timers on the profile's interface", []string{"      enable: true ", "      enable: true\n      query-interval: 30s\n      robustness: 3 "}, nil},
		{"vrrp6 priority, interval, virtual ip", []string{"        priority: 200 ", "        priority: 100\n        advertise-interval: 100ms ",
			"virtual-ip: [fe80::1, 2001:db8::50]", "virtual-ip: [fe80::1, 2001:db8::50, 2001:db8::51]"}, nil},
		{"vrrp6 group added", []string{"    multicast-track-vrrp6: 1 ", "      - {vrid: 2, virtual-ip: [fe80::2]}\n    multicast-track-vrrp6: 1 "}, nil},
		{"tracking", []string{"    multicast-track-vrrp6: 1              #  multicast ipv6 track vrrp6 vrid 1\n", ""}, nil},
		{"interface added and mld on another", []string{"  - name: ge3 ", "  - name: ge4\n    mld: {enable: true}\n  - name: ge5\n  - name: ge3 ",
			"  - name: ge1                             # interface GigabitEthernet0/1/1 (RBS link)\n", "  - name: ge1\n    mld: {enable: true}\n"}, nil},
		{"api", []string{"  socket: /run/hotcast/DeviceA.sock ", "  socket: /run/hotcast/A2.sock\n  metrics-listen: \":9469\" "}, nil},
		{"static routes", []string{"    mode: static\n", "    mode: static\n  static-routes:\n    - {group: ff3e::1:1, source: 2001:db8:40::2, interfaces: [ge1, ge2]}\n"}, nil},
		{"addresses", []string{"[2001:db8:20::1/64]", "[2001:db8:21::1/64, 2001:db8:20::1/48]"}, nil},
		{"upstream mode", []string{"    mode: static", "    mode: mld-proxy"}, nil},
		{"upstream interface", []string{"    interface: ge3 ", "    interface: ge1 "}, nil},
		{"rbs port and hold time", []string{"    port: 1025 ", "    port: 1026\n    hold-time: 6s "}, nil},
		{"rbs tls", []string{"    port: 1025 ", "    port: 1025\n    tls: {cert: /x/a.crt, key: /x/a.key, ca: /x/ca.crt} "}, nil},
		{"profile backup-id", []string{"    backup-id: 10 ", "    backup-id: 11 "}, nil},
		{"profile and its binding removed, mld off", []string{binding, "", profiles, "", "      enable: true ", "      enable: false "}, nil},
		{"the profile's interface renamed with the profile removed", []string{binding, "", profiles, "",
			"  - name: ge2                             # interface GigabitEthernet0/1/2 (VRRP6 LAN)\n", "  - name: gx\n"}, nil},
		{"profile moved to an added interface", moveProfile, nil},
		{"sysname", []string{"sysname: DeviceA ", "sysname: DeviceZ "}, []string{"sysname modified (it names"}},
		{"bpf", []string{"  xdp-mode: native", "  xdp-mode: generic"}, []string{"bpf modified"}},
		{"routing", []string{"  routing-enable: true ", "  routing-enable: false "}, []string{"multicast.routing-enable modified"}},
		{"egress", []string{"  - name: ge1 ", "  - name: ge1\n    egress: clone "}, []string{"interfaces[ge1].egress modified"}},
		{"mixed", []string{"sysname: DeviceA ", "sysname: DeviceZ ", "        priority: 200 ", "        priority: 100 "}, []string{"sysname modified"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next := loadConfig(t, edit(t, base, tc.edits...))
			changes := config.Diff(d.cfg, next)
			if changes.Empty() {
				t.Fatal("no change")
			}
			got := refused(&changes)
			if len(got) != len(tc.refused) {
				t.Fatalf("refused %q, want %q (changes %v)", got, tc.refused, changes.Strings())
			}
			for i, w := range tc.refused {
				if !strings.HasPrefix(got[i], w) {
					t.Errorf("refused[%d] = %q, want %q...", i, got[i], w)
				}
			}
		})
	}
}

func TestReloadNotRunning(t *testing.T) {
	d := &Daemon{cfg: loadConfig(t, "sysname: X\n"), log: slog.New(slog.DiscardHandler)}
	if err := d.Reload(loadConfig(t, "sysname: Y\n")); err == nil || errors.Is(err, ErrNeedsRestart) {
		t.Fatalf("reload before Run: %v", err)
	}
}

// TestChangeSetHandled: every field of the change set is either refused
// or applied by Reload. A field added to config.ChangeSet or
// config.InterfaceChange fails here until reload handles it (and is listed
// below); the refused ones are named in the operator's message as Diff
// names them.
func TestChangeSetHandled(t *testing.T) {
	refusedFields := map[string]bool{"Sysname": true, "BPF": true, "RoutingEnable": true, "Interfaces.Egress": true}
	applied := map[string]string{
		"API":                   "prepare, swapServers",
		"Upstream":              "moveUpstream, startProxy",
		"StaticRoutes":          "setStatic",
		"Services":              "planRBS",
		"Profiles":              "planRBS",
		"Interfaces":            "prepare (Added), changeIface (Modified), removeIface (Removed)",
		"Interfaces.Name":       "",
		"Interfaces.Op":         "",
		"Interfaces.Addresses":  "changeAddresses",
		"Interfaces.MLD":        "changeIface",
		"Interfaces.TrackVRRP6": "resyncGate",
		"Interfaces.Profile":    "publishCfg",
		"Interfaces.VRRP6":      "addGroup, Reconfigure, removeGroup",
	}
	var fields []string
	for f := range reflect.TypeFor[config.ChangeSet]().Fields() {
		fields = append(fields, f.Name)
	}
	for f := range reflect.TypeFor[config.InterfaceChange]().Fields() {
		fields = append(fields, "Interfaces."+f.Name)
	}
	for _, f := range fields {
		if _, ok := applied[f]; !ok && !refusedFields[f] {
			t.Errorf("config change set field %s is neither applied nor refused by Reload", f)
		}
	}

	all := config.ChangeSet{Sysname: true, API: true, BPF: true, RoutingEnable: true, Upstream: true, StaticRoutes: true,
		Services:   []config.NamedChange{{Name: "s", Op: config.Modified}},
		Profiles:   []config.NamedChange{{Name: "p", Op: config.Added}},
		Interfaces: []config.InterfaceChange{{Name: "ge1", Op: config.Modified, Addresses: true, MLD: true, TrackVRRP6: true, Profile: true, Egress: true}},
	}
	want := []string{
		"sysname modified (it names the socket, the pins and this router to its RBS peer)",
		"bpf modified (the dataplane is opened and pinned at start)",
		"multicast.routing-enable modified (it attaches or detaches the fast path on every interface)",
		"interfaces[ge1].egress modified (routes through the interface are built for its egress mode)",
	}
	if got := refused(&all); !slices.Equal(got, want) {
		t.Errorf("refused = %q\nwant %q", got, want)
	}
	// Each refused message starts with the change as the applying log
	// names it.
	for _, r := range want {
		change, _, _ := strings.Cut(r, " (")
		if !slices.Contains(all.Strings(), change) {
			t.Errorf("refused %q names no change of %q", r, all.Strings())
		}
	}
}

func deviceA(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../configs/static/deviceA.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestPlanRBS: what a reload does to the hot backup: a changed service is
// replaced with its profiles, a changed profile alone is rebound, the
// rest is left running.
func TestPlanRBS(t *testing.T) {
	base := deviceA(t)
	old := loadConfig(t, base)
	service2 := "remote-backup-profiles:\n"
	for _, tc := range []struct {
		name        string
		edits       []string
		stop, start []string
		drop, bind  []string
	}{
		{"nothing", []string{"        priority: 200 ", "        priority: 100 "}, nil, nil, nil, nil},
		{"service port", []string{"    port: 1025 ", "    port: 1026 "}, []string{"service1"}, []string{"service1"}, []string{"profile1"}, []string{"profile1"}},
		{"service tls", []string{"    port: 1025 ", "    port: 1025\n    tls: {cert: /x/a.crt, key: /x/a.key, ca: /x/ca.crt} "},
			[]string{"service1"}, []string{"service1"}, []string{"profile1"}, []string{"profile1"}},
		{"profile backup-id", []string{"    backup-id: 10 ", "    backup-id: 11 "}, nil, nil, []string{"profile1"}, []string{"profile1"}},
		{"service added, profile added on it", []string{service2, "  - {name: service2, peer-ipv6: 2001:db8:11::2, source-ipv6: 2001:db8:11::1}\n" + service2 +
			"  - {name: profile2, service-type: [mld], backup-id: 10, remote-backup-service: service2, vrrp6: {vrid: 1, interface: ge2}}\n"},
			nil, []string{"service2"}, nil, []string{"profile2"}},
		{"profile removed", []string{"    remote-backup-profile: profile1       #  remote-backup-profile profile1\n", "",
			base[strings.Index(base, "remote-backup-profiles:\n"):strings.Index(base, "interfaces:\n")], ""}, nil, nil, []string{"profile1"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next := loadConfig(t, edit(t, base, tc.edits...))
			cs := config.Diff(old, next)
			pl := planRBS(old, next, &cs)
			keys := func(m map[string]bool) []string {
				var out []string
				for k := range m {
					out = append(out, k)
				}
				slices.Sort(out)
				return out
			}
			if !slices.Equal(keys(pl.stop), tc.stop) || !slices.Equal(pl.start, tc.start) || !slices.Equal(keys(pl.drop), tc.drop) || !slices.Equal(pl.bind, tc.bind) {
				t.Errorf("plan: stop %v start %v drop %v bind %v; want stop %v start %v drop %v bind %v",
					keys(pl.stop), pl.start, keys(pl.drop), pl.bind, tc.stop, tc.start, tc.drop, tc.bind)
			}
			if pl.empty() != (tc.stop == nil && tc.start == nil && tc.drop == nil && tc.bind == nil) {
				t.Errorf("empty() = %v", pl.empty())
			}
		})
	}
}

// TestCheckProfiles: a profile backs up its interface's MLD state, so
// MLD cannot be turned off under a profile that stays (start-up refuses
// it too); with the profile removed it can.
func TestCheckProfiles(t *testing.T) {
	base := deviceA(t)
	off := edit(t, base, "      enable: true ", "      enable: false ")
	if err := checkProfiles(loadConfig(t, off)); err == nil || !strings.Contains(err.Error(), "profile1: interface ge2 has no mld.enable") {
		t.Errorf("mld off under profile1: %v", err)
	}
	if err := checkProfiles(loadConfig(t, base)); err != nil {
		t.Errorf("deviceA: %v", err)
	}
}

type fakeDP struct{ routes map[bpf.RouteKey]bpf.Route }

func (f *fakeDP) ReplaceRoutes(rs []bpf.Route) error {
	for _, r := range rs {
		f.routes[r.RouteKey] = r
	}
	return nil
}

func (f *fakeDP) DeleteRoutes(ks []bpf.RouteKey) error {
	for _, k := range ks {
		delete(f.routes, k)
	}
	return nil
}

// TestMoveUpstream: in static mode a new upstream interface becomes the
// incoming interface of the learned routes; what is recorded is what
// runs.
func TestMoveUpstream(t *testing.T) {
	dp := &fakeDP{routes: map[bpf.RouteKey]bpf.Route{}}
	d := &Daemon{log: slog.New(slog.DiscardHandler), table: mroute.New(dp, 3, nil),
		ifaces: map[string]*iface{"ge3": {name: "ge3", index: 3}, "ge4": {name: "ge4", index: 4}}}
	g := netip.MustParseAddr("ff3e::1")
	if err := d.table.SetMembership(g, 2, &mroute.Membership{Star: true}); err != nil {
		t.Fatal(err)
	}
	old := config.Upstream{Interface: "ge3", Mode: config.UpstreamStatic}
	next := config.Upstream{Interface: "ge4", Mode: config.UpstreamStatic}
	up, err := d.moveUpstream(old, next)
	if err != nil || up != next {
		t.Fatalf("moveUpstream: %+v, %v", up, err)
	}
	if r := dp.routes[bpf.RouteKey{Source: netip.IPv6Unspecified(), Group: g}]; r.IIf != 4 {
		t.Errorf("learned route after the move: %+v", r)
	}
	// mld-proxy requested: recorded as static until the proxy runs.
	proxied := config.Upstream{Interface: "ge4", Mode: config.UpstreamMLDProxy}
	if up, err := d.moveUpstream(next, proxied); err != nil || up != next {
		t.Errorf("moveUpstream to mld-proxy: %+v, %v (the proxy starts later)", up, err)
	}
}
