package main

import (
	"context"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hotcast/hotcast/daemon/api"
	"github.com/hotcast/hotcast/internal/labtest"
	"github.com/hotcast/hotcast/internal/netnstest"
)

// pair is the reference topology without RBS: routers A and B share VRRP6
// group 1 on a LAN (a bridge in "lan", DeviceC of the reference) with a
// host; both reach the upstream switch where the sender is.
//
//	src:s0 --- upsw(bridge) --- ge3:A:ge2 --- lan(bridge) --- h1:host
//	                       \--- ge2:B:ge3 ---/
type pair struct {
	src, upsw, lan, a, b, host *netnstest.NS
	s0                         *netnstest.Link
	aLAN, bLAN                 *netnstest.Link // the routers' LAN interfaces
	hostRcv                    *labtest.Receiver
	da, db                     *labtest.Daemon
}

const pairYAML = `
sysname: %s
api: {socket: "%%SOCKET%%"}
bpf: {pin-path: "%%PIN%%"}
multicast:
  routing-enable: true
  upstream: {interface: %s, mode: static}
  static-routes:
    - {group: "ff3e::1:1", source: "2001:db8:40::2", interfaces: [%s]}
interfaces:
  - name: %s
    vrrp6:
      - {vrid: 1, virtual-ip: ["fe80::1", "2001:db8::50"], priority: %d, preempt-delay: 1s, advertise-interval: 100ms}
    multicast-track-vrrp6: 1
    addresses: ["%s/64"]
  - name: %s
`

func newPair(t *testing.T) *pair {
	t.Helper()
	return newPairYAML(t, pairYAML)
}

// newPairYAML builds the pair with a configuration template taking the
// arguments of pairYAML.
func newPairYAML(t *testing.T, tmpl string) *pair {
	t.Helper()
	p := &pair{}
	for _, x := range []struct {
		ns   **netnstest.NS
		name string
	}{{&p.src, "src"}, {&p.upsw, "usw"}, {&p.lan, "lan"}, {&p.a, "A"}, {&p.b, "B"}, {&p.host, "hst"}} {
		*x.ns = netnstest.New(t, x.name)
	}
	var up, lan []*netnstest.Link
	var l *netnstest.Link
	p.s0, l = netnstest.Veth(t, p.src, "s0", p.upsw, "p-src")
	up = append(up, l)
	_, l = netnstest.Veth(t, p.a, "ge3", p.upsw, "p-a")
	up = append(up, l)
	_, l = netnstest.Veth(t, p.b, "ge2", p.upsw, "p-b")
	up = append(up, l)
	p.aLAN, l = netnstest.Veth(t, p.a, "ge2", p.lan, "p-a")
	lan = append(lan, l)
	p.bLAN, l = netnstest.Veth(t, p.b, "ge3", p.lan, "p-b")
	lan = append(lan, l)
	h, l := netnstest.Veth(t, p.host, "h1", p.lan, "p-h")
	lan = append(lan, l)
	// Switch ports that receive XDP-redirected or XDP_TX frames need an XDP
	// program (veth): a pass-mode sink.
	for _, port := range lan[:2] {
		labtest.NewReceiver(t, port)
	}
	netnstest.Bridge(t, p.upsw, "br0", up...)
	netnstest.Switch(t, p.lan, "br0", lan...)
	h.AddAddr(t, "2001:db8::100/64")
	p.hostRcv = labtest.NewReceiver(t, h)

	d, ctl := labtest.Binaries(t)
	p.da = labtest.StartDaemon(t, p.a, d, ctl, pairConfig(tmpl, "A", 200))
	p.db = labtest.StartDaemon(t, p.b, d, ctl, pairConfig(tmpl, "B", 120))
	return p
}

// pairConfig fills a pair template for router A or B with a priority.
func pairConfig(tmpl, router string, prio int) string {
	if router == "A" {
		return labtest.Sprintf(tmpl, "A", "ge3", "ge2", "ge2", prio, "2001:db8:50::1", "ge3")
	}
	return labtest.Sprintf(tmpl, "B", "ge2", "ge3", "ge3", prio, "2001:db8:50::2", "ge2")
}

func vrrpState(t *testing.T, d *labtest.Daemon) api.VRRP6 {
	t.Helper()
	var vs []api.VRRP6
	d.CtlJSON(&vs, "display", "vrrp6")
	if len(vs) != 1 {
		t.Fatalf("display vrrp6: %+v", vs)
	}
	return vs[0]
}

func gate(t *testing.T, d *labtest.Daemon, ifname string) string {
	t.Helper()
	var ft api.ForwardingTable
	d.CtlJSON(&ft, "display", "multicast", "forwarding-table")
	return ft.Gates[ifname]
}

