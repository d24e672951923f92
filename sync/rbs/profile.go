package rbs

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// ProfileConfig is one remote-backup-profile bound to the service.
type ProfileConfig struct {
	// Name is the profile name ("profile1").
	Name string
	// BackupID must match the peer's profile ("backup-id 10").
	BackupID uint32
	// Services is the set of service types ("service-type mld"); 0 means
	// ServiceMLD.
	Services ServiceMask
}

// Source gives the sender a consistent snapshot of a profile's entries.
// It is called with the service lock held and must not call back into the
// Service or Profile. The slice it returns is the sender's until the batch
// is sent (it is encoded as the connection takes it, after Snapshot has
// returned): neither it nor its entries' Sources may be modified.
type Source interface {
	Snapshot(backupID uint32) []MLDEntry
}

// Locking: Source and Sink run under the service lock. Publish never takes
// it, so it may be called while holding a lock that Source or Sink take;
// SetRole, AddProfile and the Status methods do take it and must not be
// called while holding such a lock.

// Sink applies replicated entries on the receiving side. ReplaceAll must
// replace the whole set atomically from the sink's readers' point of view
// (entries absent from the slice are removed). Upsert and Delete must be
// idempotent (deleting an absent group is not an error). Methods are called
// with the service lock held and must not call back into the Service or
// Profile.
type Sink interface {
	ReplaceAll(backupID uint32, entries []MLDEntry) error
	Upsert(backupID uint32, e MLDEntry) error
	Delete(backupID uint32, group netip.Addr) error
}

// SyncState is the replication state of a profile.
type SyncState uint8

// Replication states.
const (
	SyncDown           SyncState = iota // session not connected
	SyncMismatch                        // peer lacks the backup-id or service
	SyncIdle                            // connected, nothing to replicate (no master)
	SyncDualMaster                      // both sides claim master
	SyncSending                         // sender, batch or deltas not yet acked
	SyncSenderInSync                    // sender, everything acknowledged
	SyncWaitingBatch                    // receiver, waiting for a batch
	SyncReceivingBatch                  // receiver, batch in progress
	SyncResyncPending                   // receiver, asked for a resync
	SyncReceiverInSync                  // receiver, batch applied, applying deltas
)

func (s SyncState) String() string {
	switch s {
	case SyncDown:
		return "down"
	case SyncMismatch:
		return "mismatch"
	case SyncIdle:
		return "idle"
	case SyncDualMaster:
		return "dual-master"
	case SyncSending:
		return "sending"
	case SyncSenderInSync:
		return "in-sync"
	case SyncWaitingBatch:
		return "waiting-batch"
	case SyncReceivingBatch:
		return "receiving-batch"
	case SyncResyncPending:
		return "resync-pending"
	case SyncReceiverInSync:
		return "in-sync"
	}
	return fmt.Sprintf("sync(%d)", uint8(s))
}

// ProfileStatus is the display state of a profile
// ("display remote-backup-profile").
type ProfileStatus struct {
	Name     string
	BackupID uint32
	Services ServiceMask
	// State is the local role (VRRP6-driven), PeerState the peer's.
	State     Role
	PeerState Role
	Sync      SyncState
	// Mismatch explains why the profile did not come up.
	Mismatch string

	Published       uint64
	EntriesSent     uint64
	EntriesReceived uint64
	BatchesSent     uint64
	BatchesReceived uint64
	// ResyncsRequested counts ResyncRequests sent (receiver);
	// ResyncsServed counts the ones that triggered a batch (sender).
	ResyncsRequested uint64
	ResyncsServed    uint64
	WindowOverflows  uint64
	ApplyErrors      uint64
	Ignored          uint64

	Epoch uint64
	// LastSeq is the last sequence sent (sender) or applied (receiver).
	LastSeq  uint64
	AckedSeq uint64
	Unacked  int
	// SyncLag is the last measured time from Publish (or from sending a
	// batch) to its acknowledgement.
	SyncLag time.Duration
}

type rxPhase uint8

const (
	rxWaitBatch rxPhase = iota
	rxInBatch
	rxResyncPending
	rxSynced
)

