// Package rbs implements the Remote Backup Service (RBS) channel and the
// Remote Backup Profile (RBP) replication used for MLD dual-device hot backup
// in a VRRP6 scenario: the VRRP6 Master replicates every MLD group entry of a
// profile's interface to the Backup router over one TCP connection between
// source-ipv6 and peer-ipv6 (port 1025 in the reference configuration).
//
// Replication follows the usual hot-backup pattern (bulk transfer when the
// channel comes up, then sequenced real-time deltas, acknowledgements, and a
// full resynchronisation on gaps or on request).
//
// # Wire format (version 1)
//
// All integers are big-endian (network order). A stream is a sequence of
// frames; each frame is a 12-byte header followed by Length payload bytes:
//
//	offset size field
//	0      4    magic   "HCRB" (0x48 0x43 0x52 0x42)
//	4      1    version 1
//	5      1    type    (see below)
//	6      2    flags   must be 0
//	8      4    length  payload length in bytes, 0..1048576 (1 MiB)
//
// A receiver closes the connection on a bad magic, an unknown version, a
// non-zero flags field, an unknown type, a length above 1 MiB, a truncated
// payload, trailing bytes after the last field of a payload, or any invalid
// field value. Payloads are exact: no padding, no optional trailing fields.
//
// Common encodings:
//
//	string   u16 length, then that many bytes (limits given per field)
//	addr     16 bytes, an IPv6 address; all-zero means "none" where allowed
//	epoch    u64, non-zero except in ResyncRequest where 0 means "any"
//
// Message types and payloads:
//
//	1 Hello          string sysname (≤255), u32 hold time (ms),
//	                 u32 capabilities (no bits defined; ignore unknown bits),
//	                 u16 profile count (≤4096), then per profile:
//	                 u32 backup-id, u8 role, u8 service mask.
//	                 Backup-ids are unique within a Hello.
//	2 Keepalive      empty.
//	3 BatchBegin     u32 backup-id, u64 epoch (≠0), u32 entry count.
//	4 Entry          u32 backup-id, u64 seq (≠0), u8 op (1 upsert, 2 delete),
//	                 MLD entry.
//	5 BatchEnd       u32 backup-id, u64 epoch (≠0), u64 seq (last seq of the
//	                 batch, equal to the BatchBegin count).
//	6 Ack            u32 backup-id, u64 epoch (≠0), u64 seq (highest applied).
//	7 ResyncRequest  u32 backup-id, u64 epoch (0 = any), u8 reason.
//	8 ProfileState   u32 backup-id, u8 role, u8 service mask.
//	9 Close          string reason (≤1024).
//
// Roles: 0 unknown, 1 master, 2 backup. Service mask: bit 0 (0x01) MLD.
// Resync reasons (informational, any value accepted): 1 sequence gap,
// 2 bad batch, 3 apply error, 4 entry outside a batch.
//
// MLD entry (one multicast address record of the profile's interface, the
// router-side state of RFC 3810 §7.2 and of the MLDv1 compatibility mode of
// RFC 3810 §8.3.2):
//
//	addr group          multicast address (ff00::/8)
//	u8   filter mode    1 include, 2 exclude
//	u8   compat         MLD version of the group's compatibility mode, 1 or 2
//	u32  group timer    remaining ms, 0 = not running (RFC 3810 §7.2.3)
//	u32  v1 host timer  remaining ms of the Older Version Host Present timer,
//	                    0 = not running (RFC 3810 §8.3.2)
//	addr last reporter  link-layer source of the last report; zero = none
//	u16  source count   ≤1024
//	per source:
//	addr source         unicast, not unspecified, unique within the entry
//	u32  source timer   remaining ms; 0 = source excluded (EXCLUDE mode,
//	                    RFC 3810 §7.2.3 "Exclude List")
//
// # Transport
//
// TCP (port 1025 by default) between source-ipv6 and peer-ipv6; the side
// with the lower source address dials, the other listens and accepts only
// the peer address (see Config). Optional TLS 1.3 with mutual
// authentication (see TLSConfig). docs/rbs-wire.md restates this specification.
//
// # Replication protocol
//
// After the TCP (optionally TLS 1.3) connection is up, both sides send Hello
// at once. A profile comes up only if both Hellos carry its backup-id with the
// same service mask. Keepalives are sent every hold/3; the negotiated hold
// time is the smaller of the two Hellos (at least 3 s); a side that hears
// nothing for the hold time closes the connection.
//
// For each profile, the side whose local role is master and whose peer role
// is not master is the sender. It sends a batch (BatchBegin, Count Entry
// messages with op upsert and seq 1..Count, BatchEnd) when the profile comes
// up, when the peer leaves the master role, when it becomes master itself,
// on ResyncRequest and when its unacknowledged window overflows; each batch
// has a new epoch. Deltas follow with seq Count+1, Count+2, ... in the same
// epoch. The receiver (local role not master) replaces all of its entries by
// the batch at BatchEnd, never before, applies deltas in seq order, acks
// every N entries or after an interval and at every BatchEnd, and sends
// ResyncRequest on any gap, after which it ignores entries until the next
// BatchBegin.
package rbs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"
)

