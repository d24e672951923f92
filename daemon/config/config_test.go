package config

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// base is a complete, valid configuration that the table tests mutate one
// line at a time. Every line a case replaces is unique.
const base = `
sysname: DeviceA
api:
  socket: /run/hotcast/DeviceA.sock
  metrics-listen: "[::1]:9469"
bpf:
  pin-path: /sys/fs/bpf/hotcast/DeviceA
  xdp-mode: native
multicast:
  routing-enable: true
  upstream:
    interface: ge3
    mode: static
  static-routes:
    - group: ff3e::1:1
      source: 2001:db8:40::2
      incoming: ge3
      interfaces: [ge2]
remote-backup-services:
  - name: service1
    peer-ipv6: 2001:db8:10::2
    source-ipv6: 2001:db8:10::1
    port: 1025
    hold-time: 9s
remote-backup-profiles:
  - name: profile1
    service-type: [mld]
    backup-id: 10
    remote-backup-service: service1
    peer-backup: hot
    vrrp6: {vrid: 1, interface: ge2}
interfaces:
  - name: ge1
    addresses: [2001:db8:10::1/64]
  - name: ge2
    addresses: [2001:db8:50::1/64]
    mld:
      enable: true
      version: 2
      query-interval: 125s
      robustness: 2
      max-response-time: 10s
      last-listener-query-interval: 1s
      require-router-alert: true
      max-groups: 4096
      ignore-reports-while-backup: false
    vrrp6:
      - vrid: 1
        virtual-ip: [fe80::1, 2001:db8::50]
        priority: 200
        preempt: true
        preempt-delay: 10s
        advertise-interval: 1s
        accept-mode: false
        track-interface: [{name: ge3, reduced: 100}]
    multicast-track-vrrp6: 1
    remote-backup-profile: profile1
  - name: ge3
    addresses: [2001:db8:20::1/64]
`

// edit replaces exactly one occurrence of each old string in base.
func edit(t *testing.T, pairs ...string) string {
	t.Helper()
	s := base
	for i := 0; i+1 < len(pairs); i += 2 {
		if n := strings.Count(s, pairs[i]); n != 1 {
			t.Fatalf("edit: %q occurs %d times in base", pairs[i], n)
		}
		s = strings.Replace(s, pairs[i], pairs[i+1], 1)
	}
	return s
}

