package rbs

import (
	"errors"
	"io"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestConnectionRule(t *testing.T) {
	tests := []struct {
		source, peer string
		dials        bool
	}{
		{"2001:db8:10::1", "2001:db8:10::2", true},
		{"2001:db8:10::2", "2001:db8:10::1", false},
		{"fe80::1%eth0", "fe80::2%eth0", true},
		{"2001:db8::ffff", "2001:db8:1::", true},
		{"10.0.0.2", "10.0.0.1", false},
	}
	for _, tc := range tests {
		c := Config{Source: netip.MustParseAddr(tc.source), Peer: netip.MustParseAddr(tc.peer)}
		if got := c.Dials(); got != tc.dials {
			t.Errorf("source %s peer %s: Dials = %v, want %v", tc.source, tc.peer, got, tc.dials)
		}
		// The mirrored configuration on the peer makes the other choice.
		m := Config{Source: c.Peer, Peer: c.Source}
		if m.Dials() == c.Dials() {
			t.Errorf("source %s peer %s: both sides make the same choice", tc.source, tc.peer)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	a, b := addrA, addrB
	tests := map[string]Config{
		"no-peer":     {Source: a},
		"same":        {Source: a, Peer: a},
		"family":      {Source: a, Peer: netip.MustParseAddr("10.0.0.1")},
		"hold-short":  {Source: a, Peer: b, HoldTime: time.Second},
		"backoff-inv": {Source: a, Peer: b, ReconnectMin: time.Minute, ReconnectMax: time.Second},
	}
	for name, c := range tests {
		if err := c.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, c)
		}
	}
	good := Config{Name: "service1", Source: a, Peer: b, Port: 1025}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := New(Config{Source: a, Peer: a}, nil).Run(t.Context()); err == nil {
		t.Fatal("Run accepted an invalid config")
	}
}

func helloFor(profiles ...ProfileInfo) *Hello {
	return &Hello{SysName: "DeviceB", HoldTime: 9 * time.Second, Profiles: profiles}
}

func TestHelloExchangeAndStatus(t *testing.T) {
	h := startService(t, false, nil)
	h.svc.AddProfile(ProfileConfig{Name: "profile1", BackupID: 10}, newTable(), newTable()).SetRole(RoleBackup)
	h.run()
	p := h.peer(helloFor(ProfileInfo{BackupID: 10, Role: RoleMaster, Services: ServiceMLD}, ProfileInfo{BackupID: 99}))
	got := expect[*Hello](p)
	want := &Hello{SysName: "DUT", HoldTime: DefaultHoldTime, Profiles: []ProfileInfo{{BackupID: 10, Role: RoleBackup, Services: ServiceMLD}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("hello %+v, want %+v", got, want)
	}
	h.waitState(StateConnected)
	st := h.svc.Status()
	if st.PeerSysName != "DeviceB" || st.HoldTime != 9*time.Second || st.Dialer || st.Port != DefaultPort ||
		!st.LastUpTime.Equal(h.clk.Now()) || !reflect.DeepEqual(st.UnknownPeerBackupIDs, []uint32{99}) || st.Stats.Established != 1 {
		t.Fatalf("status %+v", st)
	}
	ps := h.svc.Profile(10).Status()
	if ps.State != RoleBackup || ps.PeerState != RoleMaster || ps.Sync != SyncWaitingBatch || ps.Mismatch != "" {
		t.Fatalf("profile status %+v", ps)
	}
}

func TestHoldTimer(t *testing.T) {
	h := startService(t, true, nil)
	h.run()
	p := h.peer(&Hello{SysName: "peer", HoldTime: 30 * time.Second})
	expect[*Hello](p)
	h.waitState(StateConnected)
	if got := h.svc.Status().HoldTime; got != DefaultHoldTime {
		t.Fatalf("negotiated hold %v, want the smaller %v", got, DefaultHoldTime)
	}
	// Keepalives every hold/3.
	h.clk.Advance(3 * time.Second)
	if m := <-p.msgs; m.Type() != TypeKeepalive {
		t.Fatalf("got %s, want keepalive", m.Type())
	}
	// A keepalive from the peer at t=6s restarts the hold period.
	h.clk.Advance(3 * time.Second)
	<-p.msgs
	in := h.svc.Status().Stats.MsgsIn
	p.send(&Keepalive{})
	eventually(t, "keepalive processed", func() bool { return h.svc.Status().Stats.MsgsIn == in+1 })
	h.clk.Advance(8 * time.Second) // t=14s: 8s after last receive
	if st := h.state(); st != StateConnected {
		t.Fatalf("state %v at 8s idle, want connected", st)
	}
	h.clk.Advance(time.Second) // t=15s: 9s idle
	st := h.svc.Status()
	if st.State == StateConnected || st.Stats.HoldExpired != 1 || st.LastDownReason != "hold timer expired" || st.Stats.Disconnects != 1 {
		t.Fatalf("after hold: %+v", st)
	}
	p.closed()
}

func TestHoldTimerBeforeHello(t *testing.T) {
	h := startService(t, false, nil)
	h.run()
	p := h.peer(nil) // connects but never says Hello
	expect[*Hello](p)
	h.clk.Advance(DefaultHoldTime)
	p.closed()
	if st := h.svc.Status(); st.Stats.HoldExpired != 1 || st.Stats.Established != 0 {
		t.Fatalf("status %+v", st)
	}
}

func TestReconnectBackoff(t *testing.T) {
	h := startService(t, true, nil)
	for range 7 {
		h.dials <- nil // refused
	}
	h.run()
	for _, d := range []time.Duration{1, 2, 4, 8, 16, 30, 30} {
		h.clk.WaitPending(t, d*time.Second)
		if st := h.state(); st != StateBackoff {
			t.Fatalf("state %v, want backoff", st)
		}
		h.clk.Advance(d * time.Second)
	}
	// A successful session resets the backoff.
	p := h.peer(helloFor())
	expect[*Hello](p)
	h.waitState(StateConnected)
	if st := h.svc.Status(); st.Stats.DialFailures != 7 {
		t.Fatalf("dial failures %d, want 7", st.Stats.DialFailures)
	}
	p.conn.Close()
	h.clk.WaitPending(t, time.Second)
	if r := h.svc.Status().LastDownReason; r != "connection closed by peer" {
		t.Fatalf("last down reason %q", r)
	}
	h.clk.Advance(time.Second)
	h.peer(helloFor())
	eventually(t, "second session", func() bool { return h.svc.Status().Stats.Established == 2 })
}

func TestStrangerRejected(t *testing.T) {
	h := startService(t, false, nil)
	h.run()
	c := h.ln.connect(t, netip.MustParseAddr("2001:db8::99"))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "closed") {
		t.Fatalf("stranger read: %v, want closed", err)
	}
	eventually(t, "stranger counted", func() bool { return h.svc.Status().Stats.StrangersRejected == 1 })
	// The real peer still gets in.
	h.peer(helloFor())
	h.waitState(StateConnected)
}

func TestRandomBytesOnThePort(t *testing.T) {
	h := startService(t, false, nil)
	h.run()
	p := h.peer(nil)
	// The service stops reading after the bad header, so the write may fail.
	go p.conn.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	expect[*Hello](p)
	cl := expect[*Close](p)
	if !strings.Contains(cl.Reason, "bad magic") {
		t.Fatalf("close reason %q", cl.Reason)
	}
	p.closed()
	eventually(t, "back to connecting", func() bool { return h.state() == StateConnecting })
	st := h.svc.Status()
	if st.Stats.Errors["bad-magic"] != 1 || st.Stats.Established != 0 {
		t.Fatalf("stats %+v", st.Stats)
	}
}

func TestProtocolErrors(t *testing.T) {
	tests := []struct {
		name   string
		send   []Message
		reason string
	}{
		{"data-before-hello", []Message{&Ack{BackupID: 1, Epoch: 1, Seq: 1}}, "expected hello, got ack"},
		{"hold-too-small", []Message{&Hello{HoldTime: time.Second}}, "peer hold time 1s below 3s"},
		{"second-hello", []Message{helloFor(), helloFor()}, "second hello"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := startService(t, false, nil)
			h.run()
			p := h.peer(nil)
			p.send(tc.send...)
			expect[*Hello](p)
			cl := expect[*Close](p)
			if cl.Reason != "protocol error: "+tc.reason {
				t.Fatalf("close reason %q", cl.Reason)
			}
			p.closed()
			eventually(t, "error counted", func() bool { return h.svc.Status().Stats.Errors["protocol"] == 1 })
		})
	}
}

