package daemon

import (
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/hotcast/hotcast/cmd/internal/config"
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
	b, err := os.ReadFile("../../../configs/deviceA.yaml")
	if err != nil {
		t.Fatal(err)
	}
	base := string(b)
	d := &Daemon{cfg: loadConfig(t, base), log: slog.New(slog.DiscardHandler)}
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
		{"sysname", []string{"sysname: DeviceA ", "sysname: DeviceZ "}, []string{"sysname modified (it names"}},
		{"bpf", []string{"  xdp-mode: native", "  xdp-mode: generic"}, []string{"bpf modified"}},
		{"upstream", []string{"    mode: static", "    mode: mld-proxy"}, []string{"multicast.upstream modified"}},
		{"rbs port", []string{"    port: 1025 ", "    port: 1026 "}, []string{"remote-backup-services[service1] modified"}},
		{"mld off on the profile's interface", []string{"      enable: true ", "      enable: false "}, []string{"interfaces[ge2].mld modified (the remote backup profile"}},
		{"addresses", []string{"[2001:db8:20::1/64]", "[2001:db8:20::1/64, 2001:db8:21::1/64]"}, []string{"interfaces[ge3].addresses modified"}},
		{"egress", []string{"  - name: ge1 ", "  - name: ge1\n    egress: clone "}, []string{"interfaces[ge1].egress modified"}},
		{"mixed", []string{"sysname: DeviceA ", "sysname: DeviceZ ", "        priority: 200 ", "        priority: 100 "}, []string{"sysname modified"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next := loadConfig(t, edit(t, base, tc.edits...))
			changes := config.Diff(d.cfg, next)
			if len(changes) == 0 {
				t.Fatal("no change")
			}
			got := d.refused(next, changes)
			if len(got) != len(tc.refused) {
				t.Fatalf("refused %q, want %q (changes %v)", got, tc.refused, changes)
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

func TestInterfacePath(t *testing.T) {
	for _, tc := range []struct {
		path, name, rest string
		ok               bool
	}{
		{"interfaces[ge2].vrrp6[1]", "ge2", "vrrp6[1]", true},
		{"interfaces[ge2]", "ge2", "", true},
		{"interfaces[eth0.100].mld", "eth0.100", "mld", true},
		{"api", "", "", false},
	} {
		n, r, ok := interfacePath(tc.path)
		if n != tc.name || r != tc.rest || ok != tc.ok {
			t.Errorf("interfacePath(%q) = %q, %q, %v", tc.path, n, r, ok)
		}
	}
}
