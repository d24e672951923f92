package e2evrrp

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotcast/hotcast/daemon/api"
	"github.com/hotcast/hotcast/internal/labtest"
	"github.com/hotcast/hotcast/internal/netnstest"
	"github.com/vishvananda/netlink"
)

// Addresses and names shared by the tests.
const (
	vipLL     = "fe80::1"
	vipGlobal = "2001:db8::50"
	vmac      = "00:00:5e:00:02:01" // VRID 1 (RFC 9568 §7.3)
	hostAddr  = "2001:db8::100"
	kaAddr    = "2001:db8::3"
)

var (
	streamSrc   = netip.MustParseAddr("2001:db8:40::2")
	streamGroup = netip.MustParseAddr("ff3e::1:1")
)

// routerSpec is one hotcast router of a lab.
type routerSpec struct {
	name         string // sysname and namespace/port suffix (one letter)
	prio         int
	preemptDelay time.Duration
	advInt       time.Duration
	addr         string // LAN address
	// bfd, when set, runs a BFD session "lan" on lan0 to the other
	// router of the pair at this interval (x 3), tracked by the group in
	// peer mode.
	bfd time.Duration
}

// routerYAML: upstream up0 (static), LAN lan0 with VRRP6 group 1 and the
// multicast gate tracking it; a static (S,G) toward the LAN.
const routerYAML = `
sysname: %s
api: {socket: "%%SOCKET%%"}
bpf: {pin-path: "%%PIN%%"}
multicast:
  routing-enable: true
  upstream: {interface: up0, mode: static}
  static-routes:
    - {group: "%s", source: "%s", interfaces: [lan0]}
interfaces:
  - name: lan0
    vrrp6:
      - {vrid: 1, virtual-ip: ["%s", "%s"], priority: %d, preempt-delay: %s, advertise-interval: %s}
    multicast-track-vrrp6: 1
    addresses: ["%s/64"]
  - name: up0
`

// hcRouter is a hotcast router in its namespace.
type hcRouter struct {
	spec    routerSpec
	ns      *netnstest.NS
	lan, up *netnstest.Link // lan0, up0
	yaml    string
	d       *labtest.Daemon
	hc      *http.Client
}

// lab is the topology:
//
//	src:s0 --- upsw(bridge) --- up0:R:lan0 --- lan(bridge) --- h1:host
//	                         (one per router)         \--- eth0:keepalived
type lab struct {
	t          *testing.T
	src, upsw  *netnstest.NS
	lan, host  *netnstest.NS
	s0, h1     *netnstest.Link
	hostRcv    *labtest.Receiver
	routers    []*hcRouter
	kaNS       *netnstest.NS
	kaLink     *netnstest.Link
	hcd, hcctl string
}

