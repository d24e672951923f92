package rbs

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Session defaults. The reference (VRP) RBS keeps a TCP channel with
// keepalives; hotcast uses a 3 s keepalive and a 9 s hold time, like
// BGP-style "hold = 3 × keepalive".
const (
	DefaultHoldTime        = 9 * time.Second
	MinHoldTime            = 3 * time.Second
	DefaultReconnectMin    = 1 * time.Second
	DefaultReconnectMax    = 30 * time.Second
	DefaultAckEvery        = 32
	DefaultAckInterval     = 1 * time.Second
	DefaultMaxUnacked      = 4096
	DefaultMaxQueueBytes   = 64 << 20
	DefaultMaxBatchEntries = 1 << 20
	// closeFlushTimeout bounds the time spent flushing a final Close.
	closeFlushTimeout = 2 * time.Second
)

// Config is the configuration of one remote-backup-service.
//
// Both routers carry the mirrored configuration (peer-ipv6 and
// source-ipv6 swapped, same port). Exactly one TCP connection results:
// the side with the numerically lower source address dials (binding its
// source address, ephemeral port) and the other side listens on
// source-ipv6:port, accepting connections from peer-ipv6 only. If the
// listener accepts a new connection from the peer while it still has one,
// the new connection replaces the old (the peer only redials after it has
// given up the old one).
type Config struct {
	// Name is the service name ("service1").
	Name string
	// SysName is sent in Hello for display on the peer.
	SysName string
	// Source is source-ipv6, Peer is peer-ipv6.
	Source, Peer netip.Addr
	// Port is the TCP port (DefaultPort if 0).
	Port uint16
	// HoldTime (DefaultHoldTime if 0, at least MinHoldTime). Keepalives
	// are sent every HoldTime/3 of the negotiated (smaller) hold time.
	HoldTime time.Duration
	// TLS, if set, runs the channel over TLS (see TLSConfig).
	TLS *tls.Config
	// ReconnectMin/Max bound the exponential reconnect backoff.
	ReconnectMin, ReconnectMax time.Duration
	// AckEvery and AckInterval control receiver acknowledgements.
	AckEvery    int
	AckInterval time.Duration
	// MaxUnacked bounds the sender's window of unacknowledged deltas; on
	// overflow the sender falls back to a full batch.
	MaxUnacked int
	// MaxQueueBytes bounds the send queue; on overflow the session is
	// closed (and resynchronised after reconnecting).
	MaxQueueBytes int
	// MaxBatchEntries bounds the entries a receiver buffers for one batch.
	MaxBatchEntries int
	// BatchBegin, if set, is told on the receiving side that a batch of
	// count entries for backupID begins, before its entries arrive:
	// hotcastd makes the heap the batch will take resident meanwhile
	// (hugeheap.Prefaulter). It runs on the session's reader with the
	// service locked: it must return at once and not call the service.
	BatchBegin func(backupID uint32, count int)

	// Dial opens the connection on the dialing side. Default: TCP from
	// Source (any port) to Peer:Port.
	Dial func(ctx context.Context) (net.Conn, error)
	// Listen opens the listener on the listening side. Default: TCP on
	// Source:Port.
	Listen func(ctx context.Context) (net.Listener, error)
	// Clock defaults to the real clock.
	Clock Clock
}

// Dials reports whether this side initiates the connection.
func (c *Config) Dials() bool { return c.Source.WithZone("").Less(c.Peer.WithZone("")) }

// Validate checks the configuration.
func (c *Config) Validate() error {
	if !c.Source.IsValid() || !c.Peer.IsValid() {
		return fmt.Errorf("rbs: service %q: source %v and peer %v must be set", c.Name, c.Source, c.Peer)
	}
	if c.Source.Is4() != c.Peer.Is4() {
		return fmt.Errorf("rbs: service %q: source %v and peer %v differ in family", c.Name, c.Source, c.Peer)
	}
	if c.Source.WithZone("") == c.Peer.WithZone("") {
		return fmt.Errorf("rbs: service %q: source and peer are both %v", c.Name, c.Source)
	}
	if c.HoldTime != 0 && c.HoldTime < MinHoldTime {
		return fmt.Errorf("rbs: service %q: hold time %v below %v", c.Name, c.HoldTime, MinHoldTime)
	}
	if c.ReconnectMax != 0 && c.ReconnectMin > c.ReconnectMax {
		return fmt.Errorf("rbs: service %q: reconnect min %v above max %v", c.Name, c.ReconnectMin, c.ReconnectMax)
	}
	return nil
}