// Profile replicates the MLD entries of one remote-backup-profile.
// All fields are guarded by the service lock.
type Profile struct {
	s    *Service
	cfg  ProfileConfig
	src  Source
	sink Sink

	pubMu        sync.Mutex
	pending      []pubItem
	pendOverflow bool

	role     Role
	master   atomic.Bool // role == RoleMaster, read without s.mu by Publish
	removed  bool        // RemoveProfile unbound it
	up       bool
	peerRole Role
	mismatch string
	st       ProfileStatus

	tx struct {
		active    bool
		epoch     uint64
		next      uint64 // next sequence number to send
		batchSeq  uint64 // last sequence of the current batch
		acked     uint64
		batchSent time.Time
		base      uint64      // sequence of times[0]
		times     []time.Time // publish times of unacked deltas
	}
	rx struct {
		phase      rxPhase
		epoch      uint64
		count      uint32
		expect     uint64
		buf        []MLDEntry
		applied    uint64
		pendingAck int
		ackArmed   bool
	}
}

// AddProfile binds a profile to the service. src is used while the local
// role is master, sink while it is not. Adding a backup-id twice returns the
// existing profile.
func (s *Service) AddProfile(cfg ProfileConfig, src Source, sink Sink) *Profile {
	if cfg.Services == 0 {
		cfg.Services = ServiceMLD
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.byID[cfg.BackupID]; p != nil {
		return p
	}
	p := &Profile{s: s, cfg: cfg, src: src, sink: sink}
	s.profiles = append(s.profiles, p)
	s.byID[cfg.BackupID] = p
	if s.cur != nil {
		s.cur.send(&ProfileState{p.info()})
		if s.cur.established {
			pi, ok := s.peerProfiles[cfg.BackupID]
			p.sessionUp(pi, ok)
		}
	}
	return p
}

// RemoveProfile unbinds the profile with the given backup-id from the
// service (a configuration reload removed it) and withdraws it from the
// peer: a ProfileState with no service type, on which the peer's profile
// goes down as if the backup-id were not configured here (its receiver
// keeps its entries). The profile's Source and Sink are not called after
// RemoveProfile returns, and Publish and SetRole on it do nothing. It
// reports whether a profile with that backup-id was bound.
func (s *Service) RemoveProfile(backupID uint32) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.byID[backupID]
	if p == nil {
		return false
	}
	delete(s.byID, backupID)
	s.profiles = slices.DeleteFunc(s.profiles, func(x *Profile) bool { return x == p })
	p.removed, p.up = true, false
	p.master.Store(false)
	p.stopSending()
	p.resetRx()
	p.pubMu.Lock()
	p.pending, p.pendOverflow = nil, false
	p.pubMu.Unlock()
	if s.cur != nil {
		s.cur.send(&ProfileState{ProfileInfo{BackupID: backupID}})
	}
	s.log.Info("profile removed", p.logAttrs()...)
	return true
}

// withdrawn handles the peer's removal of the profile (a ProfileState
// with no service type): it goes down as if the peer lacked the
// backup-id; a receiver keeps its entries. s.mu held.
func (p *Profile) withdrawn() {
	p.stopSending()
	p.resetRx()
	p.peerRole = RoleUnknown
	p.sessionUp(ProfileInfo{}, false)
}

// Profile returns the profile with the given backup-id, or nil.
func (s *Service) Profile(backupID uint32) *Profile {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byID[backupID]
}

func (p *Profile) info() ProfileInfo {
	return ProfileInfo{BackupID: p.cfg.BackupID, Role: p.role, Services: p.cfg.Services}
}

func (p *Profile) logAttrs() []any {
	return []any{"profile", p.cfg.Name, "backup_id", p.cfg.BackupID}
}

// Master reports whether the local role is master (the sender). It does
// not take the service lock.
func (p *Profile) Master() bool { return p.master.Load() }

// SetRole sets the local role, as driven by the tracked VRRP6 group.
func (p *Profile) SetRole(r Role) {
	s := p.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if r == p.role || r > RoleBackup || p.removed {
		return
	}
	old := p.role
	p.role = r
	p.master.Store(r == RoleMaster)
	s.log.Info("profile role change", append(p.logAttrs(), "from", old, "to", r)...)
	if s.cur != nil {
		// Sent even before the Hello exchange completes: our Hello may
		// already carry the old role.
		s.cur.send(&ProfileState{p.info()})
	}
	if s.pending != nil {
		// A candidate connection's Hello went out with the old role too:
		// when it replaces the current one, the peer must not be left
		// with that.
		s.pending.send(&ProfileState{p.info()})
	}
	if r == RoleMaster {
		p.resetRx()
		p.maybeStartSending("became master")
		return
	}
	if old == RoleMaster {
		p.stopSending()
		p.resetRx()
	}
}

