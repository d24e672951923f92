package daemon

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"time"

	"github.com/hotcast/hotcast/ctrl/bfd"
	"github.com/hotcast/hotcast/ctrl/vrrp6"
	"github.com/hotcast/hotcast/daemon/api"
	"github.com/hotcast/hotcast/daemon/config"
)

// BFDManager is what the daemon drives of the BFD engine (bfd.Manager):
// sessions, their state changes, and the view for display.
type BFDManager interface {
	Add(bfd.Config) error
	Reconfigure(bfd.Config) error
	Remove(name string) error
	// Watch delivers the session's current state, then every change,
	// until stop is called (never on the engine's real-time thread).
	Watch(name string) (changes <-chan bfd.StateChange, stop func(), err error)
	Sessions() []bfd.Status
	Stats() bfd.ManagerStats
	Close() error
}

// kernelBFD adapts bfd.Manager.
type kernelBFD struct{ *bfd.Manager }

func (k kernelBFD) Watch(name string) (<-chan bfd.StateChange, func(), error) {
	s, err := k.Subscribe(name)
	if err != nil {
		return nil, nil, err
	}
	return s.C, s.Close, nil
}

// bfdWatch is one session's subscription, stopped when the session goes.
type bfdWatch struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// bfdConfig maps a configured session to the engine's. Without a source,
// the session sends from the interface's configured address on the peer's
// prefix (else its first configured one): the kernel's choice could be a
// VRRP6 virtual IP, which moves with the Master, and the peer accepts a
// session's packets from its configured address only.
func bfdConfig(cfg *config.Config, s *config.BFDSession) bfd.Config {
	c := bfd.Config{Name: s.Name, Interface: s.Interface, Local: s.Source, Peer: s.Peer,
		DesiredMinTx: s.MinTx, RequiredMinRx: s.MinRx, DetectMult: s.Multiplier, Passive: s.Passive}
	if c.Local.IsValid() {
		return c
	}
	for _, ic := range cfg.Interfaces {
		if ic.Name != s.Interface {
			continue
		}
		for _, p := range ic.Addresses {
			if p.Contains(s.Peer) {
				c.Local = p.Addr()
				return c
			}
		}
		if len(ic.Addresses) > 0 && !s.Peer.IsLinkLocalUnicast() {
			c.Local = ic.Addresses[0].Addr()
		}
	}
	return c
}

// startBFD starts the engine and the configured sessions (control path),
// before the VRRP6 groups that track them start.
func (d *Daemon) startBFD(ctx context.Context) error {
	if d.cfg.BFD == nil || len(d.cfg.BFD.Sessions) == 0 {
		return nil
	}
	if err := d.openBFD(d.cfg.BFD); err != nil {
		return err
	}
	for i := range d.cfg.BFD.Sessions {
		if err := d.addBFDSession(ctx, &d.cfg.BFD.Sessions[i]); err != nil {
			return err
		}
	}
	return nil
}

func (d *Daemon) openBFD(c *config.BFD) error {
	prio := c.RealtimePriority
	if prio == 0 {
		prio = -1 // the configuration's 0 is SCHED_OTHER; the engine's is its default
	}
	// The engine's locked thread needs a free P of the Go scheduler each
	// time it wakes from epoll: with every P busy it waits for one (up to
	// a scheduler tick, 10 ms), which is a missed BFD packet at 3.3 ms.
	// One spare P keeps it from waiting (docs/bfd.md).
	if n, want := runtime.GOMAXPROCS(0), runtime.NumCPU()+1; n < want {
		runtime.GOMAXPROCS(want)
		d.log.Info("bfd: a spare scheduler slot for the engine thread", "gomaxprocs_was", n, "gomaxprocs", want)
	}
	m, err := d.sys.OpenBFD(bfd.EngineConfig{RealtimePriority: prio, Log: d.log.With("component", "bfd")})
	if err != nil {
		return fmt.Errorf("bfd engine: %w", err)
	}
	d.bfdMu.Lock()
	d.bfd = m
	d.bfdMu.Unlock()
	d.bfdWatch = map[string]*bfdWatch{}
	return nil
}

