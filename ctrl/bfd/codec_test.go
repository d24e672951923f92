package bfd

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestMarshalWireFormat(t *testing.T) {
	p := &Packet{
		Diag: DiagNeighborSignaledDown, State: StateUp, Poll: true,
		DetectMult: 3, MyDiscr: 0x01020304, YourDiscr: 0xa0b0c0d0,
		DesiredMinTx: 3300, RequiredMinRx: 10000, RequiredMinEchoRx: 0x11223344,
	}
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{
		0x20 | 3, // version 1, diag 3
		0xc0 | 0x20,
		3, 24,
		0x01, 0x02, 0x03, 0x04,
		0xa0, 0xb0, 0xc0, 0xd0,
		0x00, 0x00, 0x0c, 0xe4, // 3300 µs
		0x00, 0x00, 0x27, 0x10, // 10000 µs
		0x11, 0x22, 0x33, 0x44,
	}
	if !bytes.Equal(b, want) {
		t.Fatalf("marshal:\n got % x\nwant % x", b, want)
	}
	// Every flag bit at its place (RFC 5880 §4.1: |Sta|P|F|C|A|D|M|).
	flags := []struct {
		name string
		set  func(*Packet)
		bit  byte
	}{
		{"P", func(p *Packet) { p.Poll = true }, 0x20},
		{"F", func(p *Packet) { p.Final = true }, 0x10},
		{"C", func(p *Packet) { p.ControlPlaneIndependent = true }, 0x08},
		{"A", func(p *Packet) { p.Auth = []byte{1, 5, 1, 'x', 'y'} }, 0x04},
		{"D", func(p *Packet) { p.Demand = true }, 0x02},
	}
	for _, f := range flags {
		q := &Packet{State: StateDown, DetectMult: 1, MyDiscr: 1}
		f.set(q)
		b, err := q.Marshal()
		if err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		if b[1] != 0x40|f.bit {
			t.Errorf("%s: flags byte %#02x, want %#02x", f.name, b[1], 0x40|f.bit)
		}
		var got Packet
		if err := Parse(b, &got); err != nil || !reflect.DeepEqual(&got, q) {
			t.Errorf("%s: parse: %+v, %v", f.name, got, err)
		}
	}
	for st := StateAdminDown; st <= StateUp; st++ {
		q := &Packet{State: st, DetectMult: 1, MyDiscr: 1, YourDiscr: 2}
		b, _ := q.Marshal()
		if b[1]>>6 != byte(st) {
			t.Errorf("state %v encoded as %d", st, b[1]>>6)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	tests := []Packet{
		{State: StateDown, DetectMult: 3, MyDiscr: 1, DesiredMinTx: 1000000, RequiredMinRx: 3300},
		{State: StateAdminDown, Diag: DiagAdminDown, DetectMult: 255, MyDiscr: 0xffffffff},
		{State: StateInit, DetectMult: 1, MyDiscr: 7, YourDiscr: 9, Final: true, ControlPlaneIndependent: true},
		{State: StateUp, Diag: MaxDiag, DetectMult: 2, MyDiscr: 7, YourDiscr: 9, Demand: true,
			DesiredMinTx: 0xffffffff, RequiredMinRx: 0, RequiredMinEchoRx: 50000},
		// Keyed SHA1 is 28 bytes of auth section (RFC 5880 §4.4).
		{State: StateUp, DetectMult: 3, MyDiscr: 7, YourDiscr: 9, Auth: append([]byte{4, 28, 1, 0}, make([]byte, 24)...)},
	}
	for _, p := range tests {
		b, err := p.Marshal()
		if err != nil {
			t.Fatalf("%+v: %v", p, err)
		}
		if len(b) != p.Len() || int(b[3]) != p.Len() {
			t.Fatalf("%+v: %d bytes, length field %d", p, len(b), b[3])
		}
		var got Packet
		if err := Parse(b, &got); err != nil {
			t.Fatalf("%+v: parse: %v", p, err)
		}
		if !reflect.DeepEqual(got, p) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, p)
		}
	}
}

