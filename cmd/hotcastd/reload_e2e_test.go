package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotcast/hotcast/ctrl/mld"
	"github.com/hotcast/hotcast/daemon/api"
	"github.com/hotcast/hotcast/internal/labtest"
	"github.com/hotcast/hotcast/internal/netnstest"
	"github.com/hotcast/hotcast/internal/testpki"
	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"
)

// TestReloadStaticRoutes: SIGHUP applies static route changes as a
// difference while a stream runs (the unchanged receiver loses nothing),
// refuses an invalid file and changes it cannot apply in place, keeping the
// running configuration: a refused reload applies nothing, not even the
// parts it could apply.
func TestReloadStaticRoutes(t *testing.T) {
	f := newFastpath(t)
	g2 := netip.MustParseAddr("ff3e::1:2")
	st := labtest.StartStream(t, f.s0, srcS, []netip.Addr{grpG, g2}, 500)
	time.Sleep(300 * time.Millisecond)

	// ge2 leaves (S,G1); a new (S,G2) goes to ge4.
	next := strings.Replace(fastpathYAML, `interfaces: [ge1, ge2]}`, `interfaces: [ge1]}
    - {group: "ff3e::1:2", source: "2001:db8:40::2", interfaces: [ge4]}`, 1)
	f.d.Reload(next)
	labtest.Eventually(t, 3*time.Second, "reloaded routes", func() bool {
		var ft api.ForwardingTable
		f.d.CtlJSON(&ft, "display", "multicast", "forwarding-table")
		return len(ft.Routes) == 2 && strings.Join(ft.Routes[0].Outgoing, ",")+"|"+strings.Join(ft.Routes[1].Outgoing, ",") == "ge1|ge4"
	})
	time.Sleep(300 * time.Millisecond)
	before := f.counts(t, g2)

	// An invalid file and an unsupported change are refused; routes stay.
	// One at a time: the file is rewritten for each signal, and signals
	// arriving together coalesce.
	f.d.Reload("sysname: [")
	labtest.Eventually(t, 3*time.Second, "the broken file refused", func() bool { return strings.Contains(f.d.Log(), "configuration refused") })
	// A change that needs a restart (sysname) with one that could be
	// applied (MLD on ge4): neither is applied.
	f.d.Reload(strings.Replace(strings.Replace(next, "  - name: ge4\n", "  - name: ge4\n    mld: {enable: true}\n", 1), "sysname: E2E", "sysname: E2F", 1))
	labtest.Eventually(t, 3*time.Second, "the sysname change refused", func() bool { return strings.Contains(f.d.Log(), "needs a restart") })
	if !strings.Contains(f.d.Log(), "nothing applied") {
		t.Error("the refusal does not say that nothing was applied")
	}
	var mi []api.MLDInterface
	f.d.CtlJSON(&mi, "display", "mld", "interface")
	if len(mi) != 0 {
		t.Errorf("MLD started by a refused reload: %+v", mi)
	}
	time.Sleep(500 * time.Millisecond)
	n := st.Stop()
	labtest.Eventually(t, 3*time.Second, "every frame of G1 at receiver 1", func() bool { return f.counts(t, grpG)[0] == n })
	c := f.counts(t, g2)
	if c[2] <= before[2] || c[0] != 0 || c[1] != 0 {
		t.Errorf("G2 after reload: %v (before the refused reloads %v), want only receiver 3 and still flowing", c, before)
	}
	if c := f.counts(t, grpG); c[1] >= n {
		t.Errorf("receiver 2 kept getting G1 after it was removed: %d of %d", c[1], n)
	}
	log := f.d.Log()
	for _, want := range []string{"reload: static routes applied", "configuration refused", "needs a restart"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q", want)
		}
	}
}

// reloadApplied rewrites d's configuration, sends SIGHUP and waits until
// that reload is applied; a refused or failed reload fails the test.
func reloadApplied(t *testing.T, d *labtest.Daemon, yaml string) {
	t.Helper()
	const ok = `msg="reload: applied"`
	n, bad := strings.Count(d.Log(), ok), strings.Count(d.Log(), "level=ERROR")
	d.Reload(yaml)
	labtest.Eventually(t, 5*time.Second, "the reload applied", func() bool {
		log := d.Log()
		return strings.Count(log, ok) > n || strings.Count(log, "level=ERROR") > bad
	})
	if strings.Count(d.Log(), "level=ERROR") > bad {
		t.Fatalf("reload not applied:\n%s", d.Log())
	}
}

// routeWatch polls the forwarding table while reloads happen and records
// every poll in which a route was missing or its packet counter went
// backwards (a route deleted and re-installed restarts from 0).
type routeWatch struct {
	stop    chan struct{}
	done    chan struct{}
	polls   int
	missing int
	reset   int
	last    uint64
}

func watchRoute(t *testing.T, d *labtest.Daemon, source string, g netip.Addr) *routeWatch {
	t.Helper()
	w := &routeWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			out, err := d.CtlErr("display", "multicast", "forwarding-table", "--json")
			if err != nil {
				continue // the API socket may be moving
			}
			var ft api.ForwardingTable
			if json.Unmarshal(out, &ft) != nil {
				continue
			}
			w.polls++
			found := false
			for _, r := range ft.Routes {
				if r.Source == source && r.Group == g.String() {
					found = true
					if r.Packets < w.last {
						w.reset++
					}
					w.last = r.Packets
				}
			}
			if !found {
				w.missing++
			}
		}
	}()
	t.Cleanup(w.end)
	return w
}

