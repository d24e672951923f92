package rbs

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

func sampleEntry() MLDEntry {
	return MLDEntry{
		Group:        netip.MustParseAddr("ff3e::1234"),
		FilterMode:   FilterExclude,
		Compat:       2,
		GroupTimerMs: 259000,
		V1HostMs:     0,
		LastReporter: netip.MustParseAddr("fe80::1"),
		Sources: []MLDSource{
			{Addr: netip.MustParseAddr("2001:db8::1"), TimerMs: 12000},
			{Addr: netip.MustParseAddr("2001:db8::2"), TimerMs: 0},
		},
	}
}

func sampleMessages() map[string]Message {
	return map[string]Message{
		"hello": &Hello{SysName: "DeviceA", HoldTime: 9 * time.Second, Capabilities: 0,
			Profiles: []ProfileInfo{{BackupID: 10, Role: RoleMaster, Services: ServiceMLD}, {BackupID: 11, Role: RoleUnknown}}},
		"hello-empty":   &Hello{HoldTime: 3 * time.Second},
		"keepalive":     &Keepalive{},
		"batch-begin":   &BatchBegin{BackupID: 10, Epoch: 7, Count: 1000},
		"entry":         &Entry{BackupID: 10, Seq: 42, Op: OpUpsert, MLD: sampleEntry()},
		"entry-v1":      &Entry{BackupID: 10, Seq: 1, Op: OpDelete, MLD: MLDEntry{Group: netip.MustParseAddr("ff05::2"), FilterMode: FilterExclude, Compat: 1, V1HostMs: 260000}},
		"batch-end":     &BatchEnd{BackupID: 10, Epoch: 7, Seq: 1000},
		"ack":           &Ack{BackupID: 10, Epoch: 7, Seq: 999},
		"resync":        &ResyncRequest{BackupID: 10, Epoch: 0, Reason: ResyncGap},
		"profile-state": &ProfileState{ProfileInfo{BackupID: 10, Role: RoleBackup, Services: ServiceMLD}},
		"close":         &Close{Reason: "hold timer expired"},
	}
}

func TestRoundTrip(t *testing.T) {
	for name, m := range sampleMessages() {
		t.Run(name, func(t *testing.T) {
			b, err := Marshal(m)
			if err != nil {
				t.Fatalf("marshal: %v", err)
			}
			got, err := Parse(b)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if !reflect.DeepEqual(got, m) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, m)
			}
			// Typed UnmarshalBinary and stream reader agree.
			typed := newMessage(m.Type())
			if err := typed.(interface{ UnmarshalBinary([]byte) error }).UnmarshalBinary(b); err != nil {
				t.Fatalf("unmarshal binary: %v", err)
			}
			if !reflect.DeepEqual(typed, m) {
				t.Fatalf("typed round trip mismatch")
			}
			r := NewReader(bytes.NewReader(append(append([]byte{}, b...), b...)))
			for i := range 2 {
				sm, n, err := r.ReadMessage()
				if err != nil || n != len(b) || !reflect.DeepEqual(sm, m) {
					t.Fatalf("reader frame %d: n=%d err=%v", i, n, err)
				}
			}
			if _, _, err := r.ReadMessage(); err != io.EOF {
				t.Fatalf("reader end: %v, want io.EOF", err)
			}
		})
	}
}

func TestHeaderLayout(t *testing.T) {
	b, err := Marshal(&Ack{BackupID: 10, Epoch: 1, Seq: 2})
	if err != nil {
		t.Fatal(err)
	}
	want := "48435242" + "01" + "06" + "0000" + "00000014" +
		"0000000a" + "0000000000000001" + "0000000000000002"
	if got := hex.EncodeToString(b); got != want {
		t.Fatalf("ack frame\n got %s\nwant %s", got, want)
	}
}

func TestEntryLayout(t *testing.T) {
	e := MLDEntry{Group: netip.MustParseAddr("ff02::db8"), FilterMode: FilterInclude, Compat: 2, GroupTimerMs: 1,
		Sources: []MLDSource{{Addr: netip.MustParseAddr("2001:db8::1"), TimerMs: 0x0102}}}
	b, err := Marshal(&Entry{BackupID: 1, Seq: 1, Op: OpUpsert, MLD: e})
	if err != nil {
		t.Fatal(err)
	}
	p := b[HeaderLen:]
	if len(p) != 4+8+1+entryFixedLen+sourceLen {
		t.Fatalf("payload %d bytes", len(p))
	}
	ent := p[13:]
	if ent[0] != 0xff || ent[1] != 0x02 || ent[16] != 1 || ent[17] != 2 ||
		binary.BigEndian.Uint32(ent[18:22]) != 1 || binary.BigEndian.Uint16(ent[42:44]) != 1 ||
		binary.BigEndian.Uint32(ent[60:64]) != 0x0102 {
		t.Fatalf("entry layout: %x", ent)
	}
}

func frame(t MsgType, payload []byte) []byte {
	b := []byte(Magic)
	b = append(b, Version, byte(t), 0, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(len(payload)))
	return append(b, payload...)
}