// Publish replicates one change of the profile's entries. Call it after the
// change is visible in the Source snapshot. It never blocks on the service
// lock (so it may be called while holding a lock that Source or Sink take):
// changes are queued and sent in order by Run. It is a no-op unless this
// side is the sender when the change is dequeued; it returns an error only
// for an invalid entry. If more than Config.MaxUnacked changes are queued,
// the excess is dropped and replaced by a full batch.
func (p *Profile) Publish(op Op, e MLDEntry) error {
	if op != OpUpsert && op != OpDelete {
		return fmt.Errorf("rbs: publish: %w: %s", ErrInvalidField, op)
	}
	if err := e.validate(); err != nil {
		return fmt.Errorf("rbs: publish: %w", err)
	}
	if !p.master.Load() {
		// Not the sender: a later SetRole(RoleMaster) sends a batch
		// snapshot, which already holds this change.
		return nil
	}
	s := p.s
	now := s.cfg.Clock.Now()
	p.pubMu.Lock()
	if len(p.pending) >= s.cfg.MaxUnacked {
		p.pendOverflow = true
	} else {
		p.pending = append(p.pending, pubItem{op: op, e: e.Clone(), at: now})
	}
	p.pubMu.Unlock()
	// Sent from here when the service lock is free, else by the pump: a
	// hand-off to the pump goroutine (and from it to the writer) is a
	// wake-up of another thread per delta, which on a 2-vCPU VM costs
	// 50-100 µs at the median and milliseconds at the tail.
	if s.mu.TryLock() {
		done := p.drainDeltas()
		s.mu.Unlock()
		if done {
			return nil
		}
	}
	select {
	case s.kick <- struct{}{}:
	default:
	}
	return nil
}

// drainDeltas sends the queued changes that are plain deltas, in order,
// and reports whether it sent them all. It leaves the queue to the pump
// when it is left with one that calls for a batch (a full window, an
// overflowed queue): a batch takes a Snapshot, and Publish may be called
// with a lock the Source takes. s.mu held.
func (p *Profile) drainDeltas() bool {
	p.pubMu.Lock()
	defer p.pubMu.Unlock()
	if p.pendOverflow {
		return false
	}
	for len(p.pending) > 0 {
		if p.removed || p.tx.active && p.tx.next-1-max(p.tx.acked, p.tx.batchSeq)+1 > uint64(p.s.cfg.MaxUnacked) {
			return false
		}
		it := p.pending[0]
		p.pending[0] = pubItem{}
		p.pending = p.pending[1:]
		p.publishLocked(it)
	}
	p.pending = nil
	return true
}

type pubItem struct {
	op Op
	e  MLDEntry
	at time.Time
}

// drainPublished sends the queued changes; s.mu held.
func (p *Profile) drainPublished() {
	p.pubMu.Lock()
	items, overflow := p.pending, p.pendOverflow
	p.pending, p.pendOverflow = nil, false
	p.pubMu.Unlock()
	for _, it := range items {
		p.publishLocked(it)
	}
	if overflow {
		p.st.Published++
		if p.tx.active {
			p.st.WindowOverflows++
			p.startBatch("publish queue overflow")
		}
	}
}

func (p *Profile) publishLocked(it pubItem) {
	s := p.s
	p.st.Published++
	if !p.tx.active {
		return
	}
	unacked := p.tx.next - 1 - max(p.tx.acked, p.tx.batchSeq)
	if unacked+1 > uint64(s.cfg.MaxUnacked) {
		p.st.WindowOverflows++
		s.log.Warn("unacked window overflow, full resync", append(p.logAttrs(), "unacked", unacked)...)
		p.startBatch("window overflow")
		return
	}
	seq := p.tx.next
	p.tx.next++
	p.tx.times = append(p.tx.times, it.at)
	p.st.EntriesSent++
	s.sendLocked(&Entry{BackupID: p.cfg.BackupID, Seq: seq, Op: it.op, MLD: it.e})
}

