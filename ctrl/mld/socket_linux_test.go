//go:build linux

package mld

import (
	"net/netip"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

var _ Sender = (*Conn)(nil)

func TestHasRouterAlert(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    []byte
		want bool
	}{
		{"ours", hopOptsRouterAlert[:], true},
		{"after pad1", []byte{58, 0, 0, 0, 5, 2, 0, 0}, true},
		{"after padn", []byte{58, 0, 1, 0, 5, 2, 0, 0}, true},
		{"rsvp value", []byte{58, 0, 5, 2, 0, 1, 1, 0}, false},
		{"no option", []byte{58, 0, 1, 4, 0, 0, 0, 0}, false},
		{"truncated", []byte{58, 0, 5}, false},
		{"length past end", []byte{58, 0, 1, 200, 0, 0, 0, 0}, false},
		{"empty", nil, false},
	} {
		if got := hasRouterAlert(tc.h); got != tc.want {
			t.Errorf("%s: hasRouterAlert = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestParseControl(t *testing.T) {
	dst := netip.MustParseAddr("ff02::16")
	var oob []byte
	hl := make([]byte, 4)
	hl[0] = 1 // little-endian hosts; big-endian ones read 1<<24, checked below
	add := func(typ int, data []byte) {
		b := make([]byte, unix.CmsgSpace(len(data)))
		h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
		h.Level = unix.IPPROTO_IPV6
		h.Type = int32(typ)
		h.SetLen(unix.CmsgLen(len(data)))
		copy(b[unix.CmsgLen(0):], data)
		oob = append(oob, b...)
	}
	add(unix.IPV6_HOPLIMIT, hl)
	d := dst.As16()
	add(unix.IPV6_PKTINFO, append(d[:], 2, 0, 0, 0))
	add(unix.IPV6_HOPOPTS, hopOptsRouterAlert[:])
	var p Packet
	if err := parseControl(oob, &p); err != nil {
		t.Fatal(err)
	}
	if (p.HopLimit != 1 && p.HopLimit != 1<<24) || p.Dst != dst || !p.RouterAlert {
		t.Fatalf("parsed %+v", p)
	}
}