// Wire constants.
const (
	// Magic starts every frame.
	Magic = "HCRB"
	// Version is the only wire version this package speaks.
	Version = 1
	// HeaderLen is the size of the frame header.
	HeaderLen = 12
	// MaxPayload bounds the payload length of a frame.
	MaxPayload = 1 << 20
	// MaxSysName bounds Hello.SysName.
	MaxSysName = 255
	// MaxReason bounds Close.Reason.
	MaxReason = 1024
	// MaxHelloProfiles bounds the number of profiles in a Hello.
	MaxHelloProfiles = 4096
	// MaxSources bounds the number of sources of one MLD entry.
	MaxSources = 1024
	// DefaultPort is the TCP port of the reference configuration.
	DefaultPort = 1025
)

// Sentinel errors; every parse error wraps exactly one of them so callers
// can count drops by reason (see ErrorReason).
var (
	ErrTruncated    = errors.New("truncated")
	ErrBadMagic     = errors.New("bad magic")
	ErrBadVersion   = errors.New("unsupported version")
	ErrBadFlags     = errors.New("non-zero flags")
	ErrUnknownType  = errors.New("unknown message type")
	ErrTooLarge     = errors.New("payload too large")
	ErrTrailingData = errors.New("trailing data")
	ErrInvalidField = errors.New("invalid field")
)

// ErrorReason classifies a codec or stream error into a short, stable label
// suitable as a counter key.
func ErrorReason(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrTruncated), errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated"
	case errors.Is(err, ErrBadMagic):
		return "bad-magic"
	case errors.Is(err, ErrBadVersion):
		return "bad-version"
	case errors.Is(err, ErrBadFlags):
		return "bad-flags"
	case errors.Is(err, ErrUnknownType):
		return "unknown-type"
	case errors.Is(err, ErrTooLarge):
		return "too-large"
	case errors.Is(err, ErrTrailingData):
		return "trailing-data"
	case errors.Is(err, ErrInvalidField):
		return "invalid-field"
	case errors.Is(err, io.EOF):
		return "eof"
	default:
		return "io"
	}
}

// MsgType identifies a message on the wire.
type MsgType uint8

// Message types.
const (
	TypeHello         MsgType = 1
	TypeKeepalive     MsgType = 2
	TypeBatchBegin    MsgType = 3
	TypeEntry         MsgType = 4
	TypeBatchEnd      MsgType = 5
	TypeAck           MsgType = 6
	TypeResyncRequest MsgType = 7
	TypeProfileState  MsgType = 8
	TypeClose         MsgType = 9
)

var msgTypeNames = [...]string{
	TypeHello:         "hello",
	TypeKeepalive:     "keepalive",
	TypeBatchBegin:    "batch-begin",
	TypeEntry:         "entry",
	TypeBatchEnd:      "batch-end",
	TypeAck:           "ack",
	TypeResyncRequest: "resync-request",
	TypeProfileState:  "profile-state",
	TypeClose:         "close",
}

