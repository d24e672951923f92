package bpf

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"
)

var (
	vip    = netip.MustParseAddr("2001:db8::50")
	vipLL  = netip.MustParseAddr("fe80::1")
	vmac1  = net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x02, 0x01}
	ownMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x77}
	hostLL = netip.MustParseAddr("fe80::99")
)

func solicitedNode(a netip.Addr) netip.Addr {
	b := a.As16()
	return netip.AddrFrom16([16]byte{0xff, 0x02, 11: 1, 12: 0xff, 13: b[13], 14: b[14], 15: b[15]})
}

// ns builds a Neighbor Solicitation for target from src.
func nsFrame(src, dst, target netip.Addr, hop uint8) frame {
	p := []byte{135, 0, 0, 0, 0, 0, 0, 0}
	p = append(p, target.AsSlice()...)
	p = append(p, 1, 1) // source link-layer address option
	p = append(p, macA...)
	f := frame{src: src, dst: dst, hopLimit: hop, proto: 58, payload: p}
	if dst.IsMulticast() {
		f.dstMAC = mcMAC(dst)
	} else {
		f.dstMAC = vmac1
	}
	return f
}

func icmpChecksum(src, dst netip.Addr, msg []byte) uint16 {
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(b[i])<<8 | uint32(b[i+1])
		}
	}
	s, d := src.As16(), dst.As16()
	add(s[:])
	add(d[:])
	sum += uint32(len(msg)) + 58
	add(msg)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

