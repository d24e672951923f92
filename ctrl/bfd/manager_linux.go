//go:build linux

package bfd

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
)

// Manager runs a system's BFD sessions on the real-time engine: it owns
// the engine thread, one receive socket per interface with sessions, one
// send socket per session, and the Demux. The daemon calls it from any
// goroutine; every call that changes a session runs on the engine thread
// (and waits for it), so the sessions' state changes all happen there,
// and the engine never waits for a caller.
//
// State changes reach Subscribe's channels through a goroutine per
// subscription: the engine thread only queues them, so a slow reader
// delays nothing but itself.
type Manager struct {
	log   *slog.Logger
	eng   *engine
	demux *Demux

	// Engine thread only.
	listeners map[string]*listenerRef
	conns     map[string]*rawConn

	subMu  sync.Mutex
	subs   map[*Subscription]struct{}
	closed bool

	// Test hooks, set before the first Add.
	wrapSender func(name string, s Sender) Sender
	tapRx      func(rx Received)
}

type listenerRef struct {
	l    *rawListener
	refs int
}

// ManagerStats are the system-wide counters: packets that matched no
// session, the receive sockets and the engine thread.
type ManagerStats struct {
	Demux     DemuxStats
	Listeners []ListenerStats
	Engine    EngineStats
}

// NewManager starts the engine thread (see EngineConfig).
func NewManager(cfg EngineConfig) (*Manager, error) {
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
		cfg.Log = log
	}
	eng, err := startEngine(cfg)
	if err != nil {
		return nil, err
	}
	return &Manager{
		log:       log,
		eng:       eng,
		demux:     NewDemux(log),
		listeners: map[string]*listenerRef{},
		conns:     map[string]*rawConn{},
		subs:      map[*Subscription]struct{}{},
	}, nil
}

// Add creates the session cfg and starts it: its send socket, and the
// receive socket of its interface if it is the first session there.
// Names and (interface, peer) pairs are unique.
func (m *Manager) Add(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	return m.eng.do(func() error { return m.add(cfg) })
}

// add runs on the engine thread.
func (m *Manager) add(cfg Config) error {
	if m.demux.Session(cfg.Name) != nil {
		return fmt.Errorf("bfd session %q: name in use", cfg.Name)
	}
	lr := m.listeners[cfg.Interface]
	if lr == nil {
		l, err := openListener(cfg.Interface, m.receive)
		if err != nil {
			return fmt.Errorf("bfd session %q: %w", cfg.Name, err)
		}
		l.caughtUp = time.Now()
		if err := m.eng.addFD(l.fd, l); err != nil {
			l.close()
			return fmt.Errorf("bfd session %q: %w", cfg.Name, err)
		}
		lr = &listenerRef{l: l}
		m.listeners[cfg.Interface] = lr
	}
	lr.refs++
	ok := false
	defer func() {
		if !ok {
			m.unrefListener(cfg.Interface)
		}
	}()
	c, err := dialRaw(cfg.Interface, cfg.Local, cfg.Peer)
	if err != nil {
		return fmt.Errorf("bfd session %q: %w", cfg.Name, err)
	}
	var sender Sender = c
	if m.wrapSender != nil {
		sender = m.wrapSender(cfg.Name, c)
	}
	s, err := m.demux.NewSession(cfg, m.eng, sender, observerFunc(m.publish), m.log)
	if err != nil {
		c.close()
		return err
	}
	s.rxCaughtUp = lr.l.caughtUpTime
	if err := s.Start(); err != nil {
		s.Close()
		m.demux.Remove(s)
		c.close()
		return err
	}
	m.conns[cfg.Name] = c
	ok = true
	m.log.Info("bfd session added", "bfd_session", cfg.Name, "interface", cfg.Interface, "peer", cfg.Peer,
		"source_port", c.port, "min_tx", cfg.DesiredMinTx, "min_rx", cfg.RequiredMinRx, "multiplier", cfg.DetectMult)
	return nil
}

