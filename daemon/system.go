package daemon

import (
	"context"
	"log/slog"
	"net"
	"net/netip"

	"github.com/hotcast/hotcast/bpf"
	"github.com/hotcast/hotcast/ctrl/bfd"
	"github.com/hotcast/hotcast/ctrl/mld"
	"github.com/hotcast/hotcast/ctrl/mroute"
	"github.com/hotcast/hotcast/ctrl/track"
	"github.com/hotcast/hotcast/ctrl/vrrp6"
	"github.com/hotcast/hotcast/daemon/config"
	"github.com/vishvananda/netlink"
)

// System is everything the daemon asks of the machine it runs on: the
// pinned dataplane, links and addresses, and the protocols' sockets.
// Kernel is the real one; the daemon's own logic (start-up phases,
// transition to gate, MLD to RBS and back, reload) is tested without root
// against a fake (fake_test.go). The daemon calls it from the control
// path and, for the host side of a switchover, from the tracker's
// goroutine; an implementation holds no lock of the daemon's.
type System interface {
	// Interface resolves a configured interface by name.
	Interface(name string) (*net.Interface, error)
	// LinkUp reports whether the named link is operationally up (ok
	// false: no such link).
	LinkUp(name string) (up, ok bool)
	// SubscribeLinks delivers link changes on ch until done is closed;
	// ch is closed when the subscription ends (netlink.LinkSubscribe).
	SubscribeLinks(ch chan<- netlink.LinkUpdate, done <-chan struct{}) error

	// KeepAddrOnDown makes the interface keep its IPv6 addresses across
	// a link flap.
	KeepAddrOnDown(name string) error
	// Addrs lists the interface's IPv6 addresses.
	Addrs(index int) ([]netip.Addr, error)
	// AddAddr puts an address on the interface without duplicate
	// address detection; one already there is no error.
	AddAddr(index int, p netip.Prefix) error
	// DelAddr takes an address off the interface; one already gone is no
	// error.
	DelAddr(index int, p netip.Prefix) error
	// LinkLocal returns the interface's usable (not tentative) link-local
	// address, waiting briefly for the kernel to assign it.
	LinkLocal(index int) (netip.Addr, error)
	// SetUnicastMAC adds (or removes) a MAC to the interface's unicast
	// filter ("bridge fdb add MAC dev IF self").
	SetUnicastMAC(index int, mac net.HardwareAddr, add bool) error

	// OpenDataplane opens, or adopts, the pinned dataplane.
	OpenDataplane(opts bpf.Options) (Dataplane, error)
	// CleanupDataplane removes a pinned dataplane whole.
	CleanupDataplane(pinPath string) error

	// ListenMLD opens an interface's MLD sockets.
	ListenMLD(ifname string, linkLocal netip.Addr, log *slog.Logger) (MLDConn, error)
	// ListenVRRP opens an interface's VRRP6 sockets.
	ListenVRRP(ifname string, log *slog.Logger) (VRRPConn, error)
	// OpenBFD starts the BFD engine.
	OpenBFD(cfg bfd.EngineConfig) (BFDManager, error)
	// PIMRPF returns the RPF source of PIM: the unicast FIB.
	PIMRPF() (PIMRPF, error)
	// ListenPIM opens an interface's link-local PIM socket.
	ListenPIM(ifname string, linkLocal netip.Addr) (PIMConn, error)
	// ListenPIMUnicast opens the router's unicast PIM socket (Registers,
	// Register-Stops).
	ListenPIMUnicast() (PIMUnicastConn, error)
	// ListenData opens an interface's packet socket for the multicast
	// data the fast path hands to the stack.
	ListenData(ifname string) (DataConn, error)
	// RBSTransport returns how a remote backup service connects: nil
	// functions mean the service's own TCP from source-ipv6 to
	// peer-ipv6:port.
	RBSTransport(sc *config.RBS) (dial func(context.Context) (net.Conn, error), listen func(context.Context) (net.Listener, error))
}

// Dataplane is what the daemon drives of the fast path (bpf.Dataplane):
// the route table's and the tracker's map writes, interface attachment,
// and the kernel's view for display.
type Dataplane interface {
	mroute.Dataplane
	track.Fastpath
	Adopted() bool
	Close() error
	Attached() []string
	Attach(name string, ifindex int) error
	AttachTC(name string, ifindex int) error
	Detach(name string) error
	EnsureIface(ifindex int, initial bpf.Iface) (bpf.Iface, error)
	Iface(ifindex int) (bpf.Iface, error)
	DeleteIface(ifindex int) error
	Routes() ([]bpf.RouteStats, error)
	Counters(keys []bpf.RouteKey) (map[bpf.RouteKey]bpf.Counter, error)
	Reasons() (map[bpf.Reason]uint64, error)
}

// MLDConn is an interface's MLD transport (mld.Conn).
type MLDConn interface {
	mld.Sender
	Read(ctx context.Context) (mld.Packet, error)
	Malformed() uint64
	Close() error
}

// VRRPConn is an interface's VRRP6 transport (vrrp6.Conn): Serve hands
// every advertisement to the demultiplexer until Close.
type VRRPConn interface {
	vrrp6.Sender
	Serve(d *vrrp6.Demux) error
	Close() error
}

var (
	_ Dataplane = (*bpf.Dataplane)(nil)
	_ MLDConn   = (*mld.Conn)(nil)
	_ VRRPConn  = (*vrrp6.Conn)(nil)
)