func (c *Config) setDefaults() {
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.HoldTime == 0 {
		c.HoldTime = DefaultHoldTime
	}
	if c.ReconnectMin <= 0 {
		c.ReconnectMin = DefaultReconnectMin
	}
	if c.ReconnectMax <= 0 {
		c.ReconnectMax = DefaultReconnectMax
	}
	if c.ReconnectMax < c.ReconnectMin {
		c.ReconnectMax = c.ReconnectMin
	}
	if c.AckEvery <= 0 {
		c.AckEvery = DefaultAckEvery
	}
	if c.AckInterval <= 0 {
		c.AckInterval = DefaultAckInterval
	}
	if c.MaxUnacked <= 0 {
		c.MaxUnacked = DefaultMaxUnacked
	}
	if c.MaxQueueBytes <= 0 {
		c.MaxQueueBytes = DefaultMaxQueueBytes
	}
	if c.MaxBatchEntries <= 0 {
		c.MaxBatchEntries = DefaultMaxBatchEntries
	}
	if c.Clock == nil {
		c.Clock = realClock{}
	}
	if c.Dial == nil {
		local := &net.TCPAddr{IP: c.Source.AsSlice(), Zone: c.Source.Zone()}
		remote := netip.AddrPortFrom(c.Peer, c.Port).String()
		c.Dial = func(ctx context.Context) (net.Conn, error) {
			d := net.Dialer{LocalAddr: local}
			return d.DialContext(ctx, "tcp", remote)
		}
	}
	if c.Listen == nil {
		addr := netip.AddrPortFrom(c.Source, c.Port).String()
		c.Listen = func(ctx context.Context) (net.Listener, error) {
			var lc net.ListenConfig
			return lc.Listen(ctx, "tcp", addr)
		}
	}
}

// SessionState is the state of the RBS channel.
type SessionState uint8

// Session states.
const (
	StateIdle       SessionState = iota // Run not running
	StateConnecting                     // dialing, or listening for the peer
	StateBackoff                        // waiting before the next attempt
	StateHelloSent                      // connected, waiting for the peer's Hello
	StateConnected                      // Hello exchanged
)

