package pim

import (
	"encoding/binary"
	"io"
	"net/netip"
	"time"
)

// The classic libpcap file format: a 24-octet global header, then per
// packet a 16-octet record header and the captured octets, all in the
// writer's byte order (here little-endian, magic a1b2c3d4 read as
// d4c3b2a1).
const (
	pcapMagic        = 0xa1b2c3d4
	pcapVersionMajor = 2
	pcapVersionMinor = 4
	pcapSnapLen      = 0xffff
	linkTypeEthernet = 1
)

type pcapWriter struct {
	w   io.Writer
	err error
}

func newPcapWriter(w io.Writer) *pcapWriter {
	p := &pcapWriter{w: w}
	var h [24]byte
	binary.LittleEndian.PutUint32(h[0:], pcapMagic)
	binary.LittleEndian.PutUint16(h[4:], pcapVersionMajor)
	binary.LittleEndian.PutUint16(h[6:], pcapVersionMinor)
	// thiszone and sigfigs stay 0.
	binary.LittleEndian.PutUint32(h[16:], pcapSnapLen)
	binary.LittleEndian.PutUint32(h[20:], linkTypeEthernet)
	_, p.err = w.Write(h[:])
	return p
}

func (p *pcapWriter) write(ts time.Time, frame []byte) {
	if p.err != nil {
		return
	}
	var h [16]byte
	binary.LittleEndian.PutUint32(h[0:], uint32(ts.Unix()))
	binary.LittleEndian.PutUint32(h[4:], uint32(ts.Nanosecond()/1000))
	binary.LittleEndian.PutUint32(h[8:], uint32(len(frame)))  // captured
	binary.LittleEndian.PutUint32(h[12:], uint32(len(frame))) // on the wire
	if _, p.err = p.w.Write(h[:]); p.err == nil {
		_, p.err = p.w.Write(frame)
	}
}

// ipv6Header is a fixed IPv6 header (RFC 8200 §3): traffic class 0xc0
// (network control, as routing protocols send), flow label 0.
func ipv6Header(src, dst netip.Addr, next byte, hopLimit byte, payloadLen int) []byte {
	h := make([]byte, 40)
	h[0], h[1] = 0x6c, 0x00
	binary.BigEndian.PutUint16(h[4:], uint16(payloadLen))
	h[6], h[7] = next, hopLimit
	s, d := src.As16(), dst.As16()
	copy(h[8:], s[:])
	copy(h[24:], d[:])
	return h
}

// ethernetFrame puts an IPv6 packet in an Ethernet II frame: to the
// 33:33:xx:xx:xx:xx address of a multicast destination (RFC 2464 §7), to
// a made-up unicast MAC otherwise.
func ethernetFrame(dst netip.Addr, ip []byte) []byte {
	f := make([]byte, 14, 14+len(ip))
	if dst.IsMulticast() {
		d := dst.As16()
		copy(f[0:6], []byte{0x33, 0x33, d[12], d[13], d[14], d[15]})
	} else {
		copy(f[0:6], []byte{0x02, 0, 0, 0, 0, 0x02})
	}
	copy(f[6:12], []byte{0x02, 0, 0, 0, 0, 0x01})
	f[12], f[13] = 0x86, 0xdd
	return append(f, ip...)
}