func (w *routeWatch) end() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

func mldInterface(t *testing.T, d *labtest.Daemon, name string) *api.MLDInterface {
	t.Helper()
	var mi []api.MLDInterface
	d.CtlJSON(&mi, "display", "mld", "interface")
	for i := range mi {
		if mi[i].Interface == name {
			return &mi[i]
		}
	}
	return nil
}

const reloadMLDYAML = `
sysname: RLD
api: {socket: "%SOCKET%"}
bpf: {pin-path: "%PIN%"}
multicast:
  routing-enable: true
  upstream: {interface: ge3, mode: static}
interfaces:
  - name: ge1
    mld: {enable: true, query-interval: 125s, max-response-time: 10s, robustness: 2}
  - name: ge3
`

// TestReloadMLDAndInterfaces: while a host on ge1 receives a group it
// joined, SIGHUP changes ge1's MLD timers, then adds ge4 with MLD (a host
// joining there is forwarded to), then removes it again (its programs are
// detached and unpinned). The group learned before the reloads is never
// disturbed: its route is there at every poll, its counter never restarts,
// and the host gets every frame.
func TestReloadMLDAndInterfaces(t *testing.T) {
	f := newFastpathYAML(t, reloadMLDYAML)
	g := netip.MustParseAddr("ff1e::77:1")
	f.rcv[0].Link.WaitLinkLocal(t)
	labtest.Join(t, f.rcv[0].Link, g, netip.Addr{})
	labtest.Eventually(t, 5*time.Second, "the route learned from ge1's host", func() bool {
		var ft api.ForwardingTable
		f.d.CtlJSON(&ft, "display", "multicast", "forwarding-table")
		r := labtest.FindRoute(ft, "*", g)
		return r != nil && strings.Join(r.Outgoing, ",") == "ge1"
	})
	st := labtest.StartStream(t, f.s0, srcS, []netip.Addr{g}, 500)
	labtest.Eventually(t, 3*time.Second, "the stream at ge1's host", func() bool { return f.counts(t, g)[0] > 50 })
	w := watchRoute(t, f.d, "*", g)

	// 1. MLD timers of ge1.
	cfg1 := strings.Replace(reloadMLDYAML, "query-interval: 125s, max-response-time: 10s, robustness: 2", "query-interval: 20s, max-response-time: 5s, robustness: 3, last-listener-query-interval: 2s", 1)
	reloadApplied(t, f.d, cfg1)
	mi := mldInterface(t, f.d, "ge1")
	if mi == nil || mi.QueryInterval != 20 || mi.QueryResponseInterval != 5 || mi.Robustness != 3 || mi.LastListenerQueryInterval != 2 || mi.NextGeneralQuery > 20 || mi.Groups == 0 {
		t.Fatalf("ge1 after the MLD reload: %+v", mi)
	}
	var groups []api.MLDGroup
	f.d.CtlJSON(&groups, "display", "mld", "group")
	if !slices.ContainsFunc(groups, func(x api.MLDGroup) bool { return x.Group == g.String() && x.Interface == "ge1" }) {
		t.Fatalf("groups after the MLD reload: %+v", groups)
	}

	// 2. ge4 added with MLD; its host joins the same group.
	cfg2 := cfg1 + "  - name: ge4\n    mld: {enable: true}\n"
	reloadApplied(t, f.d, cfg2)
	if mldInterface(t, f.d, "ge4") == nil {
		t.Fatal("no MLD on the added ge4")
	}
	f.rcv[2].Link.WaitLinkLocal(t)
	labtest.Join(t, f.rcv[2].Link, g, netip.Addr{})
	labtest.Eventually(t, 5*time.Second, "ge4 in the route", func() bool {
		var ft api.ForwardingTable
		f.d.CtlJSON(&ft, "display", "multicast", "forwarding-table")
		r := labtest.FindRoute(ft, "*", g)
		return r != nil && strings.Join(r.Outgoing, ",") == "ge1,ge4"
	})
	c4 := f.counts(t, g)[2]
	labtest.Eventually(t, 3*time.Second, "the stream at ge4's host", func() bool { return f.counts(t, g)[2] > c4+100 })
	if _, err := os.Stat(filepath.Join(f.d.PinPath, "links", "xdp", "ge4")); err != nil {
		t.Errorf("ge4's XDP link not pinned: %v", err)
	}

	// 3. ge4 removed: out of the route, programs detached and unpinned.
	reloadApplied(t, f.d, cfg1)
	labtest.Eventually(t, 3*time.Second, "ge4 out of the route", func() bool {
		var ft api.ForwardingTable
		f.d.CtlJSON(&ft, "display", "multicast", "forwarding-table")
		r := labtest.FindRoute(ft, "*", g)
		return r != nil && strings.Join(r.Outgoing, ",") == "ge1"
	})
	if mldInterface(t, f.d, "ge4") != nil {
		t.Error("MLD still on the removed ge4")
	}
	if _, err := os.Stat(filepath.Join(f.d.PinPath, "links", "xdp", "ge4")); !os.IsNotExist(err) {
		t.Errorf("ge4's XDP link still pinned: %v", err)
	}
	if out, err := exec.Command("ip", "-n", f.rtr.Name, "link", "show", "ge4").CombinedOutput(); err != nil || strings.Contains(string(out), "xdp") {
		t.Errorf("program still attached to ge4: %s %v", out, err)
	}
	time.Sleep(200 * time.Millisecond)
	c4 = f.counts(t, g)[2]

	time.Sleep(300 * time.Millisecond)
	n := st.Stop()
	w.end()
	labtest.Eventually(t, 3*time.Second, "every frame at ge1's host", func() bool { return f.counts(t, g)[0] == n })
	if c := f.counts(t, g)[2]; c != c4 {
		t.Errorf("ge4's host still got frames after ge4 was removed: %d -> %d", c4, c)
	}
	t.Logf("%d polls of the route during the reloads; %d frames sent", w.polls, n)
	if w.polls < 3 || w.missing != 0 || w.reset != 0 {
		t.Errorf("route watch: %d polls, missing in %d, counter restarted %d times", w.polls, w.missing, w.reset)
	}
	var ft api.ForwardingTable
	f.d.CtlJSON(&ft, "display", "multicast", "forwarding-table")
	if r := labtest.FindRoute(ft, "*", g); r == nil || r.Packets != n {
		t.Errorf("route after the reloads: %+v, want %d packets", r, n)
	}
}