func (s SessionState) String() string {
	switch s {
	case StateIdle:
		return "idle"
	case StateConnecting:
		return "connecting"
	case StateBackoff:
		return "backoff"
	case StateHelloSent:
		return "hello-sent"
	case StateConnected:
		return "connected"
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// Stats are the counters of a Service.
type Stats struct {
	MsgsIn, MsgsOut   uint64
	BytesIn, BytesOut uint64
	// Established counts sessions that completed the Hello exchange.
	Established       uint64
	Disconnects       uint64
	DialFailures      uint64
	HoldExpired       uint64
	StrangersRejected uint64
	// Errors counts errors by reason ("bad-magic", "tls", "protocol"...).
	Errors map[string]uint64
}

// Status is the display state of a Service ("display remote-backup-service").
type Status struct {
	Name           string
	State          SessionState
	Source, Peer   netip.Addr
	Port           uint16
	Dialer         bool
	TLS            bool
	LastUpTime     time.Time
	LastDownReason string
	PeerSysName    string
	// HoldTime is the negotiated hold time while connected.
	HoldTime time.Duration
	// UnknownPeerBackupIDs are backup-ids the peer announced that have no
	// local profile.
	UnknownPeerBackupIDs []uint32
	Stats                Stats
}

// Service runs one RBS channel and the profiles bound to it.
type Service struct {
	cfg Config
	log *slog.Logger

	msgsIn, msgsOut, bytesIn, bytesOut atomic.Uint64

	mu    sync.Mutex
	state SessionState
	cur   *conn
	// pending is a new connection from the peer's address while an
	// established session exists: it replaces cur only once its Hello is
	// valid, so junk sent from (or spoofing) the peer's address cannot
	// drop a working session.
	pending      *conn
	profiles     []*Profile
	byID         map[uint32]*Profile
	stats        Stats
	lastUp       time.Time
	lastDown     string
	peerSysName  string
	peerProfiles map[uint32]ProfileInfo
	hold         time.Duration
	backoff      time.Duration

	kick chan struct{} // Publish wakes the pump
}

// New returns a Service for cfg. A nil logger discards logs. Call Validate
// on cfg first to get configuration errors early; Run reports them too.
func New(cfg Config, logger *slog.Logger) *Service {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg.setDefaults()
	return &Service{
		cfg:     cfg,
		log:     logger.With("rbs", cfg.Name),
		byID:    make(map[uint32]*Profile),
		stats:   Stats{Errors: make(map[string]uint64)},
		backoff: cfg.ReconnectMin,
		kick:    make(chan struct{}, 1),
	}
}

// Status returns a snapshot of the service state.
func (s *Service) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Status{
		Name: s.cfg.Name, State: s.state, Source: s.cfg.Source, Peer: s.cfg.Peer, Port: s.cfg.Port,
		Dialer: s.cfg.Dials(), TLS: s.cfg.TLS != nil, LastUpTime: s.lastUp, LastDownReason: s.lastDown,
	}
	if s.state == StateConnected {
		st.PeerSysName = s.peerSysName
		st.HoldTime = s.hold
		for id := range s.peerProfiles {
			if s.byID[id] == nil {
				st.UnknownPeerBackupIDs = append(st.UnknownPeerBackupIDs, id)
			}
		}
		slices.Sort(st.UnknownPeerBackupIDs)
	}
	st.Stats = s.stats
	st.Stats.Errors = make(map[string]uint64, len(s.stats.Errors))
	for k, v := range s.stats.Errors {
		st.Stats.Errors[k] = v
	}
	st.Stats.MsgsIn, st.Stats.MsgsOut = s.msgsIn.Load(), s.msgsOut.Load()
	st.Stats.BytesIn, st.Stats.BytesOut = s.bytesIn.Load(), s.bytesOut.Load()
	return st
}

// Run runs the channel until ctx is done; it returns nil then, or an error
// for an invalid configuration.
func (s *Service) Run(ctx context.Context) error {
	if err := s.cfg.Validate(); err != nil {
		return err
	}
	var wg sync.WaitGroup
	wg.Go(func() { s.pump(ctx) })
	defer func() {
		wg.Wait()
		s.mu.Lock()
		s.state = StateIdle
		s.mu.Unlock()
	}()
	if s.cfg.Dials() {
		s.dialLoop(ctx)
	} else {
		s.listenLoop(ctx, &wg)
	}
	return nil
}

// pump sends the changes queued by Publish.
func (s *Service) pump(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		}
		s.mu.Lock()
		for _, p := range s.profiles {
			p.drainPublished()
		}
		s.mu.Unlock()
	}
}

func (s *Service) setState(st SessionState) {
	s.mu.Lock()
	s.state = st
	s.mu.Unlock()
}

func (s *Service) countError(reason string) {
	s.mu.Lock()
	s.stats.Errors[reason]++
	s.mu.Unlock()
}

// nextBackoff returns the delay before the next attempt and doubles it.
func (s *Service) nextBackoff() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.backoff
	s.backoff = min(2*s.backoff, s.cfg.ReconnectMax)
	return d
}

// sleep waits d on the service clock; it reports false if ctx ended.
func (s *Service) sleep(ctx context.Context, d time.Duration) bool {
	s.setState(StateBackoff)
	ch := make(chan struct{})
	t := s.cfg.Clock.AfterFunc(d, func() { close(ch) })
	select {
	case <-ch:
		return true
	case <-ctx.Done():
		t.Stop()
		return false
	}
}

func (s *Service) dialLoop(ctx context.Context) {
	for ctx.Err() == nil {
		s.setState(StateConnecting)
		nc, err := s.cfg.Dial(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.mu.Lock()
			s.stats.DialFailures++
			s.lastDown = "dial: " + err.Error()
			s.mu.Unlock()
			s.log.Debug("dial failed", "peer", s.cfg.Peer, "err", err)
		} else {
			s.serve(ctx, nc, true)
		}
		if !s.sleep(ctx, s.nextBackoff()) {
			return
		}
	}
}

