package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hotcast/hotcast/bpf"
	"github.com/hotcast/hotcast/ctrl/bfd"
	"github.com/hotcast/hotcast/ctrl/mld"
	"github.com/hotcast/hotcast/ctrl/vrrp6"
	"github.com/hotcast/hotcast/daemon/api"
	"github.com/hotcast/hotcast/daemon/config"
	"github.com/prometheus/client_golang/prometheus"
)

// These tests run the daemon's own logic (start-up phases, transition to
// gate, MLD to RBS and back, reload, shutdown and adoption) on fake
// machines (fake_test.go): no root, no kernel, and clean under -race.

// fakeRouterYAML is a router of the reference reduced to what the logic
// needs: up0 upstream, lan0 the VRRP6 LAN (MLD, tracked group 1), rbs0
// the RBS link when peer is set. A fast advert interval keeps the tests
// short.
func fakeRouterYAML(dir, name string, prio int, self, peer string) string {
	y := fmt.Sprintf(`sysname: %[1]s
api:
  socket: %[2]s/%[1]s.sock
bpf:
  pin-path: /sys/fs/bpf/hotcast-fake/%[1]s
multicast:
  routing-enable: true
  upstream: {interface: up0, mode: static}
`, name, dir)
	if peer != "" {
		y += fmt.Sprintf(`remote-backup-services:
  - {name: service1, peer-ipv6: "%s", source-ipv6: "%s", port: 1025}
remote-backup-profiles:
  - name: profile1
    service-type: [mld]
    backup-id: 10
    remote-backup-service: service1
    peer-backup: hot
    vrrp6: {vrid: 1, interface: lan0}
`, peer, self)
	}
	y += fmt.Sprintf(`interfaces:
  - name: up0
    addresses: [2001:db8:20::%[1]d/64]
  - name: lan0
    addresses: [2001:db8:50::%[1]d/64]
    mld: {enable: true, query-interval: 1s, max-response-time: 500ms}
    vrrp6:
      - {vrid: 1, virtual-ip: [fe80::1, 2001:db8:50::100], priority: %[1]d, advertise-interval: 20ms}
    multicast-track-vrrp6: 1
`, prio)
	if peer != "" {
		y += "    remote-backup-profile: profile1\n"
		y += fmt.Sprintf("  - name: rbs0\n    addresses: [%s/64]\n", self)
	}
	return y
}

// fakeRouter is one daemon running on a fake machine.
type fakeRouter struct {
	t      *testing.T
	sys    *fakeSystem
	cfg    *config.Config
	d      *Daemon
	cancel context.CancelFunc
	done   chan error
}

// newFakeMachine makes a machine with up0, lan0 (on the LAN "lan") and
// rbs0.
func newFakeMachine(t *testing.T, n *fakeNet, id byte) *fakeSystem {
	s := newFakeSystem(t, n, id)
	s.addIf("up0", "")
	s.addIf("lan0", "lan")
	s.addIf("rbs0", "")
	return s
}

func loadYAML(t *testing.T, y string) *config.Config {
	t.Helper()
	cfg, err := config.LoadBytes([]byte(y))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, y)
	}
	return cfg
}

