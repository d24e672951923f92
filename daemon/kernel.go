package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/hotcast/hotcast/bpf"
	"github.com/hotcast/hotcast/ctrl/bfd"
	"github.com/hotcast/hotcast/ctrl/mld"
	"github.com/hotcast/hotcast/ctrl/pim"
	"github.com/hotcast/hotcast/ctrl/vrrp6"
	"github.com/hotcast/hotcast/daemon/config"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Kernel is the System of the running machine: netlink, bpffs, raw and
// packet sockets.
type Kernel struct{}

var _ System = Kernel{}

// Interface implements System.
func (Kernel) Interface(name string) (*net.Interface, error) { return net.InterfaceByName(name) }

// LinkUp implements System: operationally up, or up with an unknown
// operational state (as dummy interfaces are).
func (Kernel) LinkUp(name string) (up, ok bool) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return false, false
	}
	return linkUp(l), true
}

func linkUp(l netlink.Link) bool {
	a := l.Attrs()
	return a.OperState == netlink.OperUp || a.Flags&net.FlagUp != 0 && a.OperState == netlink.OperUnknown
}

// SubscribeLinks implements System.
func (Kernel) SubscribeLinks(ch chan<- netlink.LinkUpdate, done <-chan struct{}) error {
	return netlink.LinkSubscribe(ch, done)
}

// KeepAddrOnDown implements System (Linux flushes IPv6 addresses on link
// down by default).
func (Kernel) KeepAddrOnDown(name string) error {
	return os.WriteFile("/proc/sys/net/ipv6/conf/"+name+"/keep_addr_on_down", []byte("1"), 0o644)
}

// Addrs implements System.
func (Kernel) Addrs(index int) ([]netip.Addr, error) {
	as, err := kernelAddrs(index)
	if err != nil {
		return nil, err
	}
	out := make([]netip.Addr, 0, len(as))
	for _, a := range as {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			out = append(out, ip.Unmap())
		}
	}
	return out, nil
}

func kernelAddrs(index int) ([]netlink.Addr, error) {
	l, err := netlink.LinkByIndex(index)
	if err != nil {
		return nil, err
	}
	as, err := netlink.AddrList(l, netlink.FAMILY_V6)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	return as, nil
}

// AddAddr implements System.
func (Kernel) AddAddr(index int, p netip.Prefix) error {
	l, err := netlink.LinkByIndex(index)
	if err != nil {
		return err
	}
	if err := netlink.AddrAdd(l, nlAddr(p)); err != nil && !errors.Is(err, unix.EEXIST) {
		return err
	}
	return nil
}

// DelAddr implements System.
func (Kernel) DelAddr(index int, p netip.Prefix) error {
	l, err := netlink.LinkByIndex(index)
	if err != nil {
		return err
	}
	if err := netlink.AddrDel(l, nlAddr(p)); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENOENT) {
		return err
	}
	return nil
}

// nlAddr is a configured address as netlink takes it: no duplicate
// address detection (a router's configured address is its own).
func nlAddr(p netip.Prefix) *netlink.Addr {
	return &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 128)}, Flags: unix.IFA_F_NODAD}
}

// LinkLocal implements System: it polls for up to 3 s while the address
// is tentative or not there yet.
func (Kernel) LinkLocal(index int) (netip.Addr, error) {
	deadline := time.Now().Add(3 * time.Second)
	for {
		as, err := kernelAddrs(index)
		if err != nil {
			return netip.Addr{}, err
		}
		for _, a := range as {
			if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.IsLinkLocalUnicast() && a.Flags&unix.IFA_F_TENTATIVE == 0 {
				return ip, nil
			}
		}
		if time.Now().After(deadline) {
			return netip.Addr{}, errors.New("no usable link-local address")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// SetUnicastMAC implements System.
func (Kernel) SetUnicastMAC(index int, mac net.HardwareAddr, add bool) error {
	fdb := &netlink.Neigh{LinkIndex: index, Family: unix.AF_BRIDGE, Flags: netlink.NTF_SELF, State: netlink.NUD_PERMANENT, HardwareAddr: mac}
	if add {
		if err := netlink.NeighAppend(fdb); err != nil && !errors.Is(err, unix.EEXIST) {
			return err
		}
		return nil
	}
	return netlink.NeighDel(fdb)
}

// OpenDataplane implements System.
func (Kernel) OpenDataplane(opts bpf.Options) (Dataplane, error) {
	dp, err := bpf.Open(opts)
	if err != nil {
		return nil, err
	}
	return dp, nil
}

// CleanupDataplane implements System.
func (Kernel) CleanupDataplane(pinPath string) error { return bpf.Cleanup(pinPath) }

// ListenMLD implements System.
func (Kernel) ListenMLD(ifname string, linkLocal netip.Addr, log *slog.Logger) (MLDConn, error) {
	c, err := mld.Listen(ifname, linkLocal, log)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// ListenVRRP implements System.
func (Kernel) ListenVRRP(ifname string, log *slog.Logger) (VRRPConn, error) {
	c, err := vrrp6.Listen(ifname, log)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// OpenBFD implements System.
func (Kernel) OpenBFD(cfg bfd.EngineConfig) (BFDManager, error) {
	m, err := bfd.NewManager(cfg)
	if err != nil {
		return nil, err
	}
	return kernelBFD{m}, nil
}

// PIMRPF implements System: the FIB of the daemon's namespace.
func (Kernel) PIMRPF() (PIMRPF, error) { return pim.NewNetlinkRPF(nil, nil), nil }

// ListenPIM implements System.
func (Kernel) ListenPIM(ifname string, linkLocal netip.Addr) (PIMConn, error) {
	c, err := pim.Listen(ifname, linkLocal)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// ListenPIMUnicast implements System.
func (Kernel) ListenPIMUnicast() (PIMUnicastConn, error) {
	c, err := pim.ListenUnicast()
	if err != nil {
		return nil, err
	}
	return c, nil
}

// ListenData implements System.
func (Kernel) ListenData(ifname string) (DataConn, error) {
	c, err := pim.ListenData(ifname)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// RBSTransport implements System: the service's own TCP.
func (Kernel) RBSTransport(*config.RBS) (func(context.Context) (net.Conn, error), func(context.Context) (net.Listener, error)) {
	return nil, nil
}