// reloadPairYAML is pairYAML with MLD on the LAN interfaces.
const reloadPairYAML = `
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
    mld: {enable: true, query-interval: 125s}
    vrrp6:
      - {vrid: 1, virtual-ip: ["fe80::1", "2001:db8::50"], priority: %d, preempt-delay: 1s, advertise-interval: 100ms}
    multicast-track-vrrp6: 1
    addresses: ["%s/64"]
  - name: %s
`

func vrrpGroups(t *testing.T, d *labtest.Daemon) []api.VRRP6 {
	t.Helper()
	var vs []api.VRRP6
	d.CtlJSON(&vs, "display", "vrrp6")
	return vs
}

func hasAddr(t *testing.T, ns *netnstest.NS, ifname, addr string) bool {
	t.Helper()
	out, err := exec.Command("ip", "-n", ns.Name, "-6", "addr", "show", "dev", ifname).CombinedOutput()
	if err != nil {
		t.Fatalf("ip addr show %s: %v %s", ifname, err, out)
	}
	return strings.Contains(string(out), addr+"/")
}

// TestReloadVRRP6 reloads the routers of a VRRP6 pair while a stream
// flows through the Master: one SIGHUP lowers A's priority below B's and
// shortens A's MLD query interval; B, preempting, becomes Master after its
// delay and takes the stream over, A keeps running as Backup with its new
// MLD timers. Raising the priority again gives A the Master role back. A
// group added by a reload starts (and, alone, becomes Master with its
// virtual address); removed, it shuts down and releases the address.
// Untracking the gate on the Backup makes it forward; tracking again
// mutes it.
func TestReloadVRRP6(t *testing.T) {
	p := newPairYAML(t, reloadPairYAML)
	labtest.Eventually(t, 5*time.Second, "A Master and B Backup", func() bool {
		return vrrpState(t, p.da).State == "Master" && vrrpState(t, p.db).State == "Backup"
	})
	g := netip.MustParseAddr("ff3e::1:1")
	st := labtest.StartStream(t, p.s0, netip.MustParseAddr("2001:db8:40::2"), []netip.Addr{g}, 1000)
	labtest.Eventually(t, 3*time.Second, "the stream at the host", func() bool { return p.hostRcv.Count(t, g) > 100 })

	// A: priority 200 -> 100 (below B's 120) and MLD query interval
	// 125 s -> 30 s, in one reload.
	lowA := strings.Replace(pairConfig(reloadPairYAML, "A", 100), "query-interval: 125s", "query-interval: 30s", 1)
	reloadApplied(t, p.da, lowA)
	if v := vrrpState(t, p.da); v.ConfiguredPriority != 100 {
		t.Fatalf("A after the reload: %+v", v)
	}
	if mi := mldInterface(t, p.da, "ge2"); mi == nil || mi.QueryInterval != 30 {
		t.Fatalf("A's MLD after the reload: %+v", mi)
	}
	labtest.Eventually(t, 5*time.Second, "B Master after its preempt delay, A Backup", func() bool {
		return vrrpState(t, p.db).State == "Master" && vrrpState(t, p.da).State == "Backup"
	})
	b := vrrpState(t, p.db)
	if last := b.Transitions[len(b.Transitions)-1]; last.Reason != "PreemptDelayExpired" {
		t.Errorf("B became Master by %s, want PreemptDelayExpired", last.Reason)
	}
	if gate(t, p.da, "ge2") != "muted" || gate(t, p.db, "ge3") != "forward" {
		t.Errorf("gates after the switchover: A %s, B %s", gate(t, p.da, "ge2"), gate(t, p.db, "ge3"))
	}
	// (As a non-querier A now uses the querier's interval, RFC 3810
	// §5.1.9: B's 125 s once B has queried.)
	if mi := mldInterface(t, p.da, "ge2"); mi == nil || mi.QuerierAllowed {
		t.Errorf("A's MLD as Backup: %+v", mi)
	}
	before := p.hostRcv.Count(t, g)
	time.Sleep(500 * time.Millisecond)
	if c := p.hostRcv.Count(t, g); c < before+300 {
		t.Errorf("the stream did not go on through B: %d -> %d", before, c)
	}

	// A back to 200: it preempts after its own delay.
	reloadApplied(t, p.da, pairConfig(reloadPairYAML, "A", 200))
	labtest.Eventually(t, 5*time.Second, "A Master again", func() bool {
		return vrrpState(t, p.da).State == "Master" && vrrpState(t, p.db).State == "Backup"
	})
	if mi := mldInterface(t, p.da, "ge2"); mi == nil || !mi.QuerierAllowed {
		t.Errorf("A's MLD as Master again: %+v", mi)
	}
	time.Sleep(300 * time.Millisecond)
	sent := st.Stop()
	time.Sleep(100 * time.Millisecond)
	got := p.hostRcv.Count(t, g)
	t.Logf("sent %d, host received %d over two planned switchovers", sent, got)
	if lost := int64(sent) - int64(got); lost > 300 {
		t.Errorf("lost %d frames over two planned switchovers", lost)
	}

	// A group added on A: alone on the LAN, it becomes Master with its
	// virtual address; removed, it shuts down and releases it.
	withTwo := strings.Replace(pairConfig(reloadPairYAML, "A", 200), "    multicast-track-vrrp6: 1\n",
		"      - {vrid: 2, virtual-ip: [\"fe80::2\", \"2001:db8::52\"], priority: 150, advertise-interval: 100ms}\n    multicast-track-vrrp6: 1\n", 1)
	reloadApplied(t, p.da, withTwo)
	labtest.Eventually(t, 3*time.Second, "vrid 2 Master on A with its address", func() bool {
		vs := vrrpGroups(t, p.da)
		return len(vs) == 2 && vs[1].VRID == 2 && vs[1].State == "Master" && hasAddr(t, p.a, "ge2", "2001:db8::52")
	})
	if v := vrrpState(t, p.db); v.State != "Backup" {
		t.Errorf("B after A's new group: %s", v.State)
	}
	reloadApplied(t, p.da, pairConfig(reloadPairYAML, "A", 200))
	labtest.Eventually(t, 3*time.Second, "vrid 2 gone from A with its address", func() bool {
		vs := vrrpGroups(t, p.da)
		return len(vs) == 1 && vs[0].VRID == 1 && !hasAddr(t, p.a, "ge2", "2001:db8::52")
	})
	if v := vrrpState(t, p.da); v.State != "Master" || len(v.Transitions) == 0 || v.Transitions[len(v.Transitions)-1].To != "Master" {
		t.Errorf("vrid 1 on A disturbed by vrid 2: %+v", v)
	}

	// B, Backup: untracked, its gate forwards; tracked again, muted.
	untracked := strings.Replace(pairConfig(reloadPairYAML, "B", 120), "    multicast-track-vrrp6: 1\n", "", 1)
	reloadApplied(t, p.db, untracked)
	if g := gate(t, p.db, "ge3"); g != "forward" {
		t.Errorf("B's untracked gate %s, want forward", g)
	}
	if mi := mldInterface(t, p.db, "ge3"); mi == nil || !mi.QuerierAllowed {
		t.Errorf("B's untracked MLD: %+v", mi)
	}
	reloadApplied(t, p.db, pairConfig(reloadPairYAML, "B", 120))
	if g := gate(t, p.db, "ge3"); g != "muted" {
		t.Errorf("B's tracked gate %s, want muted", g)
	}
	if mi := mldInterface(t, p.db, "ge3"); mi == nil || mi.QuerierAllowed {
		t.Errorf("B's tracked MLD as Backup: %+v", mi)
	}
}

