//go:build linux

package bfd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hotcast/hotcast/internal/netnstest"
)

// bfddPath is FRR's BFD daemon (Debian package frr; make deps-test
// installs it).
const bfddPath = "/usr/lib/frr/bfdd"

// bfdd is FRR's bfdd running alone (no zebra: single-hop sessions between
// global addresses need none) in a namespace, every path of it in dir.
type bfdd struct {
	t    *testing.T
	ns   *netnstest.NS
	dir  string
	cmd  *exec.Cmd
	done chan error
}

// newBfddDir makes a directory the frr user can write (bfdd drops to it)
// and writes the configuration.
func newBfddDir(t *testing.T, conf string) string {
	t.Helper()
	u, err := user.Lookup("frr")
	if err != nil {
		t.Fatalf("frr user (package frr): %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	dir, err := os.MkdirTemp("", "hcbfdd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bfdd.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// startBfdd runs bfdd in the foreground (so this test owns the process)
// inside ns; cleanup kills it.
func startBfdd(t *testing.T, ns *netnstest.NS, dir string) *bfdd {
	t.Helper()
	b := &bfdd{t: t, ns: ns, dir: dir, done: make(chan error, 1)}
	b.cmd = ns.Command(context.Background(), bfddPath,
		"-f", filepath.Join(dir, "bfdd.conf"),
		"-i", filepath.Join(dir, "bfdd.pid"),
		"--vty_socket", dir,
		"--bfdctl", filepath.Join(dir, "bfdd.sock"),
		"-z", filepath.Join(dir, "zserv.api"),
		"-P", "0", // no TCP vty
		"--log", "file:"+filepath.Join(dir, "bfdd.log"), "--log-level", "debug")
	var out bytes.Buffer
	b.cmd.Stdout, b.cmd.Stderr = &out, &out
	if err := b.cmd.Start(); err != nil {
		t.Fatalf("start bfdd: %v", err)
	}
	go func() { b.done <- b.cmd.Wait() }()
	t.Cleanup(func() {
		b.kill(syscall.SIGKILL)
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "bfdd.log"))
			t.Logf("bfdd output:\n%s\nbfdd log (tail):\n%s", out.String(), tail(log, 4000))
		}
	})
	// Up once its vty answers.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := b.peers(); err == nil {
			return b
		}
		select {
		case err := <-b.done:
			b.done <- err
			t.Fatalf("bfdd exited: %v\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("bfdd vty did not answer\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// kill sends sig to this bfdd (and only it) and waits for it to exit.
func (b *bfdd) kill(sig syscall.Signal) {
	if b.cmd.Process == nil {
		return
	}
	select {
	case err := <-b.done:
		b.done <- err
		return // already gone
	default:
	}
	_ = b.cmd.Process.Signal(sig)
	select {
	case err := <-b.done:
		b.done <- err
	case <-time.After(10 * time.Second):
		_ = b.cmd.Process.Kill()
		b.t.Errorf("bfdd did not exit on %v", sig)
	}
}

func (b *bfdd) vtysh(cmds ...string) ([]byte, error) {
	args := []string{"--vty_socket", b.dir, "-d", "bfdd"}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "vtysh", args...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("vtysh %q: %w: %s", cmds, err, out)
	}
	return out, nil
}

// frrPeer is the part of `show bfd peers json` the test reads.
type frrPeer struct {
	Peer       string `json:"peer"`
	Local      string `json:"local"`
	ID         uint32 `json:"id"`
	RemoteID   uint32 `json:"remote-id"`
	Status     string `json:"status"`
	Diagnostic string `json:"diagnostic"`
	RemoteDiag string `json:"remote-diagnostic"`
	RxInterval int    `json:"receive-interval"`
	TxInterval int    `json:"transmit-interval"`
	DetectMult int    `json:"detect-multiplier"`
	RemoteRx   int    `json:"remote-receive-interval"`
	RemoteTx   int    `json:"remote-transmit-interval"`
	RemoteMult int    `json:"remote-detect-multiplier"`
}

func (b *bfdd) peers() ([]frrPeer, error) {
	out, err := b.vtysh("show bfd peers json")
	if err != nil {
		return nil, err
	}
	var ps []frrPeer
	if err := json.Unmarshal(out, &ps); err != nil {
		return nil, fmt.Errorf("show bfd peers json: %w: %s", err, out)
	}
	return ps, nil
}

func (b *bfdd) peer() frrPeer {
	b.t.Helper()
	ps, err := b.peers()
	if err != nil {
		b.t.Fatal(err)
	}
	if len(ps) != 1 {
		b.t.Fatalf("bfdd has %d peers: %+v", len(ps), ps)
	}
	return ps[0]
}

// waitPeer polls bfdd until cond holds.
func (b *bfdd) waitPeer(what string, limit time.Duration, cond func(p frrPeer) bool) frrPeer {
	b.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		p := b.peer()
		if cond(p) {
			return p
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("bfdd: %s: not within %v: %+v", what, limit, p)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// lastSender records when its session last sent.
type lastSender struct {
	s  Sender
	mu sync.Mutex
	at time.Time
}

func (l *lastSender) Send(b []byte) error {
	err := l.s.Send(b)
	l.mu.Lock()
	l.at = time.Now()
	l.mu.Unlock()
	return err
}

func (l *lastSender) last() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.at
}

// Interop with FRR's bfdd (RFC 5880/5881 single hop, IPv6, global
// addresses) across a veth pair: the session comes Up against hotcast with
// the intervals negotiated (RFC 5880 §6.8.2), survives timer changes on
// either side (Poll/Final), goes Down on the other side within the
// Detection Time when either stops, and comes back.
func TestFRRInterop(t *testing.T) {
	netnstest.RequireRoot(t)
	if _, err := os.Stat(bfddPath); err != nil {
		t.Skipf("FRR's bfdd is not installed (Debian package frr, make deps-test): %v", err)
	}
	if _, err := exec.LookPath("vtysh"); err != nil {
		t.Skipf("vtysh is not installed (Debian package frr): %v", err)
	}
	nsH, nsF := netnstest.New(t, "bfh"), netnstest.New(t, "bff")
	lh, lf := netnstest.Veth(t, nsH, "bfh0", nsF, "bff0")
	hAddr, fAddr := netip.MustParseAddr("2001:db8:bfd::1"), netip.MustParseAddr("2001:db8:bfd::2")
	lh.AddAddr(t, hAddr.String()+"/64")
	lf.AddAddr(t, fAddr.String()+"/64")

	const (
		// bfdd's transmit and receive interval, ms (its minimum is 10):
		// loose, like TestVethSessionsUp's, so that a loaded box does not
		// flap the session.
		frrMS   = 50
		frrMult = 5
	)
	dir := newBfddDir(t, fmt.Sprintf(`bfd
 peer %v local-address %v
  receive-interval %d
  transmit-interval %d
  detect-multiplier %d
 !
!
`, hAddr, fAddr, frrMS, frrMS, frrMult))
	frr := startBfdd(t, nsF, dir)

	h := newSys(t, lh, hAddr)
	var ls *lastSender
	// hotcast asks for 3.3 ms both ways; bfdd's 50 ms wins (the slower
	// system sets the rate, RFC 5880 §6.8.2).
	startH := func() {
		t.Helper()
		if h.s != nil {
			h.s.Close()
			h.d.Remove(h.s)
			h.c.Close()
		}
		h.link.NS.Do(t, func() error {
			var err error
			h.c, err = Dial(h.link.Name, hAddr, fAddr)
			return err
		})
		ls = &lastSender{s: h.c}
		s, err := h.d.NewSession(Config{Name: "frr", Interface: h.link.Name, Local: hAddr, Peer: fAddr,
			DesiredMinTx: fast, RequiredMinRx: fast, DetectMult: 3}, nil, ls, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		h.s = s
		if err := s.Start(); err != nil {
			t.Fatal(err)
		}
	}
	hUp := func() bool { return h.s.State() == StateUp }
	frrUp := func(p frrPeer) bool { return p.Status == "up" && p.RemoteID == h.s.LocalDiscr() }

	startH()
	took := waitState(t, "hotcast Up", 10*time.Second, hUp)
	p := frr.waitPeer("Up", 5*time.Second, frrUp)
	t.Logf("Up after %v; bfdd: %+v", took, p)
	time.Sleep(20 * frrMS * time.Millisecond)
	st := h.s.Status()
	if st.RemoteDiscr != p.ID || st.TxInterval != frrMS*time.Millisecond || st.DetectTime != frrMult*frrMS*time.Millisecond || st.Polling {
		t.Errorf("hotcast: remote discr %d (bfdd's %d), tx %v, detect %v, polling %v", st.RemoteDiscr, p.ID, st.TxInterval, st.DetectTime, st.Polling)
	}
	if p.RemoteRx != 3 || p.RemoteTx != 3 || p.RemoteMult != 3 {
		// bfdd shows milliseconds, rounded down.
		t.Errorf("bfdd sees hotcast's intervals %d/%d ms mult %d, want 3/3/3", p.RemoteTx, p.RemoteRx, p.RemoteMult)
	}
	rx := h.tap.since(time.Now().Add(-10 * frrMS * time.Millisecond))
	if len(rx) < 8 {
		t.Fatalf("%d packets from bfdd in %d ms", len(rx), 10*frrMS)
	}
	for _, r := range rx {
		if r.err != nil || r.hopLimit != HopLimit || r.srcPort < MinSourcePort || r.srcPort > MaxSourcePort || r.p.State != StateUp {
			t.Fatalf("from bfdd: port %d hop limit %d %+v %v", r.srcPort, r.hopLimit, r.p, r.err)
		}
	}
	t.Logf("bfdd sends from port %d, %d packets in %d ms", rx[0].srcPort, len(rx), 10*frrMS)
	ups := func() uint64 { return h.s.Status().Stats.UpCount }
	if ups() != 1 {
		t.Fatalf("hotcast flapped: %d Ups", ups())
	}

	// bfdd raises its transmit interval to 100 ms: its Poll is answered,
	// hotcast's Detection Time follows, the session stays Up.
	if _, err := frr.vtysh("configure terminal", "bfd", fmt.Sprintf("peer %v local-address %v", hAddr, fAddr), "transmit-interval 100"); err != nil {
		t.Fatal(err)
	}
	waitState(t, "hotcast follows bfdd's 100 ms", 5*time.Second, func() bool {
		st := h.s.Status()
		return st.RemoteDesiredMinTx == 100*time.Millisecond && st.DetectTime == frrMult*100*time.Millisecond
	})
	if st := h.s.Status(); st.Stats.PollsReceived == 0 || st.Stats.FinalsSent == 0 {
		t.Errorf("bfdd's poll: %d polls received, %d finals sent", st.Stats.PollsReceived, st.Stats.FinalsSent)
	}
	// hotcast changes its timers: its Poll Sequence ends with bfdd's Final.
	completed := h.s.Status().Stats.PollsCompleted
	if err := h.s.SetTimers(60*time.Millisecond, 60*time.Millisecond, 4); err != nil {
		t.Fatal(err)
	}
	waitState(t, "hotcast's poll completes", 5*time.Second, func() bool {
		st := h.s.Status()
		return !st.Polling && st.Stats.PollsCompleted > completed
	})
	p = frr.waitPeer("bfdd sees hotcast's new timers", 5*time.Second, func(p frrPeer) bool {
		return p.RemoteTx == 60 && p.RemoteRx == 60 && p.RemoteMult == 4
	})
	time.Sleep(time.Second)
	if st := h.s.Status(); st.State != StateUp || ups() != 1 || st.TxInterval != 60*time.Millisecond {
		t.Fatalf("after renegotiation: %v, %d Ups, tx %v", st.State, ups(), st.TxInterval)
	}
	if p := frr.peer(); !frrUp(p) {
		t.Fatalf("bfdd after renegotiation: %+v", p)
	}
	t.Logf("renegotiated: hotcast tx %v detect %v; bfdd %+v", h.s.Status().TxInterval, h.s.Status().DetectTime, p)

	// hotcast stops: bfdd goes Down with "control detection time expired"
	// (its Detection Time: 4 x max(50 ms, 60 ms) = 240 ms) and says so.
	h.s.Close()
	lastTx := ls.last()
	var downAt time.Time
	waitState(t, "bfdd signals Down", 5*time.Second, func() bool {
		for _, r := range h.tap.since(lastTx) {
			if r.p.State == StateDown {
				downAt = r.at
				return true
			}
		}
		return false
	})
	p = frr.waitPeer("bfdd Down", 5*time.Second, func(p frrPeer) bool { return p.Status == "down" })
	if p.Diagnostic != "control detection time expired" {
		t.Errorf("bfdd diagnostic %q", p.Diagnostic)
	}
	t.Logf("bfdd's Down arrived %v after hotcast's last packet (its Detection Time 240 ms)", downAt.Sub(lastTx))

	// hotcast comes back.
	startH()
	waitState(t, "hotcast Up again", 10*time.Second, hUp)
	frr.waitPeer("bfdd Up again", 5*time.Second, frrUp)

	// bfdd is killed: hotcast goes Down with diag 1, one Detection Time
	// (5 x max(3.3 ms, bfdd's 100 ms) = 500 ms) after bfdd's last packet.
	time.Sleep(time.Second)
	detect := h.s.Status().DetectTime
	if detect != frrMult*100*time.Millisecond {
		t.Errorf("hotcast's Detection Time %v, want 5 x 100 ms", detect)
	}
	frr.kill(syscall.SIGKILL)
	killed := time.Now()
	waitState(t, "hotcast Down", 5*time.Second, func() bool { return h.s.State() == StateDown })
	st = h.s.Status()
	if st.LocalDiag != DiagControlDetectionTimeExpired {
		t.Errorf("hotcast diag %v", st.LocalDiag)
	}
	var lastRx time.Time
	for _, r := range h.tap.since(killed.Add(-time.Second)) {
		if r.p.MyDiscr != 0 && r.at.Before(st.LastChange) {
			lastRx = r.at
		}
	}
	t.Logf("hotcast Down %v after bfdd's last packet (Detection Time %v)", st.LastChange.Sub(lastRx), detect)

	// bfdd restarts: Up again.
	frr = startBfdd(t, nsF, dir)
	took = waitState(t, "hotcast Up with the new bfdd", 10*time.Second, hUp)
	p = frr.waitPeer("new bfdd Up", 5*time.Second, frrUp)
	if st := h.s.Status(); st.RemoteDiscr != p.ID {
		t.Errorf("hotcast's remote discr %d, new bfdd's %d", st.RemoteDiscr, p.ID)
	}
	t.Logf("Up with the restarted bfdd after %v", took)

	// bfdd stopped gracefully (SIGTERM; 8.4 sends no AdminDown on the
	// way out): hotcast goes Down too.
	time.Sleep(time.Second)
	frr.kill(syscall.SIGTERM)
	waitState(t, "hotcast Down after bfdd's SIGTERM", 5*time.Second, func() bool { return h.s.State() == StateDown })
	st = h.s.Status()
	t.Logf("after bfdd's SIGTERM: hotcast diag %v, remote state %v diag %v", st.LocalDiag, st.RemoteState, st.RemoteDiag)
	if st.LocalDiag != DiagControlDetectionTimeExpired && st.LocalDiag != DiagNeighborSignaledDown {
		t.Errorf("hotcast diag %v after bfdd's SIGTERM", st.LocalDiag)
	}
}

// Interop with FRR's bfdd at its minimum, 10 ms x 3 (bfdd refuses
// intervals under 10 ms), against the Manager's real-time engine:
// hotcast asks for 3.3 ms and follows bfdd's 10 ms (Detection Time 30 ms);
// the session survives bfdd's change to 20 ms; when hotcast goes silent
// bfdd declares it Down by detection time; when bfdd is killed hotcast
// declares Down by expiry; both come back. Flaps at 10 ms on this box are
// logged, not asserted.
func TestFRRInteropFast(t *testing.T) {
	netnstest.RequireRoot(t)
	if _, err := os.Stat(bfddPath); err != nil {
		t.Skipf("FRR's bfdd is not installed (Debian package frr, make deps-test): %v", err)
	}
	if _, err := exec.LookPath("vtysh"); err != nil {
		t.Skipf("vtysh is not installed (Debian package frr): %v", err)
	}
	nsH, nsF := netnstest.New(t, "bqh"), netnstest.New(t, "bqf")
	lh, lf := netnstest.Veth(t, nsH, "bqh0", nsF, "bqf0")
	hAddr, fAddr := netip.MustParseAddr("2001:db8:bfe::1"), netip.MustParseAddr("2001:db8:bfe::2")
	lh.AddAddr(t, hAddr.String()+"/64")
	lf.AddAddr(t, fAddr.String()+"/64")
	peerCmd := fmt.Sprintf("peer %v local-address %v", hAddr, fAddr)
	dir := newBfddDir(t, fmt.Sprintf("bfd\n %s\n  receive-interval 10\n  transmit-interval 10\n  detect-multiplier 3\n !\n!\n", peerCmd))
	frr := startBfdd(t, nsF, dir)

	h := newMgrSys(t, lh, hAddr)
	sub, err := h.m.Subscribe("frr")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.m.Add(Config{Name: "frr", Interface: lh.Name, Local: hAddr, Peer: fAddr, DesiredMinTx: fast, RequiredMinRx: fast, DetectMult: 3}); err != nil {
		t.Fatal(err)
	}
	discr := func() uint32 { return h.status(t, "frr").LocalDiscr }
	frrUp := func(p frrPeer) bool { return p.Status == "up" && p.RemoteID == discr() }
	waitChange(t, sub.C, "hotcast Up", func(c StateChange) bool { return c.To == StateUp })
	p := frr.waitPeer("bfdd Up", 5*time.Second, frrUp)
	waitFor(t, "negotiated 10 ms", 5*time.Second, func() bool {
		st := h.status(t, "frr")
		return st.TxInterval == 10*time.Millisecond && st.DetectTime == 30*time.Millisecond
	})
	time.Sleep(2 * time.Second)
	st := h.status(t, "frr")
	if st.State != StateUp || st.RemoteDiscr != p.ID {
		t.Errorf("hotcast: %v, remote discr %d (bfdd's %d)", st.State, st.RemoteDiscr, p.ID)
	}
	t.Logf("2 s at 10 ms x 3: hotcast %d Ups, %d received, %d sent; engine %s", st.Stats.UpCount, st.Stats.Received, st.Stats.Sent, h.m.Stats().Engine.Policy)

	// bfdd moves to 20 ms: Poll/Final, hotcast's Detection Time follows.
	if _, err := frr.vtysh("configure terminal", "bfd", peerCmd, "transmit-interval 20"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "hotcast follows bfdd's 20 ms", 5*time.Second, func() bool {
		st := h.status(t, "frr")
		return st.State == StateUp && st.DetectTime == 60*time.Millisecond
	})

	// hotcast goes silent: bfdd declares it Down by detection time.
	h.mute("frr", true)
	p = frr.waitPeer("bfdd Down", 5*time.Second, func(p frrPeer) bool { return p.Status == "down" })
	if p.Diagnostic != "control detection time expired" {
		t.Errorf("bfdd diagnostic %q", p.Diagnostic)
	}
	h.mute("frr", false)
	frr.waitPeer("bfdd Up again", 10*time.Second, frrUp)

	// bfdd is killed: hotcast declares Down by expiry, the peer silent.
	phase := time.Now()
	frr.kill(syscall.SIGKILL)
	c := waitChange(t, sub.C, "hotcast Down", func(c StateChange) bool { return c.Time.After(phase) && c.To == StateDown })
	if !c.Silent() || c.DetectTime != 60*time.Millisecond {
		t.Errorf("hotcast's Down: %+v", c)
	}
	t.Logf("hotcast declared Down %v after its deadline (last packet + %v)", c.Time.Sub(c.LastRx.Add(c.DetectTime)), c.DetectTime)
	frr = startBfdd(t, nsF, dir)
	waitChange(t, sub.C, "hotcast Up with the new bfdd", func(c StateChange) bool { return c.Time.After(phase) && c.To == StateUp })
	frr.waitPeer("new bfdd Up", 5*time.Second, frrUp)
}
