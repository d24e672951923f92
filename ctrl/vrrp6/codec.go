package vrrp6

import (
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/hotcast/hotcast/internal/inet"
	"net/netip"
)

// Protocol constants of RFC 9568.
const (
	// IPProtocol is the IPv6 Next Header value of VRRP (RFC 9568 §5.1.2.3).
	IPProtocol = 112
	// Version is the only VRRP version this package speaks (RFC 9568 §5.2.1).
	Version = 3
	// TypeAdvertisement is the only defined VRRP packet type (RFC 9568 §5.2.2).
	TypeAdvertisement = 1
	// HopLimit is the IPv6 hop limit of every advertisement; receivers drop
	// anything else (RFC 9568 §5.1.2.2, §7.1).
	HopLimit = 255
	// PriorityOwner is the priority of the virtual address owner (RFC 9568 §5.2.4).
	PriorityOwner = 255
	// PriorityShutdown is the priority a Master sends when it stops
	// participating (RFC 9568 §5.2.4).
	PriorityShutdown = 0
	// MaxAdvertInterval is the largest Max Adver Int, in centiseconds: the
	// field is 12 bits wide (RFC 9568 §5.2.7).
	MaxAdvertInterval = 0x0fff

	headerLen = 8
	addrLen   = 16
)

// GroupAddr is the IPv6 link-scope multicast address of VRRP, the destination
// of every advertisement (RFC 9568 §5.1.2.2).
var GroupAddr = netip.AddrFrom16([16]byte{0xff, 0x02, 15: 0x12})

// Codec errors. Parse and VerifyChecksum return these (possibly wrapped) so
// callers can count drops by reason with errors.Is.
var (
	ErrTruncated     = errors.New("vrrp6: packet truncated")
	ErrBadVersion    = errors.New("vrrp6: version is not 3")
	ErrBadType       = errors.New("vrrp6: type is not ADVERTISEMENT")
	ErrBadVRID       = errors.New("vrrp6: vrid 0 is invalid")
	ErrBadInterval   = errors.New("vrrp6: max adver int out of range")
	ErrNoAddresses   = errors.New("vrrp6: count ipvx addrs is 0")
	ErrCountMismatch = errors.New("vrrp6: count ipvx addrs does not match packet length")
	ErrBadChecksum   = errors.New("vrrp6: bad checksum")
	ErrBadAddress    = errors.New("vrrp6: address is not ipv6")
	ErrTooManyAddrs  = errors.New("vrrp6: more than 255 addresses")
)

// Advert is a VRRPv3 ADVERTISEMENT carried over IPv6 (RFC 9568 §5.2):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version| Type  | Virtual Rtr ID|   Priority    |Count IPvX Addr|
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|(rsvd) |     Max Adver Int     |          Checksum             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       IPv6 Address(es)                        |
//
// Version and Type are implied (3 and 1); the checksum is computed by
// Marshal and checked by VerifyChecksum.
type Advert struct {
	VRID     uint8
	Priority uint8
	// MaxAdvertInterval is the Max Adver Int in centiseconds (1..4095).
	MaxAdvertInterval uint16
	// Addrs are the virtual IPv6 addresses. RFC 9568 §5.2.9 requires the
	// first to be the virtual router's link-local address; the codec does
	// not enforce it (the Router validates its configuration).
	Addrs []netip.Addr
}

// Len is the length of the marshaled advertisement.
func (a *Advert) Len() int { return headerLen + addrLen*len(a.Addrs) }

// Marshal encodes a with the checksum computed over the IPv6 pseudo-header
// for src and dst (RFC 9568 §5.2.8, RFC 8200 §8.1).
func (a *Advert) Marshal(src, dst netip.Addr) ([]byte, error) {
	b := make([]byte, a.Len())
	if err := a.marshalTo(b, src, dst); err != nil {
		return nil, err
	}
	return b, nil
}