func (s *Service) listenLoop(ctx context.Context, wg *sync.WaitGroup) {
	for ctx.Err() == nil {
		s.setState(StateConnecting)
		ln, err := s.cfg.Listen(ctx)
		if err != nil {
			s.countError("listen")
			s.log.Warn("listen failed", "addr", netip.AddrPortFrom(s.cfg.Source, s.cfg.Port), "err", err)
			if !s.sleep(ctx, s.nextBackoff()) {
				return
			}
			continue
		}
		s.mu.Lock()
		s.backoff = s.cfg.ReconnectMin
		s.mu.Unlock()
		stop := context.AfterFunc(ctx, func() { ln.Close() })
		for {
			nc, err := ln.Accept()
			if err != nil {
				if ctx.Err() == nil {
					s.countError("accept")
					s.log.Warn("accept failed", "err", err)
				}
				break
			}
			if !s.fromPeer(nc) {
				s.mu.Lock()
				s.stats.StrangersRejected++
				s.mu.Unlock()
				s.log.Warn("rejected connection from stranger", "remote", nc.RemoteAddr().String())
				nc.Close()
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.serve(ctx, nc, false)
			}()
		}
		stop()
		ln.Close()
		if ctx.Err() == nil && !s.sleep(ctx, s.nextBackoff()) {
			return
		}
	}
}

func remoteAddr(nc net.Conn) netip.Addr {
	ra := nc.RemoteAddr()
	if ra == nil {
		return netip.Addr{}
	}
	if t, ok := ra.(*net.TCPAddr); ok {
		return t.AddrPort().Addr()
	}
	ap, err := netip.ParseAddrPort(ra.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr()
}

func (s *Service) fromPeer(nc net.Conn) bool {
	return remoteAddr(nc).Unmap().WithZone("") == s.cfg.Peer.Unmap().WithZone("")
}

// conn is one TCP (or TLS) connection to the peer.
type conn struct {
	s  *Service
	nc net.Conn

	// Guarded by s.mu.
	established bool
	lastRecv    time.Time
	holdTimer   Timer
	reason      string

	// The keepalive timer has a lock of its own: keepalives go out while
	// the service lock is held for long (a million-entry batch applied),
	// or the peer would take the silence for a dead session.
	kaMu    sync.Mutex
	kaTimer Timer
	kaStop  bool

	qmu     sync.Mutex
	qcond   *sync.Cond
	q       []queued
	qbytes  int
	closing bool // flush the queue, then close
	closed  bool
	// idle: the writer waits with nothing queued or buffered, so a frame
	// may be written at once by whoever queues it (direct, below).
	idle bool
	// direct is the socket for those writes (plain TCP; nil over TLS).
	direct syscall.RawConn
}

func (s *Service) serve(ctx context.Context, nc net.Conn, dialed bool) {
	if s.cfg.TLS != nil {
		tc, err := s.handshake(ctx, nc, dialed)
		if err != nil {
			s.countError("tls")
			s.mu.Lock()
			s.lastDown = err.Error()
			s.mu.Unlock()
			s.log.Warn("tls handshake failed", "remote", nc.RemoteAddr().String(), "err", err)
			nc.Close()
			return
		}
		nc = tc
	}
	c := &conn{s: s, nc: nc}
	if tc, ok := nc.(*net.TCPConn); ok {
		// Go's default, said out loud: a delta is one small segment, and
		// Nagle would hold it for the ack of the previous one.
		if err := tc.SetNoDelay(true); err != nil {
			s.log.Warn("tcp nodelay", "err", err)
		}
		if rc, err := tc.SyscallConn(); err == nil {
			c.direct = rc
		}
	}
	c.qcond = sync.NewCond(&c.qmu)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.writeLoop()
	}()
	s.attach(c)
	stop := context.AfterFunc(ctx, func() {
		s.mu.Lock()
		c.closeWith("shutdown", true)
		s.mu.Unlock()
	})
	defer stop()

	// Buffered: a batch is many small frames, and two read syscalls per
	// frame cost more than the rest of the receive path.
	r := NewReader(bufio.NewReaderSize(nc, 64<<10))
	r.reuseEntry = true // handle keeps no Entry: one for the whole stream
	for {
		m, n, err := r.ReadMessage()
		if err != nil {
			s.mu.Lock()
			if c.reason == "" {
				if errors.Is(err, net.ErrClosed) || ErrorReason(err) == "eof" {
					c.reason = "connection closed by peer"
				} else {
					reason := ErrorReason(err)
					s.stats.Errors[reason]++
					c.reason = "read: " + err.Error()
					if reason != "io" && reason != "truncated" {
						c.closeWith(c.reason, true)
					}
				}
			}
			s.mu.Unlock()
			break
		}
		s.msgsIn.Add(1)
		s.bytesIn.Add(uint64(n))
		s.handle(c, m)
	}
	s.detach(c)
	c.qmu.Lock()
	if !c.closed {
		c.closing = true
		c.nc.SetWriteDeadline(time.Now().Add(closeFlushTimeout))
	}
	c.qcond.Broadcast()
	c.qmu.Unlock()
	<-writerDone
	nc.Close()
}

