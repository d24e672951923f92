package rbs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotcast/hotcast/internal/testpki"
)

// pair is two services wired back to back over net.Pipe: A dials, B listens.
type pair struct {
	t      *testing.T
	clk    *fakeClock
	a, b   *Service
	pa, pb *Profile
	ta, tb *table
	ln     *memListener

	mu    sync.Mutex
	conns []net.Conn
}

func newPair(t *testing.T, mod func(side string, c *Config)) *pair {
	pr := &pair{t: t, clk: newFakeClock(), ln: newMemListener(), ta: newTable(), tb: newTable()}
	base := Config{Name: "service1", HoldTime: time.Hour, ReconnectMin: time.Second, ReconnectMax: time.Second, AckEvery: 4, Clock: pr.clk}
	ca, cb := base, base
	ca.SysName, ca.Source, ca.Peer = "DeviceA", addrA, addrB
	cb.SysName, cb.Source, cb.Peer = "DeviceB", addrB, addrA
	ca.Dial = func(ctx context.Context) (net.Conn, error) {
		x, y := pipePair(addrA, addrB)
		select {
		case pr.ln.ch <- y:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		pr.mu.Lock()
		pr.conns = append(pr.conns, x)
		pr.mu.Unlock()
		return x, nil
	}
	cb.Listen = func(context.Context) (net.Listener, error) { return pr.ln, nil }
	if mod != nil {
		mod("a", &ca)
		mod("b", &cb)
	}
	pr.a, pr.b = New(ca, slog.New(slog.DiscardHandler)), New(cb, slog.New(slog.DiscardHandler))
	pr.pa = pr.a.AddProfile(ProfileConfig{Name: "profile1", BackupID: bid}, pr.ta, pr.ta)
	pr.pb = pr.b.AddProfile(ProfileConfig{Name: "profile1", BackupID: bid}, pr.tb, pr.tb)
	return pr
}

func (pr *pair) run() {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, s := range []*Service{pr.a, pr.b} {
		wg.Go(func() { s.Run(ctx) })
	}
	pr.t.Cleanup(func() { cancel(); wg.Wait() })
}

func (pr *pair) cut() {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	for _, c := range pr.conns {
		c.Close()
	}
	pr.conns = nil
}

// settle advances time until cond holds.
func (pr *pair) settle(what string, cond func() bool) {
	pr.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			pr.t.Fatalf("not settled: %s\nA %+v\nB %+v\nA %+v\nB %+v", what, pr.a.Status(), pr.b.Status(), pr.pa.Status(), pr.pb.Status())
		}
		pr.clk.Advance(100 * time.Millisecond)
		time.Sleep(100 * time.Microsecond)
	}
}

func (pr *pair) converged() bool {
	sa, sb := pr.pa.Status(), pr.pb.Status()
	synced := func(x, y ProfileStatus) bool {
		return x.State == RoleMaster && x.Sync == SyncSenderInSync && y.Sync == SyncReceiverInSync
	}
	return (synced(sa, sb) || synced(sb, sa)) && pr.ta.equal(pr.tb)
}

func TestPairReplicates(t *testing.T) {
	pr := newPair(t, nil)
	for i := range 5 {
		pr.ta.set(entryN(i, 100))
	}
	pr.pa.SetRole(RoleMaster)
	pr.pb.SetRole(RoleBackup)
	pr.run()
	pr.settle("initial batch", pr.converged)
	st := pr.a.Status()
	if st.State != StateConnected || !st.Dialer || pr.b.Status().Dialer || st.PeerSysName != "DeviceB" {
		t.Fatalf("status %+v", st)
	}
	// Failover: B becomes master, changes state; A (old master) comes back
	// as backup and receives B's entries.
	pr.pa.SetRole(RoleBackup)
	pr.pb.SetRole(RoleMaster)
	e := entryN(42, 7)
	pr.tb.set(e)
	pr.pb.Publish(OpUpsert, e)
	pr.settle("after failover", pr.converged)
	if pr.ta.len() != 6 {
		t.Fatalf("A has %d entries", pr.ta.len())
	}
}