// testLog discards, or logs to stderr with HC_TEST_LOG=1.
func testLog(name string) *slog.Logger {
	if os.Getenv("HC_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("router", name)
}

// startFake runs a daemon on sys and waits until it serves its API.
func startFake(t *testing.T, sys *fakeSystem, y string) *fakeRouter {
	t.Helper()
	r := &fakeRouter{t: t, sys: sys, cfg: loadYAML(t, y), done: make(chan error, 1)}
	d, err := NewOn(sys, r.cfg, testLog(r.cfg.Sysname))
	if err != nil {
		t.Fatal(err)
	}
	r.d = d
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- d.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(r.cfg.API.Socket); err == nil {
			break
		}
		select {
		case err := <-r.done:
			t.Fatalf("Run ended at start: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the API never came up")
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Cleanup(func() { r.stop() })
	return r
}

// stop ends the daemon and returns what Run returned (once).
func (r *fakeRouter) stop() error {
	if r.cancel == nil {
		return nil
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		return err
	case <-time.After(10 * time.Second):
		r.t.Fatal("Run did not return after cancel: a goroutine was not joined")
		return nil
	}
}

func (r *fakeRouter) index(name string) int {
	f, err := r.sys.Interface(name)
	if err != nil {
		r.t.Fatal(err)
	}
	return f.Index
}

// state returns the VRRP6 state of lan0's group 1.
func (r *fakeRouter) state() vrrp6.State {
	r.d.mu.RLock()
	defer r.d.mu.RUnlock()
	for _, g := range r.d.ifaces["lan0"].vrrp {
		if g.vrid == 1 {
			return g.router.State()
		}
	}
	return vrrp6.StateInitialize
}

// forwarding reports whether lan0's gate forwards, from the dataplane.
func (r *fakeRouter) forwarding() bool {
	fw, _ := r.sys.dataplane().gate(r.index("lan0"))
	return fw
}

var (
	hostA   = netip.MustParseAddr("fe80::a")
	groupG1 = netip.MustParseAddr("ff1e::1:1")
	groupG2 = netip.MustParseAddr("ff1e::1:2")
)

func joinV2(group netip.Addr) *mld.V2Report {
	return &mld.V2Report{Records: []mld.Record{{Type: mld.ChangeToExclude, Group: group}}}
}

// A lone router: start-up attaches the configured interfaces, the group
// becomes Master and opens the gate, MLD queries and a report becomes a
// route in the maps; shutdown leaves the dataplane pinned, forwarding;
// the next start adopts it and keeps its routes and gate.
func TestFakeLoneRouterUpDownAdopt(t *testing.T) {
	n := newFakeNet()
	sys := newFakeMachine(t, n, 1)
	y := fakeRouterYAML(t.TempDir(), "A", 200, "", "")
	a := startFake(t, sys, y)
	dp := sys.dataplane()
	if got := dp.Attached(); !slices.Equal(got, []string{"lan0", "up0"}) {
		t.Fatalf("attached %v", got)
	}
	waitFor(t, 5*time.Second, "lan0 Master, gate open", func() bool { return a.state() == vrrp6.StateMaster && a.forwarding() })
	lan := a.index("lan0")
	waitFor(t, 2*time.Second, "virtual IPs and MAC on the host", func() bool {
		return slices.Contains(sys.addrs("lan0"), "fe80::1/128") && slices.Contains(sys.addrs("lan0"), "2001:db8:50::100/64")
	})
	sys.mu.Lock()
	vmac := slices.Clone(sys.ucast[lan])
	sys.mu.Unlock()
	if !slices.Equal(vmac, []string{"00:00:5e:00:02:01"}) {
		t.Fatalf("unicast filter %v", vmac)
	}
	if got := sys.addrs("up0"); !slices.Equal(got, []string{"2001:db8:20::200/64"}) {
		t.Fatalf("up0 addresses %v", got)
	}
	conn := sys.mld("lan0")
	waitFor(t, 2*time.Second, "a query from the Master", func() bool { return conn.queries() > 0 })

	conn.report(t, hostA, joinV2(groupG1))
	waitFor(t, 2*time.Second, "(*,G1) in the maps", func() bool {
		oifs, ok := dp.route("", groupG1.String())
		return ok && slices.Equal(oifs, []int{lan})
	})
	// The API's forwarding table reads the kernel's map by default.
	c := api.NewClient(a.cfg.API.Socket)
	var ft api.ForwardingTable
	if err := c.Get(context.Background(), api.PathForwardingTable, nil, &ft); err != nil {
		t.Fatal(err)
	}
	if len(ft.Routes) != 1 || ft.Routes[0].Group != groupG1.String() {
		t.Fatalf("forwarding table %+v", ft)
	}

	if err := a.stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if !conn.isClosed() {
		t.Fatal("the MLD socket is still open after shutdown")
	}
	if sys.dataplane() != dp || !dp.closed {
		t.Fatal("shutdown did not leave the dataplane pinned and closed")
	}
	if _, ok := dp.route("", groupG1.String()); !ok {
		t.Fatal("shutdown removed a route: the pinned fast path must go on forwarding")
	}
	if _, err := os.Stat(a.cfg.API.Socket); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("API socket after shutdown: %v", err)
	}

	b := startFake(t, sys, y)
	if !dp.Adopted() {
		t.Fatal("the second start did not adopt the pinned dataplane")
	}
	if _, ok := dp.route("", groupG1.String()); !ok {
		t.Fatal("adoption dropped a route learned before the restart")
	}
	waitFor(t, 5*time.Second, "Master again", func() bool { return b.state() == vrrp6.StateMaster && b.forwarding() })
}

// Every phase that fails undoes what the phases before it made: Run
// returns a StartError naming the phase and interface, a dataplane this
// start created is gone, sockets are closed, goroutines joined (Run
// returns), and the API socket is not there.
func TestFakeStartPhasesUndo(t *testing.T) {
	for _, tc := range []struct {
		fault, phase, iface string
	}{
		{"dataplane", "dataplane", ""},
		{"attach:lan0", "dataplane", "lan0"},
		{"linklocal:lan0", "mld", "lan0"},
		{"mld:lan0", "mld", "lan0"},
		{"vrrp:lan0", "vrrp6", ""},
	} {
		t.Run(tc.fault, func(t *testing.T) {
			sys := newFakeMachine(t, newFakeNet(), 1)
			sys.failOn(tc.fault, errors.New("injected"))
			cfg := loadYAML(t, fakeRouterYAML(t.TempDir(), "A", 200, "", ""))
			d, err := NewOn(sys, cfg, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			err = d.Run(context.Background())
			var se *StartError
			if !errors.As(err, &se) {
				t.Fatalf("Run = %v, want a StartError", err)
			}
			if se.Phase != tc.phase || se.Interface != tc.iface {
				t.Fatalf("StartError phase %q interface %q (%v), want %q %q", se.Phase, se.Interface, err, tc.phase, tc.iface)
			}
			if sys.dataplane() != nil {
				t.Fatal("the dataplane this start created is still pinned")
			}
			if c := sys.mld("lan0"); c != nil && !c.isClosed() {
				t.Fatal("an MLD socket was left open")
			}
			if _, err := os.Stat(cfg.API.Socket); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("API socket: %v", err)
			}
			if err := d.Reload(cfg); err == nil {
				t.Fatal("Reload after a failed start succeeded")
			}
		})
	}
}

// A failed start over an adopted dataplane leaves it forwarding as it
// was: its routes, and the interfaces attached before, stay.
func TestFakeStartFailureKeepsAdopted(t *testing.T) {
	sys := newFakeMachine(t, newFakeNet(), 1)
	y := fakeRouterYAML(t.TempDir(), "A", 200, "", "")
	a := startFake(t, sys, y)
	waitFor(t, 5*time.Second, "Master", func() bool { return a.forwarding() })
	sys.mld("lan0").report(t, hostA, joinV2(groupG1))
	dp := sys.dataplane()
	waitFor(t, 2*time.Second, "route", func() bool { _, ok := dp.route("", groupG1.String()); return ok })
	if err := a.stop(); err != nil {
		t.Fatal(err)
	}

	// As a Master killed with -9 leaves it: gate open (a clean shutdown
	// mutes it on the way out).
	if fw, _ := dp.gate(a.index("lan0")); fw {
		t.Fatal("a clean shutdown left the gate open")
	}
	e, err := dp.Iface(a.index("lan0"))
	if err != nil {
		t.Fatal(err)
	}
	e.Gate = bpf.GateForward
	if err := dp.SetIface(a.index("lan0"), e); err != nil {
		t.Fatal(err)
	}

	sys.failOn("vrrp:lan0", errors.New("injected"))
	d, err := NewOn(sys, loadYAML(t, y), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var se *StartError
	if err := d.Run(context.Background()); !errors.As(err, &se) || se.Phase != "vrrp6" {
		t.Fatalf("Run = %v, want a vrrp6 StartError", err)
	}
	if sys.dataplane() != dp {
		t.Fatal("a failed start removed the adopted dataplane")
	}
	if got := dp.Attached(); !slices.Equal(got, []string{"lan0", "up0"}) {
		t.Fatalf("attached after the failed start %v", got)
	}
	if _, ok := dp.route("", groupG1.String()); !ok {
		t.Fatal("a failed start removed an adopted route")
	}
	if fw, _ := dp.gate(a.index("lan0")); !fw {
		t.Fatal("a failed start muted the adopted gate")
	}
}

// A protocol goroutine that fails for good ends the daemon with its
// reason (VRRP6 deaf would make two Masters; blind to links it would stay
// Master on a dead link), after a full shutdown.
func TestFakeFatalGoroutineEndsRun(t *testing.T) {
	t.Run("link watch", func(t *testing.T) {
		sys := newFakeMachine(t, newFakeNet(), 1)
		a := startFake(t, sys, fakeRouterYAML(t.TempDir(), "A", 200, "", ""))
		waitFor(t, 5*time.Second, "Master", func() bool { return a.forwarding() })
		if n := sys.endLinks(); n != 1 { // as netlink ends one on a receive error
			t.Fatalf("%d link subscriptions, want 1", n)
		}
		select {
		case err := <-a.done:
			a.cancel = nil
			if err == nil || !strings.Contains(err.Error(), "watch links") {
				t.Fatalf("Run = %v, want the link watcher's error", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run goes on blind to link changes")
		}
		if !sys.mld("lan0").isClosed() {
			t.Fatal("the MLD socket stayed open")
		}
		if a.forwarding() {
			t.Fatal("the group stayed Master (gate open) after the daemon ended")
		}
	})
}

// Two routers on one LAN: the higher priority is Master and alone opens
// its gate; its link going down is a Shutdown (priority 0): the other
// takes over, and each transition reaches the gate, the virtual
// addresses and the MLD querier role.
func TestFakeTransitionReachesGate(t *testing.T) {
	n := newFakeNet()
	sa, sb := newFakeMachine(t, n, 1), newFakeMachine(t, n, 2)
	dir := t.TempDir()
	a := startFake(t, sa, fakeRouterYAML(dir, "A", 200, "", ""))
	b := startFake(t, sb, fakeRouterYAML(dir, "B", 100, "", ""))
	waitFor(t, 5*time.Second, "A Master, B Backup", func() bool {
		return a.state() == vrrp6.StateMaster && b.state() == vrrp6.StateBackup
	})
	waitFor(t, 2*time.Second, "A's gate open, B's muted", func() bool { return a.forwarding() && !b.forwarding() })
	if slices.Contains(sb.addrs("lan0"), "fe80::1/128") {
		t.Fatal("the Backup holds the virtual IP")
	}
	bq := sb.mld("lan0").queries()

	sa.setLink("lan0", false)
	waitFor(t, 2*time.Second, "B Master, gate open", func() bool { return b.state() == vrrp6.StateMaster && b.forwarding() })
	waitFor(t, 2*time.Second, "A muted", func() bool { return !a.forwarding() && a.state() != vrrp6.StateMaster })
	waitFor(t, 2*time.Second, "the virtual IP moved", func() bool {
		return slices.Contains(sb.addrs("lan0"), "fe80::1/128") && !slices.Contains(sa.addrs("lan0"), "fe80::1/128")
	})
	waitFor(t, 3*time.Second, "B queries as the new Master", func() bool { return sb.mld("lan0").queries() > bq })

	// Back up, A preempts (no preempt delay here) and B mutes.
	sa.setLink("lan0", true)
	waitFor(t, 5*time.Second, "A Master again", func() bool { return a.state() == vrrp6.StateMaster && a.forwarding() })
	waitFor(t, 2*time.Second, "B muted again", func() bool { return !b.forwarding() && b.state() == vrrp6.StateBackup })
}

// Hot backup: a report on the Master becomes a route in its maps and, over
// RBS, in the Backup's maps while the Backup's gate stays muted; a leave
// removes it on both; when the Master goes, the Backup forwards what it
// synced at once.
func TestFakeMLDToRBSAndBack(t *testing.T) {
	n := newFakeNet()
	sa, sb := newFakeMachine(t, n, 1), newFakeMachine(t, n, 2)
	dir := t.TempDir()
	a := startFake(t, sa, fakeRouterYAML(dir, "A", 200, "2001:db8:10::1", "2001:db8:10::2"))
	b := startFake(t, sb, fakeRouterYAML(dir, "B", 100, "2001:db8:10::2", "2001:db8:10::1"))
	waitFor(t, 5*time.Second, "A Master, B Backup", func() bool {
		return a.forwarding() && !b.forwarding() && b.state() == vrrp6.StateBackup
	})
	ca := api.NewClient(a.cfg.API.Socket)
	waitFor(t, 10*time.Second, "the RBS session up", func() bool {
		var svcs []api.RemoteBackupService
		if err := ca.Get(context.Background(), api.PathRBS, nil, &svcs); err != nil || len(svcs) != 1 {
			return false
		}
		return svcs[0].TCPState == "connected"
	})

	sa.mld("lan0").report(t, hostA, joinV2(groupG1))
	sa.mld("lan0").report(t, hostA, &mld.V1Report{Group: groupG2})
	lanA, lanB := a.index("lan0"), b.index("lan0")
	for _, g := range []netip.Addr{groupG1, groupG2} {
		waitFor(t, 5*time.Second, g.String()+" in both maps", func() bool {
			oa, okA := sa.dataplane().route("", g.String())
			ob, okB := sb.dataplane().route("", g.String())
			return okA && okB && slices.Equal(oa, []int{lanA}) && slices.Equal(ob, []int{lanB})
		})
	}
	if b.forwarding() {
		t.Fatal("the Backup's gate opened with the synced entries")
	}

	sa.mld("lan0").report(t, hostA, &mld.V1Done{Group: groupG2})
	waitFor(t, 5*time.Second, "G2 gone from both maps after the leave", func() bool {
		_, okA := sa.dataplane().route("", groupG2.String())
		_, okB := sb.dataplane().route("", groupG2.String())
		return !okA && !okB
	})

	if err := a.stop(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "B Master with its gate open", func() bool { return b.state() == vrrp6.StateMaster && b.forwarding() })
	if _, ok := sb.dataplane().route("", groupG1.String()); !ok {
		t.Fatal("the new Master lost the synced G1")
	}
}

// A reload applies its typed changes through the same seams: an added
// interface is attached with its addresses, a static route reaches the
// maps, a removed interface leaves the dataplane; a reload with a refused
// change applies nothing.
func TestFakeReload(t *testing.T) {
	sys := newFakeMachine(t, newFakeNet(), 1)
	sys.addIf("ext0", "")
	dir := t.TempDir()
	y := fakeRouterYAML(dir, "A", 200, "", "")
	a := startFake(t, sys, y)
	waitFor(t, 5*time.Second, "Master", func() bool { return a.forwarding() })
	dp := sys.dataplane()

	next := strings.Replace(y, "interfaces:\n", "interfaces:\n  - name: ext0\n    addresses: [2001:db8:60::1/64]\n", 1)
	next = strings.Replace(next, "  upstream: {interface: up0, mode: static}\n",
		"  upstream: {interface: up0, mode: static}\n  static-routes:\n    - {group: \"ff3e::9\", source: \"2001:db8:40::2\", interfaces: [ext0]}\n", 1)
	if err := a.d.Reload(loadYAML(t, next)); err != nil {
		t.Fatal(err)
	}
	if got := dp.Attached(); !slices.Equal(got, []string{"ext0", "lan0", "up0"}) {
		t.Fatalf("attached after adding ext0: %v", got)
	}
	if got := sys.addrs("ext0"); !slices.Equal(got, []string{"2001:db8:60::1/64"}) {
		t.Fatalf("ext0 addresses %v", got)
	}
	if oifs, ok := dp.route("2001:db8:40::2", "ff3e::9"); !ok || !slices.Equal(oifs, []int{a.index("ext0")}) {
		t.Fatalf("static route: %v %v", oifs, ok)
	}

	// Refused (the sysname names the router to its peer: restart) with
	// an allowed change beside it: nothing is applied.
	refusedY := strings.Replace(next, "sysname: A\n", "sysname: Z\n", 1)
	refusedY = strings.Replace(refusedY, "    addresses: [2001:db8:60::1/64]\n", "    addresses: [2001:db8:61::1/64]\n", 1)
	err := a.d.Reload(loadYAML(t, refusedY))
	if err == nil || !strings.Contains(err.Error(), "sysname modified") {
		t.Fatalf("Reload = %v, want the refused change named", err)
	}
	if got := sys.addrs("ext0"); !slices.Equal(got, []string{"2001:db8:60::1/64"}) {
		t.Fatalf("a refused reload changed ext0's addresses: %v", got)
	}

	// PIM and the loopback are set up at start: a change is refused,
	// with the allowed change beside it not applied.
	pimY := strings.Replace(refusedY, "sysname: Z\n", "sysname: A\nloopback: {addresses: [2001:db8:22::22/128]}\n", 1)
	err = a.d.Reload(loadYAML(t, pimY))
	if err == nil || !errors.Is(err, ErrNeedsRestart) || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("Reload = %v, want the loopback change refused", err)
	}
	if got := sys.addrs("ext0"); !slices.Equal(got, []string{"2001:db8:60::1/64"}) {
		t.Fatalf("a refused reload changed ext0's addresses: %v", got)
	}

	// Back to the first configuration: ext0 and the static route go.
	if err := a.d.Reload(loadYAML(t, y)); err != nil {
		t.Fatal(err)
	}
	if got := dp.Attached(); !slices.Equal(got, []string{"lan0", "up0"}) {
		t.Fatalf("attached after removing ext0: %v", got)
	}
	if _, ok := dp.route("2001:db8:40::2", "ff3e::9"); ok {
		t.Fatal("the removed static route is still in the maps")
	}
	if _, err := dp.Iface(a.index("ext0")); err == nil {
		t.Fatal("the removed interface kept its ifaces entry")
	}
	if !a.forwarding() {
		t.Fatal("a reload of other interfaces touched lan0's gate")
	}
}

// withBFD adds a BFD session "lan" on lan0 towards peer, tracked by the
// group in peer mode, and slows the adverts so that Master_Down_Interval
// (about 3.6 s) cannot be what made a Backup take over.
func withBFD(y, peer string) string {
	y = strings.Replace(y, "advertise-interval: 20ms}", "advertise-interval: 1s, track-bfd: [{session: lan, mode: peer}]}", 1)
	return strings.Replace(y, "interfaces:\n", fmt.Sprintf("bfd:\n  sessions:\n    - {name: lan, interface: lan0, peer: \"%s\", min-tx: 10ms, min-rx: 10ms, multiplier: 3}\ninterfaces:\n", peer), 1)
}

// becameMaster counts the group's transitions to Master.
func (r *fakeRouter) becameMaster() uint64 {
	r.d.mu.RLock()
	defer r.d.mu.RUnlock()
	return r.d.ifaces["lan0"].vrrp[0].router.Status().Stats.BecameMaster
}

// lastReason is the reason of the group's last transition.
func (r *fakeRouter) lastReason() vrrp6.Reason {
	r.d.mu.RLock()
	defer r.d.mu.RUnlock()
	trs := r.d.ifaces["lan0"].vrrp[0].router.Status().Transitions
	if len(trs) == 0 {
		return 0
	}
	return trs[len(trs)-1].Reason
}

// A tracked BFD session's failure reaches the VRRP6 group: when the Master
// falls silent (its adverts stop, BFD detects it), the Backup becomes
// Master on the BFD event, not after Master_Down_Interval; when the BFD
// session fails while the Master's adverts still arrive (the split-brain
// case), the Backup stays Backup. display bfd session shows the session
// and who tracks it.
func TestFakeBFDTakeover(t *testing.T) {
	n := newFakeNet()
	sa, sb := newFakeMachine(t, n, 1), newFakeMachine(t, n, 2)
	dir := t.TempDir()
	a := startFake(t, sa, withBFD(fakeRouterYAML(dir, "A", 200, "", ""), "2001:db8:50::64"))
	b := startFake(t, sb, withBFD(fakeRouterYAML(dir, "B", 100, "", ""), "2001:db8:50::c8"))
	waitFor(t, 10*time.Second, "A Master, B Backup", func() bool {
		return a.state() == vrrp6.StateMaster && b.state() == vrrp6.StateBackup && !b.forwarding()
	})
	fb := sb.bfdManager()
	fb.set("lan", bfd.StateUp, time.Time{})

	var sessions []api.BFDSession
	if err := api.NewClient(b.cfg.API.Socket).Get(context.Background(), api.PathBFD, nil, &sessions); err != nil {
		t.Fatal(err)
	}
	if len(sessions) != 1 || sessions[0].Name != "lan" || sessions[0].State != "Up" ||
		!slices.Equal(sessions[0].TrackedBy, []string{"vrrp6 lan0 vrid 1 (peer)"}) {
		t.Fatalf("display bfd session: %+v", sessions)
	}

	// The session's Prometheus series, read from the collector.
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(b.d))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	state := -1.0
	for _, mf := range mfs {
		if mf.GetName() == "hotcast_bfd_session_state" && len(mf.GetMetric()) == 1 {
			state = mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	if state != float64(bfd.StateUp) {
		t.Fatalf("hotcast_bfd_session_state = %v, want %d (Up)", state, bfd.StateUp)
	}

	// The split-brain case: BFD fails, the Master's adverts still come.
	before := b.becameMaster()
	fb.set("lan", bfd.StateDown, time.Now().Add(-30*time.Millisecond))
	time.Sleep(300 * time.Millisecond) // the event is handled at once; a wrong takeover would show
	if b.becameMaster() != before || b.state() != vrrp6.StateBackup || b.forwarding() {
		t.Fatalf("B left Backup on a BFD failure while A's adverts arrive (state %v)", b.state())
	}
	fb.set("lan", bfd.StateUp, time.Time{})

	// A falls silent: no more adverts, then BFD detects it.
	sa.vrrp("lan0").mute.Store(true)
	time.Sleep(50 * time.Millisecond)
	fb.set("lan", bfd.StateDown, time.Now().Add(-10*time.Millisecond))
	waitFor(t, 3*time.Second, "B Master with its gate open", func() bool { return b.state() == vrrp6.StateMaster && b.forwarding() })
	if r := b.lastReason(); r != vrrp6.ReasonBFDPeerDown {
		t.Fatalf("B became Master by %v, want the BFD peer-down event (not Master_Down_Interval)", r)
	}
	if err := b.stop(); err != nil {
		t.Fatal(err)
	}
	if !fb.closed {
		t.Fatal("shutdown left the BFD engine open")
	}
}

// A reload that adds a BFD section starts the engine with its sessions
// and makes the group track them; removing a session stops it; a changed
// realtime-priority with the engine running is refused, nothing applied.
func TestFakeReloadBFD(t *testing.T) {
	sys := newFakeMachine(t, newFakeNet(), 1)
	y := fakeRouterYAML(t.TempDir(), "A", 200, "", "")
	a := startFake(t, sys, y)
	if sys.bfdManager() != nil {
		t.Fatal("a BFD engine without a bfd section")
	}
	withLan := withBFD(y, "2001:db8:50::64")
	if err := a.d.Reload(loadYAML(t, withLan)); err != nil {
		t.Fatal(err)
	}
	fb := sys.bfdManager()
	if fb == nil || len(fb.Sessions()) != 1 {
		t.Fatalf("after the reload: engine %v", fb)
	}
	if s := fb.Sessions()[0]; s.Local != netip.MustParseAddr("2001:db8:50::200") {
		t.Fatalf("session source %v, want the interface's address on the peer's prefix", s.Local)
	}
	a.d.mu.RLock()
	tracks := a.d.ifaces["lan0"].vrrp[0].cfg.TrackBFD
	a.d.mu.RUnlock()
	if len(tracks) != 1 || tracks[0].Session != "lan" {
		t.Fatalf("group tracks %+v", tracks)
	}

	prio := strings.Replace(withLan, "bfd:\n", "bfd:\n  realtime-priority: 20\n", 1)
	if err := a.d.Reload(loadYAML(t, prio)); err == nil || !strings.Contains(err.Error(), "bfd.realtime-priority modified") {
		t.Fatalf("Reload = %v, want the priority change refused", err)
	}

	two := strings.Replace(withLan, "multiplier: 3}\n", "multiplier: 3}\n    - {name: up, interface: up0, peer: \"2001:db8:20::1\"}\n", 1)
	if err := a.d.Reload(loadYAML(t, two)); err != nil {
		t.Fatal(err)
	}
	if n := len(fb.Sessions()); n != 2 {
		t.Fatalf("%d sessions after adding one, want 2", n)
	}
	if err := a.d.Reload(loadYAML(t, withLan)); err != nil {
		t.Fatal(err)
	}
	if ss := fb.Sessions(); len(ss) != 1 || ss[0].Name != "lan" {
		t.Fatalf("sessions after removing up: %+v", ss)
	}
}

// A Master tracking a session to upstream in step-down mode gives the
// group up when the session fails (priority 0: the Backup takes over
// after Skew_Time), and takes it back by preemption when it recovers; in
// reduce mode the session's failure lowers the effective priority.
func TestFakeBFDStepDownAndReduce(t *testing.T) {
	n := newFakeNet()
	sa, sb := newFakeMachine(t, n, 1), newFakeMachine(t, n, 2)
	dir := t.TempDir()
	upstream := func(y, mode string) string {
		y = strings.Replace(y, "advertise-interval: 20ms}", "advertise-interval: 20ms, track-bfd: [{session: up, mode: "+mode+"}]}", 1)
		return strings.Replace(y, "interfaces:\n", "bfd:\n  sessions:\n    - {name: up, interface: up0, peer: \"2001:db8:20::1\"}\ninterfaces:\n", 1)
	}
	a := startFake(t, sa, upstream(fakeRouterYAML(dir, "A", 200, "", ""), "step-down"))
	b := startFake(t, sb, fakeRouterYAML(dir, "B", 100, "", ""))
	waitFor(t, 5*time.Second, "A Master, B Backup", func() bool { return a.state() == vrrp6.StateMaster && b.state() == vrrp6.StateBackup })
	fa := sa.bfdManager()
	fa.set("up", bfd.StateUp, time.Time{})
	fa.set("up", bfd.StateDown, time.Now())
	waitFor(t, 2*time.Second, "B Master after A stepped down", func() bool { return b.state() == vrrp6.StateMaster && b.forwarding() })
	if a.state() == vrrp6.StateMaster || a.forwarding() {
		t.Fatal("A stayed Master with its upstream session failed")
	}
	if r := a.lastReason(); r != vrrp6.ReasonBFDStepDown {
		t.Fatalf("A left Master by %v, want BFDStepDown", r)
	}
	fa.set("up", bfd.StateUp, time.Time{})
	waitFor(t, 3*time.Second, "A Master again", func() bool { return a.state() == vrrp6.StateMaster && a.forwarding() })

	// Reduce mode: the same failure lowers A's priority below B's.
	if err := a.d.Reload(loadYAML(t, strings.Replace(upstream(fakeRouterYAML(dir, "A", 200, "", ""), "reduce"),
		"mode: reduce}", "mode: reduce, reduced: 150}", 1))); err != nil {
		t.Fatal(err)
	}
	fa.set("up", bfd.StateDown, time.Now())
	waitFor(t, 2*time.Second, "A's priority lowered", func() bool {
		a.d.mu.RLock()
		defer a.d.mu.RUnlock()
		return a.d.ifaces["lan0"].vrrp[0].router.Status().EffectivePriority == 50
	})
	waitFor(t, 3*time.Second, "B Master over the reduced A", func() bool { return b.state() == vrrp6.StateMaster && !a.forwarding() })
}