func (s *Service) handshake(ctx context.Context, nc net.Conn, dialed bool) (net.Conn, error) {
	cfg := s.cfg.TLS.Clone()
	cfg.MinVersion = max(cfg.MinVersion, tls.VersionTLS13)
	var tc *tls.Conn
	if dialed {
		if cfg.ServerName == "" {
			cfg.ServerName = s.cfg.Peer.WithZone("").String()
		}
		tc = tls.Client(nc, cfg)
	} else {
		tc = tls.Server(nc, cfg)
	}
	hctx, cancel := context.WithTimeout(ctx, s.cfg.HoldTime)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		return nil, fmt.Errorf("tls handshake with %v: %w", remoteAddr(nc), err)
	}
	return tc, nil
}

// attach makes c the current connection and sends Hello; while an
// established session exists, c waits as pending until its Hello.
func (s *Service) attach(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur := s.cur; cur != nil && cur.established {
		if old := s.pending; old != nil {
			old.reason = "superseded by a newer candidate connection"
			old.abort()
		}
		s.log.Info("new connection from the peer's address; the current session stays until it says hello")
		s.pending = c
		c.lastRecv = s.cfg.Clock.Now()
		c.send(s.helloLocked())
		c.armHold(s.cfg.HoldTime)
		return
	}
	s.makeCurrent(c)
	c.send(s.helloLocked())
	c.armHold(s.cfg.HoldTime)
}

// makeCurrent replaces the current connection (if any) with c; s.mu held.
func (s *Service) makeCurrent(c *conn) {
	if old := s.cur; old != nil {
		s.log.Info("new connection from peer replaces the current one")
		old.reason = "replaced by a new connection"
		old.abort()
		s.down(old)
	}
	s.cur = c
	s.state = StateHelloSent
	c.lastRecv = s.cfg.Clock.Now()
}

func (s *Service) helloLocked() *Hello {
	h := &Hello{SysName: s.cfg.SysName, HoldTime: s.cfg.HoldTime}
	for _, p := range s.profiles {
		h.Profiles = append(h.Profiles, p.info())
	}
	return h
}

// detach tears down the state bound to c once its reader has stopped.
func (s *Service) detach(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.holdTimer != nil {
		c.holdTimer.Stop()
	}
	c.stopKeepalive()
	if s.pending == c {
		s.pending = nil
	}
	if s.cur == c {
		s.down(c)
	}
}

// down marks the session down; s.mu held.
func (s *Service) down(c *conn) {
	if s.cur != c {
		return
	}
	s.cur = nil
	s.state = StateConnecting
	if c.established {
		s.stats.Disconnects++
	}
	s.lastDown = c.reason
	s.peerProfiles = nil
	for _, p := range s.profiles {
		p.sessionDown()
	}
	s.log.Info("session down", "reason", c.reason, "established", c.established)
}

func (c *conn) armHold(d time.Duration) {
	s := c.s
	c.holdTimer = s.cfg.Clock.AfterFunc(d, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.pending == c {
			// A candidate that never said hello.
			s.stats.HoldExpired++
			c.reason = "no hello before the hold time"
			c.abort()
			s.pending = nil
			return
		}
		if s.cur != c {
			return
		}
		hold := s.cfg.HoldTime
		if c.established {
			hold = s.hold
		}
		if idle := s.cfg.Clock.Now().Sub(c.lastRecv); idle < hold {
			c.armHold(hold - idle)
			return
		}
		s.stats.HoldExpired++
		c.reason = "hold timer expired"
		s.log.Warn("hold timer expired", "hold", hold)
		c.abort()
		s.down(c)
	})
}

