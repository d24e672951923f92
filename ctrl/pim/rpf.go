package pim

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
)

// RPF is the Multicast RIB the PIM state machines ask for the reverse
// path towards a source or an RP (RFC 7761 §4.1.6: RPF_interface,
// MRIB.next_hop, and the metrics that Asserts carry, §4.6). On Linux
// NetlinkRPF answers from the kernel's FIB; StaticRPF is a fixed table
// (tests, static set-ups).
//
// When the routes change, whoever watches them calls Router.RPFChanged,
// which looks every address up again.
type RPF interface {
	Lookup(addr netip.Addr) (RPFRoute, error)
}

// RPFRoute is the route towards one address.
type RPFRoute struct {
	Ifindex int
	// Nexthop is MRIB.next_hop: the gateway, or invalid when the address
	// is on the link (then the address itself is the next hop).
	Nexthop netip.Addr
	// Preference is the Assert metric preference: the administrative
	// distance of the routing protocol that supplied the route (lower
	// is better); Metric is the route's cost (§4.6).
	Preference uint32
	Metric     uint32
}

// ErrNoRoute is returned (wrapped) by an RPF with no route to the address.
var ErrNoRoute = errors.New("pim: no route")

// StaticRPF is an RPF over a table of prefixes, longest match first. Its
// zero value is empty; it is safe for concurrent use.
type StaticRPF struct {
	mu     sync.Mutex
	routes map[netip.Prefix]RPFRoute
}

// Set adds or replaces the route for p.
func (s *StaticRPF) Set(p netip.Prefix, r RPFRoute) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.routes == nil {
		s.routes = make(map[netip.Prefix]RPFRoute)
	}
	s.routes[p.Masked()] = r
}

// Delete removes the route for p.
func (s *StaticRPF) Delete(p netip.Prefix) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.routes, p.Masked())
}

// Lookup implements RPF.
func (s *StaticRPF) Lookup(a netip.Addr) (RPFRoute, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	best, found := -1, RPFRoute{}
	for p, r := range s.routes {
		if p.Contains(a) && p.Bits() > best {
			best, found = p.Bits(), r
		}
	}
	if best < 0 {
		return RPFRoute{}, fmt.Errorf("lookup %v: %w", a, ErrNoRoute)
	}
	return found, nil
}
