package main

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"

	"github.com/hotcast/hotcast/internal/inet"
)

// Frame sizes: Ethernet, IPv6 (RFC 8200 section 3), UDP (RFC 768).
const (
	ethLen  = 14
	ip6Len  = 40
	udpLen  = 8
	minSize = ethLen + ip6Len + udpLen
)

// udpFrame builds one Ethernet/IPv6/UDP frame of size bytes from src to the
// multicast group dst, with an explicit hop limit (trafgen leaves it 0
// otherwise) and a correct UDP checksum (RFC 8200 section 8.1: mandatory
// over IPv6; the socket variant's receivers verify it).
func udpFrame(srcMAC []byte, src, dst netip.Addr, hopLimit uint8, port uint16, size int) ([]byte, error) {
	if size < minSize {
		return nil, fmt.Errorf("frame size %d below %d", size, minSize)
	}
	if !dst.Is6() || !dst.IsMulticast() || !src.Is6() || len(srcMAC) != 6 {
		return nil, fmt.Errorf("bad frame addresses %s -> %s", src, dst)
	}
	b := make([]byte, size)
	g := dst.As16()
	// RFC 2464 section 7: 33:33 + low 32 bits of the group.
	copy(b[0:6], []byte{0x33, 0x33, g[12], g[13], g[14], g[15]})
	copy(b[6:12], srcMAC)
	binary.BigEndian.PutUint16(b[12:14], 0x86dd)
	ip := b[ethLen:]
	ip[0] = 0x60
	plen := size - ethLen - ip6Len
	binary.BigEndian.PutUint16(ip[4:6], uint16(plen))
	ip[6] = 17
	ip[7] = hopLimit
	s := src.As16()
	copy(ip[8:24], s[:])
	copy(ip[24:40], g[:])
	udp := ip[ip6Len:]
	binary.BigEndian.PutUint16(udp[0:2], port)
	binary.BigEndian.PutUint16(udp[2:4], port)
	binary.BigEndian.PutUint16(udp[4:6], uint16(plen))
	for i := udpLen; i < plen; i++ {
		udp[i] = byte(i)
	}
	binary.BigEndian.PutUint16(udp[6:8], inet.UDPChecksum(src, netip.AddrFrom16(g), udp))
	return b, nil
}

// trafgenConfig renders a frame as a trafgen packet configuration: the bytes
// spelled out, so nothing (hop limit included) is left to trafgen defaults.
func trafgenConfig(frame []byte) string {
	var b strings.Builder
	b.WriteString("{\n")
	for i, c := range frame {
		switch {
		case i == 0:
		case i%16 == 0:
			b.WriteString(",\n")
		default:
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "0x%02x", c)
	}
	b.WriteString("\n}\n")
	return b.String()
}