// scrape fetches /metrics from addr inside ns (HTTP/1.0 by hand: the
// connection must be made from a thread in the namespace).
func scrape(t *testing.T, ns *netnstest.NS, addr string) (string, error) {
	t.Helper()
	var body string
	err := ns.Run(func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := c.Write([]byte("GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")); err != nil {
			return err
		}
		b, err := io.ReadAll(c)
		body = string(b)
		return err
	})
	return body, err
}

// TestReloadAPI: SIGHUP moves the API socket and turns metrics on, then
// moves them, then off; each time the new listener answers and the old
// one is gone, and forwarding is not touched.
func TestReloadAPI(t *testing.T) {
	f := newFastpath(t)
	st := labtest.StartStream(t, f.s0, srcS, []netip.Addr{grpG}, 500)
	moved := filepath.Join(t.TempDir(), "moved.sock")
	withAPI := func(api string) string {
		return strings.Replace(fastpathYAML, `api: {socket: "%SOCKET%"}`, api, 1)
	}
	oldSocket := f.d.Socket
	reloadApplied(t, f.d, withAPI(`api: {socket: "`+moved+`", metrics-listen: "[::1]:19469"}`))
	if _, err := os.Stat(oldSocket); !os.IsNotExist(err) {
		t.Errorf("old API socket still there: %v", err)
	}
	f.d.Socket = moved
	var ft api.ForwardingTable
	f.d.CtlJSON(&ft, "display", "multicast", "forwarding-table")
	if len(ft.Routes) != 1 {
		t.Fatalf("routes through the moved socket: %+v", ft.Routes)
	}
	if m, err := scrape(t, f.rtr, "[::1]:19469"); err != nil || !strings.Contains(m, "hotcast_route_packets_total") {
		t.Fatalf("metrics after turning them on: %v\n%s", err, m)
	}

	reloadApplied(t, f.d, withAPI(`api: {socket: "`+moved+`", metrics-listen: "[::1]:19470"}`))
	if m, err := scrape(t, f.rtr, "[::1]:19470"); err != nil || !strings.Contains(m, `hotcast_interface_gate_forwarding{interface="ge1",sysname="E2E"} 1`) {
		t.Fatalf("metrics on the new port: %v\n%s", err, m)
	}
	if _, err := scrape(t, f.rtr, "[::1]:19469"); err == nil {
		t.Error("metrics still served on the old port")
	}

	reloadApplied(t, f.d, withAPI(`api: {socket: "`+moved+`"}`))
	if _, err := scrape(t, f.rtr, "[::1]:19470"); err == nil {
		t.Error("metrics still served after turning them off")
	}
	n := st.Stop()
	labtest.Eventually(t, 3*time.Second, "every frame at receivers 1 and 2", func() bool {
		c := f.counts(t, grpG)
		return c[0] == n && c[1] == n
	})
}

