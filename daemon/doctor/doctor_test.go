package doctor

import (
	"reflect"
	"testing"

	"github.com/hotcast/hotcast/bpf/probe"
	"github.com/hotcast/hotcast/daemon/config"
)

func load(t *testing.T, src string) *config.Config {
	t.Helper()
	c, err := config.LoadBytes([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestWant(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want probe.Want
	}{
		{"routing, MLD, clone egress", `sysname: R
bpf: {pin-path: /sys/fs/bpf/x, xdp-mode: generic}
multicast:
  routing-enable: true
  upstream: {interface: up0}
interfaces:
  - name: up0
  - name: lan0
    mld: {enable: true}
    egress: clone
`, probe.Want{Config: true, PinPath: "/sys/fs/bpf/x", XDPMode: probe.ModeGeneric, Sockets: true, Interfaces: []probe.WantIface{
			{Name: "up0", XDP: true}, {Name: "lan0", XDP: true, Clone: true},
		}}},
		{"no routing, no protocols: nothing attached, no sockets", `sysname: R
interfaces:
  - name: lan0
`, probe.Want{Config: true, PinPath: "/sys/fs/bpf/hotcast/R", XDPMode: probe.ModeNative, Interfaces: []probe.WantIface{{Name: "lan0"}}}},
		{"MLD proxy upstream needs sockets", `sysname: R
multicast:
  routing-enable: true
  upstream: {interface: up0, mode: mld-proxy}
interfaces:
  - name: up0
`, probe.Want{Config: true, PinPath: "/sys/fs/bpf/hotcast/R", XDPMode: probe.ModeNative, Sockets: true, Interfaces: []probe.WantIface{{Name: "up0", XDP: true}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Want(load(t, tt.src)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
	if got := Want(nil); !reflect.DeepEqual(got, probe.Want{}) {
		t.Errorf("nil configuration: %+v", got)
	}
}
