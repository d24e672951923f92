package daemon

import (
	"log/slog"
	"net/netip"
	"time"

	"github.com/hotcast/hotcast/ctrl/mld"
	"github.com/hotcast/hotcast/ctrl/mroute"
	"github.com/hotcast/hotcast/internal/inet"
	"github.com/hotcast/hotcast/sync/mldbackup"
	"github.com/hotcast/hotcast/sync/rbs"
)

// applyMLD takes one run of an interface's MLD changes (one report, one
// expiry, or a whole RBS batch import) to the route table in one dataplane
// update, to the upstream proxy in one membership change, and, on the
// master side of a hot-backup profile, to the peer.
func (d *Daemon) applyMLD(ifc *iface, us []mld.Update, log *slog.Logger) {
	cs := mroute.MLDChanges(us, inet.LinkScope) // link scope: never routed (RFC 4291 2.7)
	groups := make([]netip.Addr, len(cs))
	for i, c := range cs {
		groups[i] = c.Group
	}
	if len(cs) == 0 {
		return
	}
	if err := d.table.SetMemberships(ifc.index, cs); err != nil {
		log.Error("apply memberships", "changes", len(cs), "err", err)
	}
	d.refreshProxy(groups...)
	d.mu.RLock()
	b := ifc.backup
	d.mu.RUnlock()
	if b != nil && b.profile.Master() {
		now := time.Now()
		for _, u := range us {
			if inet.LinkScope(u.Group) {
				continue
			}
			if u.Deleted {
				b.publishDelete(u.Group)
			} else {
				b.publish(u.State, now)
			}
		}
	}
}

func (b *backup) publish(gs mld.GroupState, now time.Time) {
	if err := b.profile.Publish(rbs.OpUpsert, mldbackup.ToEntry(gs, now)); err != nil {
		b.ifc.log().Warn("rbs publish", "group", gs.Group, "err", err)
	}
}

func (b *backup) publishDelete(g netip.Addr) {
	if err := b.profile.Publish(rbs.OpDelete, rbs.MLDEntry{Group: g, FilterMode: rbs.FilterInclude, Compat: 2}); err != nil {
		b.ifc.log().Warn("rbs publish", "group", g, "err", err)
	}
}
