package daemon

import (
	"github.com/hotcast/hotcast/ctrl/pim"
	"github.com/hotcast/hotcast/daemon/config"
)

// pimView is what the API and metrics handlers read of PIM: a snapshot of
// the running router's parts (each safe to call concurrently).
type pimView struct {
	Router *pim.Router
	Ifaces []pimIfaceView    // PIM interfaces, by name
	Names  map[int]string    // every configured interface's name by ifindex
	Data   pimDataStats      // the daemon's data-path hooks
	RPs    []config.StaticRP // the configured static RPs
	SPT    config.SPTSwitch  // the SPT switch policy
}

// pimIfaceView is one PIM interface.
type pimIfaceView struct {
	Name  string
	Index int
	Ifc   *pim.Interface
	Opt   pim.IfaceOptions
	Cfg   config.InterfacePIM
}

// pimDataStats count what the daemon's data-path hooks did.
type pimDataStats struct {
	DataRx       uint64 // data packets read from the packet sockets (misses, punted routes)
	DataDropped  uint64 // data packets ignored: rate limit, not a PIM interface, bad header
	RegistersTx  uint64 // Registers sent (encapsulated data)
	RegisterErrs uint64 // Registers that failed to build or send
	DecapForward uint64 // decapsulated copies sent out of an interface (at the RP)
	DecapErrs    uint64
	CounterPolls uint64 // route counter reads (the Keepalive Timer's data arrival)
}

// pimView returns the running PIM's snapshot; false when PIM is off.
func (d *Daemon) pimView() (pimView, bool) {
	return pimView{}, false
}