func setLink(t *testing.T, ns *netnstest.NS, name, state string) {
	t.Helper()
	if out, err := exec.Command("ip", "-n", ns.Name, "link", "set", name, state).CombinedOutput(); err != nil {
		t.Fatalf("ip link set %s %s: %v %s", name, state, err, out)
	}
}

func TestVRRP6PairFailoverAndBack(t *testing.T) {
	p := newPair(t)
	labtest.Eventually(t, 5*time.Second, "A Master and B Backup", func() bool {
		return vrrpState(t, p.da).State == "Master" && vrrpState(t, p.db).State == "Backup"
	})
	if g := gate(t, p.da, "ge2"); g != "forward" {
		t.Errorf("A's tracked gate %s, want forward", g)
	}
	if g := gate(t, p.db, "ge3"); g != "muted" {
		t.Errorf("B's tracked gate %s, want muted", g)
	}
	if v := vrrpState(t, p.da); v.GateWriteDelayUS <= 0 || v.GateWriteDelayUS > 5000 {
		t.Errorf("gate write delay %.0f us", v.GateWriteDelayUS)
	}

	// The host resolves the virtual IP to the virtual MAC and reaches it.
	ping := func() {
		t.Helper()
		out, err := p.host.Command(context.Background(), "ping", "-6", "-c", "2", "-i", "0.2", "-W", "1", "2001:db8::50").CombinedOutput()
		if err != nil {
			t.Fatalf("ping virtual ip: %v\n%s", err, out)
		}
	}
	ping()
	neigh, _ := exec.Command("ip", "-n", p.host.Name, "-6", "neigh", "show", "2001:db8::50").CombinedOutput()
	if !strings.Contains(string(neigh), "00:00:5e:00:02:01") {
		t.Errorf("host neighbor entry for the virtual ip: %s, want the virtual mac", neigh)
	}

	g := netip.MustParseAddr("ff3e::1:1")
	st := labtest.StartStream(t, p.s0, netip.MustParseAddr("2001:db8:40::2"), []netip.Addr{g}, 1000)
	time.Sleep(500 * time.Millisecond)
	if c := p.hostRcv.Count(t, g); c == 0 || c > st.Sent()+5 {
		t.Fatalf("host got %d frames of %d sent before failover (duplicates or nothing)", c, st.Sent())
	}

	// Fail A: its interfaces go down. B takes over after its
	// Master_Down_Interval (3 x 100ms + skew (256-120)x10ms/256 = 353ms).
	failAt := time.Now()
	before := p.hostRcv.Count(t, g)
	setLink(t, p.a, "ge2", "down")
	setLink(t, p.a, "ge3", "down")
	labtest.Eventually(t, 3*time.Second, "B Master", func() bool { return vrrpState(t, p.db).State == "Master" })
	took := time.Since(failAt)
	if took > 2*time.Second {
		t.Errorf("takeover took %s", took)
	}
	if g := gate(t, p.db, "ge3"); g != "forward" {
		t.Errorf("B's gate %s after takeover", g)
	}
	time.Sleep(500 * time.Millisecond)
	if c := p.hostRcv.Count(t, g); c <= before+300 {
		t.Errorf("stream did not resume through B: %d -> %d", before, c)
	}
	ping()

	// Bring A back: it hears B, waits its 1s preempt delay, then takes over.
	setLink(t, p.a, "ge2", "up")
	setLink(t, p.a, "ge3", "up")
	backAt := time.Now()
	labtest.Eventually(t, 6*time.Second, "A Master again", func() bool { return vrrpState(t, p.da).State == "Master" })
	if d := time.Since(backAt); d < 900*time.Millisecond {
		t.Errorf("A took back after %s, before its 1s preempt delay", d)
	}
	labtest.Eventually(t, 2*time.Second, "B Backup again", func() bool { return vrrpState(t, p.db).State == "Backup" })
	if g := gate(t, p.db, "ge3"); g != "muted" {
		t.Errorf("B's gate %s after failback", g)
	}
	time.Sleep(300 * time.Millisecond)
	sent := st.Stop()
	time.Sleep(100 * time.Millisecond)
	got := p.hostRcv.Count(t, g)
	lost := int64(sent) - int64(got)
	t.Logf("sent %d, received %d, lost %d (takeover %s)", sent, got, lost, took)
	if lost < 0 {
		t.Errorf("%d duplicates", -lost)
	}
	// Loss bounded by the takeover (about 353ms at 1000 pps, plus the link
	// going down and polling slack).
	if lost > 1000 {
		t.Errorf("lost %d frames", lost)
	}
	ping()
}
