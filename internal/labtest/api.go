package labtest

import (
	"net/netip"
	"time"

	"github.com/hotcast/hotcast/daemon/api"
)

// The tests read the daemon's answers (hotcastctl --json, or the API
// socket) into the api package's types: a field renamed there fails to
// compile here instead of reading as zero.

// FindRoute returns the route (source, g) of ft, source "*" meaning
// (*, G) as the API writes it, or nil.
func FindRoute(ft api.ForwardingTable, source string, g netip.Addr) *api.Route {
	for i := range ft.Routes {
		if ft.Routes[i].Source == source && ft.Routes[i].Group == g.String() {
			return &ft.Routes[i]
		}
	}
	return nil
}

// LastTransitionTo returns the time of v's last transition to state.
func LastTransitionTo(v api.VRRP6, state string) (time.Time, bool) {
	for i := len(v.Transitions) - 1; i >= 0; i-- {
		if v.Transitions[i].To == state {
			return v.Transitions[i].Time, true
		}
	}
	return time.Time{}, false
}

// MasterDownInterval is the Master_Down_Interval v reports (RFC 9568
// §6.1; the API gives seconds).
func MasterDownInterval(v api.VRRP6) time.Duration {
	return time.Duration(v.MasterDownInterval * float64(time.Second))
}