// addrs returns the IPv6 addresses of ifname in ns as "addr/len".
func addrs(t *testing.T, ns *netnstest.NS, ifname string) []string {
	t.Helper()
	out, err := exec.Command("ip", "-n", ns.Name, "-6", "-o", "addr", "show", "dev", ifname).CombinedOutput()
	if err != nil {
		t.Fatalf("ip addr show %s: %v %s", ifname, err, out)
	}
	var as []string
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		for i := range f {
			if f[i] == "inet6" && i+1 < len(f) {
				as = append(as, f[i+1])
			}
		}
	}
	return as
}

// TestReloadAddresses: SIGHUP adds and removes an interface's configured
// addresses (a changed prefix length is a removal and an addition) while a
// stream flows through it, leaving alone the addresses hotcast does not
// configure (link-local, one added by hand) and forwarding.
func TestReloadAddresses(t *testing.T) {
	withAddrs := func(a string) string {
		return strings.Replace(fastpathYAML, "  - name: ge1\n", "  - name: ge1\n    addresses: ["+a+"]\n", 1)
	}
	f := newFastpathYAML(t, withAddrs(`"2001:db8:a::1/64"`))
	if as := addrs(t, f.rtr, "ge1"); !slices.Contains(as, "2001:db8:a::1/64") {
		t.Fatalf("ge1 at start: %v", as)
	}
	if out, err := exec.Command("ip", "-n", f.rtr.Name, "-6", "addr", "add", "2001:db8:f::1/64", "dev", "ge1", "nodad").CombinedOutput(); err != nil {
		t.Fatalf("ip addr add: %v %s", err, out)
	}
	st := labtest.StartStream(t, f.s0, srcS, []netip.Addr{grpG}, 500)
	w := watchRoute(t, f.d, srcS.String(), grpG)

	time.Sleep(time.Second)
	reloadApplied(t, f.d, withAddrs(`"2001:db8:b::1/64", "2001:db8:a::1/56"`))
	time.Sleep(time.Second)
	as := addrs(t, f.rtr, "ge1")
	for _, want := range []string{"2001:db8:b::1/64", "2001:db8:a::1/56", "2001:db8:f::1/64"} {
		if !slices.Contains(as, want) {
			t.Errorf("ge1 after adding: %v lacks %s", as, want)
		}
	}
	if slices.Contains(as, "2001:db8:a::1/64") {
		t.Errorf("ge1 kept the old prefix length: %v", as)
	}
	if !slices.ContainsFunc(as, func(a string) bool { return strings.HasPrefix(a, "fe80::") }) {
		t.Errorf("ge1 lost its link-local address: %v", as)
	}
	if !strings.Contains(f.d.Log(), "reload: addresses applied") {
		t.Error("no log of the applied addresses")
	}

	reloadApplied(t, f.d, fastpathYAML)
	time.Sleep(time.Second)
	as = addrs(t, f.rtr, "ge1")
	if slices.Contains(as, "2001:db8:b::1/64") || slices.Contains(as, "2001:db8:a::1/56") || !slices.Contains(as, "2001:db8:f::1/64") {
		t.Errorf("ge1 after removing its configured addresses: %v", as)
	}
	n := st.Stop()
	w.end()
	labtest.Eventually(t, 3*time.Second, "every frame at receivers 1 and 2", func() bool {
		c := f.counts(t, grpG)
		return c[0] == n && c[1] == n
	})
	if w.polls < 2 || w.missing != 0 || w.reset != 0 {
		t.Errorf("route watch: %d polls, missing in %d, counter restarted %d times", w.polls, w.missing, w.reset)
	}
}