func goodPacket(t testing.TB) []byte {
	b, err := (&Packet{State: StateUp, DetectMult: 3, MyDiscr: 1, YourDiscr: 2, DesiredMinTx: 3300, RequiredMinRx: 3300}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The receive checks of RFC 5880 §6.8.6 that need no session, each with
// its sentinel error and drop reason.
func TestParseErrors(t *testing.T) {
	good := goodPacket(t)
	mod := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	tests := []struct {
		name   string
		b      []byte
		want   error
		reason DropReason
	}{
		{"empty", nil, ErrTruncated, DropTruncated},
		{"23 bytes", good[:23], ErrTruncated, DropTruncated},
		{"version 0", mod(func(b []byte) []byte { b[0] &= 0x1f; return b }), ErrBadVersion, DropBadVersion},
		{"version 2", mod(func(b []byte) []byte { b[0] = 2<<5 | b[0]&0x1f; return b }), ErrBadVersion, DropBadVersion},
		{"length 23", mod(func(b []byte) []byte { b[3] = 23; return b }), ErrBadLength, DropBadLength},
		{"length 0", mod(func(b []byte) []byte { b[3] = 0; return b }), ErrBadLength, DropBadLength},
		{"length 25 with A", mod(func(b []byte) []byte { b[1] |= flagAuth; b[3] = 25; return append(b, 1) }), ErrBadLength, DropBadLength},
		{"length beyond payload", mod(func(b []byte) []byte { b[3] = 25; return b }), ErrTruncated, DropTruncated},
		{"A, auth len 1", mod(func(b []byte) []byte { b[1] |= flagAuth; b[3] = 26; return append(b, 1, 1) }), ErrBadAuthLen, DropBadAuthLen},
		{"A, auth len past length", mod(func(b []byte) []byte { b[1] |= flagAuth; b[3] = 26; return append(b, 1, 3, 0) }), ErrBadAuthLen, DropBadAuthLen},
		{"A, auth len short of length", mod(func(b []byte) []byte { b[1] |= flagAuth; b[3] = 27; return append(b, 1, 2, 0) }), ErrBadAuthLen, DropBadAuthLen},
		{"detect mult 0", mod(func(b []byte) []byte { b[2] = 0; return b }), ErrZeroDetectMult, DropZeroDetectMult},
		{"multipoint", mod(func(b []byte) []byte { b[1] |= flagMultipoint; return b }), ErrMultipoint, DropMultipoint},
		{"my discr 0", mod(func(b []byte) []byte { copy(b[4:8], []byte{0, 0, 0, 0}); return b }), ErrZeroMyDiscr, DropZeroMyDiscr},
		{"your discr 0 in Up", mod(func(b []byte) []byte { copy(b[8:12], []byte{0, 0, 0, 0}); return b }), ErrZeroYourDiscr, DropZeroYourDiscr},
		{"your discr 0 in Init", mod(func(b []byte) []byte { copy(b[8:12], []byte{0, 0, 0, 0}); b[1] = b[1]&0x3f | 2<<6; return b }), ErrZeroYourDiscr, DropZeroYourDiscr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p Packet
			err := Parse(tt.b, &p)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Parse: got %v, want %v", err, tt.want)
			}
			if r := DropReasonOf(err); r != tt.reason {
				t.Fatalf("drop reason %v, want %v", r, tt.reason)
			}
		})
	}
	// Your Discriminator 0 is fine in Down and AdminDown.
	for _, st := range []State{StateDown, StateAdminDown} {
		b := mod(func(b []byte) []byte { copy(b[8:12], []byte{0, 0, 0, 0}); b[1] = b[1]&0x3f | byte(st)<<6; return b })
		var p Packet
		if err := Parse(b, &p); err != nil || p.State != st || p.YourDiscr != 0 {
			t.Errorf("your discr 0 in %v: %+v, %v", st, p, err)
		}
	}
	// Bytes past Length, and a Length over 24 without the A bit, are
	// ignored; the packet is parsed from its mandatory section.
	for _, b := range [][]byte{
		append(bytes.Clone(good), 0xde, 0xad),
		mod(func(b []byte) []byte { b[3] = 26; return append(b, 0xde, 0xad) }),
	} {
		var p Packet
		if err := Parse(b, &p); err != nil || p.MyDiscr != 1 || p.Auth != nil {
			t.Errorf("% x: %+v, %v", b, p, err)
		}
	}
	// P and F together are accepted on receive (RFC 5880 §6.8.6 lists no
	// such check) but never sent.
	var p Packet
	if err := Parse(mod(func(b []byte) []byte { b[1] |= flagPoll | flagFinal; return b }), &p); err != nil || !p.Poll || !p.Final {
		t.Errorf("P and F: %+v, %v", p, err)
	}
}