func (a *Advert) marshalTo(b []byte, src, dst netip.Addr) error {
	if a.VRID == 0 {
		return ErrBadVRID
	}
	if a.MaxAdvertInterval == 0 || a.MaxAdvertInterval > MaxAdvertInterval {
		return fmt.Errorf("%w: %d centiseconds", ErrBadInterval, a.MaxAdvertInterval)
	}
	if len(a.Addrs) == 0 {
		return ErrNoAddresses
	}
	if len(a.Addrs) > 255 {
		return ErrTooManyAddrs
	}
	if !src.Is6() || !dst.Is6() {
		return fmt.Errorf("pseudo-header %v -> %v: %w", src, dst, ErrBadAddress)
	}
	for i, ad := range a.Addrs {
		if !ad.Is6() {
			return fmt.Errorf("address %d (%v): %w", i, ad, ErrBadAddress)
		}
	}
	if len(b) != a.Len() {
		return fmt.Errorf("vrrp6: marshal buffer is %d bytes, need %d", len(b), a.Len())
	}
	b[0] = Version<<4 | TypeAdvertisement
	b[1] = a.VRID
	b[2] = a.Priority
	b[3] = uint8(len(a.Addrs))
	binary.BigEndian.PutUint16(b[4:6], a.MaxAdvertInterval) // rsvd bits are 0
	b[6], b[7] = 0, 0
	for i, ad := range a.Addrs {
		a16 := ad.As16()
		copy(b[headerLen+addrLen*i:], a16[:])
	}
	binary.BigEndian.PutUint16(b[6:8], checksum(src, dst, IPProtocol, b))
	return nil
}

// Parse decodes a VRRP packet (the IPv6 payload). It checks the version,
// type, VRID, interval and that Count IPvX Addrs matches the length exactly
// (RFC 9568 §7.1); it does not check the checksum (see VerifyChecksum).
// The reserved bits are ignored (RFC 9568 §5.2.6).
func Parse(b []byte) (*Advert, error) {
	if len(b) < headerLen {
		return nil, fmt.Errorf("%w: %d bytes, header is %d", ErrTruncated, len(b), headerLen)
	}
	if v := b[0] >> 4; v != Version {
		return nil, fmt.Errorf("%w: version %d", ErrBadVersion, v)
	}
	if t := b[0] & 0x0f; t != TypeAdvertisement {
		return nil, fmt.Errorf("%w: type %d", ErrBadType, t)
	}
	if b[1] == 0 {
		return nil, ErrBadVRID
	}
	n := int(b[3])
	if n == 0 {
		return nil, ErrNoAddresses
	}
	want := headerLen + addrLen*n
	if len(b) < want {
		return nil, fmt.Errorf("%w: %d bytes for %d addresses, need %d", ErrTruncated, len(b), n, want)
	}
	if len(b) > want {
		return nil, fmt.Errorf("%w: %d bytes for %d addresses, expected %d", ErrCountMismatch, len(b), n, want)
	}
	ival := binary.BigEndian.Uint16(b[4:6]) & MaxAdvertInterval
	if ival == 0 {
		return nil, fmt.Errorf("%w: 0 centiseconds", ErrBadInterval)
	}
	addrs := make([]netip.Addr, n)
	for i := range addrs {
		addrs[i] = netip.AddrFrom16([16]byte(b[headerLen+addrLen*i : headerLen+addrLen*(i+1)]))
	}
	return &Advert{
		VRID:              b[1],
		Priority:          b[2],
		MaxAdvertInterval: ival,
		Addrs:             addrs,
	}, nil
}

// VerifyChecksum checks the VRRP checksum of b (the whole IPv6 payload)
// against the pseudo-header for src and dst (RFC 9568 §5.2.8).
func VerifyChecksum(src, dst netip.Addr, b []byte) error {
	if len(b) < headerLen {
		return fmt.Errorf("%w: %d bytes", ErrTruncated, len(b))
	}
	if !src.Is6() || !dst.Is6() {
		return fmt.Errorf("pseudo-header %v -> %v: %w", src, dst, ErrBadAddress)
	}
	if checksum(src, dst, IPProtocol, b) != 0 {
		return ErrBadChecksum
	}
	return nil
}

// checksum is the checksum of the whole payload b behind the IPv6
// pseudo-header: over a payload whose checksum field is zero, the value to
// store; over one with a correct checksum, 0.
func checksum(src, dst netip.Addr, nextHeader uint8, b []byte) uint16 {
	return inet.Checksum(src, dst, nextHeader, b, -1)
}