func mustMarshal(t testing.TB, m Message) []byte {
	t.Helper()
	b, err := Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRegressionSeeds lists named malformed inputs and the reason they must
// be rejected with.
func TestRegressionSeeds(t *testing.T) {
	entry := mustMarshal(t, &Entry{BackupID: 1, Seq: 1, Op: OpUpsert, MLD: sampleEntry()})
	hello := mustMarshal(t, &Hello{SysName: "a", HoldTime: time.Second, Profiles: []ProfileInfo{{BackupID: 1}}})
	mutate := func(b []byte, f func([]byte)) []byte {
		c := bytes.Clone(b)
		f(c)
		return c
	}
	groupOff := HeaderLen + 13
	srcCountOff := groupOff + 42
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"short-header", []byte("HCRB\x01"), ErrTruncated},
		{"bad-magic", mutate(entry, func(b []byte) { b[0] = 'X' }), ErrBadMagic},
		{"version-2", mutate(entry, func(b []byte) { b[4] = 2 }), ErrBadVersion},
		{"flags-set", mutate(entry, func(b []byte) { b[7] = 1 }), ErrBadFlags},
		{"type-0", frame(0, nil), ErrUnknownType},
		{"type-200", frame(200, nil), ErrUnknownType},
		{"length-2MiB", mutate(frame(TypeKeepalive, nil), func(b []byte) { binary.BigEndian.PutUint32(b[8:], 2<<20) }), ErrTooLarge},
		{"length-beyond-frame", mutate(entry, func(b []byte) { binary.BigEndian.PutUint32(b[8:], uint32(len(b))) }), ErrTruncated},
		{"trailing-after-frame", append(bytes.Clone(entry), 0), ErrTrailingData},
		{"keepalive-with-payload", frame(TypeKeepalive, []byte{0}), ErrTrailingData},
		{"group-not-multicast", mutate(entry, func(b []byte) { b[groupOff] = 0x20 }), ErrInvalidField},
		{"group-zero", mutate(entry, func(b []byte) { clear(b[groupOff : groupOff+16]) }), ErrInvalidField},
		{"filter-mode-3", mutate(entry, func(b []byte) { b[groupOff+16] = 3 }), ErrInvalidField},
		{"compat-3", mutate(entry, func(b []byte) { b[groupOff+17] = 3 }), ErrInvalidField},
		{"source-count-1025", mutate(entry, func(b []byte) { binary.BigEndian.PutUint16(b[srcCountOff:], 1025) }), ErrInvalidField},
		{"source-count-beyond-payload", mutate(entry, func(b []byte) { binary.BigEndian.PutUint16(b[srcCountOff:], 3) }), ErrTruncated},
		{"source-count-short-leaves-trailing", mutate(entry, func(b []byte) { binary.BigEndian.PutUint16(b[srcCountOff:], 1) }), ErrTrailingData},
		{"duplicate-source", mutate(entry, func(b []byte) { b[srcCountOff+2+15] = 2 }), ErrInvalidField},
		{"source-multicast", mutate(entry, func(b []byte) { b[srcCountOff+2] = 0xff }), ErrInvalidField},
		{"entry-op-0", mutate(entry, func(b []byte) { b[HeaderLen+12] = 0 }), ErrInvalidField},
		{"entry-seq-0", mutate(entry, func(b []byte) { clear(b[HeaderLen+4 : HeaderLen+12]) }), ErrInvalidField},
		{"hello-profile-count-huge", mutate(hello, func(b []byte) { binary.BigEndian.PutUint16(b[HeaderLen+2+1+8:], 0xffff) }), ErrInvalidField},
		{"hello-profile-count-beyond", mutate(hello, func(b []byte) { binary.BigEndian.PutUint16(b[HeaderLen+2+1+8:], 2) }), ErrTruncated},
		{"hello-role-3", mutate(hello, func(b []byte) { b[len(b)-2] = 3 }), ErrInvalidField},
		{"hello-sysname-too-long", frame(TypeHello, []byte{0x01, 0x00}), ErrInvalidField},
		{"hello-duplicate-backup-id", frame(TypeHello, append(hello[HeaderLen:len(hello)-8], 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0)), ErrInvalidField},
		{"batch-begin-epoch-0", frame(TypeBatchBegin, make([]byte, 16)), ErrInvalidField},
		{"ack-epoch-0", frame(TypeAck, make([]byte, 20)), ErrInvalidField},
		{"close-reason-too-long", frame(TypeClose, []byte{0x04, 0x01}), ErrInvalidField},
		{"close-reason-truncated", frame(TypeClose, []byte{0x00, 0x05, 'a'}), ErrTruncated},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Parse(tc.in)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Parse = %v, %v; want %v", m, err, tc.want)
			}
			if ErrorReason(err) == "io" || ErrorReason(err) == "" {
				t.Fatalf("reason %q for %v", ErrorReason(err), err)
			}
		})
	}
}

