package pim

import (
	"encoding/binary"
	"testing"
	"time"
)

// FuzzRegisterMessages feeds arbitrary Register bodies to the RP and
// Register-Stop bodies to the DR, through the Interface, then lets timers
// run: no panic, the entry count stays within MaxEntries, every
// decapsulated packet is a well-formed IPv6 packet of its (S,G) sent off
// the RPF interface, and a Register-Stop never creates state.
func FuzzRegisterMessages(f *testing.F) {
	seeds := []Message{
		&Register{Packet: dataPacket(testS, testG, 16)},
		&Register{Border: true, Packet: dataPacket(testS2, testG2, 0)},
		NullRegister(testS, testG),
		&Register{Packet: dataPacket(testS, testSSM, 4)},
		&Register{Packet: []byte{0x45, 0, 0, 20}},
		&RegisterStop{Group: SingleGroup(testG), Source: testS},
		&RegisterStop{Group: SingleGroup(testG), Source: testRP},
	}
	for _, m := range seeds {
		b, err := Marshal(m, addrDR, testRP)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < headerLen || len(b) > 4096 {
			return
		}
		b = append([]byte(nil), b...)
		if b[0]&1 == 0 {
			b[0] = Version<<4 | byte(TypeRegister)
		} else {
			b[0] = Version<<4 | byte(TypeRegisterStop)
		}
		if b[0]&0x0f == byte(TypeRegister) {
			n, _, data, p, down, up := rpRouter(t, false, func(c *RouterConfig) { c.MaxEntries = 20 })
			joinStarG(down, testG)
			binary.BigEndian.PutUint16(b[checksumOffset:], Checksum(addrDR, testRP, b))
			up.ifc.HandlePacket(Packet{Src: addrDR, Dst: testRP, HopLimit: 64, Payload: b})
			for _, x := range data.take() {
				s, g, err := checkInner(x.Packet)
				if err != nil || s != x.Source || g != x.Group {
					t.Fatalf("decapsulated %+v: %v", x, err)
				}
				for _, o := range x.OIfs {
					if o == p.r.rpfIface(s) {
						t.Fatalf("decapsulated onto the RPF interface: %+v", x)
					}
				}
			}
			n.run(4 * time.Minute)
			check(t, p.r)
			return
		}
		n, _, d, _ := drRouter(t, func(c *RouterConfig) { c.MaxEntries = 20 })
		d.r.DataArrived(1, testS, testG)
		before := d.r.Routes()
		binary.BigEndian.PutUint16(b[checksumOffset:], Checksum(testRP, addrDR, b))
		d.mu.Lock()
		port := d.ports[2]
		d.mu.Unlock()
		port.ifc.HandlePacket(Packet{Src: testRP, Dst: addrDR, HopLimit: 64, Payload: b})
		if after := d.r.Routes(); len(after) != len(before) {
			t.Fatalf("register-stop changed the entries: %+v -> %+v", before, after)
		}
		n.run(4 * time.Minute)
		check(t, d.r)
	})
}