// bfdView returns the engine for display (nil: no BFD).
func (d *Daemon) bfdView() BFDManager {
	d.bfdMu.RLock()
	defer d.bfdMu.RUnlock()
	return d.bfd
}

// addBFDSession adds a session and follows its changes into the VRRP6
// groups that track it (control path).
func (d *Daemon) addBFDSession(ctx context.Context, s *config.BFDSession) error {
	if err := d.bfd.Add(bfdConfig(d.cfg, s)); err != nil {
		return onIface(s.Interface, fmt.Errorf("bfd session %s: %w", s.Name, err))
	}
	ch, stop, err := d.bfd.Watch(s.Name)
	if err != nil {
		_ = d.bfd.Remove(s.Name)
		return fmt.Errorf("bfd session %s: %w", s.Name, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	w := &bfdWatch{cancel: cancel, done: make(chan struct{})}
	d.bfdWatch[s.Name] = w
	d.group.Go(func() error {
		defer close(w.done)
		defer stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case c, ok := <-ch:
				if !ok {
					return nil
				}
				d.onBFD(c)
			}
		}
	})
	return nil
}

// removeBFDSession stops following a session and removes it (the peer is
// told AdminDown, which is no failure).
func (d *Daemon) removeBFDSession(name string) error {
	if w := d.bfdWatch[name]; w != nil {
		w.cancel()
		<-w.done
		delete(d.bfdWatch, name)
	}
	return d.bfd.Remove(name)
}

// onBFD hands a session's change to every VRRP6 group tracking it (looked
// up at each change, so reloads need not resubscribe). It runs on the
// session's watch goroutine, never on the engine's thread.
func (d *Daemon) onBFD(c bfd.StateChange) {
	ev := vrrp6.BFDEvent{Session: c.Name, Interface: c.Interface, Down: c.Failed, Silent: c.Silent(), LastRx: c.LastRx}
	var groups []*vrrpGroup
	d.mu.RLock()
	for _, ifc := range d.ifaces {
		for _, g := range ifc.vrrp {
			if slices.ContainsFunc(g.cfg.TrackBFD, func(t config.TrackBFD) bool { return t.Session == c.Name }) {
				groups = append(groups, g)
			}
		}
	}
	d.mu.RUnlock()
	d.log.Info("bfd session state", "session", c.Name, "interface", c.Interface, "from", c.From.String(), "to", c.To.String(),
		"diag", c.Diag.String(), "failed", c.Failed, "groups", len(groups))
	for _, g := range groups {
		if err := g.router.HandleBFD(ev); err != nil {
			d.log.Warn("vrrp6 track bfd", "session", c.Name, "interface", g.ifc.name, "vrid", g.vrid, "err", err)
		}
	}
}

// stopBFD closes the engine: every session sends AdminDown (shutdown, or
// a failed start).
func (d *Daemon) stopBFD() {
	if d.bfd == nil {
		return
	}
	for name, w := range d.bfdWatch {
		w.cancel()
		<-w.done
		delete(d.bfdWatch, name)
	}
	if err := d.bfd.Close(); err != nil {
		d.log.Warn("bfd engine close", "err", err)
	}
	d.bfdMu.Lock()
	d.bfd = nil
	d.bfdMu.Unlock()
}

