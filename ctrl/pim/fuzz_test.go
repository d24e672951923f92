package pim

import (
	"bytes"
	"reflect"
	"testing"
)

// fuzzRoundTrip parses b with its type nibble forced to typ (so that each
// target explores one message type); when it parses, Marshal must succeed,
// its output must verify and parse back to the same message, and
// marshalling that again must give the same octets (the canonical form).
func fuzzRoundTrip(t *testing.T, typ MessageType, b []byte) {
	if len(b) > maxMessageLen {
		return
	}
	if len(b) > 0 {
		b[0] = b[0]&0xf0 | byte(typ)
	}
	m, err := Parse(b)
	if err != nil {
		return
	}
	if m.Type() != typ {
		t.Fatalf("parsed a %v from type %v", m.Type(), typ)
	}
	out, err := Marshal(m, llA, AllPIMRouters)
	if err != nil {
		t.Fatalf("Marshal(%#v): %v", m, err)
	}
	if len(out) > len(b) {
		t.Fatalf("canonical form of %d octets is longer than the %d parsed", len(out), len(b))
	}
	if err := Verify(llA, AllPIMRouters, out); err != nil {
		t.Fatalf("Verify after Marshal: %v", err)
	}
	m2, err := Parse(out)
	if err != nil {
		t.Fatalf("re-Parse of %x: %v", out, err)
	}
	if !reflect.DeepEqual(m, m2) {
		t.Fatalf("round trip mismatch:\n%#v\n%#v", m, m2)
	}
	out2, err := Marshal(m2, llA, AllPIMRouters)
	if err != nil || !bytes.Equal(out, out2) {
		t.Fatalf("second Marshal: %x, %v; first %x", out2, err, out)
	}
}

// seedSamples adds the marshalled samples of type typ and the hex seeds.
func seedSamples(f *testing.F, typ MessageType, hexs ...string) {
	for _, tc := range sampleMessages() {
		if tc.m.Type() != typ {
			continue
		}
		b, err := Marshal(tc.m, tc.src, tc.dst)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, h := range hexs {
		f.Add(mustHex(f, h))
	}
}

func FuzzParseHello(f *testing.F) {
	seedSamples(f, TypeHello,
		"2000 0000",                // no options
		"2000 0000 0001 0002 ffff", // holdtime forever
		"2000 0000 0013 0004 00000001 0013 0004 00000002", // repeated option
		"2000 0000 0018 0000",                             // empty address list
		"2000 0000 0018 0012 0200 fe800000000000000000000000000009",
		"2000 0000 0002 0004 ffff ffff",    // T bit and the largest delays
		"2000 0000 fde9 0006 010203040506", // Cisco's old address list: unknown here
		"2000 0000 0001 ffff 0069",         // regression: option length past the end
		"2000 0000 00",                     // regression: partial option header
	)
	f.Fuzz(func(t *testing.T, b []byte) { fuzzRoundTrip(t, TypeHello, b) })
}

func FuzzParseJoinPrune(f *testing.F) {
	up := "0200 fe800000000000000000000000000002 "
	seedSamples(f, TypeJoinPrune,
		"2300 0000 "+up+"0000 00d2", // no groups
		"2300 0000 "+up+"00ff 00d2", // regression: 255 groups announced, none present
		"2300 0000 "+up+"0001 00d2 0200 0080 ff0e0000000000000000000000001234 ffff ffff",                                            // regression: source counts far past the end
		"2300 0000 "+up+"0001 0000 0200 0180 ff0e0000000000000000000000001234 0000 0001 0200 0780 20010db8000100000000000000000100", // Z bit, (*,G) prune, holdtime 0
	)
	f.Fuzz(func(t *testing.T, b []byte) { fuzzRoundTrip(t, TypeJoinPrune, b) })
}

func FuzzParseRegister(f *testing.F) {
	seedSamples(f, TypeRegister,
		"2100 0000 80000000", // border bit, no data
		"2100 0000 3fffffff", // Reserved2 bits only
		"2100 0000 00",       // regression: flags cut
	)
	f.Fuzz(func(t *testing.T, b []byte) { fuzzRoundTrip(t, TypeRegister, b) })
}

func FuzzParseRegisterStop(f *testing.F) {
	seedSamples(f, TypeRegisterStop,
		"2200 0000 0200 0080 ff0e0000000000000000000000001234 0200 00000000000000000000000000000000", // wildcard source
		"2200 0000 0200 0080 ff0e0000000000000000000000001234 0201 20010db8000100000000000000000100", // regression: encoding type 1
	)
	f.Fuzz(func(t *testing.T, b []byte) { fuzzRoundTrip(t, TypeRegisterStop, b) })
}

func FuzzParseAssert(f *testing.F) {
	seedSamples(f, TypeAssert,
		"2500 0000 0200 0070 ff0e0000000000000000000000000000 0200 20010db8000100000000000000000100 80000000 00000000", // group range, RPT
		"2500 0000 0200 0080 ff0e0000000000000000000000001234 0200 20010db8000100000000000000000100 ffffff",            // regression: metric cut
	)
	f.Fuzz(func(t *testing.T, b []byte) { fuzzRoundTrip(t, TypeAssert, b) })
}