// armKeepalive starts sending keepalives every hold/3; s.mu held.
func (c *conn) armKeepalive() {
	frame, err := Marshal(&Keepalive{})
	if err != nil {
		panic(err) // an empty message always encodes
	}
	every := c.s.hold / 3
	var tick func()
	tick = func() {
		c.kaMu.Lock()
		defer c.kaMu.Unlock()
		if c.kaStop {
			return
		}
		c.enqueueKeepalive(frame)
		c.kaTimer = c.s.cfg.Clock.AfterFunc(every, tick)
	}
	c.kaMu.Lock()
	defer c.kaMu.Unlock()
	if !c.kaStop {
		c.kaTimer = c.s.cfg.Clock.AfterFunc(every, tick)
	}
}

func (c *conn) stopKeepalive() {
	c.kaMu.Lock()
	defer c.kaMu.Unlock()
	c.kaStop = true
	if c.kaTimer != nil {
		c.kaTimer.Stop()
	}
}

// enqueueKeepalive queues a keepalive without the service lock: anywhere
// in the stream is fine for it. A full queue (a stuck peer) drops it; the
// next message's enqueue closes the session.
func (c *conn) enqueueKeepalive(frame []byte) {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	if c.closed || c.closing || c.qbytes+len(frame) > c.s.cfg.MaxQueueBytes {
		return
	}
	c.s.msgsOut.Add(1)
	if c.idle && len(c.q) == 0 && c.direct != nil {
		if frame = c.writeNow(frame); len(frame) == 0 {
			return
		}
	}
	c.q = append(c.q, queued{b: frame})
	c.qbytes += len(frame)
	c.qcond.Signal()
}

// queued is frames waiting for the writer: one, a run of them, or a
// batch's entries, encoded as the writer takes them.
type queued struct {
	b      []byte
	frames int
	batch  *batchEntries
}

// batchEntries are the entries of one batch, numbered from 1.
type batchEntries struct {
	backupID uint32
	es       []MLDEntry
}

// send queues m; s.mu held (it orders sends).
func (c *conn) send(m Message) {
	b, err := Marshal(m)
	if err != nil {
		c.s.stats.Errors["marshal"]++
		c.s.log.Error("marshal failed", "type", m.Type(), "err", err)
		return
	}
	c.enqueue(queued{b: b, frames: 1})
}

// sendEntries queues a batch's entries; s.mu held. The writer encodes
// them as it sends them: no copy of the batch is made, and the batch does
// not count against MaxQueueBytes (a 1M-entry batch is 87 MB encoded),
// which bounds what piles up behind a stuck peer, the deltas.
func (c *conn) sendEntries(backupID uint32, es []MLDEntry) {
	if len(es) > 0 {
		c.enqueue(queued{batch: &batchEntries{backupID, es}, frames: len(es)})
	}
}

// writeBatch encodes and writes a batch's entries through w.
func (c *conn) writeBatch(w *bufio.Writer, b *batchEntries, scratch []byte, closing bool) ([]byte, error) {
	const flushAt = 32 << 10
	buf := scratch[:0]
	bad := 0
	var m Entry // one for the batch: as a Message it lives on the heap
	for i := range b.es {
		m = Entry{BackupID: b.backupID, Seq: uint64(i + 1), Op: OpUpsert, MLD: b.es[i]}
		out, err := AppendMarshal(buf, &m)
		if err != nil {
			// As send: the receiver sees the gap and asks for a resync.
			bad++
			continue
		}
		buf = out
		if len(buf) >= flushAt {
			if !closing {
				// The peer takes the batch: it is not stuck.
				c.nc.SetWriteDeadline(time.Now().Add(c.s.cfg.HoldTime))
			}
			if _, err := w.Write(buf); err != nil {
				return buf, err
			}
			c.s.bytesOut.Add(uint64(len(buf)))
			buf = buf[:0]
		}
	}
	if len(buf) > 0 {
		if _, err := w.Write(buf); err != nil {
			return buf, err
		}
		c.s.bytesOut.Add(uint64(len(buf)))
	}
	c.s.msgsOut.Add(uint64(len(b.es) - bad))
	if bad > 0 {
		s := c.s
		s.mu.Lock()
		s.stats.Errors["marshal"] += uint64(bad)
		s.mu.Unlock()
		s.log.Error("marshal failed", "type", TypeEntry, "entries", bad)
	}
	return buf, nil
}

