package pim

import (
	"fmt"
	"net/netip"
	"slices"
)

// StaticRP maps a range of groups to a rendezvous point (RFC 7761 §4.7's
// static RP configuration, hotcast's `static-rp`).
type StaticRP struct {
	Address netip.Addr
	// Groups is the range served; the zero Prefix means ff00::/8.
	Groups netip.Prefix
}

// RPSet is the group-to-RP mapping and the SSM range. SSM groups have no
// RP: they get (S,G) state only, never (*,G) (RFC 7761 §4.8, RFC 4607).
// An RPSet is immutable once made; a reconfiguration makes a new one
// (Router.SetRPSet).
type RPSet struct {
	rps []StaticRP // longest group prefix first
	ssm []netip.Prefix
}

// AllGroups is ff00::/8, the default range of a static RP.
var AllGroups = netip.MustParsePrefix("ff00::/8")

// NewRPSet validates the static RPs and the SSM ranges. A nil ssm means
// the default SSM range, ff3x::/32 (every scope x; RFC 4607 §1); an empty
// non-nil one means no SSM range.
func NewRPSet(rps []StaticRP, ssm []netip.Prefix) (*RPSet, error) {
	s := &RPSet{}
	for i, rp := range rps {
		a := rp.Address.WithZone("")
		if !a.Is6() || a.Is4In6() || a.IsMulticast() || a.IsUnspecified() || a.IsLinkLocalUnicast() || a.IsLoopback() {
			return nil, fmt.Errorf("static rp %d (%v): must be a routable IPv6 unicast address", i, rp.Address)
		}
		g := rp.Groups
		if !g.IsValid() {
			g = AllGroups
		}
		if !g.Addr().Is6() || !AllGroups.Contains(g.Addr()) || g.Bits() < 8 {
			return nil, fmt.Errorf("static rp %v: group range %v is not within ff00::/8", a, rp.Groups)
		}
		g = g.Masked()
		if slices.ContainsFunc(s.rps, func(o StaticRP) bool { return o.Groups == g }) {
			return nil, fmt.Errorf("static rp %v: group range %v has an rp already", a, g)
		}
		s.rps = append(s.rps, StaticRP{Address: a, Groups: g})
	}
	slices.SortStableFunc(s.rps, func(a, b StaticRP) int { return b.Groups.Bits() - a.Groups.Bits() })
	if ssm != nil {
		s.ssm = []netip.Prefix{}
		for _, p := range ssm {
			if !p.IsValid() || !p.Addr().Is6() || !AllGroups.Contains(p.Addr()) || p.Bits() < 8 {
				return nil, fmt.Errorf("ssm range %v is not within ff00::/8", p)
			}
			s.ssm = append(s.ssm, p.Masked())
		}
	}
	return s, nil
}

// IsSSM reports whether g is in the SSM range.
func (s *RPSet) IsSSM(g netip.Addr) bool {
	if s == nil || s.ssm == nil {
		return isDefaultSSM(g)
	}
	return slices.ContainsFunc(s.ssm, func(p netip.Prefix) bool { return p.Contains(g) })
}

// isDefaultSSM: ff3x::/32, FF3x:0000::/32 for every scope x (RFC 4607).
func isDefaultSSM(g netip.Addr) bool {
	if !g.Is6() {
		return false
	}
	b := g.As16()
	return b[0] == 0xff && b[1]>>4 == 3 && b[2] == 0 && b[3] == 0
}

// RP returns RP(G): the RP of the longest matching static range, none for
// an SSM group.
func (s *RPSet) RP(g netip.Addr) (netip.Addr, bool) {
	if s == nil || s.IsSSM(g) {
		return netip.Addr{}, false
	}
	for _, rp := range s.rps {
		if rp.Groups.Contains(g) {
			return rp.Address, true
		}
	}
	return netip.Addr{}, false
}

// routable reports whether PIM routes g: a multicast group of scope wider
// than link-local (RFC 4291 §2.7: scopes 0-2 never leave the link).
func routable(g netip.Addr) bool {
	if !g.Is6() || !g.IsMulticast() || g.Is4In6() {
		return false
	}
	return g.As16()[1]&0x0f > 2
}