func (t MsgType) String() string {
	if int(t) < len(msgTypeNames) && msgTypeNames[t] != "" {
		return msgTypeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Role is the VRRP6-derived role of a profile.
type Role uint8

// Roles.
const (
	RoleUnknown Role = 0
	RoleMaster  Role = 1
	RoleBackup  Role = 2
)

func (r Role) String() string {
	switch r {
	case RoleUnknown:
		return "unknown"
	case RoleMaster:
		return "master"
	case RoleBackup:
		return "backup"
	}
	return fmt.Sprintf("role(%d)", uint8(r))
}

// ServiceMask is the set of service types a profile backs up.
type ServiceMask uint8

// ServiceMLD is the "service-type mld" bit.
const ServiceMLD ServiceMask = 1 << 0

func (m ServiceMask) String() string {
	switch m {
	case 0:
		return "none"
	case ServiceMLD:
		return "mld"
	}
	return fmt.Sprintf("services(%#x)", uint8(m))
}

// Op is the operation of an Entry message.
type Op uint8

// Entry operations.
const (
	OpUpsert Op = 1
	OpDelete Op = 2
)

func (o Op) String() string {
	switch o {
	case OpUpsert:
		return "upsert"
	case OpDelete:
		return "delete"
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// ResyncReason says why a receiver asks for a full batch.
type ResyncReason uint8

// Resync reasons.
const (
	ResyncGap          ResyncReason = 1
	ResyncBadBatch     ResyncReason = 2
	ResyncApplyError   ResyncReason = 3
	ResyncOutsideBatch ResyncReason = 4
)

func (r ResyncReason) String() string {
	switch r {
	case ResyncGap:
		return "sequence-gap"
	case ResyncBadBatch:
		return "bad-batch"
	case ResyncApplyError:
		return "apply-error"
	case ResyncOutsideBatch:
		return "entry-outside-batch"
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}

// Message is one RBS protocol message. The concrete types are the pointer
// types *Hello, *Keepalive, *BatchBegin, *Entry, *BatchEnd, *Ack,
// *ResyncRequest, *ProfileState and *Close.
type Message interface {
	// Type returns the wire type of the message.
	Type() MsgType
	appendPayload(b []byte) ([]byte, error)
	parsePayload(b []byte) error
}

// Marshal encodes m as a complete frame (header and payload).
func Marshal(m Message) ([]byte, error) {
	return AppendMarshal(make([]byte, 0, HeaderLen+64), m)
}

// AppendMarshal appends m's complete frame to dst. On error dst is
// returned unchanged (up to its length).
func AppendMarshal(dst []byte, m Message) ([]byte, error) {
	start := len(dst)
	dst = append(dst, make([]byte, HeaderLen)...)
	b, err := m.appendPayload(dst)
	if err != nil {
		return dst[:start], fmt.Errorf("rbs: marshal %s: %w", m.Type(), err)
	}
	n := len(b) - start - HeaderLen
	if n > MaxPayload {
		return b[:start], fmt.Errorf("rbs: marshal %s: %d bytes: %w", m.Type(), n, ErrTooLarge)
	}
	h := b[start : start+HeaderLen]
	copy(h[0:4], Magic)
	h[4] = Version
	h[5] = byte(m.Type())
	binary.BigEndian.PutUint16(h[6:8], 0)
	binary.BigEndian.PutUint32(h[8:12], uint32(n))
	return b, nil
}

// Header is a decoded frame header.
type Header struct {
	Type   MsgType
	Length uint32
}

// ParseHeader validates the first HeaderLen bytes of b.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderLen {
		return Header{}, fmt.Errorf("rbs: header: %d bytes: %w", len(b), ErrTruncated)
	}
	if string(b[0:4]) != Magic {
		return Header{}, fmt.Errorf("rbs: header: %q: %w", b[0:4], ErrBadMagic)
	}
	if b[4] != Version {
		return Header{}, fmt.Errorf("rbs: header: version %d: %w", b[4], ErrBadVersion)
	}
	if f := binary.BigEndian.Uint16(b[6:8]); f != 0 {
		return Header{}, fmt.Errorf("rbs: header: flags %#x: %w", f, ErrBadFlags)
	}
	t := MsgType(b[5])
	if newMessage(t) == nil {
		return Header{}, fmt.Errorf("rbs: header: %s: %w", t, ErrUnknownType)
	}
	n := binary.BigEndian.Uint32(b[8:12])
	if n > MaxPayload {
		return Header{}, fmt.Errorf("rbs: header: %s length %d: %w", t, n, ErrTooLarge)
	}
	return Header{Type: t, Length: n}, nil
}

func newMessage(t MsgType) Message {
	switch t {
	case TypeHello:
		return new(Hello)
	case TypeKeepalive:
		return new(Keepalive)
	case TypeBatchBegin:
		return new(BatchBegin)
	case TypeEntry:
		return new(Entry)
	case TypeBatchEnd:
		return new(BatchEnd)
	case TypeAck:
		return new(Ack)
	case TypeResyncRequest:
		return new(ResyncRequest)
	case TypeProfileState:
		return new(ProfileState)
	case TypeClose:
		return new(Close)
	}
	return nil
}

// Parse decodes exactly one complete frame.
func Parse(frame []byte) (Message, error) {
	h, payload, err := splitFrame(frame)
	if err != nil {
		return nil, err
	}
	m := newMessage(h.Type)
	if err := m.parsePayload(payload); err != nil {
		return nil, fmt.Errorf("rbs: parse %s: %w", h.Type, err)
	}
	return m, nil
}

func splitFrame(frame []byte) (Header, []byte, error) {
	h, err := ParseHeader(frame)
	if err != nil {
		return Header{}, nil, err
	}
	payload := frame[HeaderLen:]
	if uint32(len(payload)) < h.Length {
		return Header{}, nil, fmt.Errorf("rbs: %s: payload %d of %d bytes: %w", h.Type, len(payload), h.Length, ErrTruncated)
	}
	if uint32(len(payload)) > h.Length {
		return Header{}, nil, fmt.Errorf("rbs: %s: %d bytes after frame: %w", h.Type, uint32(len(payload))-h.Length, ErrTrailingData)
	}
	return h, payload, nil
}

func unmarshalAs(frame []byte, m Message) error {
	h, payload, err := splitFrame(frame)
	if err != nil {
		return err
	}
	if h.Type != m.Type() {
		return fmt.Errorf("rbs: want %s, got %s: %w", m.Type(), h.Type, ErrUnknownType)
	}
	if err := m.parsePayload(payload); err != nil {
		return fmt.Errorf("rbs: parse %s: %w", h.Type, err)
	}
	return nil
}

// Reader reads frames from a byte stream. It never allocates more than
// MaxPayload bytes for one frame.
type Reader struct {
	r   io.Reader
	hdr [HeaderLen]byte
	buf []byte
	// reuseEntry makes every Entry read the same *Entry, valid until the
	// next ReadMessage (a batch is mostly entries: one allocation each
	// otherwise).
	reuseEntry bool
	entry      Entry
}

// NewReader returns a Reader reading from r.
func NewReader(r io.Reader) *Reader { return &Reader{r: r} }

// ReadMessage reads the next frame. It returns io.EOF only on a clean end of
// stream between frames, and the frame size in bytes.
func (r *Reader) ReadMessage() (Message, int, error) {
	if _, err := io.ReadFull(r.r, r.hdr[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, 0, io.EOF
		}
		return nil, 0, fmt.Errorf("rbs: read header: %w", err)
	}
	h, err := ParseHeader(r.hdr[:])
	if err != nil {
		return nil, HeaderLen, err
	}
	if cap(r.buf) < int(h.Length) {
		r.buf = make([]byte, h.Length)
	}
	p := r.buf[:h.Length]
	if _, err := io.ReadFull(r.r, p); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, HeaderLen, fmt.Errorf("rbs: read %s payload: %w", h.Type, err)
	}
	var m Message
	if h.Type == TypeEntry && r.reuseEntry {
		m = &r.entry
	} else {
		m = newMessage(h.Type)
	}
	if err := m.parsePayload(p); err != nil {
		return nil, HeaderLen + len(p), fmt.Errorf("rbs: parse %s: %w", h.Type, err)
	}
	return m, HeaderLen + len(p), nil
}

// WriteMessage marshals m and writes the frame to w.
func WriteMessage(w io.Writer, m Message) (int, error) {
	b, err := Marshal(m)
	if err != nil {
		return 0, err
	}
	return w.Write(b)
}

// ---- encoding helpers ----

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidField}, args...)...)
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if len(d.b) < n {
		d.err = fmt.Errorf("need %d bytes, have %d: %w", n, len(d.b), ErrTruncated)
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) u8() uint8 {
	if p := d.take(1); p != nil {
		return p[0]
	}
	return 0
}