// Status returns the profile's display state.
func (p *Profile) Status() ProfileStatus {
	s := p.s
	s.mu.Lock()
	defer s.mu.Unlock()
	st := p.st
	st.Name, st.BackupID, st.Services = p.cfg.Name, p.cfg.BackupID, p.cfg.Services
	st.State, st.PeerState, st.Mismatch = p.role, p.peerRole, p.mismatch
	st.Sync = p.syncState()
	if p.tx.active {
		st.Epoch, st.LastSeq, st.AckedSeq = p.tx.epoch, p.tx.next-1, p.tx.acked
		st.Unacked = len(p.tx.times)
		if p.tx.acked < p.tx.batchSeq {
			st.Unacked += int(p.tx.batchSeq - p.tx.acked)
		}
	} else if p.role != RoleMaster {
		st.Epoch, st.LastSeq = p.rx.epoch, p.rx.applied
	}
	return st
}

func (p *Profile) syncState() SyncState {
	switch {
	case !p.s.connectedLocked():
		return SyncDown
	case p.mismatch != "" || !p.up:
		return SyncMismatch
	case p.role == RoleMaster && p.peerRole == RoleMaster:
		return SyncDualMaster
	case p.tx.active:
		if p.tx.acked == p.tx.next-1 {
			return SyncSenderInSync
		}
		return SyncSending
	case p.role != RoleMaster && p.peerRole == RoleMaster:
		switch p.rx.phase {
		case rxInBatch:
			return SyncReceivingBatch
		case rxResyncPending:
			return SyncResyncPending
		case rxSynced:
			return SyncReceiverInSync
		}
		return SyncWaitingBatch
	}
	return SyncIdle
}

func (s *Service) connectedLocked() bool { return s.cur != nil && s.cur.established }

// sessionUp evaluates the peer's announcement of this profile.
func (p *Profile) sessionUp(pi ProfileInfo, present bool) {
	switch {
	case !present:
		p.mismatch = fmt.Sprintf("backup-id %d is not configured on the peer", p.cfg.BackupID)
	case pi.Services != p.cfg.Services:
		p.mismatch = fmt.Sprintf("backup-id %d: service types differ (local %s, peer %s)", p.cfg.BackupID, p.cfg.Services, pi.Services)
	default:
		p.mismatch = ""
	}
	if p.mismatch != "" {
		p.up = false
		p.s.log.Warn("profile not up", append(p.logAttrs(), "reason", p.mismatch)...)
		return
	}
	p.up = true
	p.peerRole = pi.Role
	p.resetRx()
	p.maybeStartSending("session up")
}

func (p *Profile) sessionDown() {
	p.up = false
	p.stopSending()
	p.resetRx()
}

// peerState handles a ProfileState from the peer.
func (p *Profile) peerState(pi ProfileInfo) {
	if !p.up {
		p.sessionUp(pi, true)
		return
	}
	if pi.Services != p.cfg.Services {
		p.stopSending()
		p.resetRx()
		p.sessionUp(pi, true)
		return
	}
	old := p.peerRole
	p.peerRole = pi.Role
	if old == pi.Role {
		return
	}
	p.s.log.Info("peer role change", append(p.logAttrs(), "from", old, "to", pi.Role)...)
	if pi.Role == RoleMaster {
		p.stopSending()
		return
	}
	if !p.tx.active {
		p.maybeStartSending("peer left master")
	}
}

func (p *Profile) maybeStartSending(why string) {
	if p.up && p.role == RoleMaster && p.peerRole != RoleMaster && p.s.connectedLocked() {
		p.startBatch(why)
	}
}

func (p *Profile) stopSending() {
	p.tx.active = false
	p.tx.times = nil
}

func (p *Profile) resetRx() {
	p.rx.phase = rxWaitBatch
	p.rx.buf = nil
	p.rx.pendingAck = 0
}

// startBatch sends a full snapshot under a new epoch.
func (p *Profile) startBatch(why string) {
	s := p.s
	// The snapshot covers every change published so far: drop the queue
	// first (changes published after this point are sent as deltas).
	p.pubMu.Lock()
	p.st.Published += uint64(len(p.pending))
	p.pending, p.pendOverflow = nil, false
	p.pubMu.Unlock()
	var entries []MLDEntry
	if p.src != nil {
		entries = validEntries(p.src.Snapshot(p.cfg.BackupID), func(err error) {
			s.stats.Errors["invalid-entry"]++
			s.log.Warn("skipping invalid entry", append(p.logAttrs(), "err", err)...)
		})
	}
	p.tx.epoch++
	id, epoch, n := p.cfg.BackupID, p.tx.epoch, uint64(len(entries))
	s.sendLocked(&BatchBegin{BackupID: id, Epoch: epoch, Count: uint32(n)})
	s.sendEntriesLocked(id, entries)
	s.sendLocked(&BatchEnd{BackupID: id, Epoch: epoch, Seq: n})
	p.tx.active = true
	p.tx.next = n + 1
	p.tx.batchSeq = n
	p.tx.acked = 0
	p.tx.base = n + 1
	p.tx.times = nil
	p.tx.batchSent = s.cfg.Clock.Now()
	p.st.BatchesSent++
	p.st.EntriesSent += n
	s.log.Info("batch sent", append(p.logAttrs(), "why", why, "epoch", epoch, "entries", n)...)
}