// reportWatch records the MLDv2 report records a link receives.
type reportWatch struct {
	mu   sync.Mutex
	recs []mld.Record
}

// watchReports listens on l (in its namespace) for MLDv2 reports until
// the test ends.
func watchReports(t *testing.T, l *netnstest.Link) *reportWatch {
	t.Helper()
	w := &reportWatch{}
	var c *packet.Conn
	l.NS.Do(t, func() error {
		ifi, err := net.InterfaceByIndex(l.Index)
		if err != nil {
			return err
		}
		c, err = packet.Listen(ifi, packet.Raw, unix.ETH_P_IPV6, nil)
		return err
	})
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 9000)
		for {
			n, _, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			b := buf[:n]
			if len(b) < 14+40 {
				continue
			}
			ip := b[14:]
			nh, off := ip[6], 40
			if nh == 0 && len(ip) >= 42 { // hop-by-hop (Router Alert)
				nh, off = ip[40], 40+(int(ip[41])+1)*8
			}
			if nh != 58 || len(ip) <= off {
				continue
			}
			m, err := mld.Parse(ip[off:])
			if r, ok := m.(*mld.V2Report); err == nil && ok {
				w.mu.Lock()
				w.recs = append(w.recs, r.Records...)
				w.mu.Unlock()
			}
		}
	}()
	return w
}

// seen reports whether a record of type rt for g was received.
func (w *reportWatch) seen(g netip.Addr, rt ...mld.RecordType) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.ContainsFunc(w.recs, func(r mld.Record) bool { return r.Group == g && slices.Contains(rt, r.Type) })
}

const reloadUpstreamYAML = `
sysname: UPS
api: {socket: "%SOCKET%"}
bpf: {pin-path: "%PIN%"}
multicast:
  routing-enable: true
  upstream: {interface: ge3, mode: static}
  static-routes:
    - {group: "ff3e::1:1", source: "2001:db8:40::2", interfaces: [ge2]}
interfaces:
  - name: ge1
    mld: {enable: true}
  - name: ge2
  - name: ge3
  - name: ge4
`

// TestReloadUpstream moves the upstream while a host on ge1 receives a
// group it joined: from ge3 to ge4 (the learned route and the static one
// that defaults to the upstream come in through ge4; what still arrives
// on ge3 fails RPF, what arrives on ge4 is forwarded), then the upstream
// mode to mld-proxy (the proxy reports the host's group on ge4), then
// back to ge3, static (the proxy leaves the group on ge4). The route
// stays in the fast path throughout.
func TestReloadUpstream(t *testing.T) {
	f := newFastpathYAML(t, reloadUpstreamYAML)
	g := netip.MustParseAddr("ff1e::77:1")
	f.rcv[0].Link.WaitLinkLocal(t)
	labtest.Join(t, f.rcv[0].Link, g, netip.Addr{})
	route := func(src string, grp netip.Addr) *api.Route {
		var ft api.ForwardingTable
		f.d.CtlJSON(&ft, "display", "multicast", "forwarding-table")
		return labtest.FindRoute(ft, src, grp)
	}
	labtest.Eventually(t, 5*time.Second, "the route learned from ge1's host", func() bool {
		r := route("*", g)
		return r != nil && r.Incoming == "ge3" && strings.Join(r.Outgoing, ",") == "ge1"
	})
	fromGe3 := labtest.StartStream(t, f.s0, srcS, []netip.Addr{g, grpG}, 500)
	labtest.Eventually(t, 3*time.Second, "ge3's stream at ge1's and ge2's hosts", func() bool {
		c := f.counts(t, g)
		return c[0] > 50 && f.counts(t, grpG)[1] > 50
	})
	w := watchRoute(t, f.d, "*", g)
	reports := watchReports(t, f.rcv[2].Link)

	// 1. Upstream ge3 -> ge4 (static): both routes come in through ge4.
	onGe4 := strings.Replace(reloadUpstreamYAML, "interface: ge3, mode: static", "interface: ge4, mode: static", 1)
	reloadApplied(t, f.d, onGe4)
	if r := route("*", g); r == nil || r.Incoming != "ge4" || strings.Join(r.Outgoing, ",") != "ge1" {
		t.Fatalf("learned route after the move: %+v", r)
	}
	if r := route(srcS.String(), grpG); r == nil || r.Incoming != "ge4" || !slices.Contains(r.Flags, "static") {
		t.Fatalf("static route after the move: %+v", r)
	}
	var ft api.ForwardingTable
	f.d.CtlJSON(&ft, "display", "multicast", "forwarding-table")
	rpf := ft.Reasons["drop_rpf"]
	c1, c2 := f.counts(t, g)[0], f.counts(t, grpG)[1]
	time.Sleep(300 * time.Millisecond)
	f.d.CtlJSON(&ft, "display", "multicast", "forwarding-table")
	if ft.Reasons["drop_rpf"] < rpf+200 {
		t.Errorf("ge3's stream after the move: drop_rpf %d -> %d, want it failing RPF", rpf, ft.Reasons["drop_rpf"])
	}
	if c := f.counts(t, g)[0]; c > c1+5 {
		t.Errorf("ge3's stream still forwarded after the move: %d -> %d", c1, c)
	}
	fromGe3.Stop()
	// The same source, now reached through ge4.
	fromGe4 := labtest.StartStream(t, f.rcv[2].Link, srcS, []netip.Addr{g, grpG}, 500)
	labtest.Eventually(t, 3*time.Second, "ge4's stream at ge1's and ge2's hosts", func() bool {
		return f.counts(t, g)[0] > c1+100 && f.counts(t, grpG)[1] > c2+100
	})
	if reports.seen(g, mld.ChangeToExclude, mld.ModeIsExclude) {
		t.Error("a report upstream in static mode")
	}

	// 2. mld-proxy on ge4: the host's group is reported there.
	proxied := strings.Replace(reloadUpstreamYAML, "interface: ge3, mode: static", "interface: ge4, mode: mld-proxy", 1)
	reloadApplied(t, f.d, proxied)
	labtest.Eventually(t, 3*time.Second, "the proxy's report of the group on ge4", func() bool {
		return reports.seen(g, mld.ChangeToExclude, mld.ModeIsExclude)
	})
	if r := route("*", g); r == nil || r.Incoming != "ge4" {
		t.Errorf("route with the proxy: %+v", r)
	}
	c1 = f.counts(t, g)[0]
	labtest.Eventually(t, 3*time.Second, "ge4's stream still at ge1's host", func() bool { return f.counts(t, g)[0] > c1+100 })

	// 3. Back to ge3, static: the proxy leaves the group on ge4; ge3's
	// traffic is forwarded again.
	reloadApplied(t, f.d, reloadUpstreamYAML)
	labtest.Eventually(t, 3*time.Second, "the proxy leaving the group on ge4", func() bool {
		return reports.seen(g, mld.ChangeToInclude)
	})
	fromGe4.Stop()
	if r := route("*", g); r == nil || r.Incoming != "ge3" {
		t.Fatalf("learned route back on ge3: %+v", r)
	}
	c1 = f.counts(t, g)[0]
	fromGe3 = labtest.StartStream(t, f.s0, srcS, []netip.Addr{g}, 500)
	labtest.Eventually(t, 3*time.Second, "ge3's stream at ge1's host again", func() bool { return f.counts(t, g)[0] > c1+100 })
	fromGe3.Stop()
	w.end()
	if w.polls < 3 || w.missing != 0 {
		t.Errorf("route watch: %d polls, missing in %d", w.polls, w.missing)
	}
	log := f.d.Log()
	for _, want := range []string{"reload: upstream interface moved", "mld-proxy started", "mld-proxy stopped"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q", want)
		}
	}
}