func TestVRRPFastPath(t *testing.T) {
	d, env := openTest(t)
	if err := d.SetIface(lo, Iface{Gate: GateForward, SrcMAC: ownMAC, MAC: ownMAC}); err != nil {
		t.Fatal(err)
	}
	master := func(on bool) {
		t.Helper()
		if err := d.SetVRRPMaster(lo, 1, []netip.Addr{vipLL, vip}, on); err != nil {
			t.Fatal(err)
		}
	}
	unicastToVMAC := frame{dstMAC: vmac1, src: hostLL, dst: vip, hopLimit: 64, proto: 58, payload: []byte{128, 0, 0, 0, 0, 1, 0, 1}}

	t.Run("backup drops frames to the virtual mac", func(t *testing.T) {
		env.enter(t)
		master(false)
		before, _ := d.Reasons()
		v, _ := run(t, d.progs.HcIngress, unicastToVMAC.bytes(), lo)
		if v != xdpDrop {
			t.Fatalf("verdict %d, want drop", v)
		}
		if delta := reasonDelta(t, d, before); delta[ReasonDropVMACBackup] != 1 {
			t.Errorf("reasons %v", named(delta))
		}
	})
	t.Run("backup leaves NS for a virtual ip to the stack", func(t *testing.T) {
		env.enter(t)
		master(false)
		v, _ := run(t, d.progs.HcIngress, nsFrame(hostLL, solicitedNode(vip), vip, 255).bytes(), lo)
		if v != xdpPass {
			t.Fatalf("verdict %d, want pass", v)
		}
	})
	t.Run("master accepts the virtual mac as its own", func(t *testing.T) {
		env.enter(t)
		master(true)
		in := unicastToVMAC.bytes()
		v, out := run(t, d.progs.HcIngress, in, lo)
		if v != xdpPass {
			t.Fatalf("verdict %d, want pass", v)
		}
		if !bytes.Equal(out[:6], ownMAC) || !bytes.Equal(out[6:], in[6:]) {
			t.Errorf("destination %s, want the interface mac %s and nothing else changed", net.HardwareAddr(out[:6]), ownMAC)
		}
	})
	for _, tc := range []struct {
		name      string
		src, dst  netip.Addr
		target    netip.Addr
		wantDst   netip.Addr
		wantMAC   net.HardwareAddr
		solicited bool
	}{
		{"NS to the solicited-node group", hostLL, solicitedNode(vip), vip, hostLL, macA, true},
		{"NS for the link-local virtual ip", hostLL, solicitedNode(vipLL), vipLL, hostLL, macA, true},
		{"unicast NS (NUD) to the virtual mac", hostLL, vip, vip, hostLL, macA, true},
		{"DAD NS from ::", netip.IPv6Unspecified(), solicitedNode(vip), vip, netip.MustParseAddr("ff02::1"), net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1}, false},
	} {
		t.Run("master answers "+tc.name, func(t *testing.T) {
			env.enter(t)
			master(true)
			before, _ := d.Reasons()
			v, out := run(t, d.progs.HcIngress, nsFrame(tc.src, tc.dst, tc.target, 255).bytes(), lo)
			// Up to hc_tc_ingress, which sends it back out (XDP_TX
			// would not reach a veth peer without XDP).
			if v != xdpPass {
				t.Fatalf("verdict %d, want XDP_PASS with the NA for TC", v)
			}
			if len(out) < 8 || binary.LittleEndian.Uint32(out) != metaTxMagic {
				t.Fatalf("metadata %x, want the send-back magic %#x", out[:min(8, len(out))], metaTxMagic)
			}
			out = out[8:]
			if delta := reasonDelta(t, d, before); delta[ReasonTxNA] != 1 || len(delta) != 1 {
				t.Errorf("reasons %v", named(delta))
			}
			if len(out) != 86 {
				t.Fatalf("NA frame is %d bytes, want 86", len(out))
			}
			if !bytes.Equal(out[0:6], tc.wantMAC) || !bytes.Equal(out[6:12], vmac1) || binary.BigEndian.Uint16(out[12:]) != 0x86dd {
				t.Errorf("ethernet %x", out[:14])
			}
			ip := out[14:54]
			if ip[0]>>4 != 6 || binary.BigEndian.Uint16(ip[4:]) != 32 || ip[6] != 58 || ip[7] != 255 {
				t.Errorf("ipv6 header %x", ip[:8])
			}
			src, _ := netip.AddrFromSlice(ip[8:24])
			dst, _ := netip.AddrFromSlice(ip[24:40])
			if src != tc.target || dst != tc.wantDst {
				t.Errorf("NA %s -> %s, want %s -> %s", src, dst, tc.target, tc.wantDst)
			}
			na := out[54:]
			flags := na[4]
			if na[0] != 136 || na[1] != 0 || flags&0x80 == 0 || flags&0x20 == 0 || (flags&0x40 != 0) != tc.solicited {
				t.Errorf("NA type %d code %d flags %#x (want R, O, S=%v)", na[0], na[1], flags, tc.solicited)
			}
			if tgt, _ := netip.AddrFromSlice(na[8:24]); tgt != tc.target {
				t.Errorf("target %s", tgt)
			}
			if na[24] != 2 || na[25] != 1 || !bytes.Equal(na[26:32], vmac1) {
				t.Errorf("target link-layer option %x, want the virtual mac", na[24:32])
			}
			if c := icmpChecksum(src, dst, na); c != 0 {
				t.Errorf("NA checksum does not verify (residue %#x)", c)
			}
		})
	}
	t.Run("NS with hop limit 64 is not answered", func(t *testing.T) {
		env.enter(t)
		master(true)
		v, _ := run(t, d.progs.HcIngress, nsFrame(hostLL, solicitedNode(vip), vip, 64).bytes(), lo)
		if v != xdpPass {
			t.Fatalf("verdict %d, want pass (the stack drops it)", v)
		}
	})
	t.Run("NS for another address goes to the stack", func(t *testing.T) {
		env.enter(t)
		master(true)
		other := netip.MustParseAddr("2001:db8::51")
		v, _ := run(t, d.progs.HcIngress, nsFrame(hostLL, solicitedNode(other), other, 255).bytes(), lo)
		if v != xdpPass {
			t.Fatalf("verdict %d, want pass", v)
		}
	})
	t.Run("truncated NS is left alone", func(t *testing.T) {
		env.enter(t)
		master(true)
		f := nsFrame(hostLL, solicitedNode(vip), vip, 255)
		f.payload = f.payload[:20]
		v, _ := run(t, d.progs.HcIngress, f.bytes(), lo)
		if v != xdpPass {
			t.Fatalf("verdict %d, want pass", v)
		}
	})
	t.Run("tc egress sources the virtual ip from the virtual mac", func(t *testing.T) {
		env.enter(t)
		master(true)
		in := frame{dstMAC: macB, srcMAC: ownMAC, src: vip, dst: hostLL, hopLimit: 64, proto: 58, payload: []byte{129, 0, 0, 0, 0, 1, 0, 1}}.bytes()
		out := runTC(t, d.progs.HcTcEgress, in)
		if !bytes.Equal(out[6:12], vmac1) || !bytes.Equal(out[:6], in[:6]) || !bytes.Equal(out[12:], in[12:]) {
			t.Errorf("tc egress output %x, want only the source mac set to %s", out[:14], vmac1)
		}
		master(false)
		out = runTC(t, d.progs.HcTcEgress, in)
		if !bytes.Equal(out, in) {
			t.Errorf("tc egress changed a frame while Backup")
		}
		master(true)
		// The stack's own NS from the virtual IP carries the virtual MAC
		// in its source link-layer option too, with a valid checksum.
		ns := nsFrame(vip, solicitedNode(hostLL), hostLL, 255)
		ns.srcMAC = ownMAC
		nsb := ns.bytes()
		msg := nsb[54:]
		binary.BigEndian.PutUint16(msg[2:], icmpChecksum(vip, solicitedNode(hostLL), msg))
		out = runTC(t, d.progs.HcTcEgress, nsb)
		if !bytes.Equal(out[6:12], vmac1) || !bytes.Equal(out[54+24+2:54+32], vmac1) {
			t.Errorf("NS from the virtual ip: source mac %x, option %x; want the virtual mac in both", out[6:12], out[54+24:54+32])
		}
		if c := icmpChecksum(vip, solicitedNode(hostLL), out[54:]); c != 0 {
			t.Errorf("NS checksum does not verify after the option rewrite (residue %#x)", c)
		}
		other := frame{dstMAC: macB, srcMAC: ownMAC, src: netip.MustParseAddr("2001:db8:50::1"), dst: hostLL, hopLimit: 64, proto: 58, payload: []byte{129, 0, 0, 0}}.bytes()
		master(true)
		if out := runTC(t, d.progs.HcTcEgress, other); !bytes.Equal(out, other) {
			t.Errorf("tc egress changed a frame from the interface's own address")
		}
	})
}

// metaTxMagic is HC_META_TX_MAGIC: hc_tc_ingress sends the frame back out.
const metaTxMagic = 0x68634e31

func runTC(t *testing.T, p *ebpf.Program, data []byte) []byte {
	t.Helper()
	out := make([]byte, len(data)+64)
	opts := &ebpf.RunOptions{Data: data, DataOut: out, Repeat: 1}
	ret, err := p.Run(opts)
	if err != nil {
		t.Fatalf("run tc: %v", err)
	}
	if ret != 0 { // TC_ACT_OK
		t.Fatalf("tc verdict %d", ret)
	}
	return opts.DataOut
}
