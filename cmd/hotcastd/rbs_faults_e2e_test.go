package main

import (
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hotcast/hotcast/daemon/api"
	"github.com/hotcast/hotcast/internal/inet"
	"github.com/hotcast/hotcast/internal/labtest"
	"github.com/hotcast/hotcast/internal/netnstest"
	"github.com/hotcast/hotcast/internal/testpki"
	"github.com/hotcast/hotcast/sync/rbs"
)

// refOpts parameterises the reference topology (newRef).
type refOpts struct {
	hot     bool
	advert  time.Duration // VRRP6 advertise-interval, default 100 ms
	preempt time.Duration // A's and B's preempt-delay, default 10 s
	// tlsA, tlsB, when set, put TLS on the RBS channel with these files.
	tlsA, tlsB *testpki.Files
}

const refOptsYAML = `
sysname: %[1]s
api: {socket: "%%SOCKET%%"}
bpf: {pin-path: "%%PIN%%"}
multicast:
  routing-enable: true
  upstream: {interface: %[2]s, mode: static}
%[6]s
interfaces:
  - name: ge1
    addresses: ["2001:db8:10::%[5]d/64"]
  - name: %[3]s
    addresses: ["2001:db8:50::%[5]d/64"]
    mld: {enable: true, query-interval: 5s, max-response-time: 1s, last-listener-query-interval: 500ms, ignore-reports-while-backup: true}
    vrrp6:
      - {vrid: 1, virtual-ip: ["fe80::1", "2001:db8::50"], priority: %[4]d, preempt-delay: %[9]s, advertise-interval: %[8]s}
    multicast-track-vrrp6: 1
%[7]s
  - name: %[2]s
`

// newRef builds the reference topology (see reference) with opts.
func newRef(t *testing.T, o refOpts) *reference {
	t.Helper()
	if o.advert == 0 {
		o.advert = 100 * time.Millisecond
	}
	if o.preempt == 0 {
		o.preempt = 10 * time.Second
	}
	r := &reference{meter: map[string]*labtest.GapMeter{}}
	r.src, r.upsw, r.lan = netnstest.New(t, "src"), netnstest.New(t, "usw"), netnstest.New(t, "lan")
	r.a, r.b = netnstest.New(t, "A"), netnstest.New(t, "B")
	var up, lan []*netnstest.Link
	var l *netnstest.Link
	r.s0, l = netnstest.Veth(t, r.src, "s0", r.upsw, "p-src")
	up = append(up, l)
	_, l = netnstest.Veth(t, r.a, "ge3", r.upsw, "p-a")
	up = append(up, l)
	_, l = netnstest.Veth(t, r.b, "ge2", r.upsw, "p-b")
	up = append(up, l)
	_, l = netnstest.Veth(t, r.a, "ge2", r.lan, "p-a")
	lan = append(lan, l)
	_, l = netnstest.Veth(t, r.b, "ge3", r.lan, "p-b")
	lan = append(lan, l)
	netnstest.Veth(t, r.a, "ge1", r.b, "ge1")
	for _, port := range lan {
		labtest.NewReceiver(t, port) // switch ports receive XDP-redirected frames
	}
	hv2, hv1 := netnstest.New(t, "hv2"), netnstest.New(t, "hv1")
	hv1.Sysctl(t, "net/ipv6/conf/all/force_mld_version", "1")
	hv1.Sysctl(t, "net/ipv6/conf/default/force_mld_version", "1")
	// Hosts join hundreds of groups in some tests: one socket each.
	for _, h := range []*netnstest.NS{hv2, hv1} {
		h.Sysctl(t, "net/core/optmem_max", "1048576")
	}
	r.hv2, l = netnstest.Veth(t, hv2, "eth0", r.lan, "p-h2")
	lan = append(lan, l)
	r.hv1, l = netnstest.Veth(t, hv1, "eth0", r.lan, "p-h1")
	lan = append(lan, l)
	netnstest.Bridge(t, r.upsw, "br0", up...)
	netnstest.Switch(t, r.lan, "br0", lan...) // DeviceC: a plain switch
	r.meter["v2"] = labtest.NewGapMeter(t, r.hv2)
	r.meter["v1"] = labtest.NewGapMeter(t, r.hv1)

	d, ctl := labtest.Binaries(t)
	cfg := func(name, upIf, lanIf string, prio, n, peer int, tf *testpki.Files) string {
		rb, prof := "", ""
		if o.hot {
			rb = fmt.Sprintf(rbsYAML, peer, n, lanIf)
			prof = "    remote-backup-profile: profile1"
		}
		if tf != nil {
			rb = strings.Replace(rb, "port: 1025}", fmt.Sprintf("port: 1025, tls: {cert: %q, key: %q, ca: %q}}", tf.Cert, tf.Key, tf.CA), 1)
		}
		return fmt.Sprintf(refOptsYAML, name, upIf, lanIf, prio, n, rb, prof, o.advert, o.preempt)
	}
	r.cfgA = cfg("DeviceA", "ge3", "ge2", 200, 1, 2, o.tlsA)
	r.cfgB = cfg("DeviceB", "ge2", "ge3", 120, 2, 1, o.tlsB)
	r.da = labtest.StartDaemon(t, r.a, d, ctl, r.cfgA)
	r.db = labtest.StartDaemon(t, r.b, d, ctl, r.cfgB)
	return r
}

