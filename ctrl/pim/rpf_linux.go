//go:build linux

package pim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NetlinkRPF is the RPF of the Linux FIB: each Lookup is an RTM_GETROUTE
// (netlink.RouteGet) for the address, so it sees what the kernel would
// use for unicast to it, policy rules included, and Watch follows the
// IPv6 route changes (netlink.RouteSubscribe).
type NetlinkRPF struct {
	h  *netlink.Handle // nil: the current namespace
	ns *netns.NsHandle // for Watch; nil: the current namespace
	// Preference maps a route to its Assert metric preference; nil:
	// DefaultPreference.
	Preference func(netlink.Route) uint32
}

// NewNetlinkRPF returns the RPF of the namespace of h and ns (nil, nil:
// the process's own namespace).
func NewNetlinkRPF(h *netlink.Handle, ns *netns.NsHandle) *NetlinkRPF {
	return &NetlinkRPF{h: h, ns: ns}
}

// DefaultPreference is the administrative distance of the route's
// protocol as the usual routers give it (connected 0, static 1, eBGP 20,
// OSPF 110, IS-IS 115, RIP 120, iBGP 200 taken as BGP's 20); unknown
// protocols get 150.
func DefaultPreference(r netlink.Route) uint32 {
	switch r.Protocol {
	case unix.RTPROT_KERNEL:
		return 0
	case unix.RTPROT_BOOT, unix.RTPROT_STATIC:
		return 1
	case unix.RTPROT_BGP:
		return 20
	case unix.RTPROT_OSPF:
		return 110
	case unix.RTPROT_ISIS:
		return 115
	case unix.RTPROT_RIP:
		return 120
	}
	return 150
}

// Lookup implements RPF.
func (n *NetlinkRPF) Lookup(a netip.Addr) (RPFRoute, error) {
	if !a.Is6() || a.Is4In6() {
		return RPFRoute{}, fmt.Errorf("rpf lookup %v: not an ipv6 address: %w", a, ErrNoRoute)
	}
	ip := net.IP(a.WithZone("").AsSlice())
	var (
		rs  []netlink.Route
		err error
	)
	if n.h != nil {
		rs, err = n.h.RouteGet(ip)
	} else {
		rs, err = netlink.RouteGet(ip)
	}
	if err != nil {
		if errors.Is(err, unix.ENETUNREACH) || errors.Is(err, unix.EHOSTUNREACH) || errors.Is(err, unix.ESRCH) {
			return RPFRoute{}, fmt.Errorf("rpf lookup %v: %w: %w", a, ErrNoRoute, err)
		}
		return RPFRoute{}, fmt.Errorf("rpf lookup %v: %w", a, err)
	}
	if len(rs) == 0 || rs[0].LinkIndex == 0 {
		return RPFRoute{}, fmt.Errorf("rpf lookup %v: %w", a, ErrNoRoute)
	}
	r := rs[0]
	switch r.Type {
	case unix.RTN_UNREACHABLE, unix.RTN_BLACKHOLE, unix.RTN_PROHIBIT, unix.RTN_THROW:
		return RPFRoute{}, fmt.Errorf("rpf lookup %v: route type %d: %w", a, r.Type, ErrNoRoute)
	}
	out := RPFRoute{Ifindex: r.LinkIndex, Metric: uint32(r.Priority)}
	if gw, ok := netip.AddrFromSlice(r.Gw); ok && !gw.IsUnspecified() {
		out.Nexthop = gw.Unmap()
	}
	if n.Preference != nil {
		out.Preference = n.Preference(r)
	} else {
		out.Preference = DefaultPreference(r)
	}
	return out, nil
}

// Watch calls onChange after IPv6 route changes until ctx is done: once
// per burst of updates (those already queued are taken together). It
// returns ctx's error, or the subscription's if it fails; onChange is
// called from Watch's goroutine (Router.RPFChanged may be passed as is).
func (n *NetlinkRPF) Watch(ctx context.Context, onChange func()) error {
	ch := make(chan netlink.RouteUpdate, 256)
	done := make(chan struct{})
	defer close(done)
	errc := make(chan error, 1)
	opts := netlink.RouteSubscribeOptions{
		Namespace: n.ns,
		ErrorCallback: func(err error) {
			select {
			case errc <- err:
			default:
			}
		},
	}
	if err := netlink.RouteSubscribeWithOptions(ch, done, opts); err != nil {
		return fmt.Errorf("rpf route subscribe: %w", err)
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-errc:
			return fmt.Errorf("rpf route subscription: %w", err)
		case u, ok := <-ch:
			if !ok {
				return fmt.Errorf("rpf route subscription closed")
			}
			v6 := u.Family == netlink.FAMILY_V6 || u.Dst != nil && u.Dst.IP.To4() == nil
		drain:
			for {
				select {
				case u2, ok := <-ch:
					if !ok {
						break drain
					}
					v6 = v6 || u2.Family == netlink.FAMILY_V6 || u2.Dst != nil && u2.Dst.IP.To4() == nil
				default:
					break drain
				}
			}
			if v6 {
				onChange()
			}
		}
	}
}