// newLab builds the topology; daemons are not started (see start).
func newLab(t *testing.T, specs []routerSpec, withKeepalived bool) *lab {
	t.Helper()
	l := &lab{t: t}
	l.src = netnstest.New(t, "src")
	l.upsw = netnstest.New(t, "usw")
	l.lan = netnstest.New(t, "lan")
	l.host = netnstest.New(t, "hst")
	var up, lanPorts []*netnstest.Link
	var p *netnstest.Link
	l.s0, p = netnstest.Veth(t, l.src, "s0", l.upsw, "p-src")
	up = append(up, p)
	var sinkPorts []*netnstest.Link
	for _, s := range specs {
		r := &hcRouter{spec: s, ns: netnstest.New(t, s.name)}
		r.up, p = netnstest.Veth(t, r.ns, "up0", l.upsw, "p-"+s.name)
		up = append(up, p)
		r.lan, p = netnstest.Veth(t, r.ns, "lan0", l.lan, "p-"+s.name)
		lanPorts = append(lanPorts, p)
		sinkPorts = append(sinkPorts, p)
		r.yaml = labtest.Sprintf(routerYAML, s.name, streamGroup, streamSrc, vipLL, vipGlobal,
			s.prio, s.preemptDelay, s.advInt, s.addr)
		l.routers = append(l.routers, r)
	}
	for i, r := range l.routers {
		if r.spec.bfd > 0 && len(l.routers) == 2 {
			r.yaml = withBFD(r.yaml, r.spec, l.routers[1-i].spec.addr)
		}
	}
	if withKeepalived {
		l.kaNS = netnstest.New(t, "ka")
		l.kaLink, p = netnstest.Veth(t, l.kaNS, "eth0", l.lan, "p-k")
		lanPorts = append(lanPorts, p)
		l.kaLink.AddAddr(t, kaAddr+"/64")
	}
	l.h1, p = netnstest.Veth(t, l.host, "h1", l.lan, "p-h")
	lanPorts = append(lanPorts, p)
	// The routers' XDP programs answer NS with XDP_TX and redirect
	// multicast: their switch-side veth ends need an XDP program.
	for _, port := range sinkPorts {
		labtest.NewReceiver(t, port)
	}
	netnstest.Bridge(t, l.upsw, "br0", up...)
	netnstest.Bridge(t, l.lan, "br0", lanPorts...)
	l.h1.AddAddr(t, hostAddr+"/64")
	l.hostRcv = labtest.NewReceiver(t, l.h1)
	l.hcd, l.hcctl = labtest.Binaries(t)
	return l
}

// start runs router i's daemon.
func (l *lab) start(i int) *hcRouter {
	l.t.Helper()
	r := l.routers[i]
	if r.d == nil {
		r.d = labtest.StartDaemon(l.t, r.ns, l.hcd, l.hcctl, r.yaml)
		sock := r.d.Socket
		tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}}
		r.hc = &http.Client{Transport: tr, Timeout: 2 * time.Second}
		l.t.Cleanup(tr.CloseIdleConnections)
	} else {
		r.d.Start()
	}
	return r
}

// ---- the daemon's view (into the API types) ----