func (m *Manager) receive(rx Received) {
	if m.tapRx != nil {
		m.tapRx(rx)
	}
	m.demux.HandlePacket(rx)
}

func (m *Manager) unrefListener(ifname string) {
	lr := m.listeners[ifname]
	if lr == nil {
		return
	}
	if lr.refs--; lr.refs > 0 {
		return
	}
	m.eng.removeFD(lr.l.fd)
	lr.l.close()
	delete(m.listeners, ifname)
}

// Remove stops the session called name: it sends one AdminDown packet,
// so that the peer goes Down with diag NeighborSignaledDown and, by RFC
// 5882 §3.2, does not take it for a failure, and then closes it.
func (m *Manager) Remove(name string) error {
	return m.eng.do(func() error { return m.remove(name, true) })
}

func (m *Manager) remove(name string, adminDown bool) error {
	s := m.demux.Session(name)
	if s == nil {
		return fmt.Errorf("bfd session %q: no such session", name)
	}
	if adminDown {
		_ = s.SetAdminDown(DiagAdminDown)
	}
	s.Close()
	m.demux.Remove(s)
	if c := m.conns[name]; c != nil {
		c.close()
		delete(m.conns, name)
	}
	m.unrefListener(s.cfg.Interface)
	m.log.Info("bfd session removed", "bfd_session", name)
	return nil
}

// Reconfigure applies cfg to the session of the same name: changed timers
// and multiplier in place (a Poll Sequence while Up, RFC 5880 §6.8.3);
// a changed interface, peer, source or passive mode re-creates the
// session (a new discriminator and source port: the peer sees a new
// session).
func (m *Manager) Reconfigure(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	return m.eng.do(func() error {
		s := m.demux.Session(cfg.Name)
		if s == nil {
			return fmt.Errorf("bfd session %q: no such session", cfg.Name)
		}
		old := s.Config()
		if old.Interface == cfg.Interface && old.Peer == cfg.Peer && old.Local == cfg.Local && old.Passive == cfg.Passive {
			return s.SetTimers(cfg.DesiredMinTx, cfg.RequiredMinRx, cfg.DetectMult)
		}
		if err := m.remove(cfg.Name, true); err != nil {
			return err
		}
		return m.add(cfg)
	})
}

// SetAdminDown puts the session in AdminDown (down) or takes it out
// (RFC 5880 §6.8.16).
func (m *Manager) SetAdminDown(name string, down bool) error {
	return m.eng.do(func() error {
		s := m.demux.Session(name)
		if s == nil {
			return fmt.Errorf("bfd session %q: no such session", name)
		}
		if down {
			return s.SetAdminDown(DiagAdminDown)
		}
		s.SetAdminUp()
		return nil
	})
}

// Session returns the status of the session called name.
func (m *Manager) Session(name string) (Status, bool) {
	s := m.demux.Session(name)
	if s == nil {
		return Status{}, false
	}
	return s.Status(), true
}

// Sessions returns the status of every session, ordered by name (for
// display bfd session and the metrics).
func (m *Manager) Sessions() []Status {
	ss := m.demux.Sessions()
	out := make([]Status, len(ss))
	for i, s := range ss {
		out[i] = s.Status()
	}
	return out
}

// Stats returns the system-wide counters.
func (m *Manager) Stats() ManagerStats {
	st := ManagerStats{Demux: m.demux.Stats(), Engine: m.eng.Stats()}
	_ = m.eng.do(func() error {
		for _, lr := range m.listeners {
			st.Listeners = append(st.Listeners, lr.l.stats())
		}
		return nil
	})
	slices.SortFunc(st.Listeners, func(a, b ListenerStats) int { return strings.Compare(a.Interface, b.Interface) })
	return st
}

