package e2evrrp

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hotcast/hotcast/internal/labtest"
	"github.com/hotcast/hotcast/internal/netnstest"
)

// The LAN as users build it: a plain Linux bridge (MLD snooping off, GRO
// on its ports) and no XDP program on any port. The other tests' LAN has
// an XDP sink on the routers' switch ports, which hid that an XDP_TX'd
// Neighbor Advertisement never reaches such a port.
const (
	brVRID   = 51
	brVMAC   = "00:00:5e:00:02:33" // VRID 51
	brVIPLL  = "fe80::1"
	brVIP    = "2001:db8:5::100"
	brRouter = "2001:db8:5::12"
	brHost   = "2001:db8:5::13"
	brKA     = "2001:db8:5::14"
)

// bridgeYAML: lan0 with one VRRP6 group; routing-enable and the upstream
// line are parameters.
const bridgeYAML = `
sysname: R
api: {socket: "%%SOCKET%%"}
bpf: {pin-path: "%%PIN%%"}
multicast:
  routing-enable: %t
%s
interfaces:
  - name: lan0
    addresses: ["%s/64"]
    vrrp6:
      - {vrid: %d, virtual-ip: ["%s", "%s"], priority: 200, advertise-interval: 100ms}
`

// newBridgeLab builds
//
//	R:lan0 --- pR:[br0 in L]:pH --- h1:H
//	                        :pK --- eth0:K (keepalived, optional)
//
// with routing-enable as given (upstream lan0, static, when on). The
// daemon is not started (lab.start(0)).
func newBridgeLab(t *testing.T, routing, withKeepalived bool) *lab {
	t.Helper()
	l := &lab{t: t, lan: netnstest.New(t, "brl"), host: netnstest.New(t, "brh")}
	r := &hcRouter{spec: routerSpec{name: "R", prio: 200, advInt: 100 * time.Millisecond, addr: brRouter}, ns: netnstest.New(t, "brr")}
	var ports []*netnstest.Link
	var p *netnstest.Link
	r.lan, p = netnstest.Veth(t, r.ns, "lan0", l.lan, "pR")
	ports = append(ports, p)
	l.h1, p = netnstest.Veth(t, l.host, "h1", l.lan, "pH")
	ports = append(ports, p)
	if withKeepalived {
		l.kaNS = netnstest.New(t, "brk")
		l.kaLink, p = netnstest.Veth(t, l.kaNS, "eth0", l.lan, "pK")
		ports = append(ports, p)
		l.kaLink.AddAddr(t, brKA+"/64")
	}
	netnstest.Switch(t, l.lan, "br0", ports...)
	for _, p := range ports {
		if out, err := l.lan.Command(context.Background(), "ethtool", "-K", p.Name, "gro", "on").CombinedOutput(); err != nil {
			t.Fatalf("ethtool -K %s gro on: %v\n%s", p.Name, err, out)
		}
	}
	l.h1.AddAddr(t, brHost+"/64")
	upstream := ""
	if routing {
		upstream = "  upstream: {interface: lan0, mode: static}"
	}
	r.yaml = labtest.Sprintf(bridgeYAML, routing, upstream, brRouter, brVRID, brVIPLL, brVIP)
	l.routers = []*hcRouter{r}
	l.hcd, l.hcctl = labtest.Binaries(t)
	return l
}

// hostReachesVIPs: the host resolves both virtual addresses to the virtual
// MAC (ndisc6) and pings them.
func (l *lab) hostReachesVIPs(t *testing.T, step string) {
	t.Helper()
	for _, vip := range []string{brVIPLL, brVIP} {
		if mac := l.ndisc(t, vip); mac != brVMAC {
			t.Errorf("%s: ndisc6 %s: %s, want the virtual mac %s", step, vip, mac, brVMAC)
		}
		if err := l.pingErr(vip); err != nil {
			t.Errorf("%s: %v", step, err)
		}
	}
}

// TestBridgeHostPingsVIP: hotcast alone on the bridge, Master: the host
// resolves the virtual addresses to the virtual MAC and reaches them.
func TestBridgeHostPingsVIP(t *testing.T) {
	l := newBridgeLab(t, true, false)
	r := l.start(0)
	waitState(t, r, "Master", 5*time.Second)
	l.hostReachesVIPs(t, "hotcast Master")
}

// TestVRRPWithoutRouting: only interfaces[].vrrp6, multicast.routing-enable
// false (keepalived-style use). hotcast still puts on lan0 what the
// virtual MAC needs (the XDP program, not routing there), so the host that
// resolved the virtual address to the virtual MAC reaches it.
func TestVRRPWithoutRouting(t *testing.T) {
	l := newBridgeLab(t, false, false)
	r := l.start(0)
	waitState(t, r, "Master", 5*time.Second)
	l.hostReachesVIPs(t, "hotcast Master, no routing")
	out, err := exec.Command("ip", "-n", r.ns.Name, "link", "show", "lan0").CombinedOutput()
	if err != nil || !strings.Contains(string(out), " xdp") {
		t.Errorf("lan0 without an XDP program: %v\n%s", err, out)
	}
}

// TestBridgeKeepalivedPeer: keepalived (priority 100) is the other router
// on the bridge. hotcast (200) is Master: the host reaches the virtual
// addresses through the virtual MAC. hotcast's link goes down: keepalived
// takes over and the host reaches them through keepalived (its own MAC,
// no use_vmac); the link returns, hotcast preempts and the host is back on
// the virtual MAC.
func TestBridgeKeepalivedPeer(t *testing.T) {
	l := newBridgeLab(t, true, true)
	r := l.start(0)
	waitState(t, r, "Master", 5*time.Second)
	ka := startKeepalivedGroup(t, l.kaNS, brVRID, 100, "0.1", "", brVIPLL, brVIP)
	waitKA(t, ka, "BACKUP", 3*time.Second)
	l.hostReachesVIPs(t, "hotcast Master, keepalived Backup")
	if s := r.state(); s != "Master" {
		t.Fatalf("hotcast %s after keepalived started, want Master", s)
	}

	setLink(t, r.lan, false)
	waitKA(t, ka, "MASTER", 3*time.Second)
	l.pingUntil(t, brVIP)
	if mac, e := l.neighMAC(t, brVIP); mac != l.kaLink.MAC.String() {
		t.Errorf("host neighbor entry with keepalived Master: %s, want keepalived's %s", e, l.kaLink.MAC)
	}

	setLink(t, r.lan, true)
	waitState(t, r, "Master", linkUpWait+time.Second)
	waitKA(t, ka, "BACKUP", 2*time.Second)
	l.pingUntil(t, brVIP)
	if mac, e := l.neighMAC(t, brVIP); mac != brVMAC {
		t.Errorf("host neighbor entry after hotcast took back: %s, want %s", e, brVMAC)
	}
	l.hostReachesVIPs(t, "hotcast Master again")
	ka.wantLogClean(t)
}