func TestBaseIsValid(t *testing.T) {
	c, err := LoadBytes([]byte(base))
	if err != nil {
		t.Fatalf("LoadBytes(base): %v", err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate on a loaded config: %v", err)
	}
	want := VRRP6{
		VRID:              1,
		VirtualIPs:        []netip.Addr{netip.MustParseAddr("fe80::1"), netip.MustParseAddr("2001:db8::50")},
		Priority:          200,
		Preempt:           true,
		PreemptDelay:      10 * time.Second,
		AdvertiseInterval: time.Second,
		TrackInterfaces:   []Track{{Name: "ge3", Reduced: 100}},
	}
	if got := c.VRRP6Group(VRRP6Ref{VRID: 1, Interface: "ge2"}); got == nil || !reflect.DeepEqual(*got, want) {
		t.Errorf("vrrp6 group = %+v, want %+v", got, want)
	}
	wantRoute := StaticRoute{
		Group:      netip.MustParseAddr("ff3e::1:1"),
		Source:     netip.MustParseAddr("2001:db8:40::2"),
		Incoming:   "ge3",
		Interfaces: []string{"ge2"},
	}
	if len(c.Multicast.StaticRoutes) != 1 || !reflect.DeepEqual(c.Multicast.StaticRoutes[0], wantRoute) {
		t.Errorf("static routes = %+v, want [%+v]", c.Multicast.StaticRoutes, wantRoute)
	}
	if s := c.Service("service1"); s == nil || s.HoldTime != 9*time.Second || s.Keepalive() != 3*time.Second {
		t.Errorf("service1 = %+v, want hold-time 9s, keepalive 3s", s)
	}
	if p := c.Profile("profile1"); p == nil || !p.HasService(ServiceMLD) || p.BackupID != 10 {
		t.Errorf("profile1 = %+v", p)
	}
	if c.Interface("ge9") != nil || c.Service("x") != nil || c.Profile("x") != nil {
		t.Error("lookup of a missing name returned non-nil")
	}
}

func TestExampleConfigs(t *testing.T) {
	dir := filepath.Join("..", "..", "configs")
	tests := []struct {
		file     string
		sysname  string
		lan      string // VRRP6 LAN interface
		upstream string
		priority uint8
		addrs    map[string]string
		peer     string
	}{
		// PIM-SM (upstream ""): the RPF comes from the FIB.
		{"deviceA.yaml", "DeviceA", "ge2", "", 200,
			map[string]string{"ge1": "2001:db8:10::1/64", "ge2": "2001:db8:50::1/64", "ge3": "2001:db8:20::1/64"}, "2001:db8:10::2"},
		{"deviceB.yaml", "DeviceB", "ge3", "", 120,
			map[string]string{"ge1": "2001:db8:10::2/64", "ge2": "2001:db8:30::1/64", "ge3": "2001:db8:50::2/64"}, "2001:db8:10::1"},
		{"static/deviceA.yaml", "DeviceA", "ge2", "ge3", 200,
			map[string]string{"ge1": "2001:db8:10::1/64", "ge2": "2001:db8:50::1/64", "ge3": "2001:db8:20::1/64"}, "2001:db8:10::2"},
		{"static/deviceB.yaml", "DeviceB", "ge3", "ge2", 120,
			map[string]string{"ge1": "2001:db8:10::2/64", "ge2": "2001:db8:30::1/64", "ge3": "2001:db8:50::2/64"}, "2001:db8:10::1"},
		{"hotcast.yaml", "DeviceA", "ge2", "ge3", 200,
			map[string]string{"ge1": "2001:db8:10::1/64", "ge2": "2001:db8:50::1/64", "ge3": "2001:db8:20::1/64"}, "2001:db8:10::2"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			c, err := Load(filepath.Join(dir, tt.file))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if c.Sysname != tt.sysname {
				t.Errorf("sysname = %q, want %q", c.Sysname, tt.sysname)
			}
			if want := "/run/hotcast/" + tt.sysname + ".sock"; c.API.Socket != want {
				t.Errorf("api.socket = %q, want %q", c.API.Socket, want)
			}
			if want := "/sys/fs/bpf/hotcast/" + tt.sysname; c.BPF.PinPath != want {
				t.Errorf("bpf.pin-path = %q, want %q", c.BPF.PinPath, want)
			}
			if !c.Multicast.RoutingEnable || c.Multicast.Upstream.Interface != tt.upstream || c.Multicast.Upstream.Mode != UpstreamStatic {
				t.Errorf("multicast = %+v, want routing on, upstream %q static", c.Multicast, tt.upstream)
			}
			if pimFile := tt.upstream == ""; pimFile {
				rp := []StaticRP{{Address: netip.MustParseAddr("2001:db8:22::22"), GroupRange: AllGroups()}}
				if c.PIM == nil || !reflect.DeepEqual(c.PIM.StaticRPs, rp) {
					t.Errorf("pim = %+v, want static-rp %v", c.PIM, rp)
				}
				for _, ic := range c.Interfaces {
					if ic.PIM == nil || ic.PIM.Mode != PIMModeSM {
						t.Errorf("interface %s: pim %+v, want sm (every interface of the reference runs pim ipv6 sm)", ic.Name, ic.PIM)
					}
				}
				if l := c.Interface(tt.lan); l.PIM == nil || !l.PIM.IgnoreDRState || !l.PIM.IgnoreAssertState {
					t.Errorf("LAN %s pim %+v, want ignore-dr-state and ignore-assert-state", tt.lan, l.PIM)
				}
			} else if c.PIMEnabled() {
				t.Errorf("static file runs pim")
			}
			for name, a := range tt.addrs {
				ifc := c.Interface(name)
				if ifc == nil || len(ifc.Addresses) != 1 || ifc.Addresses[0] != netip.MustParsePrefix(a) {
					t.Errorf("interface %s = %+v, want address %s", name, ifc, a)
				}
			}
			lan := c.Interface(tt.lan)
			if lan == nil || !lan.MLD.Enable || lan.MulticastTrackVRRP6 != 1 || lan.RemoteBackupProfile != "profile1" {
				t.Fatalf("LAN interface %s = %+v", tt.lan, lan)
			}
			g := lan.Group(1)
			if g == nil || g.Priority != tt.priority || g.PreemptDelay != 10*time.Second ||
				!reflect.DeepEqual(g.VirtualIPs, []netip.Addr{netip.MustParseAddr("fe80::1"), netip.MustParseAddr("2001:db8::50")}) {
				t.Errorf("vrrp6 vrid 1 = %+v", g)
			}
			s := c.Service("service1")
			if s == nil || s.PeerIPv6 != netip.MustParseAddr(tt.peer) || s.Port != 1025 {
				t.Errorf("service1 = %+v, want peer %s port 1025", s, tt.peer)
			}
			p := c.Profile("profile1")
			if p == nil || p.BackupID != 10 || p.PeerBackup != BackupHot || p.Service != "service1" ||
				!reflect.DeepEqual(p.ServiceTypes, []ServiceType{ServiceMLD}) || p.VRRP6 != (VRRP6Ref{1, tt.lan}) {
				t.Errorf("profile1 = %+v", p)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	c, err := LoadBytes([]byte(`
sysname: R1
remote-backup-services:
  - {name: s, peer-ipv6: "2001:db8::2", source-ipv6: "2001:db8::1"}
remote-backup-profiles:
  - {name: p, service-type: [mld], backup-id: 1, remote-backup-service: s, vrrp6: {vrid: 7, interface: eth0}}
interfaces:
  - name: eth0
    vrrp6:
      - vrid: 7
        virtual-ip: [fe80::7]
        track-interface: [{name: eth0}]
`))
	if err != nil {
		t.Fatalf("LoadBytes: %v", err)
	}
	want := &Config{
		Sysname:   "R1",
		API:       API{Socket: "/run/hotcast/R1.sock"},
		BPF:       BPF{PinPath: "/sys/fs/bpf/hotcast/R1", XDPMode: XDPNative},
		Multicast: Multicast{Upstream: Upstream{Mode: UpstreamStatic}},
		Services: []RBS{{
			Name:       "s",
			PeerIPv6:   netip.MustParseAddr("2001:db8::2"),
			SourceIPv6: netip.MustParseAddr("2001:db8::1"),
			Port:       1025,
		}},
		Profiles: []RBP{{
			Name: "p", ServiceTypes: []ServiceType{ServiceMLD}, BackupID: 1, Service: "s",
			PeerBackup: BackupHot, VRRP6: VRRP6Ref{VRID: 7, Interface: "eth0"},
		}},
		Interfaces: []Interface{{
			Name: "eth0",
			MLD: MLD{
				Version:                   2,
				QueryInterval:             125 * time.Second,
				Robustness:                2,
				MaxResponseTime:           10 * time.Second,
				LastListenerQueryInterval: time.Second,
				RequireRouterAlert:        true,
				MaxGroups:                 4096,
			},
			VRRP6: []VRRP6{{
				VRID:              7,
				VirtualIPs:        []netip.Addr{netip.MustParseAddr("fe80::7")},
				Priority:          100,
				Preempt:           true,
				AdvertiseInterval: time.Second,
				TrackInterfaces:   []Track{{Name: "eth0", Reduced: 10}},
			}},
		}},
		Loopback: Loopback{Interface: DefaultLoopbackInterface},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", c, want)
	}
	if err := want.Validate(); err != nil {
		t.Errorf("Validate(defaulted config built in code): %v", err)
	}
}

func TestStaticRouteIncomingDefault(t *testing.T) {
	c, err := LoadBytes([]byte(edit(t, "      incoming: ge3\n", "")))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Multicast.StaticRoutes[0].Incoming; got != "ge3" {
		t.Errorf("incoming = %q, want the upstream interface ge3", got)
	}
}

func TestInvalid(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		path string // the FieldError path expected
		msg  string // substring of that error's message
		is   error  // optional sentinel
	}{
		{"unknown top-level key", edit(t, "sysname: DeviceA\n", "sysname: DeviceA\nsysnmae: x\n"),
			"sysnmae", "unknown key", ErrUnknownKey},
		{"unknown nested key", edit(t, "    mode: static\n", "    mode: static\n  upstreem: {}\n"),
			"multicast.upstreem", "unknown key", ErrUnknownKey},
		{"unknown key in list element", edit(t, "        priority: 200\n", "        priority: 200\n        priorty: 100\n"),
			"interfaces[1].vrrp6[0].priorty", "unknown key", ErrUnknownKey},
		{"unknown key in flow map in list", edit(t, "{name: ge3, reduced: 100}", "{name: ge3, reduce: 100}"),
			"interfaces[1].vrrp6[0].track-interface[0].reduce", "unknown key", ErrUnknownKey},
		{"unknown top-level key with null value", edit(t, "sysname: DeviceA\n", "sysname: DeviceA\nmetrics:\n"),
			"metrics", "unknown key", ErrUnknownKey},
		{"unknown nested key with null value", edit(t, "  xdp-mode: native\n", "  xdp-mode: native\n  pin_path:\n"),
			"bpf.pin_path", "unknown key", ErrUnknownKey},
		{"unknown key in a list element map", edit(t, "    hold-time: 9s\n", "    hold-time: 9s\n    tls: {cert: /c, key: /k, ca: /ca, verify: {}}\n"),
			"remote-backup-services[0].tls.verify", "unknown key", ErrUnknownKey},
		{"wrong type bool", edit(t, "  routing-enable: true\n", "  routing-enable: \"yes\"\n"),
			"multicast.routing-enable", "expected true or false", ErrType},
		{"wrong type duration", edit(t, "      query-interval: 125s\n", "      query-interval: 125\n"),
			"interfaces[1].mld.query-interval", "duration", ErrType},
		{"map instead of list", edit(t, "    addresses: [2001:db8:20::1/64]\n", "    addresses: {a: b}\n"),
			"interfaces[2].addresses", "expected a list, got map", ErrType},
		{"scalar instead of map", edit(t, "    vrrp6: {vrid: 1, interface: ge2}\n", "    vrrp6: ge2\n"),
			"remote-backup-profiles[0].vrrp6", "expected a map, got string", ErrType},
		{"bad duration", edit(t, "        preempt-delay: 10s\n", "        preempt-delay: ten\n"),
			"interfaces[1].vrrp6[0].preempt-delay", "invalid duration", nil},
		{"bad egress mode", edit(t, "    addresses: [2001:db8:20::1/64]\n", "    addresses: [2001:db8:20::1/64]\n    egress: broadcast\n"),
			"interfaces[2].egress", "invalid mode", nil},
		{"missing sysname", edit(t, "sysname: DeviceA\n", ""),
			"sysname", "required", ErrRequired},
		{"bad sysname", edit(t, "sysname: DeviceA\n", "sysname: \"..\"\n"),
			"sysname", "invalid name", nil},
		{"relative socket", edit(t, "  socket: /run/hotcast/DeviceA.sock\n", "  socket: hotcast.sock\n"),
			"api.socket", "absolute", nil},
		{"bad metrics listen", edit(t, `  metrics-listen: "[::1]:9469"`, `  metrics-listen: "localhost"`),
			"api.metrics-listen", "host:port", nil},
		{"pin path outside bpffs", edit(t, "  pin-path: /sys/fs/bpf/hotcast/DeviceA\n", "  pin-path: /tmp/hotcast\n"),
			"bpf.pin-path", "below the bpffs", nil},
		{"bad xdp mode", edit(t, "  xdp-mode: native\n", "  xdp-mode: offload\n"),
			"bpf.xdp-mode", "invalid mode", nil},
		{"bad upstream mode", edit(t, "    mode: static\n", "    mode: pim\n"),
			"multicast.upstream.mode", "invalid mode", nil},
		{"upstream unknown interface", edit(t, "    interface: ge3\n", "    interface: ge9\n"),
			"multicast.upstream.interface", "ge9", ErrUndefined},
		{"upstream required with routing", edit(t, "    interface: ge3\n", ""),
			"multicast.upstream.interface", "required", ErrRequired},
		{"mld-proxy upstream runs mld", edit(t, "    mode: static\n", "    mode: mld-proxy\n", "    interface: ge3\n", "    interface: ge2\n", "      interfaces: [ge2]\n", "      interfaces: [ge1]\n"),
			"multicast.upstream.interface", "RFC 4605", nil},
		{"static routes without routing", edit(t, "  routing-enable: true\n", "  routing-enable: false\n"),
			"multicast.static-routes", "routing-enable", nil},
		{"bad group address", edit(t, "    - group: ff3e::1:1\n", "    - group: ff3e::g\n"),
			"multicast.static-routes[0].group", "invalid IPv6 address", nil},
		{"IPv4 group", edit(t, "    - group: ff3e::1:1\n", "    - group: 239.1.1.1\n"),
			"multicast.static-routes[0].group", "not an IPv6 address", nil},
		{"non-multicast group", edit(t, "    - group: ff3e::1:1\n", "    - group: 2001:db8::1\n"),
			"multicast.static-routes[0].group", "not an IPv6 multicast", nil},
		{"link-local scope group", edit(t, "    - group: ff3e::1:1\n", "    - group: ff02::1:3\n"),
			"multicast.static-routes[0].group", "scope 2", nil},
		{"transient link-local scope group", edit(t, "    - group: ff3e::1:1\n", "    - group: ff12::1\n"),
			"multicast.static-routes[0].group", "scope 2", nil},
		{"SSM group without source", edit(t, "      source: 2001:db8:40::2\n", ""),
			"multicast.static-routes[0].source", "SSM", ErrRequired},
		{"multicast source", edit(t, "      source: 2001:db8:40::2\n", "      source: ff0e::1\n"),
			"multicast.static-routes[0].source", "routable unicast", nil},
		{"outgoing equals incoming", edit(t, "      interfaces: [ge2]\n", "      interfaces: [ge2, ge3]\n"),
			"multicast.static-routes[0].interfaces[1]", "incoming", nil},
		{"outgoing unknown", edit(t, "      interfaces: [ge2]\n", "      interfaces: [ge7]\n"),
			"multicast.static-routes[0].interfaces[0]", "ge7", ErrUndefined},
		{"duplicate static route", edit(t, "      interfaces: [ge2]\n", "      interfaces: [ge2]\n    - {group: ff3e::1:1, source: 2001:db8:40::2, interfaces: [ge1]}\n"),
			"multicast.static-routes[1]", "duplicate", ErrDuplicate},
		{"bad peer address", edit(t, "    peer-ipv6: 2001:db8:10::2\n", "    peer-ipv6: 2001:db8:10::zz\n"),
			"remote-backup-services[0].peer-ipv6", "invalid IPv6 address", nil},
		{"address with zone", edit(t, "    peer-ipv6: 2001:db8:10::2\n", "    peer-ipv6: fe80::2%ge1\n"),
			"remote-backup-services[0].peer-ipv6", "zones", nil},
		{"link-local peer", edit(t, "    peer-ipv6: 2001:db8:10::2\n", "    peer-ipv6: fe80::2\n"),
			"remote-backup-services[0].peer-ipv6", "global unicast", nil},
		{"missing source", edit(t, "    source-ipv6: 2001:db8:10::1\n", ""),
			"remote-backup-services[0].source-ipv6", "required", ErrRequired},
		{"port 0", edit(t, "    port: 1025\n", "    port: 0\n"),
			"remote-backup-services[0].port", "1..65535", nil},
		{"port 65536", edit(t, "    port: 1025\n", "    port: 65536\n"),
			"remote-backup-services[0].port", "1..65535", nil},
		{"port as string", edit(t, "    port: 1025\n", "    port: \"1025\"\n"),
			"remote-backup-services[0].port", "integer", ErrType},
		{"hold time too short", edit(t, "    hold-time: 9s\n", "    hold-time: 300ms\n"),
			"remote-backup-services[0].hold-time", "1s..", nil},
		{"partial tls", edit(t, "    hold-time: 9s\n", "    hold-time: 9s\n    tls: {cert: /etc/c.pem, key: /etc/k.pem}\n"),
			"remote-backup-services[0].tls.ca", "cert, key and ca together", ErrRequired},
		{"relative tls path", edit(t, "    hold-time: 9s\n", "    hold-time: 9s\n    tls: {cert: c.pem, key: /k, ca: /ca}\n"),
			"remote-backup-services[0].tls.cert", "absolute", nil},
		{"duplicate service", edit(t, "    hold-time: 9s\n", "    hold-time: 9s\n  - {name: service1, peer-ipv6: \"2001:db8:11::2\", source-ipv6: \"2001:db8:11::1\"}\n"),
			"remote-backup-services[1].name", "duplicate", ErrDuplicate},
		{"profile missing service", edit(t, "    remote-backup-service: service1\n", "    remote-backup-service: service2\n"),
			"remote-backup-profiles[0].remote-backup-service", "service2", ErrUndefined},
		{"profile missing vrrp6 group", edit(t, "    vrrp6: {vrid: 1, interface: ge2}\n", "    vrrp6: {vrid: 2, interface: ge2}\n"),
			"remote-backup-profiles[0].vrrp6.vrid", "vrid 2", ErrUndefined},
		{"profile vrrp6 on unknown interface", edit(t, "    vrrp6: {vrid: 1, interface: ge2}\n", "    vrrp6: {vrid: 1, interface: ge5}\n"),
			"remote-backup-profiles[0].vrrp6.interface", "ge5", ErrUndefined},
		{"profile without vrrp6", edit(t, "    vrrp6: {vrid: 1, interface: ge2}\n", ""),
			"remote-backup-profiles[0].vrrp6", "required", ErrRequired},
		{"peer-backup cold", edit(t, "    peer-backup: hot\n", "    peer-backup: cold\n"),
			"remote-backup-profiles[0].peer-backup", "hot backup only", ErrUnsupported},
		{"peer-backup bogus", edit(t, "    peer-backup: hot\n", "    peer-backup: lukewarm\n"),
			"remote-backup-profiles[0].peer-backup", "invalid mode", nil},
		{"service-type igmp", edit(t, "    service-type: [mld]\n", "    service-type: [mld, igmp]\n"),
			"remote-backup-profiles[0].service-type[1]", "igmp", ErrUnsupported},
		{"service-type empty", edit(t, "    service-type: [mld]\n", "    service-type: []\n"),
			"remote-backup-profiles[0].service-type", "at least one", ErrRequired},
		{"backup-id 0", edit(t, "    backup-id: 10\n", "    backup-id: 0\n"),
			"remote-backup-profiles[0].backup-id", "1..65535", nil},
		{"backup-id missing", edit(t, "    backup-id: 10\n", ""),
			"remote-backup-profiles[0].backup-id", "required", ErrRequired},
		{"duplicate profile name", edit(t, "    vrrp6: {vrid: 1, interface: ge2}\n", "    vrrp6: {vrid: 1, interface: ge2}\n  - {name: profile1, service-type: [mld], backup-id: 11, remote-backup-service: service1, vrrp6: {vrid: 1, interface: ge2}}\n"),
			"remote-backup-profiles[1].name", "duplicate", ErrDuplicate},
		{"duplicate backup-id on a service", edit(t, "    vrrp6: {vrid: 1, interface: ge2}\n", "    vrrp6: {vrid: 1, interface: ge2}\n  - {name: profile2, service-type: [mld], backup-id: 10, remote-backup-service: service1, vrrp6: {vrid: 1, interface: ge2}}\n"),
			"remote-backup-profiles[1].backup-id", "duplicate", ErrDuplicate},
		{"duplicate interface", edit(t, "  - name: ge3\n", "  - name: ge1\n"),
			"interfaces[2].name", "duplicate", ErrDuplicate},
		{"interface name too long", edit(t, "  - name: ge1\n", "  - name: averyveryverylongname\n"),
			"interfaces[0].name", "IFNAMSIZ", nil},
		{"interface name with slash", edit(t, "  - name: ge1\n", "  - name: ge/1\n"),
			"interfaces[0].name", "invalid interface name", nil},
		{"bad prefix", edit(t, "    addresses: [2001:db8:10::1/64]\n", "    addresses: [2001:db8:10::1]\n"),
			"interfaces[0].addresses[0]", "invalid IPv6 prefix", nil},
		{"duplicate address", edit(t, "    addresses: [2001:db8:20::1/64]\n", "    addresses: [2001:db8:10::1/120]\n"),
			"interfaces[2].addresses[0]", "duplicate", ErrDuplicate},
		{"mld version 3", edit(t, "      version: 2\n", "      version: 3\n"),
			"interfaces[1].mld.version", "1..2", nil},
		{"robustness 0", edit(t, "      robustness: 2\n", "      robustness: 0\n"),
			"interfaces[1].mld.robustness", "1..7", nil},
		{"max-response-time = query-interval", edit(t, "      max-response-time: 10s\n", "      max-response-time: 125s\n"),
			"interfaces[1].mld.max-response-time", "less than query-interval", nil},
		{"max-response-time > query-interval", edit(t, "      query-interval: 125s\n", "      query-interval: 5s\n"),
			"interfaces[1].mld.max-response-time", "less than query-interval", nil},
		{"max-response-time v1 too large", edit(t, "      version: 2\n", "      version: 1\n", "      query-interval: 125s\n", "      query-interval: 200s\n", "      max-response-time: 10s\n", "      max-response-time: 70s\n"),
			"interfaces[1].mld.max-response-time", "MLDv1", nil},
		{"max-response-time v2 too large", edit(t, "      query-interval: 125s\n", "      query-interval: 18000s\n", "      max-response-time: 10s\n", "      max-response-time: 8388s\n"),
			"interfaces[1].mld.max-response-time", "MLDv2", nil},
		{"query-interval fraction", edit(t, "      query-interval: 125s\n", "      query-interval: 125.5s\n"),
			"interfaces[1].mld.query-interval", "whole number of seconds", nil},
		{"max-groups fraction", edit(t, "      max-groups: 4096\n", "      max-groups: 1.5\n"),
			"interfaces[1].mld.max-groups", "expected an integer, got 1.5", ErrType},
		{"two errors on one key", edit(t, "      version: 2\n", "      version: 1\n", "      query-interval: 125s\n", "      query-interval: 60s\n", "      max-response-time: 10s\n", "      max-response-time: 100s\n"),
			"interfaces[1].mld.max-response-time", "less than query-interval", nil},
		{"max-groups 0", edit(t, "      max-groups: 4096\n", "      max-groups: 0\n"),
			"interfaces[1].mld.max-groups", "1..", nil},
		{"ignore reports without track", edit(t, "      ignore-reports-while-backup: false\n", "      ignore-reports-while-backup: true\n", "    multicast-track-vrrp6: 1\n", ""),
			"interfaces[1].mld.ignore-reports-while-backup", "multicast-track-vrrp6", nil},
		{"vrid 0", edit(t, "      - vrid: 1\n", "      - vrid: 0\n"),
			"interfaces[1].vrrp6[0].vrid", "1..255", nil},
		{"vrid 256", edit(t, "      - vrid: 1\n", "      - vrid: 256\n"),
			"interfaces[1].vrrp6[0].vrid", "255", nil},
		{"duplicate vrid", edit(t, "    multicast-track-vrrp6: 1\n", "      - {vrid: 1, virtual-ip: [fe80::2]}\n    multicast-track-vrrp6: 1\n"),
			"interfaces[1].vrrp6[1].vrid", "duplicate", ErrDuplicate},
		{"priority 0", edit(t, "        priority: 200\n", "        priority: 0\n"),
			"interfaces[1].vrrp6[0].priority", "0 is reserved", nil},
		{"priority 256", edit(t, "        priority: 200\n", "        priority: 256\n"),
			"interfaces[1].vrrp6[0].priority", "1..255", nil},
		{"priority negative", edit(t, "        priority: 200\n", "        priority: -1\n"),
			"interfaces[1].vrrp6[0].priority", "1..255", nil},
		{"no virtual ip", edit(t, "        virtual-ip: [fe80::1, 2001:db8::50]\n", ""),
			"interfaces[1].vrrp6[0].virtual-ip", "at least one", ErrRequired},
		{"first virtual ip global", edit(t, "        virtual-ip: [fe80::1, 2001:db8::50]\n", "        virtual-ip: [2001:db8::50, fe80::1]\n"),
			"interfaces[1].vrrp6[0].virtual-ip[0]", "link-local", nil},
		{"bad virtual ip", edit(t, "        virtual-ip: [fe80::1, 2001:db8::50]\n", "        virtual-ip: [fe80::1, 2001:db8::5000000]\n"),
			"interfaces[1].vrrp6[0].virtual-ip[1]", "invalid IPv6 address", nil},
		{"advertise-interval 5ms", edit(t, "        advertise-interval: 1s\n", "        advertise-interval: 5ms\n"),
			"interfaces[1].vrrp6[0].advertise-interval", "10ms..40.95s", nil},
		{"advertise-interval 41s", edit(t, "        advertise-interval: 1s\n", "        advertise-interval: 41s\n"),
			"interfaces[1].vrrp6[0].advertise-interval", "10ms..40.95s", nil},
		{"advertise-interval 15ms", edit(t, "        advertise-interval: 1s\n", "        advertise-interval: 15ms\n"),
			"interfaces[1].vrrp6[0].advertise-interval", "multiple of 10ms", nil},
		{"preempt-delay too long", edit(t, "        preempt-delay: 10s\n", "        preempt-delay: 2h\n"),
			"interfaces[1].vrrp6[0].preempt-delay", "1h0m0s", nil},
		{"preempt-delay without preempt", edit(t, "        preempt: true\n", "        preempt: false\n"),
			"interfaces[1].vrrp6[0].preempt-delay", "no effect", nil},
		{"track unknown interface", edit(t, "{name: ge3, reduced: 100}", "{name: ge4, reduced: 100}"),
			"interfaces[1].vrrp6[0].track-interface[0].name", "ge4", ErrUndefined},
		{"track reduced 0", edit(t, "{name: ge3, reduced: 100}", "{name: ge3, reduced: 0}"),
			"interfaces[1].vrrp6[0].track-interface[0].reduced", "1..255", nil},
		{"track vrid not on interface", edit(t, "    multicast-track-vrrp6: 1\n", "    multicast-track-vrrp6: 2\n"),
			"interfaces[1].multicast-track-vrrp6", "vrid 2", ErrUndefined},
		{"track vrid 0", edit(t, "    multicast-track-vrrp6: 1\n", "    multicast-track-vrrp6: 0\n"),
			"interfaces[1].multicast-track-vrrp6", "1..255", nil},
		{"missing profile", edit(t, "    remote-backup-profile: profile1\n", "    remote-backup-profile: profile9\n"),
			"interfaces[1].remote-backup-profile", "profile9", ErrUndefined},
		{"profile on the wrong interface", edit(t, "    remote-backup-profile: profile1\n", "", "    addresses: [2001:db8:20::1/64]\n", "    addresses: [2001:db8:20::1/64]\n    remote-backup-profile: profile1\n"),
			"interfaces[2].remote-backup-profile", "not \"ge3\"", nil},
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
				t.Fatalf("LoadBytes succeeded, want an error at %s", tt.path)
			}
			if c != nil {
				t.Errorf("LoadBytes returned a Config with an error")
			}
			var found *FieldError
			atPath := 0
			for _, fe := range FieldErrors(err) {
				if fe.Path != tt.path {
					continue
				}
				atPath++
				if strings.Contains(fe.Error(), tt.msg) {
					found = fe
					break
				}
			}
			if found == nil {
				t.Fatalf("%d errors at %s, none mentioning %q; got:\n%v", atPath, tt.path, tt.msg, err)
			}
			if !strings.Contains(err.Error(), tt.path+": ") {
				t.Errorf("joined error does not name %s:\n%v", tt.path, err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(%v) = false for %q", tt.is, found)
			}
			if tt.is != nil && !errors.Is(found, tt.is) {
				t.Errorf("%q does not wrap %v", found, tt.is)
			}
		})
	}
}

// TestAllErrorsSortedAndNotRepeated checks that every problem is reported
// once, in path order with numeric list indices, and that a value the
// decoder rejected is not reported again by Validate.
func TestAllErrorsSortedAndNotRepeated(t *testing.T) {
	var b strings.Builder
	b.WriteString("sysname: R\nmulticast: {bogus: 1}\ninterfaces:\n")
	for i := range 12 {
		if i == 2 || i == 10 {
			b.WriteString("  - {name: e" + string(rune('a'+i)) + ", vrrp6: [{vrid: 1, virtual-ip: [nope]}]}\n")
			continue
		}
		b.WriteString("  - {name: e" + string(rune('a'+i)) + "}\n")
	}
	b.WriteString("zzz: 1\n")
	_, err := LoadBytes([]byte(b.String()))
	got := []string{}
	for _, fe := range FieldErrors(err) {
		got = append(got, fe.Path)
	}
	want := []string{
		"interfaces[2].vrrp6[0].virtual-ip[0]",
		"interfaces[10].vrrp6[0].virtual-ip[0]",
		"multicast.bogus",
		"zzz",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("error paths = %q, want %q\n%v", got, want, err)
	}
}

func TestValidateIsPure(t *testing.T) {
	c, err := LoadBytes([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	c.Interfaces[1].VRRP6[0].Priority = 0
	c.Interfaces[1].MLD.Version = 9
	before := *c
	err = c.Validate()
	if !reflect.DeepEqual(before, *c) {
		t.Error("Validate modified the config")
	}
	paths := []string{}
	for _, fe := range FieldErrors(err) {
		paths = append(paths, fe.Path)
	}
	want := []string{"interfaces[1].mld.version", "interfaces[1].vrrp6[0].priority"}
	if !reflect.DeepEqual(paths, want) {
		t.Errorf("Validate paths = %q, want %q", paths, want)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Error("Load of a missing file succeeded")
	}
	bad := filepath.Join(dir, "bad.conf") // any extension: always YAML
	if err := os.WriteFile(bad, []byte("sysname: [unclosed\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("Load(syntax error) = %v, want an error naming the file", err)
	}
	dup := filepath.Join(dir, "dup.conf")
	if err := os.WriteFile(dup, []byte("sysname: a\nsysname: b\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dup); err == nil {
		t.Error("Load accepted a duplicate key")
	}
	ok := filepath.Join(dir, "hotcast.conf")
	if err := os.WriteFile(ok, []byte(base), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(ok); err != nil {
		t.Errorf("Load(%s): %v", ok, err)
	}
	c, err := Parse(strings.NewReader(""))
	if fes := FieldErrors(err); c != nil || len(fes) != 1 || fes[0].Path != "sysname" || !errors.Is(err, ErrRequired) {
		t.Errorf("Parse(empty) = %v, %v; want only sysname: required", c, err)
	}
}

func TestComparePaths(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"interfaces[2].name", "interfaces[10].name", -1},
		{"interfaces[10]", "interfaces[2].name", 1},
		{"api.socket", "bpf.pin-path", -1},
		{"a", "a.b", -1},
		{"x[1].y", "x[1].y", 0},
	}
	for _, tt := range tests {
		got := comparePaths(tt.a, tt.b)
		if (got < 0) != (tt.want < 0) || (got > 0) != (tt.want > 0) {
			t.Errorf("comparePaths(%q, %q) = %d, want sign of %d", tt.a, tt.b, got, tt.want)
		}
	}
}

// FuzzLoadBytes checks that no input panics and that whatever LoadBytes
// accepts also passes Validate (Load never returns an invalid Config).
func FuzzLoadBytes(f *testing.F) {
	f.Add([]byte(base))
	f.Add([]byte(""))
	f.Add([]byte("sysname: R\ninterfaces: [{name: e, vrrp6: [{vrid: 1, virtual-ip: [fe80::1]}]}]\n"))
	f.Add([]byte("sysname: R\nmulticast: {upstreem: {}}\n"))
	f.Add([]byte("- a\n- b\n"))
	f.Add([]byte("sysname: R\ninterfaces: [7, {name: [x]}, {vrrp6: {}}]\n"))
	f.Add([]byte("sysname: R\n1: x\n"))
	f.Add([]byte("a: &x {b: *x}\n"))
	f.Add([]byte("sysname: R\ninterfaces: [{name: e, mld: {max-groups: 1.5, robustness: 1e300}}]\n"))
	f.Add([]byte("sysname: R\nmulticast: {routing-enable: true}\ninterfaces: [{name: e, mld: {enable: true}, pim: {mode: sm, dr-priority: 0}}]\n" +
		"loopback: {addresses: [2001:db8::1/128]}\npim: {static-rp: [{address: 2001:db8::1, group-range: ff0e::/16}], spt-switch: never}\n"))
	for _, name := range []string{"deviceA.yaml", "deviceB.yaml", "deviceD.yaml", "static/deviceA.yaml", "hotcast.yaml"} {
		if b, err := os.ReadFile(filepath.Join("..", "..", "configs", name)); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := LoadBytes(b)
		if err != nil {
			if c != nil {
				t.Fatal("Config returned with an error")
			}
			for _, fe := range FieldErrors(err) {
				if fe.Err == nil {
					t.Fatalf("FieldError %q without cause", fe.Path)
				}
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("LoadBytes accepted a config that Validate rejects: %v", err)
		}
	})
}

func TestDiff(t *testing.T) {
	a, err := LoadBytes([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if got := Diff(a, a); !got.Empty() {
		t.Errorf("Diff(a, a) = %v, want none", got.Strings())
	}
	b, err := LoadBytes([]byte(edit(t,
		"        priority: 200\n", "        priority: 150\n",
		"      - vrid: 1\n", "      - {vrid: 2, virtual-ip: [fe80::2]}\n      - vrid: 1\n",
		"      query-interval: 125s\n", "      query-interval: 60s\n",
		"    port: 1025\n", "    port: 2000\n",
		"  - name: ge1\n    addresses: [2001:db8:10::1/64]\n", "",
		"    addresses: [2001:db8:20::1/64]\n", "    addresses: [2001:db8:20::1/64]\n    egress: clone\n  - name: ge4\n",
	)))
	if err != nil {
		t.Fatal(err)
	}
	cs := Diff(a, b)
	got := []string{}
	got = append(got, cs.Strings()...)
	want := []string{
		"remote-backup-services[service1] modified",
		"interfaces[ge2].mld modified",
		"interfaces[ge2].vrrp6[2] added",
		"interfaces[ge2].vrrp6[1] modified",
		"interfaces[ge3].egress modified",
		"interfaces[ge4] added",
		"interfaces[ge1] removed",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Diff = %q\nwant %q", got, want)
	}
}

// TestDiffTyped: the change set of TestDiff as the fields a reload reads,
// and the lookups.
func TestDiffTyped(t *testing.T) {
	a, err := LoadBytes([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadBytes([]byte(edit(t,
		"sysname: DeviceA\n", "sysname: DeviceB\napi: {socket: /run/hotcast/DeviceA.sock}\n",
		"api:\n  socket: /run/hotcast/DeviceA.sock\n  metrics-listen: \"[::1]:9469\"\n", "",
		"  xdp-mode: native\n", "  xdp-mode: generic\n",
		"    mode: static\n", "    mode: mld-proxy\n",
		"      interfaces: [ge2]\n", "      interfaces: [ge2, ge1]\n",
		"    backup-id: 10\n", "    backup-id: 11\n",
		"    addresses: [2001:db8:10::1/64]\n", "    addresses: [2001:db8:10::1/64, 2001:db8:11::1/64]\n",
		"    multicast-track-vrrp6: 1\n    remote-backup-profile: profile1\n", "",
		"    vrrp6: {vrid: 1, interface: ge2}\n", "    vrrp6: {vrid: 1, interface: ge3}\n",
		"  - name: ge3\n    addresses: [2001:db8:20::1/64]\n", "  - name: ge3\n    addresses: [2001:db8:20::1/64]\n    vrrp6: [{vrid: 1, virtual-ip: [fe80::3]}]\n    remote-backup-profile: profile1\n",
		"      enable: true\n", "      enable: false\n",
	)))
	if err != nil {
		t.Fatal(err)
	}
	cs := Diff(a, b)
	want := ChangeSet{
		Sysname: true, API: true, BPF: true, Upstream: true, StaticRoutes: true,
		Profiles: []NamedChange{{"profile1", Modified}},
		Interfaces: []InterfaceChange{
			{Name: "ge1", Op: Modified, Addresses: true},
			{Name: "ge2", Op: Modified, MLD: true, TrackVRRP6: true, Profile: true},
			{Name: "ge3", Op: Modified, Profile: true, VRRP6: []GroupChange{{1, Added}}},
		},
	}
	if !reflect.DeepEqual(cs, want) {
		t.Errorf("Diff =\n %+v\nwant\n %+v", cs, want)
	}
	if cs.Empty() || cs.Profile("profile1") != Modified || cs.Service("service1") != Unchanged ||
		cs.Interface("ge9") != nil || cs.Interface("ge3").Group(1) != Added || cs.Interface("ge3").Group(2) != Unchanged {
		t.Errorf("lookups on %v", cs.Strings())
	}
	wantStr := "sysname modified, api modified, bpf modified, multicast.upstream modified, multicast.static-routes modified, " +
		"remote-backup-profiles[profile1] modified, interfaces[ge1].addresses modified, interfaces[ge2].mld modified, " +
		"interfaces[ge2].multicast-track-vrrp6 modified, interfaces[ge2].remote-backup-profile modified, " +
		"interfaces[ge3].remote-backup-profile modified, interfaces[ge3].vrrp6[1] added"
	if got := cs.String(); got != wantStr {
		t.Errorf("String() =\n %s\nwant\n %s", got, wantStr)
	}
}

// TestDiffOrderOnly: reordering lists (interfaces, their groups, services)
// is no change.
func TestDiffOrderOnly(t *testing.T) {
	a, err := LoadBytes([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	b := *a
	b.Interfaces = slices.Clone(a.Interfaces)
	slices.Reverse(b.Interfaces)
	ge2 := &b.Interfaces[1]
	ge2.VRRP6 = append([]VRRP6{{VRID: 9, VirtualIPs: []netip.Addr{netip.MustParseAddr("fe80::9")}}}, ge2.VRRP6...)
	c := b
	c.Interfaces = slices.Clone(b.Interfaces)
	c.Interfaces[1].VRRP6 = []VRRP6{ge2.VRRP6[1], ge2.VRRP6[0]}
	if cs := Diff(&b, &c); !cs.Empty() {
		t.Errorf("Diff of reordered groups = %v, want none", cs.Strings())
	}
	if cs := Diff(a, &b); !reflect.DeepEqual(cs.Strings(), []string{"interfaces[ge2].vrrp6[9] added"}) {
		t.Errorf("Diff with reversed interfaces = %v", cs.Strings())
	}
}

// TestDecodeNullAndEmpty: one decode sees the whole document: unknown keys
// whose value is null or {} at any depth are reported, known keys whose
// value is null or {} are as absent (defaults), and a map whose keys are
// all null counts as empty.
func TestDecodeNullAndEmpty(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		unknown    []string // paths of the unknown-key errors expected, in order
	}{
		{"top-level {}", "sysname: R\nmetrics: {}\n", []string{"metrics"}},
		{"nested null in a list element", "sysname: R\ninterfaces: [{name: e, mld: {enabel: }}]\n", []string{"interfaces[0].mld.enabel"}},
		{"nested {} in a list element", "sysname: R\ninterfaces:\n  - name: e\n    vrrp6: [{vrid: 1, virtual-ip: [fe80::1], tracks: {}}]\n",
			[]string{"interfaces[0].vrrp6[0].tracks"}},
		{"upper case folded", "sysname: R\nMulticast: {Upstreem: }\n", []string{"multicast.upstreem"}},
		{"several, sorted", "sysname: R\nzz: {}\naa:\nbpf: {pin_path: , xdp_mode: {}}\n", []string{"aa", "bpf.pin_path", "bpf.xdp_mode", "zz"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadBytes([]byte(tc.yaml))
			var got []string
			for _, fe := range FieldErrors(err) {
				if !errors.Is(fe, ErrUnknownKey) || fe.Error() != fe.Path+": unknown key" {
					t.Errorf("unexpected error %q", fe)
					continue
				}
				got = append(got, fe.Path)
			}
			if !slices.Equal(got, tc.unknown) {
				t.Errorf("unknown keys %q, want %q\n%v", got, tc.unknown, err)
			}
		})
	}

	c, err := LoadBytes([]byte("sysname: R\napi:\nbpf: {}\nmulticast: {upstream: {interface: }}\ninterfaces:\n  - {name: e, mld: {}, addresses: }\n"))
	if err != nil {
		t.Fatalf("null and {} for known keys: %v", err)
	}
	if c.API.Socket != "/run/hotcast/R.sock" || c.BPF.XDPMode != XDPNative || c.Interfaces[0].MLD.Version != DefaultMLDVersion {
		t.Errorf("defaults not applied: %+v", c)
	}

	// tls: {} and tls with null keys are plain TCP, as documented; a
	// profile's vrrp6: {} is missing.
	rbs := "sysname: R\nremote-backup-services:\n  - {name: s, peer-ipv6: \"2001:db8::2\", source-ipv6: \"2001:db8::1\", tls: TLS}\n"
	for _, tls := range []string{"{}", "{cert: , key: , ca: }"} {
		c, err := LoadBytes([]byte(strings.Replace(rbs, "TLS", tls, 1)))
		if err != nil || c.Services[0].TLS != nil {
			t.Errorf("tls: %s: %v, %+v; want plain TCP", tls, err, c)
		}
	}
	_, err = LoadBytes([]byte(strings.Replace(rbs, "TLS", "{cert: /c}", 1)))
	if fes := FieldErrors(err); len(fes) != 2 || fes[0].Path != "remote-backup-services[0].tls.ca" || fes[1].Path != "remote-backup-services[0].tls.key" {
		t.Errorf("partial tls: %v", err)
	}
	prof := rbs + "remote-backup-profiles:\n  - {name: p, service-type: [mld], backup-id: 1, remote-backup-service: s, vrrp6: {}}\n"
	_, err = LoadBytes([]byte(strings.Replace(prof, "TLS", "{}", 1)))
	if fes := FieldErrors(err); len(fes) != 1 || fes[0].Path != "remote-backup-profiles[0].vrrp6" || !errors.Is(err, ErrRequired) {
		t.Errorf("vrrp6: {}: %v, want only remote-backup-profiles[0].vrrp6: required", err)
	}
}
