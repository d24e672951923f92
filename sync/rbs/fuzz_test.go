package rbs

import (
	"bytes"
	"reflect"
	"testing"
)

// fuzzPayload runs parse → marshal → parse → compare over the payload of
// one message type; the encoding is canonical, so the re-marshalled frame
// must also equal the input byte for byte.
func fuzzPayload(f *testing.F, t MsgType) {
	for _, m := range sampleMessages() {
		if m.Type() == t {
			b, err := Marshal(m)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b[HeaderLen:])
		}
	}
	f.Add([]byte{})
	f.Fuzz(func(tt *testing.T, payload []byte) {
		in := frame(t, payload)
		m1 := newMessage(t)
		u := m1.(interface{ UnmarshalBinary([]byte) error })
		if err := u.UnmarshalBinary(in); err != nil {
			if ErrorReason(err) == "io" {
				tt.Fatalf("unclassified error: %v", err)
			}
			return
		}
		out, err := Marshal(m1)
		if err != nil {
			tt.Fatalf("marshal after successful parse: %v", err)
		}
		if !bytes.Equal(out, in) {
			tt.Fatalf("non-canonical:\n in %x\nout %x", in, out)
		}
		m2, err := Parse(out)
		if err != nil {
			tt.Fatalf("reparse: %v", err)
		}
		if !reflect.DeepEqual(m1, m2) {
			tt.Fatalf("round trip mismatch:\n%+v\n%+v", m1, m2)
		}
	})
}

func FuzzHello(f *testing.F)         { fuzzPayload(f, TypeHello) }
func FuzzKeepalive(f *testing.F)     { fuzzPayload(f, TypeKeepalive) }
func FuzzBatchBegin(f *testing.F)    { fuzzPayload(f, TypeBatchBegin) }
func FuzzEntry(f *testing.F)         { fuzzPayload(f, TypeEntry) }
func FuzzBatchEnd(f *testing.F)      { fuzzPayload(f, TypeBatchEnd) }
func FuzzAck(f *testing.F)           { fuzzPayload(f, TypeAck) }
func FuzzResyncRequest(f *testing.F) { fuzzPayload(f, TypeResyncRequest) }
func FuzzProfileState(f *testing.F)  { fuzzPayload(f, TypeProfileState) }
func FuzzClose(f *testing.F)         { fuzzPayload(f, TypeClose) }

// FuzzReader feeds arbitrary bytes to the stream reader: it must never
// panic, must classify every error, and every message it returns must
// re-marshal to the bytes it consumed.
func FuzzReader(f *testing.F) {
	var all []byte
	for _, m := range sampleMessages() {
		b, _ := Marshal(m)
		f.Add(b)
		all = append(all, b...)
	}
	f.Add(all)
	f.Add([]byte("HCRB\x01\x04\x00\x00\xff\xff\xff\xff"))
	f.Add([]byte("GET / HTTP/1.0\r\n\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := NewReader(bytes.NewReader(in))
		off := 0
		for {
			m, n, err := r.ReadMessage()
			if err != nil {
				if ErrorReason(err) == "io" {
					t.Fatalf("unclassified error: %v", err)
				}
				return
			}
			out, err := Marshal(m)
			if err != nil {
				t.Fatalf("marshal %s: %v", m.Type(), err)
			}
			if !bytes.Equal(out, in[off:off+n]) {
				t.Fatalf("frame at %d not canonical", off)
			}
			off += n
		}
	})
}
