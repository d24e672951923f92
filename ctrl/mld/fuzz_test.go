package mld

import (
	"encoding/hex"
	"reflect"
	"testing"
	"time"
)

// fuzzRoundTrip parses b; when it parses, marshal and parse again must give
// the same message, and the marshalled form must verify.
func fuzzRoundTrip(t *testing.T, b []byte) {
	m, err := Parse(b)
	if err != nil {
		return
	}
	out, err := Marshal(m, llA, mld2R)
	if err != nil {
		// Only unknown record types with out-of-range values could fail; the
		// codec keeps them, so marshalling must always work.
		t.Fatalf("Marshal(%#v): %v", m, err)
	}
	if err := Verify(llA, mld2R, out); err != nil {
		t.Fatalf("Verify after Marshal: %v", err)
	}
	m2, err := Parse(out)
	if err != nil {
		t.Fatalf("re-Parse: %v", err)
	}
	if !reflect.DeepEqual(m, m2) {
		t.Fatalf("round trip mismatch:\n%#v\n%#v", m, m2)
	}
}

func seed(f *testing.F, hexs ...string) {
	for _, h := range hexs {
		b, err := hex.DecodeString(h)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

func FuzzParseQuery(f *testing.F) {
	seed(f,
		"8200000027100000"+"00000000000000000000000000000000",                                               // v1 general
		"8200000003e80000"+"ff0e0000000000000000000000001234",                                               // v1 specific
		"8200000027100000"+"00000000000000000000000000000000"+"027d0000",                                    // v2 general
		"8200000003e80000"+"ff0e0000000000000000000000001234"+"0a7d0001"+"20010db8000000000000000000000001", // v2 S=1 one source
		"8200000003e80000"+"ff0e0000000000000000000000001234"+"0a7dffff",                                    // regression: source count far past end
		"8200000003e80000"+"ff0e00000000000000000000000012"+"00",                                            // regression: 25 octets
	)
	f.Fuzz(fuzzRoundTrip)
}

func FuzzParseV1(f *testing.F) {
	seed(f,
		"8300000000000000"+"ff0e0000000000000000000000001234",
		"8400000000000000"+"ff0e0000000000000000000000001234",
		"8300000000000000"+"ff0e0000000000000000000000001234"+"deadbeef", // trailing octets
		"84000000",
	)
	f.Fuzz(fuzzRoundTrip)
}

func FuzzParseV2Report(f *testing.F) {
	seed(f,
		"8f00000000000000",
		"8f00000000000001"+"04000000"+"ff020000000000000000000001ff0001",
		"8f00000000000002"+"01000001"+"ff0e0000000000000000000000001234"+"20010db8000000000000000000000001"+
			"06000000"+"ff050000000000000000000000000099",
		"8f00000000000001"+"05020001"+"ff0e0000000000000000000000001234"+"20010db8000000000000000000000001"+"0102030405060708", // aux data
		"8f00000000000001"+"01ff0000"+"ff0e0000000000000000000000001234",                                                       // regression: aux length past end
		"8f0000000000ffff", // regression: record count far past end
		"8f00000000000001"+"07000000"+"ff0e0000000000000000000000001234", // unknown record type
	)
	f.Fuzz(fuzzRoundTrip)
}

// FuzzHandlePacket feeds arbitrary messages to a router that already has
// state: nothing may panic, and the state must stay consistent.
func FuzzHandlePacket(f *testing.F) {
	seed(f,
		"8f00000000000002"+"04000001"+"ff0e0000000000000000000000001234"+"20010db8000000000000000000000001"+
			"03000000"+"ff0e0000000000000000000000001234",
		"8300000000000000"+"ff0e0000000000000000000000001234",
		"8400000000000000"+"ff0e0000000000000000000000001234",
		"8200000003e80000"+"ff0e0000000000000000000000001234"+"027d0001"+"20010db8000000000000000000000001",
	)
	f.Fuzz(func(t *testing.T, b []byte) {
		h := newHarness(t, nil)
		h.report(rec(ModeIsExclude, grp1, s3), rec(ModeIsInclude, grp2, s1))
		// Fix the checksum so that fuzzing reaches the state machine.
		if len(b) >= 4 {
			ck := Checksum(llC, mld2R, b)
			b[2], b[3] = byte(ck>>8), byte(ck)
		}
		h.ifc.HandlePacket(Packet{Src: llC, Dst: mld2R, HopLimit: 1, RouterAlert: true, Payload: b})
		h.clk.Advance(time.Hour)
		if n := len(h.ifc.Groups()); n != 0 {
			t.Fatalf("%d groups left after an hour without reports", n)
		}
	})
}
