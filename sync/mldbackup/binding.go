package mldbackup

import (
	"errors"
	"log/slog"
	"net/netip"
	"time"

	"github.com/hotcast/hotcast/ctrl/mld"
	"github.com/hotcast/hotcast/internal/inet"
	"github.com/hotcast/hotcast/sync/rbs"
)

// Router is what a binding needs of an MLD router interface
// (*mld.Interface).
type Router interface {
	Groups() []mld.GroupState
	Import([]mld.GroupState) error
	Upsert(mld.GroupState) error
	Delete(netip.Addr) bool
	DisownAll()
}

// Profile is what a binding needs of a remote backup profile
// (*rbs.Profile).
type Profile interface {
	Publish(op rbs.Op, e rbs.MLDEntry) error
	SetRole(rbs.Role)
	Master() bool
}

// Binding ties one remote backup profile to the MLD router interface it
// backs up: on the master side the interface's changes are published to
// the peer (Publish) and its groups are the batch (Snapshot); on the backup
// side what the peer replicates is written into the interface's MLD state,
// marked synced (the Sink methods), whose changes reach the BPF maps
// through the route table like local ones. Link-scope groups are never
// replicated (they are never routed).
//
// Make it with Bind, hand it to rbs.Service.AddProfile as Source and Sink,
// then give it the profile with SetProfile.
type Binding struct {
	mld     Router
	profile Profile
	log     *slog.Logger
	now     func() time.Time
}

// Bind returns a binding for the MLD router r.
func Bind(r Router, log *slog.Logger) *Binding {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Binding{mld: r, log: log, now: time.Now}
}

// SetProfile gives the binding its profile, before the service runs it.
func (b *Binding) SetProfile(p Profile) { b.profile = p }

// SetRole follows the bound VRRP6 group: Master sends, Backup receives.
// Becoming Backup, the interface disowns what it learned itself: the peer
// is the authority now, and what it replicates replaces it, so both end
// with the same entries.
func (b *Binding) SetRole(master bool) {
	if master {
		b.profile.SetRole(rbs.RoleMaster)
		return
	}
	b.mld.DisownAll()
	b.profile.SetRole(rbs.RoleBackup)
}

// Publish sends one run of the interface's MLD changes to the peer, on
// the master side only (a backup's own changes stay local).
func (b *Binding) Publish(us []mld.Update) {
	if b.profile == nil || !b.profile.Master() {
		return
	}
	now := b.now()
	for _, u := range us {
		if inet.LinkScope(u.Group) {
			continue
		}
		var err error
		if u.Deleted {
			err = b.profile.Publish(rbs.OpDelete, rbs.MLDEntry{Group: u.Group, FilterMode: rbs.FilterInclude, Compat: 2})
		} else {
			err = b.profile.Publish(rbs.OpUpsert, ToEntry(u.State, now))
		}
		if err != nil {
			b.log.Warn("rbs publish", "group", u.Group, "err", err)
		}
	}
}

// Snapshot is the sender's batch (rbs.Source): every group of the
// interface, synced ones included (a new master replays what it took
// over).
func (b *Binding) Snapshot(uint32) []rbs.MLDEntry {
	now := b.now()
	gs := b.mld.Groups()
	out := make([]rbs.MLDEntry, 0, len(gs))
	for _, g := range gs {
		if !inet.LinkScope(g.Group) {
			out = append(out, ToEntry(g, now))
		}
	}
	return out
}

// ReplaceAll takes the peer's batch (rbs.Sink): the interface's synced
// groups become exactly these.
func (b *Binding) ReplaceAll(_ uint32, es []rbs.MLDEntry) error {
	now := b.now()
	if r, ok := b.mld.(interface {
		ImportFunc(int, func(int) mld.GroupState) error
	}); ok {
		// Converted one at a time: no second copy of a 100 000-entry batch.
		return r.ImportFunc(len(es), func(k int) mld.GroupState { return FromEntry(es[k], now) })
	}
	st := make([]mld.GroupState, 0, len(es))
	for _, e := range es {
		st = append(st, FromEntry(e, now))
	}
	return b.mld.Import(st)
}

// Upsert takes one real-time entry (rbs.Sink). An entry for a group this
// interface learned itself is not an error: the local state wins.
func (b *Binding) Upsert(_ uint32, e rbs.MLDEntry) error {
	if err := b.mld.Upsert(FromEntry(e, b.now())); err != nil && !errors.Is(err, mld.ErrLocalEntry) {
		return err
	}
	return nil
}

// Delete takes one real-time removal (rbs.Sink).
func (b *Binding) Delete(_ uint32, g netip.Addr) error {
	b.mld.Delete(g)
	return nil
}

var (
	_ rbs.Source = (*Binding)(nil)
	_ rbs.Sink   = (*Binding)(nil)
)