// reloadBFD applies the bfd section's changes (control path): sessions
// added, removed, or changed in place. The engine starts with the first
// session and stays until shutdown.
func (d *Daemon) reloadBFD(ctx context.Context, next *config.Config, bc config.BFDChange) []error {
	var errs []error
	for _, c := range bc.Sessions {
		switch c.Op {
		case config.Removed:
			if d.bfd != nil {
				if err := d.removeBFDSession(c.Name); err != nil {
					errs = append(errs, fmt.Errorf("bfd session %s: remove: %w", c.Name, err))
				}
			}
		case config.Modified:
			if d.bfdWatch[c.Name] != nil {
				if err := d.bfd.Reconfigure(bfdConfig(next, next.BFDSession(c.Name))); err != nil {
					errs = append(errs, fmt.Errorf("bfd session %s: %w", c.Name, err))
				}
				continue
			}
			// Not running (its start failed): start it as an added one.
			fallthrough
		case config.Added:
			if d.bfd == nil {
				if err := d.openBFD(next.BFD); err != nil {
					errs = append(errs, err)
					continue
				}
			}
			if err := d.addBFDSession(ctx, next.BFDSession(c.Name)); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errs
}

// bfdSessions answers PathBFD (?name= one session).
func (d *Daemon) bfdSessions(r *http.Request) (any, error) {
	out := []api.BFDSession{}
	m := d.bfdView()
	if m == nil {
		return out, nil
	}
	name := r.URL.Query().Get("name")
	eng := m.Stats().Engine
	tracked := d.bfdTrackers()
	now := time.Now()
	for _, st := range m.Sessions() {
		if name != "" && st.Name != name {
			continue
		}
		v := api.BFDSession{
			Name: st.Name, Interface: st.Interface, LocalAddress: "--", PeerAddress: st.Peer.String(),
			State: st.State.String(), RemoteState: st.RemoteState.String(),
			LocalDiscr: st.LocalDiscr, RemoteDiscr: st.RemoteDiscr,
			LocalDiag: st.LocalDiag.String(), RemoteDiag: st.RemoteDiag.String(),
			DetectMult: st.DetectMult, RemoteDetectMult: st.RemoteDetectMult,
			DesiredMinTx: secs(st.DesiredMinTx), RequiredMinRx: secs(st.RequiredMinRx),
			RemoteMinTx: secs(st.RemoteDesiredMinTx), RemoteMinRx: secs(st.RemoteRequiredMinRx),
			TxInterval: secs(st.TxInterval), DetectTime: secs(st.DetectTime),
			Passive: st.Passive, Failed: st.Failed, LastChange: st.LastChange,
			TrackedBy: append([]string{}, tracked[st.Name]...),
			Counters: map[string]uint64{
				"received": st.Stats.Received, "sent": st.Stats.Sent, "send_errors": st.Stats.SendErrors,
				"polls_received": st.Stats.PollsReceived, "finals_sent": st.Stats.FinalsSent,
				"poll_sequences": st.Stats.PollSequences, "polls_completed": st.Stats.PollsCompleted,
				"up": st.Stats.UpCount, "down": st.Stats.DownCount, "detect_expired": st.Stats.DetectExpired,
			},
			Drops:        map[string]uint64{},
			EnginePolicy: eng.Policy, EngineMaxLateness: secs(eng.MaxLateness),
		}
		if st.Local.IsValid() {
			v.LocalAddress = st.Local.String()
		}
		if !st.UpSince.IsZero() {
			up := st.UpSince
			v.UpSince = &up
			v.UptimeSeconds = now.Sub(up).Seconds()
		}
		for reason, n := range st.Stats.Drops {
			if n != 0 {
				v.Drops[bfd.DropReason(reason).String()] = n
			}
		}
		out = append(out, v)
	}
	return out, nil
}

// bfdTrackers lists, by session, who tracks it (a snapshot).
func (d *Daemon) bfdTrackers() map[string][]string {
	out := map[string][]string{}
	d.mu.RLock()
	defer d.mu.RUnlock()
	for _, ifc := range d.ifaces {
		for _, g := range ifc.vrrp {
			for _, t := range g.cfg.TrackBFD {
				out[t.Session] = append(out[t.Session], fmt.Sprintf("vrrp6 %s vrid %d (%s)", ifc.name, g.vrid, t.Mode))
			}
		}
	}
	for _, s := range d.services {
		if s.cfg.TrackBFD != "" {
			out[s.cfg.TrackBFD] = append(out[s.cfg.TrackBFD], "remote-backup-service "+s.cfg.Name)
		}
	}
	for k := range out {
		slices.Sort(out[k])
	}
	return out
}
