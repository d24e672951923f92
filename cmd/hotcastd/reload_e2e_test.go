package main

import (
	"encoding/json"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hotcast/hotcast/cmd/internal/api"
	"github.com/hotcast/hotcast/internal/labtest"
	"github.com/hotcast/hotcast/internal/netnstest"
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

func findRoute(ft api.ForwardingTable, source string, g netip.Addr) *api.Route {
	for i := range ft.Routes {
		if ft.Routes[i].Source == source && ft.Routes[i].Group == g.String() {
			return &ft.Routes[i]
		}
	}
	return nil
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
		r := findRoute(ft, "*", g)
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
		r := findRoute(ft, "*", g)
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
		r := findRoute(ft, "*", g)
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
	if r := findRoute(ft, "*", g); r == nil || r.Packets != n {
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