func rbsProfile(t *testing.T, d *labtest.Daemon) api.RemoteBackupProfile {
	t.Helper()
	var ps []api.RemoteBackupProfile
	d.CtlJSON(&ps, "display", "remote-backup-profile")
	if len(ps) != 1 {
		t.Fatalf("display remote-backup-profile: %+v", ps)
	}
	return ps[0]
}

func rbsService(t *testing.T, d *labtest.Daemon) api.RemoteBackupService {
	t.Helper()
	var ss []api.RemoteBackupService
	d.CtlJSON(&ss, "display", "remote-backup-service")
	if len(ss) != 1 {
		t.Fatalf("display remote-backup-service: %+v", ss)
	}
	return ss[0]
}

// waitRBS waits for A Master / B Backup and the profile in sync on B.
func (r *reference) waitRBS(t *testing.T, timeout time.Duration) {
	t.Helper()
	labtest.Eventually(t, timeout, "A Master, B Backup, RBS in sync", func() bool {
		if vrrpState(t, r.da).State != "Master" || vrrpState(t, r.db).State != "Backup" {
			return false
		}
		p := rbsProfile(t, r.db)
		return p.State == "Backup" && p.PeerState == "Master" && p.SyncState == "in-sync"
	})
}

// mldGroupSet returns the non link-scope MLD records of ifname as
// "group mode vN [sources]" strings, sorted, and how many are synced.
func mldGroupSet(t *testing.T, d *labtest.Daemon, ifname string) (set []string, synced int) {
	t.Helper()
	var gs []api.MLDGroup
	d.CtlJSON(&gs, "display", "mld", "group", "interface", ifname)
	for _, g := range gs {
		a, err := netip.ParseAddr(g.Group)
		if err != nil {
			t.Fatalf("mld group %q: %v", g.Group, err)
		}
		if inet.LinkScope(a) { // link scope: not replicated
			continue
		}
		var srcs []string
		for _, s := range g.Sources {
			srcs = append(srcs, s.Address)
		}
		slices.Sort(srcs)
		set = append(set, fmt.Sprintf("%s %s v%d %v", g.Group, g.FilterMode, g.Version, srcs))
		if g.Synced {
			synced++
		}
	}
	slices.Sort(set)
	return set, synced
}

// converged reports whether B's learned routes and MLD records equal A's
// (A forwards to ge2, B to ge3), and describes the difference.
func (r *reference) converged(t *testing.T) (bool, string) {
	t.Helper()
	ra, rb := learnedRoutes(t, r.da), learnedRoutes(t, r.db)
	for i := range ra {
		ra[i] = strings.TrimSuffix(ra[i], "ge2") + "ge3"
	}
	ga, _ := mldGroupSet(t, r.da, "ge2")
	gb, synced := mldGroupSet(t, r.db, "ge3")
	ok := slices.Equal(ra, rb) && slices.Equal(ga, gb) && synced == len(gb)
	return ok, fmt.Sprintf("routes A %d %v\nroutes B %d %v\ngroups A %d %v\ngroups B %d (%d synced) %v", len(ra), ra, len(rb), rb, len(ga), ga, len(gb), synced, gb)
}