// get fetches an API path straight from the daemon's socket (faster than
// running hotcastctl; used for fine-grained polling).
func (r *hcRouter) get(path string, v any) error {
	resp, err := r.hc.Get("http://hotcastd" + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// status returns the router's VRRP6 group 1, or ok=false when the daemon
// does not answer.
func (r *hcRouter) status() (api.VRRP6, bool) {
	var vs []api.VRRP6
	if r.hc == nil || r.get(api.PathVRRP6, &vs) != nil || len(vs) != 1 {
		return api.VRRP6{}, false
	}
	return vs[0], true
}

// mustStatus is status through hotcastctl (the CLI), failing the test.
func (r *hcRouter) mustStatus(t *testing.T) api.VRRP6 {
	t.Helper()
	var vs []api.VRRP6
	r.d.CtlJSON(&vs, "display", "vrrp6")
	if len(vs) != 1 {
		t.Fatalf("%s: display vrrp6: %+v", r.spec.name, vs)
	}
	return vs[0]
}

// state returns the group's state, "" when the daemon does not answer.
func (r *hcRouter) state() string {
	s, _ := r.status()
	return s.State
}

// gate returns the tracked gate of lan0 (forward|muted) through hotcastctl.
func (r *hcRouter) gate(t *testing.T) string {
	t.Helper()
	var ft api.ForwardingTable
	r.d.CtlJSON(&ft, "display", "multicast", "forwarding-table")
	return ft.Gates["lan0"]
}

// wantGate checks that the gate follows the VRRP6 state.
func (r *hcRouter) wantGate(t *testing.T, want string) {
	t.Helper()
	if g := r.gate(t); g != want {
		t.Errorf("%s: gate of lan0 %q, want %q (state %s)", r.spec.name, g, want, r.state())
	}
}

// linkUpWait bounds how long a daemon takes to see its link up again: it
// waits for operstate UP, which the kernel's linkwatch reports up to a
// second after "ip link set up" (it runs at most once a second).
const linkUpWait = 2500 * time.Millisecond

// setLink sets a link up or down through netlink in its namespace and
// returns the time just before the change.
func setLink(t *testing.T, l *netnstest.Link, up bool) time.Time {
	t.Helper()
	var at time.Time
	l.NS.Do(t, func() error {
		nl, err := netlink.LinkByIndex(l.Index)
		if err != nil {
			return err
		}
		at = time.Now()
		if up {
			return netlink.LinkSetUp(nl)
		}
		return netlink.LinkSetDown(nl)
	})
	return at
}

// ---- the LAN host ----

// ndisc resolves addr from the host with ndisc6 and returns the MAC.
func (l *lab) ndisc(t *testing.T, addr string) string {
	t.Helper()
	out, err := l.host.Command(context.Background(), "ndisc6", "-1", "-q", "-r", "3", "-w", "500", addr, "h1").CombinedOutput()
	if err != nil {
		t.Fatalf("ndisc6 %s: %v\n%s", addr, err, out)
	}
	return strings.ToLower(strings.TrimSpace(string(out)))
}

// ping pings addr from the host (a link-local address gets %h1).
func (l *lab) ping(t *testing.T, addr string) {
	t.Helper()
	if err := l.pingErr(addr); err != nil {
		t.Fatal(err)
	}
}

// pingUntil pings until it works, for at most two seconds (right after a
// takeover the virtual address may still be being added on the new Master).
func (l *lab) pingUntil(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		err := l.pingErr(addr)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
}

func (l *lab) pingErr(addr string) error {
	if strings.HasPrefix(addr, "fe80:") {
		addr += "%h1"
	}
	out, err := l.host.Command(context.Background(), "ping", "-6", "-c", "2", "-i", "0.2", "-W", "1", addr).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ping %s: %v\n%s", addr, err, out)
	}
	return nil
}

// neighMAC returns the MAC of the host's neighbor entry for addr ("" when
// there is none) and the entry as ip prints it.
func (l *lab) neighMAC(t *testing.T, addr string) (string, string) {
	t.Helper()
	out, err := exec.Command("ip", "-n", l.host.Name, "-6", "neigh", "show", addr, "dev", "h1").CombinedOutput()
	if err != nil {
		t.Fatalf("ip neigh: %v\n%s", err, out)
	}
	f := strings.Fields(string(out))
	for i := range f {
		if f[i] == "lladdr" && i+1 < len(f) {
			return strings.ToLower(f[i+1]), strings.TrimSpace(string(out))
		}
	}
	return "", strings.TrimSpace(string(out))
}

// ---- polling for dual Masters ----

// overlapMonitor polls every router's state every few milliseconds and
// records the longest stretch in which two of them were Master at once.
type overlapMonitor struct {
	stop chan struct{}
	done chan struct{}

	mu      sync.Mutex
	polls   int
	longest time.Duration // longest stretch of consecutive dual-Master polls
	start   time.Time     // of the current stretch
	in      bool
	// trans collects every transition seen, per router, across restarts.
	trans []map[api.VRRP6Transition]bool
}

func newOverlapMonitor(t *testing.T, rs []*hcRouter, every time.Duration) *overlapMonitor {
	m := &overlapMonitor{stop: make(chan struct{}), done: make(chan struct{})}
	for range rs {
		m.trans = append(m.trans, map[api.VRRP6Transition]bool{})
	}
	go func() {
		defer close(m.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-m.stop:
				return
			case <-tick.C:
			}
			masters := 0
			at := time.Now()
			for i, r := range rs {
				s, ok := r.status()
				if !ok {
					continue
				}
				if s.State == "Master" {
					masters++
				}
				m.mu.Lock()
				for _, tr := range s.Transitions {
					m.trans[i][tr] = true
				}
				m.mu.Unlock()
			}
			m.mu.Lock()
			m.polls++
			switch {
			case masters > 1 && !m.in:
				m.in, m.start = true, at
			case masters > 1:
				m.longest = max(m.longest, at.Sub(m.start))
			default:
				m.in = false
			}
			m.mu.Unlock()
		}
	}()
	t.Cleanup(m.Stop)
	return m
}