func (d *decoder) u16() uint16 {
	if p := d.take(2); p != nil {
		return binary.BigEndian.Uint16(p)
	}
	return 0
}

func (d *decoder) u32() uint32 {
	if p := d.take(4); p != nil {
		return binary.BigEndian.Uint32(p)
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if p := d.take(8); p != nil {
		return binary.BigEndian.Uint64(p)
	}
	return 0
}

// addr decodes 16 bytes; all zero decodes to the zero netip.Addr.
func (d *decoder) addr() netip.Addr {
	p := d.take(16)
	if p == nil {
		return netip.Addr{}
	}
	a := netip.AddrFrom16([16]byte(p))
	if a.IsUnspecified() {
		return netip.Addr{}
	}
	return a
}

func (d *decoder) str(limit int, what string) string {
	n := int(d.u16())
	if d.err != nil {
		return ""
	}
	if n > limit {
		d.err = invalid("%s length %d exceeds %d", what, n, limit)
		return ""
	}
	return string(d.take(n))
}

// done reports the first decoding error, or trailing bytes.
func (d *decoder) done() error {
	if d.err != nil {
		return d.err
	}
	if len(d.b) != 0 {
		return fmt.Errorf("%d bytes: %w", len(d.b), ErrTrailingData)
	}
	return nil
}

func appendU16(b []byte, v uint16) []byte { return binary.BigEndian.AppendUint16(b, v) }
func appendU32(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }
func appendU64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }

