package daemon

import (
	"log/slog"
	"net/netip"

	"github.com/hotcast/hotcast/ctrl/mld"
	"github.com/hotcast/hotcast/ctrl/mroute"
	"github.com/hotcast/hotcast/internal/inet"
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
	if p := d.pimRunning(); p != nil {
		p.setMembership(ifc.index, cs)
	}
	d.refreshProxy(groups...)
	d.mu.RLock()
	b := ifc.backup
	d.mu.RUnlock()
	if b != nil {
		b.binding.Publish(us) // on the profile's master side only
	}
}
