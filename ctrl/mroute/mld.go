package mroute

import (
	"net/netip"

	"github.com/hotcast/hotcast/ctrl/mld"
)

// MLDChanges turns one run of an interface's MLD updates into table
// changes (for SetMemberships), leaving out the groups skip says are not
// routed (link scope).
func MLDChanges(us []mld.Update, skip func(group netip.Addr) bool) []Change {
	cs := make([]Change, 0, len(us))
	ms := make([]Membership, len(us)) // one allocation for the batch
	for i, u := range us {
		if skip != nil && skip(u.Group) {
			continue
		}
		c := Change{Group: u.Group}
		if !u.Deleted {
			star, inc, exc := u.State.Forwarding()
			ms[i] = Membership{Star: star, Include: inc, Exclude: exc, Synced: u.State.Synced}
			c.M = &ms[i]
		}
		cs = append(cs, c)
	}
	return cs
}
