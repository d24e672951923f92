package bfd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Protocol constants of RFC 5880 and RFC 5881.
const (
	// Version is the only BFD version (RFC 5880 §4.1).
	Version = 1
	// Port is the UDP destination port of single-hop BFD Control packets
	// (RFC 5881 §4).
	Port = 3784
	// MinSourcePort and MaxSourcePort bound the UDP source port of BFD
	// Control packets (RFC 5881 §4).
	MinSourcePort = 49152
	MaxSourcePort = 65535
	// HopLimit is the IPv6 hop limit of every packet without
	// authentication; receivers drop anything else (RFC 5881 §5).
	HopLimit = 255
	// HeaderLen is the length of the mandatory section (RFC 5880 §4.1).
	HeaderLen = 24
	// MinAuthLen is the shortest packet with the A bit set: the mandatory
	// section and the Auth Type and Auth Len bytes (RFC 5880 §6.8.6).
	MinAuthLen = HeaderLen + 2
	// SlowTxInterval is the floor of bfd.DesiredMinTxInterval while the
	// session is not Up (RFC 5880 §6.8.3).
	SlowTxInterval = time.Second
)

// State is a session state as carried in the Sta field (RFC 5880 §4.1).
type State uint8

// States of RFC 5880 §4.1, in their wire encoding.
const (
	StateAdminDown State = 0
	StateDown      State = 1
	StateInit      State = 2
	StateUp        State = 3
)