// appendAddr encodes a as 16 bytes; the zero Addr (and ::) encode as zeros.
// Zones are not carried.
func appendAddr(b []byte, a netip.Addr) []byte {
	if !a.IsValid() {
		var z [16]byte
		return append(b, z[:]...)
	}
	a16 := a.As16()
	return append(b, a16[:]...)
}

func appendStr(b []byte, s string, limit int, what string) ([]byte, error) {
	if len(s) > limit {
		return nil, invalid("%s length %d exceeds %d", what, len(s), limit)
	}
	b = appendU16(b, uint16(len(s)))
	return append(b, s...), nil
}

// ---- messages ----

// ProfileInfo announces one profile in Hello and ProfileState.
type ProfileInfo struct {
	BackupID uint32
	Role     Role
	Services ServiceMask
}

func (p ProfileInfo) validate() error {
	if p.Role > RoleBackup {
		return invalid("backup-id %d: %s", p.BackupID, p.Role)
	}
	return nil
}

func (p ProfileInfo) append(b []byte) []byte {
	b = appendU32(b, p.BackupID)
	return append(b, byte(p.Role), byte(p.Services))
}

func (d *decoder) profileInfo() ProfileInfo {
	return ProfileInfo{BackupID: d.u32(), Role: Role(d.u8()), Services: ServiceMask(d.u8())}
}