// validEntries is es without its invalid entries (each reported to bad):
// es itself when all are valid, as they are from a Source that holds
// what it validated on the way in.
func validEntries(es []MLDEntry, bad func(error)) []MLDEntry {
	for i := range es {
		if err := es[i].validate(); err != nil {
			bad(err)
			out := slices.Clone(es[:i])
			for k := i + 1; k < len(es); k++ {
				if err := es[k].validate(); err != nil {
					bad(err)
					continue
				}
				out = append(out, es[k])
			}
			return out
		}
	}
	return es
}

// handle processes a replication message for this profile; s.mu held.
func (p *Profile) handle(m Message) {
	switch m := m.(type) {
	case *Ack:
		p.onAck(m)
	case *ResyncRequest:
		if p.tx.active && (m.Epoch == 0 || m.Epoch == p.tx.epoch) {
			p.st.ResyncsServed++
			p.startBatch("resync requested: " + m.Reason.String())
		}
	default:
		if p.role == RoleMaster {
			p.st.Ignored++
			return
		}
		switch m := m.(type) {
		case *BatchBegin:
			p.onBatchBegin(m)
		case *Entry:
			p.onEntry(m)
		case *BatchEnd:
			p.onBatchEnd(m)
		}
	}
}

func (p *Profile) onAck(m *Ack) {
	s := p.s
	if m.Seq == p.tx.acked && m.Epoch == p.tx.epoch {
		return // duplicate (or the ack of an empty batch)
	}
	if !p.tx.active || m.Epoch != p.tx.epoch || m.Seq < p.tx.acked {
		p.st.Ignored++
		return
	}
	if m.Seq >= p.tx.next {
		s.stats.Errors["ack-beyond-sent"]++
		return
	}
	now := s.cfg.Clock.Now()
	p.tx.acked = m.Seq
	if m.Seq >= p.tx.base {
		i := m.Seq - p.tx.base
		p.st.SyncLag = now.Sub(p.tx.times[i])
		p.tx.times = p.tx.times[i+1:]
		p.tx.base = m.Seq + 1
	} else {
		p.st.SyncLag = now.Sub(p.tx.batchSent)
	}
}

func (p *Profile) requestResync(epoch uint64, why ResyncReason) {
	p.s.log.Warn("requesting resync", append(p.logAttrs(), "reason", why, "epoch", epoch)...)
	p.st.ResyncsRequested++
	p.rx.phase = rxResyncPending
	p.rx.buf = nil
	p.rx.pendingAck = 0
	p.s.sendLocked(&ResyncRequest{BackupID: p.cfg.BackupID, Epoch: epoch, Reason: why})
}

func (p *Profile) onBatchBegin(m *BatchBegin) {
	if int64(m.Count) > int64(p.s.cfg.MaxBatchEntries) {
		p.s.protocolError(p.s.cur, fmt.Sprintf("backup-id %d: batch of %d entries exceeds %d", p.cfg.BackupID, m.Count, p.s.cfg.MaxBatchEntries))
		return
	}
	p.rx.phase = rxInBatch
	p.rx.epoch = m.Epoch
	p.rx.count = m.Count
	p.rx.expect = 1
	// Room for the announced count, up to 131 072 entries (11 MiB); beyond,
	// the buffer doubles as entries come (the count is the peer's word).
	p.rx.buf = make([]MLDEntry, 0, min(int(m.Count), 1<<17))
	p.rx.pendingAck = 0
	if f := p.s.cfg.BatchBegin; f != nil {
		f(p.cfg.BackupID, int(m.Count))
	}
}