func TestPeerClose(t *testing.T) {
	h := startService(t, false, nil)
	h.run()
	p := h.peer(helloFor())
	h.waitState(StateConnected)
	p.send(&Close{Reason: "shutdown"})
	p.closed()
	eventually(t, "down", func() bool { return h.svc.Status().LastDownReason == "closed by peer: shutdown" })
}

func TestNewConnectionReplacesOld(t *testing.T) {
	h := startService(t, false, nil)
	h.run()
	p1 := h.peer(helloFor())
	h.waitState(StateConnected)
	p2 := h.peer(helloFor())
	p1.closed()
	eventually(t, "second session", func() bool { return h.svc.Status().Stats.Established == 2 })
	if st := h.state(); st != StateConnected {
		t.Fatalf("state %v", st)
	}
	expect[*Hello](p2)
}

// A connection from the peer's address that sends junk (or anything but a
// valid Hello) while a session is up is closed; the session stays.
func TestJunkFromPeerAddressKeepsSession(t *testing.T) {
	for _, tc := range []struct {
		name string
		send func(p *rawPeer)
	}{
		{"random bytes", func(p *rawPeer) { go p.conn.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")) }},
		{"data before hello", func(p *rawPeer) { p.send(&Ack{BackupID: 1, Epoch: 1, Seq: 1}) }},
		{"hello with a bad hold time", func(p *rawPeer) { p.send(&Hello{HoldTime: time.Second}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := startService(t, false, nil)
			h.run()
			p1 := h.peer(helloFor())
			h.waitState(StateConnected)
			p2 := h.peer(nil)
			tc.send(p2)
			p2.closed()
			// The first session is untouched: still connected, and it
			// still works (a keepalive or the profile traffic would fail
			// on a closed connection).
			if st := h.svc.Status(); st.State != StateConnected || st.Stats.Established != 1 || st.Stats.Disconnects != 0 {
				t.Fatalf("after junk from the peer's address: %+v", st)
			}
			p1.send(&Keepalive{})
			h.waitState(StateConnected)
		})
	}
}

func TestShutdownSendsClose(t *testing.T) {
	h := startService(t, false, nil)
	h.run()
	p := h.peer(helloFor())
	expect[*Hello](p)
	h.waitState(StateConnected)
	h.stop()
	if cl := expect[*Close](p); cl.Reason != "shutdown" {
		t.Fatalf("close reason %q", cl.Reason)
	}
	if st := h.state(); st != StateIdle {
		t.Fatalf("state after Run %v", st)
	}
}