// Hello opens a session. Both sides send it first.
type Hello struct {
	SysName string
	// HoldTime is carried in whole milliseconds.
	HoldTime     time.Duration
	Capabilities uint32
	Profiles     []ProfileInfo
}

// Type implements Message.
func (*Hello) Type() MsgType { return TypeHello }

func (m *Hello) appendPayload(b []byte) ([]byte, error) {
	if m.HoldTime < 0 || m.HoldTime/time.Millisecond > 0xffffffff {
		return nil, invalid("hold time %v out of range", m.HoldTime)
	}
	if len(m.Profiles) > MaxHelloProfiles {
		return nil, invalid("%d profiles exceeds %d", len(m.Profiles), MaxHelloProfiles)
	}
	seen := make(map[uint32]bool, len(m.Profiles))
	for _, p := range m.Profiles {
		if err := p.validate(); err != nil {
			return nil, err
		}
		if seen[p.BackupID] {
			return nil, invalid("duplicate backup-id %d", p.BackupID)
		}
		seen[p.BackupID] = true
	}
	b, err := appendStr(b, m.SysName, MaxSysName, "sysname")
	if err != nil {
		return nil, err
	}
	b = appendU32(b, uint32(m.HoldTime/time.Millisecond))
	b = appendU32(b, m.Capabilities)
	b = appendU16(b, uint16(len(m.Profiles)))
	for _, p := range m.Profiles {
		b = p.append(b)
	}
	return b, nil
}

func (m *Hello) parsePayload(b []byte) error {
	d := decoder{b: b}
	name := d.str(MaxSysName, "sysname")
	hold := time.Duration(d.u32()) * time.Millisecond
	caps := d.u32()
	n := int(d.u16())
	if d.err == nil && n > MaxHelloProfiles {
		return invalid("%d profiles exceeds %d", n, MaxHelloProfiles)
	}
	if d.err == nil && n*6 > len(d.b) {
		return fmt.Errorf("%d profiles need %d bytes, have %d: %w", n, n*6, len(d.b), ErrTruncated)
	}
	var profiles []ProfileInfo
	if n > 0 {
		profiles = make([]ProfileInfo, 0, n)
	}
	seen := make(map[uint32]bool, n)
	for i := 0; i < n && d.err == nil; i++ {
		p := d.profileInfo()
		if d.err != nil {
			break
		}
		if err := p.validate(); err != nil {
			return err
		}
		if seen[p.BackupID] {
			return invalid("duplicate backup-id %d", p.BackupID)
		}
		seen[p.BackupID] = true
		profiles = append(profiles, p)
	}
	if err := d.done(); err != nil {
		return err
	}
	*m = Hello{SysName: name, HoldTime: hold, Capabilities: caps, Profiles: profiles}
	return nil
}

// Keepalive keeps the hold timer of the peer from expiring.
type Keepalive struct{}

// Type implements Message.
func (*Keepalive) Type() MsgType { return TypeKeepalive }

func (*Keepalive) appendPayload(b []byte) ([]byte, error) { return b, nil }

func (m *Keepalive) parsePayload(b []byte) error {
	d := decoder{b: b}
	return d.done()
}

// BatchBegin starts a full transfer of a profile's entries.
type BatchBegin struct {
	BackupID uint32
	Epoch    uint64
	Count    uint32
}

// Type implements Message.
func (*BatchBegin) Type() MsgType { return TypeBatchBegin }

func (m *BatchBegin) appendPayload(b []byte) ([]byte, error) {
	if m.Epoch == 0 {
		return nil, invalid("epoch 0")
	}
	b = appendU32(b, m.BackupID)
	b = appendU64(b, m.Epoch)
	return appendU32(b, m.Count), nil
}

func (m *BatchBegin) parsePayload(b []byte) error {
	d := decoder{b: b}
	v := BatchBegin{BackupID: d.u32(), Epoch: d.u64(), Count: d.u32()}
	if err := d.done(); err != nil {
		return err
	}
	if v.Epoch == 0 {
		return invalid("epoch 0")
	}
	*m = v
	return nil
}