// enqueue hands frames to the writer; s.mu held.
func (c *conn) enqueue(q queued) {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	if c.closed || c.closing {
		return
	}
	if c.qbytes+len(q.b) > c.s.cfg.MaxQueueBytes {
		c.s.stats.Errors["queue-overflow"]++
		c.reason = "send queue overflow"
		c.closed = true
		c.nc.Close()
		c.qcond.Broadcast()
		return
	}
	if c.idle && len(c.q) == 0 && q.batch == nil && c.direct != nil {
		c.s.msgsOut.Add(uint64(q.frames))
		if q.b = c.writeNow(q.b); len(q.b) == 0 {
			return
		}
		q.frames = 0 // counted already
	}
	c.q = append(c.q, q)
	c.qbytes += len(q.b)
	c.qcond.Signal()
}

// writeNow writes b to the socket in the caller's goroutine, without
// waiting (one non-blocking write); it returns what the socket did not
// take, for the writer. A delta (or an ack) then costs no hand-off to the
// writer goroutine: on a 2-vCPU VM each wake of a goroutine on the other
// CPU costs 50-100 µs at the median, milliseconds at the tail. qmu held,
// writer idle (so nothing of its is buffered or being written).
func (c *conn) writeNow(b []byte) []byte {
	n := 0
	err := c.direct.Write(func(fd uintptr) bool {
		for n < len(b) {
			k, err := syscall.Write(int(fd), b[n:])
			if k > 0 {
				n += k
			}
			if err == syscall.EINTR {
				continue
			}
			if err != nil || k <= 0 {
				break
			}
		}
		return true // never wait: the writer does the waiting
	})
	if err != nil {
		return b[n:] // the writer meets the error and reports it
	}
	c.s.bytesOut.Add(uint64(n))
	return b[n:]
}

// closeWith queues a Close message (if sendClose) and closes the
// connection once the queue is flushed; s.mu held.
func (c *conn) closeWith(reason string, sendClose bool) {
	if c.reason == "" {
		c.reason = reason
	}
	if sendClose {
		if len(reason) > MaxReason {
			reason = reason[:MaxReason]
		}
		c.send(&Close{Reason: reason})
	}
	c.qmu.Lock()
	if !c.closed && !c.closing {
		c.closing = true
		c.nc.SetWriteDeadline(time.Now().Add(closeFlushTimeout))
	}
	c.qcond.Broadcast()
	c.qmu.Unlock()
}

// abort closes the connection at once.
func (c *conn) abort() {
	c.qmu.Lock()
	c.closed = true
	c.qcond.Broadcast()
	c.qmu.Unlock()
	c.nc.Close()
}

func (c *conn) writeLoop() {
	w := bufio.NewWriterSize(c.nc, 64<<10)
	var scratch []byte // a batch's encoding buffer
	for {
		c.qmu.Lock()
		for len(c.q) == 0 && !c.closed && !c.closing {
			c.idle = true
			c.qcond.Wait()
		}
		c.idle = false
		if c.closed {
			c.qmu.Unlock()
			return
		}
		batch := c.q
		c.q, c.qbytes = nil, 0
		closing := c.closing
		if !closing {
			// A stuck peer must not hold the writer forever.
			c.nc.SetWriteDeadline(time.Now().Add(c.s.cfg.HoldTime))
		}
		c.qmu.Unlock()

		for _, q := range batch {
			if q.batch != nil {
				var err error
				if scratch, err = c.writeBatch(w, q.batch, scratch, closing); err != nil {
					c.writeFailed(err)
					return
				}
				continue
			}
			if _, err := w.Write(q.b); err != nil {
				c.writeFailed(err)
				return
			}
			c.s.msgsOut.Add(uint64(q.frames))
			c.s.bytesOut.Add(uint64(len(q.b)))
		}
		if err := w.Flush(); err != nil {
			c.writeFailed(err)
			return
		}
		if closing && len(batch) == 0 {
			c.abort()
			return
		}
	}
}