// Close sends AdminDown on every session (an orderly stop, RFC 5880
// §6.8.16: the peers do not see a failure), closes every socket, stops
// the engine thread and closes every subscription, and waits for all of
// their goroutines.
func (m *Manager) Close() error {
	m.subMu.Lock()
	if m.closed {
		m.subMu.Unlock()
		return nil
	}
	m.subMu.Unlock()
	m.eng.close(func() {
		for _, s := range m.demux.Sessions() {
			_ = m.remove(s.Name(), true)
		}
	})
	m.subMu.Lock()
	m.closed = true
	subs := make([]*Subscription, 0, len(m.subs))
	for s := range m.subs {
		subs = append(subs, s)
	}
	clear(m.subs)
	m.subMu.Unlock()
	for _, s := range subs {
		s.stop()
	}
	return nil
}

type observerFunc func(StateChange)

func (f observerFunc) OnStateChange(c StateChange) { f(c) }

// publish queues c for the subscriptions to its session; it runs on the
// engine thread with the session's lock held, and only appends.
func (m *Manager) publish(c StateChange) {
	m.subMu.Lock()
	defer m.subMu.Unlock()
	for s := range m.subs {
		if s.name == "" || s.name == c.Name {
			s.push(c)
		}
	}
}

// Subscription delivers state changes on C, in order, until Close.
type Subscription struct {
	// C receives the changes; it is closed by Close and by the Manager's
	// Close.
	C <-chan StateChange

	m    *Manager
	name string
	out  chan StateChange
	mu   sync.Mutex
	q    []StateChange
	kick chan struct{}
	quit chan struct{}
	done chan struct{}
	once sync.Once
}

// Subscribe returns a subscription to the state changes of the session
// called name ("": every session). If the session exists, the first
// change delivered is its current state (From == To, Time now), so that a
// tracker starts from what is true; a session added later under the name
// is followed too. Changes are queued without bound for a slow reader;
// the engine never waits.
func (m *Manager) Subscribe(name string) (*Subscription, error) {
	sub := &Subscription{
		m: m, name: name, out: make(chan StateChange),
		kick: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{}),
	}
	sub.C = sub.out
	// Registered on the engine thread, so that no change runs between the
	// snapshot and the registration.
	err := m.eng.do(func() error {
		var now []StateChange
		for _, s := range m.demux.Sessions() {
			if name != "" && s.Name() != name {
				continue
			}
			st := s.Status()
			now = append(now, StateChange{
				Name: st.Name, Interface: st.Interface, Peer: st.Peer, From: st.State, To: st.State,
				Diag: st.LocalDiag, LocalDiscr: st.LocalDiscr, RemoteDiscr: st.RemoteDiscr, Time: time.Now(),
				RemoteState: st.RemoteState, LastRx: st.LastRx, DetectTime: st.DetectTime, Failed: st.Failed,
			})
		}
		m.subMu.Lock()
		defer m.subMu.Unlock()
		if m.closed {
			return errors.New("bfd manager closed")
		}
		for _, c := range now {
			sub.push(c)
		}
		m.subs[sub] = struct{}{}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bfd subscribe %q: %w", name, err)
	}
	go sub.run()
	return sub, nil
}

func (s *Subscription) push(c StateChange) {
	s.mu.Lock()
	s.q = append(s.q, c)
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *Subscription) run() {
	defer close(s.done)
	defer close(s.out)
	for {
		s.mu.Lock()
		q := s.q
		s.q = nil
		s.mu.Unlock()
		for _, c := range q {
			select {
			case s.out <- c:
			case <-s.quit:
				return
			}
		}
		select {
		case <-s.kick:
		case <-s.quit:
			return
		}
	}
}

func (s *Subscription) stop() {
	s.once.Do(func() { close(s.quit) })
	<-s.done
}

// Close ends the subscription: C is closed (changes not yet read are
// dropped) and its goroutine has ended when Close returns.
func (s *Subscription) Close() {
	s.m.subMu.Lock()
	delete(s.m.subs, s)
	s.m.subMu.Unlock()
	s.stop()
}
