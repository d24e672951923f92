package bpf

import (
	"encoding/binary"
	"net"
	"net/netip"
)

// frame builds Ethernet/IPv6 test frames byte by byte.
type frame struct {
	dstMAC, srcMAC net.HardwareAddr
	vlan           uint16 // 0 = untagged
	etherType      uint16 // default 0x86dd
	src, dst       netip.Addr
	hopLimit       uint8
	ext            []extHdr
	proto          uint8 // upper layer, default UDP
	payload        []byte
	payloadLenAdj  int // added to the IPv6 payload length (malformed cases)
	truncate       int // bytes cut from the end after building
}

type extHdr struct {
	typ  uint8
	body []byte // after next-header (and length) bytes, sized by the caller
}

var (
	macA = net.HardwareAddr{0x02, 0, 0, 0, 0, 0xa}
	macB = net.HardwareAddr{0x02, 0, 0, 0, 0, 0xb}
)

func mcMAC(g netip.Addr) net.HardwareAddr {
	b := g.As16()
	return net.HardwareAddr{0x33, 0x33, b[12], b[13], b[14], b[15]}
}

// hbh returns a Hop-by-Hop header body (6 bytes: options after the two
// header bytes) with or without a Router Alert option.
func hbh(routerAlert bool) extHdr {
	if routerAlert {
		return extHdr{typ: 0, body: []byte{5, 2, 0, 0, 1, 0}} // RA(MLD) + Pad1 + Pad1? (PadN-free)
	}
	return extHdr{typ: 0, body: []byte{1, 4, 0, 0, 0, 0}} // PadN
}

func (f frame) bytes() []byte {
	var b []byte
	dst := f.dstMAC
	if dst == nil && f.dst.IsValid() {
		dst = mcMAC(f.dst)
	}
	src := f.srcMAC
	if src == nil {
		src = macA
	}
	b = append(b, dst...)
	b = append(b, src...)
	et := f.etherType
	if et == 0 {
		et = 0x86dd
	}
	if f.vlan != 0 {
		b = binary.BigEndian.AppendUint16(b, 0x8100)
		b = binary.BigEndian.AppendUint16(b, f.vlan)
	}
	b = binary.BigEndian.AppendUint16(b, et)
	if et != 0x86dd {
		b = append(b, make([]byte, 28)...)
		return b[:len(b)-f.truncate]
	}
	proto := f.proto
	if proto == 0 {
		proto = 17
	}
	// Extension headers, chained.
	var exts []byte
	next := proto
	for i := len(f.ext) - 1; i >= 0; i-- {
		e := f.ext[i]
		var h []byte
		switch e.typ {
		case 44: // fragment: 8 bytes, body = 6 bytes after nh+reserved
			h = append([]byte{next, 0}, e.body...)
		case 51: // AH: length in 4-octet units minus 2
			h = append([]byte{next, uint8((len(e.body)+2)/4 - 2)}, e.body...)
		default: // length in 8-octet units minus 1
			h = append([]byte{next, uint8((len(e.body)+2)/8 - 1)}, e.body...)
		}
		exts = append(h, exts...)
		next = e.typ
	}
	payload := f.payload
	if payload == nil {
		payload = make([]byte, 16) // a UDP header and 8 bytes of data
		binary.BigEndian.PutUint16(payload[0:], 5000)
		binary.BigEndian.PutUint16(payload[2:], 5001)
		binary.BigEndian.PutUint16(payload[4:], 16)
	}
	plen := len(exts) + len(payload) + f.payloadLenAdj
	b = append(b, 0x60, 0, 0, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(plen))
	b = append(b, next, f.hopLimit)
	s, d := f.src.As16(), f.dst.As16()
	b = append(b, s[:]...)
	b = append(b, d[:]...)
	b = append(b, exts...)
	b = append(b, payload...)
	return b[:len(b)-f.truncate]
}