// waitConverged waits until B equals A and returns how long it took.
func (r *reference) waitConverged(t *testing.T, timeout time.Duration, what string) time.Duration {
	t.Helper()
	start := time.Now()
	var diff string
	for {
		ok, d := r.converged(t)
		if ok {
			return time.Since(start)
		}
		diff = d
		if time.Since(start) > timeout {
			t.Fatalf("%s: B did not converge to A within %s\n%s", what, timeout, diff)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func groupsOf(set []string) []string {
	var out []string
	for _, s := range set {
		out = append(out, strings.Fields(s)[0])
	}
	return out
}

// waitGroups waits until d's MLD groups on ifname are exactly want.
func waitGroups(t *testing.T, d *labtest.Daemon, ifname string, timeout time.Duration, want []netip.Addr) {
	t.Helper()
	var ws []string
	for _, g := range want {
		ws = append(ws, g.String())
	}
	slices.Sort(ws)
	var got []string
	if !waitFor(timeout, func() bool {
		set, _ := mldGroupSet(t, d, ifname)
		got = groupsOf(set)
		slices.Sort(got)
		return slices.Equal(got, ws)
	}) {
		t.Fatalf("MLD groups on %s: got %v, want %v", ifname, got, ws)
	}
}

func addrN(prefix string, i int) netip.Addr {
	return netip.MustParseAddr(fmt.Sprintf("%s%x", prefix, i))
}

// TestRBSLinkCut cuts the RBS link for 30 s while hosts join and leave
// groups on A; when it returns, B's routes and MLD records converge to
// exactly A's within a few seconds (a new session, a new batch).
func TestRBSLinkCut(t *testing.T) {
	r := newRef(t, refOpts{hot: true})
	r.waitRBS(t, 10*time.Second)

	leave := map[netip.Addr]func(){}
	joined := map[netip.Addr]bool{}
	join := func(l *netnstest.Link, g, s netip.Addr) {
		leave[g] = labtest.Join(t, l, g, s)
		joined[g] = true
	}
	drop := func(g netip.Addr) {
		leave[g]()
		delete(joined, g)
	}
	want := func() []netip.Addr {
		var out []netip.Addr
		for g := range joined {
			out = append(out, g)
		}
		return out
	}
	join(r.hv2, g1, netip.Addr{})
	join(r.hv1, g2, netip.Addr{})
	join(r.hv2, g3, sS)
	for i := 1; i <= 5; i++ {
		join(r.hv2, addrN("ff0e::10:", i), netip.Addr{})
	}
	waitGroups(t, r.da, "ge2", 10*time.Second, want())
	r.waitConverged(t, 5*time.Second, "before the cut")
	before := rbsProfile(t, r.db)

	cut := time.Now()
	for _, ns := range []*netnstest.NS{r.a, r.b} {
		setLink(t, ns, "ge1", "down")
	}
	restored := false
	t.Cleanup(func() {
		if !restored {
			for _, ns := range []*netnstest.NS{r.a, r.b} {
				_ = exec.Command("ip", "-n", ns.Name, "link", "set", "ge1", "up").Run()
			}
		}
	})
	at := func(d time.Duration) { time.Sleep(time.Until(cut.Add(d))) }

	// While the TCP session still believes it is up (hold time 9 s).
	at(time.Second)
	drop(g1)
	drop(addrN("ff0e::10:", 1))
	join(r.hv2, addrN("ff0e::20:", 1), netip.Addr{})
	join(r.hv1, addrN("ff0e::20:", 2), netip.Addr{})
	// After the hold time expired: the session is down.
	at(12 * time.Second)
	if st := rbsService(t, r.db).TCPState; st == "connected" {
		t.Errorf("B's RBS session still connected 12 s into the cut")
	}
	drop(g2)
	drop(addrN("ff0e::10:", 2))
	join(r.hv2, netip.MustParseAddr("ff3e::20:3"), sS)
	at(25 * time.Second)
	join(r.hv1, addrN("ff0e::20:", 4), netip.Addr{})
	drop(addrN("ff0e::20:", 1))
	waitGroups(t, r.da, "ge2", 4*time.Second, want())
	if ok, _ := r.converged(t); ok {
		t.Fatalf("B converged to A while the RBS link was down: the cut did not cut")
	}

	at(30 * time.Second)
	for _, ns := range []*netnstest.NS{r.a, r.b} {
		setLink(t, ns, "ge1", "up")
	}
	restored = true
	took := r.waitConverged(t, 5*time.Second, "after the RBS link returned")
	after := rbsProfile(t, r.db)
	t.Logf("cut %s; B converged %s after the link returned; batches received %d -> %d", 30*time.Second, took, before.Counters["batches_received"], after.Counters["batches_received"])
	if after.Counters["batches_received"] <= before.Counters["batches_received"] {
		t.Errorf("no new batch after the cut: %v", after.Counters)
	}
	if vrrpState(t, r.da).State != "Master" || vrrpState(t, r.db).State != "Backup" {
		t.Errorf("roles changed during the RBS cut")
	}
	// And real-time deltas flow again.
	join(r.hv2, addrN("ff0e::30:", 1), netip.Addr{})
	waitGroups(t, r.da, "ge2", 4*time.Second, want())
	r.waitConverged(t, 3*time.Second, "a delta after the cut")
}

// injectPartialBatch speaks RBS to B from A's address (A being dead): a
// Hello as master, a BatchBegin announcing count entries, all but the last
// of them, then a reset — a peer dying in the middle of its batch.
func injectPartialBatch(t *testing.T, r *reference, count int, prefix string) {
	t.Helper()
	var c net.Conn
	if !waitFor(3*time.Second, func() bool {
		var err error
		r.a.Do(t, func() error {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("2001:db8:10::1")}, Timeout: time.Second}
			c, err = d.Dial("tcp", "[2001:db8:10::2]:1025")
			return nil
		})
		return err == nil
	}) {
		t.Fatalf("could not connect to B's RBS port as A")
	}
	defer c.Close()
	w := func(m rbs.Message) {
		if _, err := rbs.WriteMessage(c, m); err != nil {
			t.Fatalf("write %T: %v", m, err)
		}
	}
	w(&rbs.Hello{SysName: "DeviceA", HoldTime: 9 * time.Second, Profiles: []rbs.ProfileInfo{{BackupID: 10, Role: rbs.RoleMaster, Services: rbs.ServiceMLD}}})
	rd := rbs.NewReader(c)
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if m, _, err := rd.ReadMessage(); err != nil {
		t.Fatalf("B's Hello: %v", err)
	} else if h, ok := m.(*rbs.Hello); !ok || h.SysName != "DeviceB" {
		t.Fatalf("B answered %#v", m)
	}
	epoch := uint64(time.Now().UnixNano())
	w(&rbs.BatchBegin{BackupID: 10, Epoch: epoch, Count: uint32(count)})
	for i := 1; i < count; i++ {
		w(&rbs.Entry{BackupID: 10, Seq: uint64(i), Op: rbs.OpUpsert, MLD: rbs.MLDEntry{
			Group: addrN(prefix, i), FilterMode: rbs.FilterExclude, Compat: 2, GroupTimerMs: 60000,
			LastReporter: netip.MustParseAddr("fe80::99"),
		}})
	}
	// Let B read it all, then die without BatchEnd (RST, as a crash
	// with unread data does).
	time.Sleep(200 * time.Millisecond)
	c.(*net.TCPConn).SetLinger(0)
}

// TestRBSPeerKilledMidBatch kills A (SIGKILL) while it sends its batch to a
// restarted B, and replays a peer dying mid-batch on the wire: B never
// applies a partial batch, and once A is back both converge to what the
// hosts joined.
func TestRBSPeerKilledMidBatch(t *testing.T) {
	// 1 s adverts: B stays Backup for its Master_Down_Interval (~3.6 s)
	// after A dies, the window in which B must not apply anything.
	r := newRef(t, refOpts{hot: true, advert: time.Second, preempt: 5 * time.Second})
	r.waitRBS(t, 20*time.Second)

	const n = 240
	var want []netip.Addr
	for i := 1; i <= n; i++ {
		l := r.hv2
		if i%4 == 0 {
			l = r.hv1
		}
		g := addrN("ff0e::5:", i)
		labtest.Join(t, l, g, netip.Addr{})
		want = append(want, g)
	}
	waitGroups(t, r.da, "ge2", 20*time.Second, want)
	r.waitConverged(t, 5*time.Second, "before the crash")

	// B restarts; A sends it a batch of n entries; A dies as soon as
	// B's API answers (the session comes up right after).
	r.db.Stop()
	r.db.Start()
	r.da.Kill()
	killed := time.Now()
	set, synced := mldGroupSet(t, r.db, "ge3")
	if len(set) != 0 && len(set) != n {
		t.Fatalf("B holds %d of A's %d groups after A died mid-batch: a partial batch was applied", len(set), n)
	}
	t.Logf("real kill: B holds %d groups (%d synced) after A died (0: the batch was cut, %d: it completed)", len(set), synced, n)

	// The deterministic version: a peer at A's address announcing 300
	// entries, sending 299 and resetting.
	p0 := rbsProfile(t, r.db)
	injectPartialBatch(t, r, 300, "ff0e::dead:")
	labtest.Eventually(t, 2*time.Second, "B read the partial batch", func() bool {
		return rbsProfile(t, r.db).Counters["entries_received"] >= p0.Counters["entries_received"]+299
	})
	p1 := rbsProfile(t, r.db)
	if vs := vrrpState(t, r.db); vs.State != "Backup" {
		t.Fatalf("B became %s %s after A died: the check below would mean nothing", vs.State, time.Since(killed))
	}
	set2, _ := mldGroupSet(t, r.db, "ge3")
	if !slices.Equal(set, set2) {
		t.Errorf("B's groups changed on a batch without BatchEnd: %d -> %d", len(set), len(set2))
	}
	for _, s := range set2 {
		if strings.HasPrefix(s, "ff0e::dead:") {
			t.Fatalf("B applied an entry of the partial batch: %s", s)
		}
	}
	if p1.Counters["batches_received"] != p0.Counters["batches_received"] {
		t.Errorf("partial batch counted as received: %v -> %v", p0.Counters, p1.Counters)
	}
	for _, rt := range learnedRoutes(t, r.db) {
		if strings.Contains(rt, "ff0e::dead:") {
			t.Fatalf("partial batch reached B's forwarding table: %s", rt)
		}
	}

	// B takes over (it learns the hosts itself as Master); A returns,
	// gets B's batch as Backup, preempts after 5 s and sends its own.
	labtest.Eventually(t, 6*time.Second, "B Master", func() bool { return vrrpState(t, r.db).State == "Master" })
	r.da.Start()
	labtest.Eventually(t, 20*time.Second, "A Master again, B Backup", func() bool {
		return vrrpState(t, r.da).State == "Master" && vrrpState(t, r.db).State == "Backup"
	})
	waitGroups(t, r.da, "ge2", 10*time.Second, want)
	took := r.waitConverged(t, 10*time.Second, "after A came back")
	t.Logf("converged %s after A was Master again", took)
}

// TestRBSBackupRestart restarts B's daemon (SIGTERM): B's pinned dataplane
// keeps A's entries while it is down, B adopts it, resyncs from A and ends
// with identical entries; A's forwarding sees no gap and B no duplicates.
func TestRBSBackupRestart(t *testing.T) {
	r := newRef(t, refOpts{hot: true})
	r.waitRBS(t, 10*time.Second)
	r.joinAll(t)
	for i := 1; i <= 20; i++ {
		labtest.Join(t, r.hv2, addrN("ff0e::7:", i), netip.Addr{})
	}
	labtest.Eventually(t, 10*time.Second, "A learns 23 groups", func() bool { return len(learnedRoutes(t, r.da)) == 23 })
	r.waitConverged(t, 5*time.Second, "before the restart")
	routesBefore := learnedRoutes(t, r.db)
	pinnedBefore := labtest.PinnedRouteCount(t, r.db.PinPath)
	aBefore := rbsService(t, r.da)

	st := labtest.StartStream(t, r.s0, sS, []netip.Addr{g1, g2, g3}, 1000)
	time.Sleep(500 * time.Millisecond)
	for _, m := range r.meter {
		m.Reset()
	}
	sent0 := st.Sent()
	r.db.Stop()
	if n := labtest.PinnedRouteCount(t, r.db.PinPath); n != pinnedBefore || n < 23 {
		t.Errorf("B's pinned routes while its daemon is down: %d, before %d", n, pinnedBefore)
	}
	time.Sleep(500 * time.Millisecond)
	r.db.Start()
	if got := learnedRoutes(t, r.db); !slices.Equal(got, routesBefore) {
		t.Errorf("B's routes right after the restart (adopted):\n got %v\nwant %v", got, routesBefore)
	}
	labtest.Eventually(t, 5*time.Second, "B resynced from A", func() bool {
		p := rbsProfile(t, r.db)
		return p.SyncState == "in-sync" && p.Counters["batches_received"] >= 1
	})
	took := r.waitConverged(t, 3*time.Second, "after B's restart")
	var ft api.ForwardingTable
	r.db.CtlJSON(&ft, "display", "multicast", "forwarding-table")
	if ft.Gates["ge3"] != "muted" {
		t.Errorf("B's gate after restart %q, want muted", ft.Gates["ge3"])
	}
	for _, rt := range ft.Routes {
		if !slices.Contains(rt.Flags, "synced") && !slices.Contains(rt.Flags, "static") {
			t.Errorf("B's route %s %s not synced after the resync: %v", rt.Source, rt.Group, rt.Flags)
		}
	}
	// Past B's relearn grace nothing is pruned: the synced entries are
	// its state now.
	time.Sleep(time.Second)
	sent := st.Stop() - sent0
	for _, m := range r.meter {
		m.Settle(100*time.Millisecond, 2*time.Second) // the last frames in flight
	}
	// Unaffected: nothing lost, nothing duplicated. What the receivers
	// lost is judged by sequence numbers; the arrival gap (logged) also
	// holds any pause of the test's own sender and reader.
	for host, gs := range map[string][]netip.Addr{"v2": {g1, g3}, "v1": {g2}} {
		for _, g := range gs {
			rep := r.meter[host].Report(g)
			t.Logf("B restart, %s %s: longest gap %s, longest loss %d frames, %d received of %d sent, %d duplicates", host, g, rep.MaxGap, rep.MaxLoss, rep.Received, sent, rep.Duplicates)
			if rep.LossGap(1000) > 50*time.Millisecond || rep.Duplicates != 0 || rep.Received+3 < sent {
				t.Errorf("%s %s: A's forwarding disturbed by B's restart: %+v", host, g, rep)
			}
		}
	}
	if vrrpState(t, r.da).State != "Master" || vrrpState(t, r.db).State != "Backup" {
		t.Errorf("roles changed during B's restart")
	}
	aAfter := rbsService(t, r.da)
	t.Logf("B converged %s after its restart; A sessions established %d -> %d", took, aBefore.Counters["established"], aAfter.Counters["established"])
}

// TestRBSStranger sends random bytes and a well-formed Hello to B's RBS
// port (B listens: its source address is the higher one) from an address
// of the RBS link that is not the peer: every connection is rejected and
// counted, and the session with A stays up without a resync.
func TestRBSStranger(t *testing.T) {
	r := newRef(t, refOpts{hot: true})
	r.waitRBS(t, 10*time.Second)
	r.joinAll(t)
	labtest.Eventually(t, 10*time.Second, "A learns the three groups", func() bool { return len(learnedRoutes(t, r.da)) == 3 })
	r.waitConverged(t, 5*time.Second, "before the stranger")
	sb0, sa0, pb0 := rbsService(t, r.db), rbsService(t, r.da), rbsProfile(t, r.db)
	if !sa0.Dialer || sb0.Dialer {
		t.Fatalf("expected A to dial and B to listen: A dialer %v, B dialer %v", sa0.Dialer, sb0.Dialer)
	}

	if out, err := exec.Command("ip", "-n", r.a.Name, "addr", "add", "2001:db8:10::99/64", "dev", "ge1", "nodad").CombinedOutput(); err != nil {
		t.Fatalf("add stranger address: %v %s", err, out)
	}
	stranger := netip.MustParseAddr("2001:db8:10::99")
	dst := netip.MustParseAddrPort("[2001:db8:10::2]:1025")
	const conns = 6
	for i := range conns {
		c := labtest.DialTCPFrom(t, r.a, stranger, dst)
		switch i % 3 {
		case 0: // random bytes
			junk := make([]byte, 4096)
			rand.Read(junk)
			c.Write(junk)
		case 1: // a valid Hello claiming to be A
			rbs.WriteMessage(c, &rbs.Hello{SysName: "DeviceA", HoldTime: 9 * time.Second, Profiles: []rbs.ProfileInfo{{BackupID: 10, Role: rbs.RoleMaster, Services: rbs.ServiceMLD}}})
		case 2: // a silent connection
		}
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, err := io.Copy(io.Discard, c)
		if n != 0 {
			t.Errorf("stranger connection %d: B sent %d bytes", i, n)
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Errorf("stranger connection %d: B kept it open", i)
		}
		c.Close()
	}
	// Random bytes at A's RBS port: A only dials, nothing listens.
	var aErr error
	r.b.Do(t, func() error {
		_, aErr = net.DialTimeout("tcp", "[2001:db8:10::1]:1025", time.Second)
		return nil
	})
	if aErr == nil {
		t.Errorf("A (the dialer) accepts connections on its RBS port")
	}

	labtest.Eventually(t, 2*time.Second, "B counts the strangers", func() bool {
		return rbsService(t, r.db).Counters["strangers_rejected"] == sb0.Counters["strangers_rejected"]+conns
	})
	sb1, sa1, pb1 := rbsService(t, r.db), rbsService(t, r.da), rbsProfile(t, r.db)
	t.Logf("B after the stranger: tcp %s, counters %v, errors %v", sb1.TCPState, sb1.Counters, sb1.Errors)
	if sb1.TCPState != "connected" || sa1.TCPState != "connected" {
		t.Errorf("session down after the stranger: A %s, B %s", sa1.TCPState, sb1.TCPState)
	}
	for _, k := range []string{"established", "disconnects"} {
		if sb1.Counters[k] != sb0.Counters[k] || sa1.Counters[k] != sa0.Counters[k] {
			t.Errorf("%s changed: A %d -> %d, B %d -> %d", k, sa0.Counters[k], sa1.Counters[k], sb0.Counters[k], sb1.Counters[k])
		}
	}
	for _, k := range []string{"batches_received", "resyncs_requested", "apply_errors"} {
		if pb1.Counters[k] != pb0.Counters[k] {
			t.Errorf("B's profile %s changed: %d -> %d", k, pb0.Counters[k], pb1.Counters[k])
		}
	}
	if pb1.SyncState != "in-sync" {
		t.Errorf("B's profile %s after the stranger", pb1.SyncState)
	}
	// The session still replicates deltas in the same epoch.
	g := netip.MustParseAddr("ff0e::99:1")
	labtest.Join(t, r.hv2, g, netip.Addr{})
	labtest.Eventually(t, 5*time.Second, "a delta after the stranger", func() bool { return len(learnedRoutes(t, r.da)) == 4 })
	r.waitConverged(t, 2*time.Second, "a delta after the stranger")
	if pb2 := rbsProfile(t, r.db); pb2.Counters["batches_received"] != pb0.Counters["batches_received"] {
		t.Errorf("the delta came with a new batch: %v", pb2.Counters)
	}
}
