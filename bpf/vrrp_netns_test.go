package bpf

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/hotcast/hotcast/internal/netnstest"
	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"
)

// TestNAReachesPeerWithoutXDP: the Neighbor Advertisement hc_ingress
// answers for a virtual IP reaches the host on the other end of a veth
// whose end runs no XDP program: with GRO off, and with GRO on (a bridge
// port as often configured). An XDP_TX'd frame would wait in the peer's
// ring until other traffic woke it (the kernel's veth_xdp_flush wakes a
// peer only when it runs XDP itself); the NA leaves through hc_tc_ingress
// instead.
func TestNAReachesPeerWithoutXDP(t *testing.T) {
	for _, gro := range []string{"off", "on"} {
		t.Run("peer gro "+gro, func(t *testing.T) {
			rtr, hst := netnstest.New(t, "rtr"), netnstest.New(t, "hst")
			r0, h0 := netnstest.Veth(t, rtr, "r0", hst, "h0")
			if out, err := hst.Command(context.Background(), "ethtool", "-K", "h0", "gro", gro).CombinedOutput(); err != nil {
				t.Fatalf("ethtool -K h0 gro %s: %v\n%s", gro, err, out)
			}
			var d *Dataplane
			rtr.Do(t, func() error {
				var err error
				if d, err = Open(Options{}); err != nil {
					return err
				}
				if err := d.Attach(r0.Name, r0.Index); err != nil {
					return err
				}
				if _, err := d.EnsureIface(r0.Index, Iface{Gate: GateForward, SrcMAC: r0.MAC}); err != nil {
					return err
				}
				return d.SetVRRPMaster(r0.Index, 1, []netip.Addr{vip}, true)
			})
			t.Cleanup(func() { d.Close() })

			var c *packet.Conn
			hst.Do(t, func() error {
				ifi, err := net.InterfaceByIndex(h0.Index)
				if err != nil {
					return err
				}
				c, err = packet.Listen(ifi, packet.Raw, unix.ETH_P_IPV6, nil)
				return err
			})
			t.Cleanup(func() { c.Close() })
			ns := nsFrame(hostLL, solicitedNode(vip), vip, 255)
			ns.srcMAC = h0.MAC
			b := ns.bytes()
			binary.BigEndian.PutUint16(b[54+2:], icmpChecksum(hostLL, solicitedNode(vip), b[54:]))
			before, _ := d.Reasons()
			if _, err := c.WriteTo(b, &packet.Addr{HardwareAddr: b[:6]}); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 2048)
			deadline := time.Now().Add(2 * time.Second)
			for {
				if err := c.SetReadDeadline(deadline); err != nil {
					t.Fatal(err)
				}
				n, _, err := c.ReadFrom(buf)
				if err != nil {
					after, _ := d.Reasons()
					t.Fatalf("no NA on the host end (tx_na moved by %d): %v", after[ReasonTxNA]-before[ReasonTxNA], err)
				}
				f := buf[:n]
				// Outgoing frames show up too; the NA is the one from the
				// virtual MAC.
				if n < 86 || f[20] != 58 || f[54] != 136 || !bytes.Equal(f[6:12], vmac1) {
					continue
				}
				if !bytes.Equal(f[0:6], h0.MAC) {
					t.Errorf("NA to %s, want the host's %s", net.HardwareAddr(f[0:6]), h0.MAC)
				}
				if tgt, _ := netip.AddrFromSlice(f[54+8 : 54+24]); tgt != vip {
					t.Errorf("NA target %s, want %s", tgt, vip)
				}
				if !bytes.Equal(f[54+26:54+32], vmac1) {
					t.Errorf("target link-layer address %x, want the virtual mac", f[54+26:54+32])
				}
				break
			}
		})
	}
}