func TestMarshalErrors(t *testing.T) {
	ok := Packet{State: StateUp, DetectMult: 3, MyDiscr: 1, YourDiscr: 2}
	tests := []struct {
		name string
		mod  func(*Packet)
		want error
	}{
		{"detect mult 0", func(p *Packet) { p.DetectMult = 0 }, ErrZeroDetectMult},
		{"multipoint", func(p *Packet) { p.Multipoint = true }, ErrMultipoint},
		{"my discr 0", func(p *Packet) { p.MyDiscr = 0 }, ErrZeroMyDiscr},
		{"your discr 0 in Up", func(p *Packet) { p.YourDiscr = 0 }, ErrZeroYourDiscr},
		{"poll and final", func(p *Packet) { p.Poll, p.Final = true, true }, ErrPollFinal},
		{"diag 32", func(p *Packet) { p.Diag = 32 }, ErrBadField},
		{"state 4", func(p *Packet) { p.State = 4 }, ErrBadField},
		{"auth of 1 byte", func(p *Packet) { p.Auth = []byte{1} }, ErrBadAuthLen},
		{"auth len mismatch", func(p *Packet) { p.Auth = []byte{1, 4, 0} }, ErrBadAuthLen},
		{"auth too long", func(p *Packet) { p.Auth = append([]byte{1, 0}, make([]byte, 240)...) }, ErrBadAuthLen},
	}
	for _, tt := range tests {
		p := ok
		tt.mod(&p)
		if _, err := p.Marshal(); !errors.Is(err, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, err, tt.want)
		}
	}
	if _, err := ok.MarshalTo(make([]byte, 23)); err == nil {
		t.Error("MarshalTo into 23 bytes succeeded")
	}
}

func TestIntervals(t *testing.T) {
	for _, tt := range []struct {
		d  time.Duration
		us uint32
	}{
		{3300 * time.Microsecond, 3300},
		{time.Second, 1000000},
		{1500 * time.Nanosecond, 1},
		{-time.Second, 0},
		{time.Duration(1) << 62, 0xffffffff},
	} {
		if got := Microseconds(tt.d); got != tt.us {
			t.Errorf("Microseconds(%v) = %d, want %d", tt.d, got, tt.us)
		}
	}
	if Duration(3300) != 3300*time.Microsecond {
		t.Error("Duration(3300)")
	}
}

// Parse must not allocate: it runs on every received packet, floods
// included.
func TestParseAllocs(t *testing.T) {
	good := goodPacket(t)
	bad := bytes.Clone(good)
	bad[2] = 0
	var p Packet
	if n := testing.AllocsPerRun(100, func() { _ = Parse(good, &p) }); n != 0 {
		t.Errorf("Parse of a good packet: %v allocations", n)
	}
	var buf [HeaderLen]byte
	if n := testing.AllocsPerRun(100, func() { _, _ = p.MarshalTo(buf[:]) }); n != 0 {
		t.Errorf("MarshalTo: %v allocations", n)
	}
}

// FuzzParse checks that Parse never panics and that whatever it accepts
// survives parse -> marshal -> parse unchanged, the re-marshaled bytes
// equal to the input up to Length (the Length byte itself differs only
// when a packet without the A bit claimed more than 24 bytes).
func FuzzParse(f *testing.F) {
	good := goodPacket(f)
	f.Add(good)
	f.Add(good[:23]) // truncated
	down, _ := (&Packet{State: StateDown, DetectMult: 3, MyDiscr: 0x12345678, DesiredMinTx: 1000000, RequiredMinRx: 3300}).Marshal()
	f.Add(down)
	sha1, _ := (&Packet{State: StateUp, DetectMult: 3, MyDiscr: 1, YourDiscr: 2, Auth: append([]byte{4, 28, 1, 0}, make([]byte, 24)...)}).Marshal()
	f.Add(sha1)
	f.Add(append(bytes.Clone(good), 1, 2, 3))                                                          // trailing bytes
	f.Add([]byte{0x20, 0xc4, 3, 26, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2}) // A, auth len 2
	f.Add([]byte{0x20, 0xc4, 3, 26, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0}) // regression: auth len 0
	f.Add([]byte{0x20, 0xc1, 3, 24, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})       // multipoint
	f.Add([]byte{0x20, 0xb0, 3, 24, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})       // Init, P and F
	f.Fuzz(func(t *testing.T, b []byte) {
		var p Packet
		if err := Parse(b, &p); err != nil {
			if DropReasonOf(err) >= NumDropReasons {
				t.Fatalf("no drop reason for %v", err)
			}
			return
		}
		if p.Poll && p.Final {
			// Legal to receive, illegal to send.
			if _, err := p.Marshal(); !errors.Is(err, ErrPollFinal) {
				t.Fatalf("marshal with P and F: %v", err)
			}
			p.Final = false
			b = bytes.Clone(b)
			b[1] &^= flagFinal
		}
		out, err := p.Marshal()
		if err != nil {
			t.Fatalf("marshal of parsed %+v: %v", p, err)
		}
		var p2 Packet
		if err := Parse(out, &p2); err != nil {
			t.Fatalf("reparse: %v", err)
		}
		if !reflect.DeepEqual(p, p2) {
			t.Fatalf("round trip:\n%+v\n%+v", p, p2)
		}
		in := bytes.Clone(b[:len(out)])
		if len(p.Auth) == 0 {
			in[3] = HeaderLen
		}
		if !bytes.Equal(out, in) {
			t.Fatalf("re-marshaled bytes differ:\n in % x\nout % x", b, out)
		}
	})
}