// Entry carries one MLD entry, inside a batch (always OpUpsert) or as a
// real-time delta.
type Entry struct {
	BackupID uint32
	Seq      uint64
	Op       Op
	MLD      MLDEntry
}

// Type implements Message.
func (*Entry) Type() MsgType { return TypeEntry }

func (m *Entry) appendPayload(b []byte) ([]byte, error) {
	if m.Seq == 0 {
		return nil, invalid("seq 0")
	}
	if m.Op != OpUpsert && m.Op != OpDelete {
		return nil, invalid("%s", m.Op)
	}
	b = appendU32(b, m.BackupID)
	b = appendU64(b, m.Seq)
	b = append(b, byte(m.Op))
	return m.MLD.append(b)
}

func (m *Entry) parsePayload(b []byte) error {
	d := decoder{b: b}
	id := d.u32()
	seq := d.u64()
	op := Op(d.u8())
	if d.err != nil {
		return d.err
	}
	if seq == 0 {
		return invalid("seq 0")
	}
	if op != OpUpsert && op != OpDelete {
		return invalid("%s", op)
	}
	e, err := d.mldEntry()
	if err != nil {
		return err
	}
	if err := d.done(); err != nil {
		return err
	}
	*m = Entry{BackupID: id, Seq: seq, Op: op, MLD: e}
	return nil
}

// BatchEnd closes a batch; Seq is the last sequence number it covers.
type BatchEnd struct {
	BackupID uint32
	Epoch    uint64
	Seq      uint64
}

// Type implements Message.
func (*BatchEnd) Type() MsgType { return TypeBatchEnd }

func (m *BatchEnd) appendPayload(b []byte) ([]byte, error) {
	if m.Epoch == 0 {
		return nil, invalid("epoch 0")
	}
	b = appendU32(b, m.BackupID)
	b = appendU64(b, m.Epoch)
	return appendU64(b, m.Seq), nil
}

func (m *BatchEnd) parsePayload(b []byte) error {
	d := decoder{b: b}
	v := BatchEnd{BackupID: d.u32(), Epoch: d.u64(), Seq: d.u64()}
	if err := d.done(); err != nil {
		return err
	}
	if v.Epoch == 0 {
		return invalid("epoch 0")
	}
	*m = v
	return nil
}

// Ack acknowledges every entry of Epoch up to and including Seq.
type Ack struct {
	BackupID uint32
	Epoch    uint64
	Seq      uint64
}

// Type implements Message.
func (*Ack) Type() MsgType { return TypeAck }

func (m *Ack) appendPayload(b []byte) ([]byte, error) {
	if m.Epoch == 0 {
		return nil, invalid("epoch 0")
	}
	b = appendU32(b, m.BackupID)
	b = appendU64(b, m.Epoch)
	return appendU64(b, m.Seq), nil
}

func (m *Ack) parsePayload(b []byte) error {
	d := decoder{b: b}
	v := Ack{BackupID: d.u32(), Epoch: d.u64(), Seq: d.u64()}
	if err := d.done(); err != nil {
		return err
	}
	if v.Epoch == 0 {
		return invalid("epoch 0")
	}
	*m = v
	return nil
}

// ResyncRequest asks the sender for a new batch. Epoch 0 means "whatever
// the current epoch is"; a sender ignores a request for an older epoch.
type ResyncRequest struct {
	BackupID uint32
	Epoch    uint64
	Reason   ResyncReason
}

// Type implements Message.
func (*ResyncRequest) Type() MsgType { return TypeResyncRequest }

func (m *ResyncRequest) appendPayload(b []byte) ([]byte, error) {
	b = appendU32(b, m.BackupID)
	b = appendU64(b, m.Epoch)
	return append(b, byte(m.Reason)), nil
}

func (m *ResyncRequest) parsePayload(b []byte) error {
	d := decoder{b: b}
	v := ResyncRequest{BackupID: d.u32(), Epoch: d.u64(), Reason: ResyncReason(d.u8())}
	if err := d.done(); err != nil {
		return err
	}
	*m = v
	return nil
}