func (c *conn) writeFailed(err error) {
	s := c.s
	s.mu.Lock()
	if c.reason == "" {
		c.reason = "write: " + err.Error()
		s.stats.Errors["write"]++
	}
	s.mu.Unlock()
	c.abort()
}

// handle processes one message from c.
func (s *Service) handle(c *conn, m Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending == c {
		s.pending = nil
		h, ok := m.(*Hello)
		if !ok || h.HoldTime < MinHoldTime {
			s.stats.Errors["protocol"]++
			s.log.Warn("candidate connection from the peer's address closed: no valid hello; the session stays", "got", m.Type())
			c.closeWith("protocol error: expected hello", true)
			return
		}
		s.makeCurrent(c)
		s.established(c, h)
		return
	}
	if s.cur != c {
		return
	}
	c.lastRecv = s.cfg.Clock.Now()
	if cl, ok := m.(*Close); ok {
		c.reason = "closed by peer: " + cl.Reason
		c.abort()
		s.down(c)
		return
	}
	if !c.established {
		h, ok := m.(*Hello)
		if !ok {
			s.protocolError(c, fmt.Sprintf("expected hello, got %s", m.Type()))
			return
		}
		s.established(c, h)
		return
	}
	switch m := m.(type) {
	case *Hello:
		s.protocolError(c, "second hello")
	case *Keepalive:
	case *BatchBegin:
		s.toProfile(m.BackupID, m)
	case *Entry:
		s.toProfile(m.BackupID, m)
	case *BatchEnd:
		s.toProfile(m.BackupID, m)
		// Applying a large batch takes a while (seconds at a million
		// entries), during which this reader read nothing: that is not
		// the peer's silence, and the hold timer must not count it.
		c.lastRecv = s.cfg.Clock.Now()
	case *Ack:
		s.toProfile(m.BackupID, m)
	case *ResyncRequest:
		s.toProfile(m.BackupID, m)
	case *ProfileState:
		if m.Services == 0 {
			// The peer removed the profile (RemoveProfile).
			delete(s.peerProfiles, m.BackupID)
			if p := s.byID[m.BackupID]; p != nil {
				p.withdrawn()
			}
			return
		}
		s.peerProfiles[m.BackupID] = m.ProfileInfo
		if p := s.byID[m.BackupID]; p != nil {
			p.peerState(m.ProfileInfo)
		}
	}
}

func (s *Service) toProfile(id uint32, m Message) {
	p := s.byID[id]
	if p == nil || !p.up {
		s.stats.Errors["inactive-backup-id"]++
		return
	}
	p.handle(m)
}

// protocolError closes c with a Close message; s.mu held.
func (s *Service) protocolError(c *conn, reason string) {
	s.stats.Errors["protocol"]++
	s.log.Warn("protocol error", "reason", reason)
	c.closeWith("protocol error: "+reason, true)
	s.down(c)
}

func (s *Service) established(c *conn, h *Hello) {
	if h.HoldTime < MinHoldTime {
		s.protocolError(c, fmt.Sprintf("peer hold time %v below %v", h.HoldTime, MinHoldTime))
		return
	}
	c.established = true
	s.hold = min(s.cfg.HoldTime, h.HoldTime)
	s.state = StateConnected
	s.lastUp = s.cfg.Clock.Now()
	s.lastDown = ""
	s.backoff = s.cfg.ReconnectMin
	s.stats.Established++
	s.peerSysName = h.SysName
	s.peerProfiles = make(map[uint32]ProfileInfo, len(h.Profiles))
	for _, pi := range h.Profiles {
		s.peerProfiles[pi.BackupID] = pi
	}
	c.armKeepalive()
	s.log.Info("session up", "peer", s.cfg.Peer, "peer_sysname", h.SysName, "hold", s.hold)
	for _, p := range s.profiles {
		pi, ok := s.peerProfiles[p.cfg.BackupID]
		p.sessionUp(pi, ok)
	}
}

// sendLocked sends m on the established connection, if any; s.mu held.
func (s *Service) sendLocked(m Message) {
	if s.cur != nil && s.cur.established {
		s.cur.send(m)
	}
}

// sendEntriesLocked sends a batch's entries (see conn.sendEntries).
func (s *Service) sendEntriesLocked(backupID uint32, es []MLDEntry) {
	if s.cur != nil && s.cur.established {
		s.cur.sendEntries(backupID, es)
	}
}