func (p *Profile) onEntry(m *Entry) {
	switch p.rx.phase {
	case rxWaitBatch:
		p.requestResync(0, ResyncOutsideBatch)
	case rxResyncPending:
		p.st.Ignored++
	case rxInBatch:
		switch {
		case m.Seq != p.rx.expect:
			p.requestResync(p.rx.epoch, ResyncGap)
		case m.Op != OpUpsert || uint64(len(p.rx.buf)) >= uint64(p.rx.count):
			p.requestResync(p.rx.epoch, ResyncBadBatch)
		default:
			if len(p.rx.buf) == cap(p.rx.buf) {
				// Doubling up to the announced count: append's 1.25x
				// growth copies a 100 000-entry batch about five times.
				p.rx.buf = slices.Grow(p.rx.buf, min(cap(p.rx.buf), int(p.rx.count)-len(p.rx.buf)))
			}
			p.rx.buf = append(p.rx.buf, m.MLD)
			p.rx.expect++
			p.st.EntriesReceived++
		}
	case rxSynced:
		if m.Seq != p.rx.expect {
			p.requestResync(p.rx.epoch, ResyncGap)
			return
		}
		var err error
		if p.sink != nil {
			if m.Op == OpDelete {
				err = p.sink.Delete(p.cfg.BackupID, m.MLD.Group)
			} else {
				err = p.sink.Upsert(p.cfg.BackupID, m.MLD)
			}
		}
		if err != nil {
			p.st.ApplyErrors++
			p.s.log.Warn("apply failed", append(p.logAttrs(), "op", m.Op, "group", m.MLD.Group, "err", err)...)
			p.requestResync(p.rx.epoch, ResyncApplyError)
			return
		}
		p.rx.expect++
		p.rx.applied = m.Seq
		p.st.EntriesReceived++
		p.rx.pendingAck++
		if p.rx.pendingAck >= p.s.cfg.AckEvery {
			p.sendAck()
		} else if !p.rx.ackArmed {
			p.rx.ackArmed = true
			s := p.s
			s.cfg.Clock.AfterFunc(s.cfg.AckInterval, func() {
				s.mu.Lock()
				defer s.mu.Unlock()
				p.rx.ackArmed = false
				if p.up && p.rx.phase == rxSynced && p.rx.pendingAck > 0 {
					p.sendAck()
				}
			})
		}
	}
}

func (p *Profile) sendAck() {
	p.rx.pendingAck = 0
	p.s.sendLocked(&Ack{BackupID: p.cfg.BackupID, Epoch: p.rx.epoch, Seq: p.rx.applied})
}

func (p *Profile) onBatchEnd(m *BatchEnd) {
	switch p.rx.phase {
	case rxResyncPending:
		p.st.Ignored++
		return
	case rxInBatch:
	default:
		p.requestResync(0, ResyncBadBatch)
		return
	}
	if m.Epoch != p.rx.epoch || m.Seq != p.rx.expect-1 || m.Seq != uint64(p.rx.count) {
		p.requestResync(p.rx.epoch, ResyncBadBatch)
		return
	}
	entries := lastWins(p.rx.buf)
	p.rx.buf = nil
	if p.sink != nil {
		if err := p.sink.ReplaceAll(p.cfg.BackupID, entries); err != nil {
			p.st.ApplyErrors++
			p.s.log.Warn("batch apply failed", append(p.logAttrs(), "err", err)...)
			p.requestResync(p.rx.epoch, ResyncApplyError)
			return
		}
	}
	p.rx.phase = rxSynced
	p.rx.applied = m.Seq
	p.st.BatchesReceived++
	p.s.log.Info("batch applied", append(p.logAttrs(), "epoch", m.Epoch, "entries", len(entries))...)
	p.sendAck()
}

// lastWins is es with one entry per group, the last one (a sender's
// snapshot has one already: es itself then, when sorted by group as a
// Binding's is, without building a set of the groups).
func lastWins(es []MLDEntry) []MLDEntry {
	increasing := true
	for i := 1; i < len(es) && increasing; i++ {
		increasing = es[i-1].Group.Less(es[i].Group)
	}
	if increasing {
		return es
	}
	idx := make(map[netip.Addr]int, len(es))
	entries := make([]MLDEntry, 0, len(es))
	for _, e := range es {
		if i, ok := idx[e.Group]; ok {
			entries[i] = e
			continue
		}
		idx[e.Group] = len(entries)
		entries = append(entries, e)
	}
	return entries
}