func (s State) String() string {
	switch s {
	case StateAdminDown:
		return "AdminDown"
	case StateDown:
		return "Down"
	case StateInit:
		return "Init"
	case StateUp:
		return "Up"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Diag is a diagnostic code: why the sender's session last changed
// state (RFC 5880 §4.1).
type Diag uint8

// Diagnostic codes of RFC 5880 §4.1; 9-31 are reserved.
const (
	DiagNone                        Diag = 0
	DiagControlDetectionTimeExpired Diag = 1
	DiagEchoFunctionFailed          Diag = 2
	DiagNeighborSignaledDown        Diag = 3
	DiagForwardingPlaneReset        Diag = 4
	DiagPathDown                    Diag = 5
	DiagConcatenatedPathDown        Diag = 6
	DiagAdminDown                   Diag = 7
	DiagReverseConcatenatedPathDown Diag = 8
	// MaxDiag is the largest value the 5-bit field holds.
	MaxDiag Diag = 31
)

func (d Diag) String() string {
	switch d {
	case DiagNone:
		return "NoDiagnostic"
	case DiagControlDetectionTimeExpired:
		return "ControlDetectionTimeExpired"
	case DiagEchoFunctionFailed:
		return "EchoFunctionFailed"
	case DiagNeighborSignaledDown:
		return "NeighborSignaledSessionDown"
	case DiagForwardingPlaneReset:
		return "ForwardingPlaneReset"
	case DiagPathDown:
		return "PathDown"
	case DiagConcatenatedPathDown:
		return "ConcatenatedPathDown"
	case DiagAdminDown:
		return "AdministrativelyDown"
	case DiagReverseConcatenatedPathDown:
		return "ReverseConcatenatedPathDown"
	}
	return fmt.Sprintf("Diag(%d)", uint8(d))
}

// Flag bits of the second byte (RFC 5880 §4.1).
const (
	flagPoll       = 0x20
	flagFinal      = 0x10
	flagCPI        = 0x08
	flagAuth       = 0x04
	flagDemand     = 0x02
	flagMultipoint = 0x01
)

// Codec errors. Parse and Marshal return these (possibly wrapped) so that
// callers can count drops by reason with errors.Is.
var (
	ErrTruncated      = errors.New("bfd: packet truncated")
	ErrBadVersion     = errors.New("bfd: version is not 1")
	ErrBadLength      = errors.New("bfd: length field too small")
	ErrBadAuthLen     = errors.New("bfd: auth len does not fit the packet")
	ErrZeroDetectMult = errors.New("bfd: detect mult is 0")
	ErrMultipoint     = errors.New("bfd: multipoint bit set")
	ErrZeroMyDiscr    = errors.New("bfd: my discriminator is 0")
	ErrZeroYourDiscr  = errors.New("bfd: your discriminator is 0 in state init or up")
	ErrPollFinal      = errors.New("bfd: poll and final both set")
	ErrBadField       = errors.New("bfd: field out of range")
)

// Packet is a BFD Control packet (RFC 5880 §4.1):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Vers |  Diag   |Sta|P|F|C|A|D|M|  Detect Mult  |    Length     |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       My Discriminator                        |
//	|                      Your Discriminator                       |
//	|                    Desired Min TX Interval                    |
//	|                   Required Min RX Interval                    |
//	|                 Required Min Echo RX Interval                 |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   Auth Type   |   Auth Len    |    Authentication Data...     |
//
// The version is implied (1), the Length computed by Marshal and checked
// by Parse; the A bit is set exactly when Auth is non-empty. Intervals
// are in microseconds, as on the wire.
type Packet struct {
	Diag  Diag
	State State
	// Poll and Final are the P and F bits (RFC 5880 §6.5).
	Poll, Final bool
	// ControlPlaneIndependent is the C bit.
	ControlPlaneIndependent bool
	// Demand is the D bit (RFC 5880 §6.6).
	Demand bool
	// Multipoint is the M bit, reserved: always dropped on receive.
	Multipoint        bool
	DetectMult        uint8
	MyDiscr           uint32
	YourDiscr         uint32
	DesiredMinTx      uint32
	RequiredMinRx     uint32
	RequiredMinEchoRx uint32
	// Auth is the authentication section (Auth Type, Auth Len, data) when
	// the A bit is set. The codec checks only that Auth Len covers its own
	// two bytes and makes up the rest of Length; this package implements no
	// authentication type, and a Session drops every packet with the A bit
	// set (RFC 5880 §6.8.6: "If the A bit is set and no authentication is
	// in use"). Parse returns a slice of its input, not a copy.
	Auth []byte
}

// Len is the length of the marshaled packet.
func (p *Packet) Len() int { return HeaderLen + len(p.Auth) }

// AuthType is the Auth Type of the authentication section, 0 without one.
func (p *Packet) AuthType() uint8 {
	if len(p.Auth) == 0 {
		return 0
	}
	return p.Auth[0]
}

// Marshal encodes p.
func (p *Packet) Marshal() ([]byte, error) {
	b := make([]byte, p.Len())
	if _, err := p.MarshalTo(b); err != nil {
		return nil, err
	}
	return b, nil
}

// MarshalTo encodes p into b, which must hold p.Len() bytes, and returns
// the length written. It refuses what a sender must not send (RFC 5880
// §6.8.7): version aside, the same checks as Parse, and P and F together.
func (p *Packet) MarshalTo(b []byte) (int, error) {
	if err := p.validate(); err != nil {
		return 0, err
	}
	if p.Poll && p.Final {
		return 0, ErrPollFinal
	}
	if p.Diag > MaxDiag || p.State > StateUp {
		return 0, fmt.Errorf("%w: diag %d, state %d", ErrBadField, p.Diag, p.State)
	}
	n := p.Len()
	if len(p.Auth) > 0 && (len(p.Auth) < 2 || int(p.Auth[1]) != len(p.Auth)) {
		return 0, fmt.Errorf("%w: auth len %d for %d bytes", ErrBadAuthLen, authLenByte(p.Auth), len(p.Auth))
	}
	if n > 255 {
		return 0, fmt.Errorf("%w: %d bytes do not fit the length field", ErrBadAuthLen, n)
	}
	if len(b) < n {
		return 0, fmt.Errorf("bfd: marshal buffer is %d bytes, need %d", len(b), n)
	}
	b[0] = Version<<5 | uint8(p.Diag)
	f := uint8(p.State) << 6
	f |= bit(p.Poll, flagPoll) | bit(p.Final, flagFinal) | bit(p.ControlPlaneIndependent, flagCPI)
	f |= bit(len(p.Auth) > 0, flagAuth) | bit(p.Demand, flagDemand) | bit(p.Multipoint, flagMultipoint)
	b[1] = f
	b[2] = p.DetectMult
	b[3] = uint8(n)
	binary.BigEndian.PutUint32(b[4:], p.MyDiscr)
	binary.BigEndian.PutUint32(b[8:], p.YourDiscr)
	binary.BigEndian.PutUint32(b[12:], p.DesiredMinTx)
	binary.BigEndian.PutUint32(b[16:], p.RequiredMinRx)
	binary.BigEndian.PutUint32(b[20:], p.RequiredMinEchoRx)
	copy(b[HeaderLen:], p.Auth)
	return n, nil
}

func bit(set bool, b uint8) uint8 {
	if set {
		return b
	}
	return 0
}

func authLenByte(a []byte) int {
	if len(a) < 2 {
		return -1
	}
	return int(a[1])
}

// validate holds the checks of RFC 5880 §6.8.6 that concern the fields
// alone, shared by Parse and MarshalTo.
func (p *Packet) validate() error {
	switch {
	case p.DetectMult == 0:
		return ErrZeroDetectMult
	case p.Multipoint:
		return ErrMultipoint
	case p.MyDiscr == 0:
		return ErrZeroMyDiscr
	case p.YourDiscr == 0 && p.State != StateDown && p.State != StateAdminDown:
		return fmt.Errorf("%w: state %v", ErrZeroYourDiscr, p.State)
	}
	return nil
}

// Parse decodes the BFD Control packet in b (the UDP payload) into p,
// applying the receive checks of RFC 5880 §6.8.6 that do not depend on a
// session, in the RFC's order: version 1; Length at least 24 (26 with the
// A bit) and no more than the payload; Detect Mult not 0; M bit clear; My
// Discriminator not 0; Your Discriminator not 0 unless the state is Down
// or AdminDown. With the A bit set, Auth Len must cover its own two bytes
// and Length must be exactly 24 + Auth Len (RFC 5880 §4.2-§4.4). Without
// it, a Length over 24 is accepted and the bytes past the mandatory
// section ignored, as are bytes past Length. Parse does not allocate:
// p.Auth is a slice of b.
func Parse(b []byte, p *Packet) error {
	if len(b) < HeaderLen {
		return fmt.Errorf("%w: %d bytes, header is %d", ErrTruncated, len(b), HeaderLen)
	}
	if v := b[0] >> 5; v != Version {
		return fmt.Errorf("%w: version %d", ErrBadVersion, v)
	}
	auth := b[1]&flagAuth != 0
	n := int(b[3])
	least := HeaderLen
	if auth {
		least = MinAuthLen
	}
	if n < least {
		return fmt.Errorf("%w: length %d, minimum %d", ErrBadLength, n, least)
	}
	if n > len(b) {
		return fmt.Errorf("%w: length %d, payload %d bytes", ErrTruncated, n, len(b))
	}
	*p = Packet{
		Diag:                    Diag(b[0] & 0x1f),
		State:                   State(b[1] >> 6),
		Poll:                    b[1]&flagPoll != 0,
		Final:                   b[1]&flagFinal != 0,
		ControlPlaneIndependent: b[1]&flagCPI != 0,
		Demand:                  b[1]&flagDemand != 0,
		Multipoint:              b[1]&flagMultipoint != 0,
		DetectMult:              b[2],
		MyDiscr:                 binary.BigEndian.Uint32(b[4:]),
		YourDiscr:               binary.BigEndian.Uint32(b[8:]),
		DesiredMinTx:            binary.BigEndian.Uint32(b[12:]),
		RequiredMinRx:           binary.BigEndian.Uint32(b[16:]),
		RequiredMinEchoRx:       binary.BigEndian.Uint32(b[20:]),
	}
	if err := p.validate(); err != nil {
		return err
	}
	if auth {
		al := int(b[HeaderLen+1])
		if al < 2 || HeaderLen+al != n {
			return fmt.Errorf("%w: auth len %d, length %d", ErrBadAuthLen, al, n)
		}
		p.Auth = b[HeaderLen : HeaderLen+al : HeaderLen+al]
	}
	return nil
}

// Microseconds converts d to a wire interval, rounding down and clamping
// to the 32-bit field.
func Microseconds(d time.Duration) uint32 {
	us := d / time.Microsecond
	switch {
	case us < 0:
		return 0
	case us > 0xffffffff:
		return 0xffffffff
	}
	return uint32(us)
}

// Duration converts a wire interval to a time.Duration.
func Duration(us uint32) time.Duration { return time.Duration(us) * time.Microsecond }