// Stop ends the polling.
func (m *overlapMonitor) Stop() {
	select {
	case <-m.stop:
	default:
		close(m.stop)
	}
	<-m.done
}

// result returns the number of polls and the longest dual-Master stretch
// seen by polling.
func (m *overlapMonitor) result() (int, time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.polls, m.longest
}

// masterIntervals turns one router's transitions (plus the times it was
// killed, which end a Master interval) into [from, to) Master intervals.
func masterIntervals(trans map[api.VRRP6Transition]bool, kills []time.Time, end time.Time) [][2]time.Time {
	type ev struct {
		at     time.Time
		master bool
	}
	var evs []ev
	for tr := range trans {
		evs = append(evs, ev{tr.Time, tr.To == "Master"})
	}
	for _, k := range kills {
		evs = append(evs, ev{k, false})
	}
	slices.SortFunc(evs, func(a, b ev) int { return a.at.Compare(b.at) })
	var out [][2]time.Time
	var from time.Time
	in := false
	for _, e := range evs {
		switch {
		case e.master && !in:
			in, from = true, e.at
		case !e.master && in:
			in = false
			out = append(out, [2]time.Time{from, e.at})
		}
	}
	if in {
		out = append(out, [2]time.Time{from, end})
	}
	return out
}

// longestOverlap is the longest intersection of two interval lists.
func longestOverlap(a, b [][2]time.Time) time.Duration {
	var best time.Duration
	for _, x := range a {
		for _, y := range b {
			from := x[0]
			if y[0].After(from) {
				from = y[0]
			}
			to := x[1]
			if y[1].Before(to) {
				to = y[1]
			}
			best = max(best, to.Sub(from))
		}
	}
	return best
}

// waitState polls r until it reports want and returns when it was seen.
func waitState(t *testing.T, r *hcRouter, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s, ok := r.status()
		if ok && s.State == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s %s: status %+v", timeout, r.spec.name, want, s)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// withBFD adds a router's BFD sessions to its peer: "lan" on lan0,
// tracked by its group in peer mode, and "rbs" on up0 (standing for the
// RBS link), tracked by a remote backup service between the two up0
// addresses (2001:db8:10::1 and ::2, by the LAN address's last digit).
func withBFD(yaml string, s routerSpec, peer string) string {
	adv := "advertise-interval: " + s.advInt.String() + "}"
	yaml = strings.Replace(yaml, adv, strings.TrimSuffix(adv, "}")+", track-bfd: [{session: lan, mode: peer}]}", 1)
	self, other := "2001:db8:10::"+s.addr[len(s.addr)-1:], "2001:db8:10::"+peer[len(peer)-1:]
	yaml = strings.Replace(yaml, "  - name: up0\n", "  - name: up0\n    addresses: [\""+self+"/64\"]\n", 1)
	iv := s.bfd.String()
	return strings.Replace(yaml, "interfaces:\n", "bfd:\n  sessions:\n"+
		"    - {name: lan, interface: lan0, peer: \""+peer+"\", min-tx: "+iv+", min-rx: "+iv+", multiplier: 3}\n"+
		"    - {name: rbs, interface: up0, peer: \""+other+"\", min-tx: "+iv+", min-rx: "+iv+", multiplier: 3}\n"+
		"remote-backup-services:\n  - {name: service1, peer-ipv6: \""+other+"\", source-ipv6: \""+self+"\", port: 1025, track-bfd: rbs}\n"+
		"interfaces:\n", 1)
}

// bfdState is the state of the router's BFD session ("" when none).
func (r *hcRouter) bfdState(name string) string {
	var ss []api.BFDSession
	if err := r.get(api.PathBFD+"?name="+name, &ss); err != nil || len(ss) != 1 {
		return ""
	}
	return ss[0].State
}