// TestConvergenceProperty runs random sequences of changes, cuts,
// reconnects and role changes; once roles are stable and the channel is
// up, both sides hold identical entries.
func TestConvergenceProperty(t *testing.T) {
	seeds := 30
	if testing.Short() {
		seeds = 5
	}
	convergence(t, seeds, seeds > 5, func(t *testing.T, mod func(string, *Config)) *pair { return newPair(t, mod) })
}

// TestConvergenceTCP is the property over loopback TCP, where deltas and
// acks are written from the publishing (or acking) goroutine when the
// writer is idle, and cuts close real sockets.
func TestConvergenceTCP(t *testing.T) {
	seeds := 10
	if testing.Short() {
		seeds = 3
	}
	convergence(t, seeds, false, newTCPPair) // most steps run before a TCP session is up: few windows fill
}

// newTCPPair is newPair over loopback TCP (127.0.0.1 dials 127.0.0.2).
func newTCPPair(t *testing.T, mod func(string, *Config)) *pair {
	lo1, lo2 := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	probe, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("127.0.0.2 not usable: %v", err)
	}
	port := uint16(probe.Addr().(*net.TCPAddr).Port)
	probe.Close()
	addr := netip.AddrPortFrom(lo2, port).String()
	var pr *pair
	pr = newPair(t, func(side string, c *Config) {
		if mod != nil {
			mod(side, c)
		}
		c.Port = port
		if side == "a" {
			c.Source, c.Peer = lo1, lo2
			c.Dial = func(ctx context.Context) (net.Conn, error) {
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: lo1.AsSlice()}}
				x, err := d.DialContext(ctx, "tcp", addr)
				if err != nil {
					return nil, err
				}
				pr.mu.Lock()
				pr.conns = append(pr.conns, x)
				pr.mu.Unlock()
				return x, nil
			}
		} else {
			c.Source, c.Peer = lo2, lo1
			c.Listen = func(ctx context.Context) (net.Listener, error) {
				var lc net.ListenConfig
				return lc.Listen(ctx, "tcp", addr)
			}
		}
	})
	return pr
}

func convergence(t *testing.T, seeds int, wantOverflows bool, mk func(*testing.T, func(string, *Config)) *pair) {
	var reconnects, overflows, resyncs, batches uint64
	defer func() {
		t.Logf("reconnects %d, window overflows %d, resync requests %d, batches %d", reconnects, overflows, resyncs, batches)
		if !t.Failed() && (reconnects == 0 || batches == 0 || (wantOverflows && overflows == 0)) {
			t.Errorf("property test did not exercise reconnects/overflows")
		}
	}()
	for seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := mrand.New(mrand.NewPCG(uint64(seed), 0x5eed))
			pr := mk(t, func(_ string, c *Config) {
				if seed%3 == 0 {
					c.MaxUnacked = 3 // exercise window overflow (with bursts, below)
				}
			})
			roles := [2]Role{RoleMaster, RoleBackup}
			if rng.IntN(2) == 0 {
				roles = [2]Role{RoleBackup, RoleMaster}
			}
			profs := [2]*Profile{pr.pa, pr.pb}
			tabs := [2]*table{pr.ta, pr.tb}
			for i := range 2 {
				profs[i].SetRole(roles[i])
			}
			pr.run()
			for range 80 {
				switch r := rng.IntN(100); {
				case r < 55:
					// A burst now and then: deltas are sent as they are
					// published, and one at a time the acks keep up.
					burst := 1
					if rng.IntN(4) == 0 {
						burst = 8
					}
					for range burst {
						for i := range 2 {
							if roles[i] != RoleMaster {
								continue
							}
							g := rng.IntN(24)
							if rng.IntN(4) == 0 {
								tabs[i].del(groupN(g))
								profs[i].Publish(OpDelete, entryN(g, 0))
							} else {
								e := entryN(g, uint32(rng.IntN(1000)))
								tabs[i].set(e)
								profs[i].Publish(OpUpsert, e)
							}
						}
					}
				case r < 65:
					pr.cut()
				case r < 75:
					roles[0], roles[1] = roles[1], roles[0]
					for _, i := range rng.Perm(2) {
						profs[i].SetRole(roles[i])
					}
				case r < 80:
					i := rng.IntN(2)
					roles[i] = Role(rng.IntN(3))
					profs[i].SetRole(roles[i])
				default:
					pr.clk.Advance(time.Duration(rng.IntN(1500)) * time.Millisecond)
					time.Sleep(50 * time.Microsecond)
				}
			}
			// Stabilise: exactly one master.
			m := rng.IntN(2)
			roles[m], roles[1-m] = RoleMaster, RoleBackup
			for _, i := range rng.Perm(2) {
				profs[i].SetRole(roles[i])
			}
			pr.settle("convergence", pr.converged)
			reconnects += pr.a.Status().Stats.Established - 1
			for _, p := range profs {
				st := p.Status()
				overflows += st.WindowOverflows
				resyncs += st.ResyncsRequested
				batches += st.BatchesSent
			}
		})
	}
}