func TestMarshalRejectsInvalid(t *testing.T) {
	e := sampleEntry()
	tests := map[string]Message{
		"group-unicast":    &Entry{Seq: 1, Op: OpUpsert, MLD: MLDEntry{Group: netip.MustParseAddr("2001:db8::1"), FilterMode: FilterInclude, Compat: 2}},
		"group-ipv4":       &Entry{Seq: 1, Op: OpUpsert, MLD: MLDEntry{Group: netip.MustParseAddr("239.1.1.1"), FilterMode: FilterInclude, Compat: 2}},
		"too-many-sources": &Entry{Seq: 1, Op: OpUpsert, MLD: func() MLDEntry { x := e.Clone(); x.Sources = manySources(MaxSources + 1); return x }()},
		"op-0":             &Entry{Seq: 1, MLD: e},
		"seq-0":            &Entry{Op: OpUpsert, MLD: e},
		"epoch-0":          &BatchBegin{BackupID: 1},
		"sysname-long":     &Hello{SysName: strings.Repeat("x", 256)},
		"dup-profiles":     &Hello{Profiles: []ProfileInfo{{BackupID: 1}, {BackupID: 1}}},
		"hold-negative":    &Hello{HoldTime: -time.Second},
		"role-7":           &ProfileState{ProfileInfo{Role: 7}},
		"reason-long":      &Close{Reason: strings.Repeat("x", MaxReason+1)},
	}
	for name, m := range tests {
		if _, err := Marshal(m); !errors.Is(err, ErrInvalidField) {
			t.Errorf("%s: Marshal err = %v, want ErrInvalidField", name, err)
		}
	}
	// The source limit is inclusive.
	x := e.Clone()
	x.Sources = manySources(MaxSources)
	b := mustMarshal(t, &Entry{Seq: 1, Op: OpUpsert, MLD: x})
	if got, err := Parse(b); err != nil || len(got.(*Entry).MLD.Sources) != MaxSources {
		t.Fatalf("max sources: %v", err)
	}
}

func manySources(n int) []MLDSource {
	s := make([]MLDSource, n)
	for i := range s {
		var a [16]byte
		a[0], a[1] = 0x20, 0x01
		binary.BigEndian.PutUint32(a[12:], uint32(i+1))
		s[i] = MLDSource{Addr: netip.AddrFrom16(a), TimerMs: uint32(i)}
	}
	return s
}

func TestZeroReporterAndZones(t *testing.T) {
	e := sampleEntry()
	e.LastReporter = netip.MustParseAddr("::")
	e.Sources[0].Addr = netip.MustParseAddr("fe80::5%eth0")
	b := mustMarshal(t, &Entry{Seq: 1, Op: OpUpsert, MLD: e})
	m, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	got := m.(*Entry).MLD
	if got.LastReporter.IsValid() {
		t.Errorf("unspecified reporter decoded as %v, want zero Addr", got.LastReporter)
	}
	if got.Sources[0].Addr != netip.MustParseAddr("fe80::5") {
		t.Errorf("zone not stripped: %v", got.Sources[0].Addr)
	}
	if !got.Equal(e) {
		t.Errorf("Equal should ignore zone and ::/zero differences")
	}
}

func TestReaderErrors(t *testing.T) {
	ka := mustMarshal(t, &Keepalive{})
	tests := []struct {
		name   string
		in     []byte
		reason string
	}{
		{"clean-eof", nil, "eof"},
		{"partial-header", ka[:5], "truncated"},
		{"partial-payload", mustMarshal(t, &Close{Reason: "x"})[:HeaderLen+1], "truncated"},
		{"garbage", []byte("GET / HTTP/1.1\r\n\r\n"), "bad-magic"},
		{"huge-length", func() []byte { b := bytes.Clone(ka); binary.BigEndian.PutUint32(b[8:], 0xffffffff); return b }(), "too-large"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := NewReader(bytes.NewReader(tc.in)).ReadMessage()
			if got := ErrorReason(err); got != tc.reason {
				t.Fatalf("reason %q (%v), want %q", got, err, tc.reason)
			}
		})
	}
}

// TestAppendMarshal: frames appended to one buffer read back as the same
// messages, in order; a refused message leaves the buffer as it was.
func TestAppendMarshal(t *testing.T) {
	var buf []byte
	var want []Message
	for name, m := range sampleMessages() {
		var err error
		if buf, err = AppendMarshal(buf, m); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want = append(want, m)
	}
	before := len(buf)
	buf, err := AppendMarshal(buf, &Entry{Op: OpUpsert, MLD: sampleEntry()}) // seq 0
	if !errors.Is(err, ErrInvalidField) || len(buf) != before {
		t.Fatalf("invalid message: err %v, buffer %d -> %d bytes", err, before, len(buf))
	}
	r := NewReader(bytes.NewReader(buf))
	for i, w := range want {
		got, _, err := r.ReadMessage()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, w) {
			t.Fatalf("frame %d: got %+v, want %+v", i, got, w)
		}
	}
	if _, _, err := r.ReadMessage(); err != io.EOF {
		t.Fatalf("after the last frame: %v, want io.EOF", err)
	}
}