// ProfileState announces a role change (or a profile added after Hello).
type ProfileState struct {
	ProfileInfo
}

// Type implements Message.
func (*ProfileState) Type() MsgType { return TypeProfileState }

func (m *ProfileState) appendPayload(b []byte) ([]byte, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	return m.append(b), nil
}

func (m *ProfileState) parsePayload(b []byte) error {
	d := decoder{b: b}
	p := d.profileInfo()
	if err := d.done(); err != nil {
		return err
	}
	if err := p.validate(); err != nil {
		return err
	}
	*m = ProfileState{p}
	return nil
}

// Close tells the peer why the session is being closed.
type Close struct {
	Reason string
}

// Type implements Message.
func (*Close) Type() MsgType { return TypeClose }

func (m *Close) appendPayload(b []byte) ([]byte, error) {
	return appendStr(b, m.Reason, MaxReason, "reason")
}

func (m *Close) parsePayload(b []byte) error {
	d := decoder{b: b}
	r := d.str(MaxReason, "reason")
	if err := d.done(); err != nil {
		return err
	}
	*m = Close{Reason: r}
	return nil
}

// MarshalBinary encodes the message as a complete frame.
func (m *Hello) MarshalBinary() ([]byte, error) { return Marshal(m) }

// UnmarshalBinary decodes a complete frame of this type.
func (m *Hello) UnmarshalBinary(b []byte) error { return unmarshalAs(b, m) }

// MarshalBinary encodes the message as a complete frame.
func (m *Keepalive) MarshalBinary() ([]byte, error) { return Marshal(m) }

// UnmarshalBinary decodes a complete frame of this type.
func (m *Keepalive) UnmarshalBinary(b []byte) error { return unmarshalAs(b, m) }

// MarshalBinary encodes the message as a complete frame.
func (m *BatchBegin) MarshalBinary() ([]byte, error) { return Marshal(m) }

// UnmarshalBinary decodes a complete frame of this type.
func (m *BatchBegin) UnmarshalBinary(b []byte) error { return unmarshalAs(b, m) }

// MarshalBinary encodes the message as a complete frame.
func (m *Entry) MarshalBinary() ([]byte, error) { return Marshal(m) }

// UnmarshalBinary decodes a complete frame of this type.
func (m *Entry) UnmarshalBinary(b []byte) error { return unmarshalAs(b, m) }

// MarshalBinary encodes the message as a complete frame.
func (m *BatchEnd) MarshalBinary() ([]byte, error) { return Marshal(m) }

// UnmarshalBinary decodes a complete frame of this type.
func (m *BatchEnd) UnmarshalBinary(b []byte) error { return unmarshalAs(b, m) }

// MarshalBinary encodes the message as a complete frame.
func (m *Ack) MarshalBinary() ([]byte, error) { return Marshal(m) }

// UnmarshalBinary decodes a complete frame of this type.
func (m *Ack) UnmarshalBinary(b []byte) error { return unmarshalAs(b, m) }

// MarshalBinary encodes the message as a complete frame.
func (m *ResyncRequest) MarshalBinary() ([]byte, error) { return Marshal(m) }

// UnmarshalBinary decodes a complete frame of this type.
func (m *ResyncRequest) UnmarshalBinary(b []byte) error { return unmarshalAs(b, m) }

// MarshalBinary encodes the message as a complete frame.
func (m *ProfileState) MarshalBinary() ([]byte, error) { return Marshal(m) }

// UnmarshalBinary decodes a complete frame of this type.
func (m *ProfileState) UnmarshalBinary(b []byte) error { return unmarshalAs(b, m) }

// MarshalBinary encodes the message as a complete frame.
func (m *Close) MarshalBinary() ([]byte, error) { return Marshal(m) }

// UnmarshalBinary decodes a complete frame of this type.
func (m *Close) UnmarshalBinary(b []byte) error { return unmarshalAs(b, m) }