// ---- TLS ----

func TestTLSMutualAuth(t *testing.T) {
	pki := testpki.New(t, "rbs-ca")
	pr := newPair(t, func(side string, c *Config) {
		c.TLS = NewTLSConfig(pki.Leaf(t, c.Source), pki.Pool())
	})
	pr.ta.set(entryN(1, 1))
	pr.pa.SetRole(RoleMaster)
	pr.pb.SetRole(RoleBackup)
	pr.run()
	pr.settle("tls replication", pr.converged)
	if !pr.a.Status().TLS {
		t.Fatal("status does not report TLS")
	}
}

func TestTLSRejectsBadClientCert(t *testing.T) {
	good, evil := testpki.New(t, "rbs-ca"), testpki.New(t, "evil-ca")
	pr := newPair(t, func(side string, c *Config) {
		if side == "a" {
			// Trusts the right CA but presents a certificate from another.
			c.TLS = NewTLSConfig(evil.Leaf(t, c.Source), good.Pool())
		} else {
			c.TLS = NewTLSConfig(good.Leaf(t, c.Source), good.Pool())
		}
	})
	pr.run()
	pr.settle("tls rejection", func() bool { return pr.b.Status().Stats.Errors["tls"] >= 2 })
	if a, b := pr.a.Status(), pr.b.Status(); a.Stats.Established != 0 || b.Stats.Established != 0 {
		t.Fatalf("session established with a bad client certificate: %+v %+v", a, b)
	}
}

func TestTLSConfigRequiresTLS13(t *testing.T) {
	c := NewTLSConfig(tls.Certificate{}, x509.NewCertPool())
	if c.MinVersion != tls.VersionTLS13 || c.ClientAuth != tls.RequireAndVerifyClientCert {
		t.Fatalf("config %+v", c)
	}
	if _, err := TLSConfig("/nonexistent/cert.pem", "/nonexistent/key.pem", "/nonexistent/ca.pem"); err == nil {
		t.Fatal("TLSConfig accepted missing files")
	}
}

// ---- real sockets on loopback ----