// routesWatch polls a daemon's forwarding table (its routes map) while
// reloads happen and counts the polls in which one of the watched routes
// (learnedRoutes strings) was missing.
type routesWatch struct {
	stop, done chan struct{}
	polls      int
	missing    int
	first      string // the first miss
}

func watchRoutes(t *testing.T, d *labtest.Daemon, want []string) *routesWatch {
	t.Helper()
	w := &routesWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			out, err := d.CtlErr("display", "multicast", "forwarding-table", "--json")
			if err != nil {
				continue
			}
			var ft api.ForwardingTable
			if json.Unmarshal(out, &ft) != nil {
				continue
			}
			have := map[string]bool{}
			for _, r := range ft.Routes {
				have[fmt.Sprintf("(%s, %s) <- %s", r.Source, r.Group, strings.Join(r.Outgoing, ","))] = true
			}
			w.polls++
			for _, r := range want {
				if !have[r] {
					if w.missing == 0 {
						w.first = fmt.Sprintf("%s missing from %v", r, ft.Routes)
					}
					w.missing++
					break
				}
			}
		}
	}()
	t.Cleanup(w.end)
	return w
}

func (w *routesWatch) end() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// TestReloadRBS reloads the remote backup service and profile of the
// reference pair (A Master, B Backup, hosts joined on A) in place: the
// service's port and hold time, then TLS turned on, then the profile's
// backup-id, each on A then B; then B's profile removed and added back.
// Each time the service or profile comes back and B converges to A's
// entries, also for a group joined after the reload (real-time backup on
// the new session); B's synced routes stay in its routes map at every
// poll meanwhile; a profile change leaves the service's session up.
func TestReloadRBS(t *testing.T) {
	r := newRef(t, refOpts{hot: true})
	r.waitRBS(t, 10*time.Second)
	labtest.Join(t, r.hv2, g1, netip.Addr{})
	labtest.Join(t, r.hv2, g3, sS)
	waitGroups(t, r.da, "ge2", 10*time.Second, []netip.Addr{g1, g3})
	r.waitConverged(t, 5*time.Second, "before the reloads")
	synced := learnedRoutes(t, r.db)
	pinned := labtest.PinnedRouteCount(t, r.db.PinPath)
	if len(synced) != 2 || pinned < 2 {
		t.Fatalf("B before the reloads: %v, %d pinned routes", synced, pinned)
	}
	w := watchRoutes(t, r.db, synced)
	// both reloads A, waits a second (B, not yet reloaded, cannot sync
	// meanwhile and keeps what it has), then reloads B.
	both := func(what string, editA, editB func(string) string) {
		t.Helper()
		r.cfgA, r.cfgB = editA(r.cfgA), editB(r.cfgB)
		reloadApplied(t, r.da, r.cfgA)
		labtest.Eventually(t, 5*time.Second, what+": B's profile out of sync", func() bool {
			return rbsProfile(t, r.db).SyncState != "in-sync"
		})
		time.Sleep(time.Second)
		reloadApplied(t, r.db, r.cfgB)
		r.waitRBS(t, 15*time.Second)
		r.waitConverged(t, 5*time.Second, what)
		if n := labtest.PinnedRouteCount(t, r.db.PinPath); n < pinned {
			t.Errorf("%s: B has %d routes pinned, had %d", what, n, pinned)
		}
	}

	// 1. Port and hold time: the service is replaced on both.
	portHold := func(c string) string { return strings.Replace(c, "port: 1025}", "port: 1026, hold-time: 6s}", 1) }
	both("port and hold time", portHold, portHold)
	for name, d := range map[string]*labtest.Daemon{"A": r.da, "B": r.db} {
		if s := rbsService(t, d); s.TCPState != "connected" || s.TCPPort != 1026 || s.HoldTime != 6 {
			t.Errorf("%s's service after the port change: %+v", name, s)
		}
		for _, want := range []string{"reload: remote backup service stopped", "reload: remote backup service started", "reload: remote backup profile bound"} {
			if !strings.Contains(d.Log(), want) {
				t.Errorf("%s's log lacks %q", name, want)
			}
		}
	}
	labtest.Join(t, r.hv1, g2, netip.Addr{})
	waitGroups(t, r.da, "ge2", 10*time.Second, []netip.Addr{g1, g2, g3})
	r.waitConverged(t, 5*time.Second, "a group joined after the port change")

	// 2. TLS turned on.
	ca := testpki.New(t, "rbs-ca")
	dir := t.TempDir()
	tf := map[string]testpki.Files{
		"A": ca.WriteLeaf(t, dir, "A", netip.MustParseAddr("2001:db8:10::1")),
		"B": ca.WriteLeaf(t, dir, "B", netip.MustParseAddr("2001:db8:10::2")),
	}
	withTLS := func(f testpki.Files) func(string) string {
		return func(c string) string {
			return strings.Replace(c, "hold-time: 6s}", fmt.Sprintf("hold-time: 6s, tls: {cert: %q, key: %q, ca: %q}}", f.Cert, f.Key, f.CA), 1)
		}
	}
	both("TLS turned on", withTLS(tf["A"]), withTLS(tf["B"]))
	for name, d := range map[string]*labtest.Daemon{"A": r.da, "B": r.db} {
		if s := rbsService(t, d); s.SSLPolicyName != "tls13-mutual" || s.SSLState != "connected" {
			t.Errorf("%s's service with TLS: %+v", name, s)
		}
	}

	// 3. The profile's backup-id: the profile is bound anew on the
	// running service, whose session stays up.
	est := rbsService(t, r.da).Counters["established"]
	backupID := func(c string) string { return strings.Replace(c, "backup-id: 10,", "backup-id: 11,", 1) }
	both("backup-id changed", backupID, backupID)
	for name, d := range map[string]*labtest.Daemon{"A": r.da, "B": r.db} {
		if p := rbsProfile(t, d); p.BackupID != 11 {
			t.Errorf("%s's profile: %+v", name, p)
		}
	}
	if e := rbsService(t, r.da).Counters["established"]; e != est {
		t.Errorf("the session was re-established (%d -> %d) for a profile change", est, e)
	}

	// 4. B's profile removed: A's profile goes down, B keeps what it has;
	// added back, B converges again.
	prof := r.cfgB[strings.Index(r.cfgB, "remote-backup-profiles:\n"):strings.Index(r.cfgB, "interfaces:\n")]
	withProfile := r.cfgB
	reloadApplied(t, r.db, strings.Replace(strings.Replace(r.cfgB, prof, "", 1), "    remote-backup-profile: profile1\n", "", 1))
	labtest.Eventually(t, 5*time.Second, "A's profile down", func() bool {
		p := rbsProfile(t, r.da)
		return strings.Contains(p.Mismatch, "not configured on the peer")
	})
	var ps []api.RemoteBackupProfile
	r.db.CtlJSON(&ps, "display", "remote-backup-profile")
	if len(ps) != 0 {
		t.Errorf("B's profiles after the removal: %+v", ps)
	}
	time.Sleep(time.Second)
	if gs, n := mldGroupSet(t, r.db, "ge3"); len(gs) != 3 || n != 3 {
		t.Errorf("B's groups after its profile was removed: %v (%d synced)", gs, n)
	}
	reloadApplied(t, r.db, withProfile)
	r.waitRBS(t, 10*time.Second)
	r.waitConverged(t, 5*time.Second, "B's profile added back")

	w.end()
	t.Logf("%d polls of B's routes during the reloads", w.polls)
	if w.polls < 10 || w.missing != 0 {
		t.Errorf("B's synced routes: %d polls, missing in %d (first: %s)", w.polls, w.missing, w.first)
	}
}