func TestLoopbackTCP(t *testing.T) {
	lo1, lo2 := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	probe, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("127.0.0.2 not usable: %v", err)
	}
	port := uint16(probe.Addr().(*net.TCPAddr).Port)
	probe.Close()

	ta, tb := newTable(), newTable()
	for i := range 50 {
		ta.set(entryN(i, 1))
	}
	mk := func(src, peer netip.Addr) Config {
		return Config{Name: "service1", Source: src, Peer: peer, Port: port, ReconnectMin: 10 * time.Millisecond, ReconnectMax: 50 * time.Millisecond}
	}
	a, b := New(mk(lo1, lo2), nil), New(mk(lo2, lo1), nil)
	pa := a.AddProfile(ProfileConfig{Name: "profile1", BackupID: bid}, ta, ta)
	pb := b.AddProfile(ProfileConfig{Name: "profile1", BackupID: bid}, tb, tb)
	pa.SetRole(RoleMaster)
	pb.SetRole(RoleBackup)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { b.Run(ctx) })
	wg.Go(func() { a.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()

	eventually(t, "loopback replication", func() bool {
		return pa.Status().Sync == SyncSenderInSync && ta.equal(tb)
	})
	// A stranger from another loopback address is rejected.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.3")}}
	c, err := d.Dial("tcp", netip.AddrPortFrom(lo2, port).String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	eventually(t, "stranger rejected", func() bool { return b.Status().Stats.StrangersRejected == 1 })
	if st := b.Status(); st.State != StateConnected {
		t.Fatalf("listener state %v", st.State)
	}
}

// TestRemoveProfile: a profile removed on the master's side is withdrawn
// from the peer, whose profile goes down (not configured on the peer) and
// keeps the entries it holds; the removed profile no longer sends. Added
// again, it comes back up and its batch brings the receiver up to date.
func TestRemoveProfile(t *testing.T) {
	pr := newPair(t, nil)
	for i := range 5 {
		pr.ta.set(entryN(i, 100))
	}
	pr.pa.SetRole(RoleMaster)
	pr.pb.SetRole(RoleBackup)
	pr.run()
	pr.settle("initial batch", pr.converged)

	old := pr.pa
	if !pr.a.RemoveProfile(bid) {
		t.Fatal("RemoveProfile found no profile")
	}
	if pr.a.RemoveProfile(bid) {
		t.Error("RemoveProfile removed a profile twice")
	}
	if pr.a.Profile(bid) != nil {
		t.Error("the removed profile is still bound")
	}
	pr.settle("B's profile withdrawn", func() bool {
		st := pr.pb.Status()
		return st.Sync == SyncMismatch && strings.Contains(st.Mismatch, "not configured on the peer") && st.PeerState == RoleUnknown
	})
	if pr.tb.len() != 5 {
		t.Errorf("B kept %d entries after the withdrawal, want 5", pr.tb.len())
	}
	if ids := pr.a.Status().UnknownPeerBackupIDs; len(ids) != 1 || ids[0] != bid {
		t.Errorf("A's unknown peer backup-ids %v, want [%d]", ids, bid)
	}
	// The removed profile sends nothing and takes no role.
	sent := old.Status().EntriesSent
	e := entryN(7, 100)
	pr.ta.set(e)
	if err := old.Publish(OpUpsert, e); err != nil {
		t.Fatal(err)
	}
	old.SetRole(RoleBackup)
	pr.clk.Advance(time.Second)
	time.Sleep(10 * time.Millisecond)
	if st := old.Status(); st.EntriesSent != sent || st.State != RoleMaster {
		t.Errorf("the removed profile: %+v", st)
	}
	if old.Master() {
		t.Error("the removed profile still says master")
	}
	if pr.tb.len() != 5 {
		t.Errorf("B got %d entries from a removed profile", pr.tb.len())
	}

	// Bound again (a reload re-created it): up, and B converges.
	pr.ta.del(groupN(0))
	pr.pa = pr.a.AddProfile(ProfileConfig{Name: "profile1", BackupID: bid}, pr.ta, pr.ta)
	if pr.pa == old {
		t.Fatal("AddProfile returned the removed profile")
	}
	pr.pa.SetRole(RoleMaster)
	pr.settle("converged after the profile came back", pr.converged)
	if pr.tb.len() != 5 || len(pr.a.Status().UnknownPeerBackupIDs) != 0 {
		t.Errorf("B has %d entries, A's unknown peer backup-ids %v", pr.tb.len(), pr.a.Status().UnknownPeerBackupIDs)
	}
}
