//go:build linux

package mld

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/hotcast/hotcast/internal/netnstest"
)

// TestConnReceivesAllMLD runs the real sockets across a veth pair: every
// MLD message a host sends reaches the router's Conn, MLDv1 reports to a
// group nobody joined among them, on a kernel with or without multicast
// routing; the router's own messages and non-MLD ICMPv6 do not.
func TestConnReceivesAllMLD(t *testing.T) {
	netnstest.RequireRoot(t)
	if _, err := os.Stat("/proc/net/ip6_mr_vif"); err != nil {
		t.Log("kernel without CONFIG_IPV6_MROUTE: the case this socket exists for")
	}
	rns, hns := netnstest.New(t, "mldr"), netnstest.New(t, "mldh")
	rl, hl := netnstest.Veth(t, rns, "r0", hns, "h0")
	rll, hll := rl.WaitLinkLocal(t), hl.WaitLinkLocal(t)

	var router, host *Conn
	rns.Do(t, func() (err error) { router, err = Listen("r0", rll, nil); return err })
	t.Cleanup(func() { router.Close() })
	hns.Do(t, func() (err error) { host, err = Listen("h0", hll, nil); return err })
	t.Cleanup(func() { host.Close() })

	v1grp := netip.MustParseAddr("ff0e::1:2")
	allRouters := netip.MustParseAddr("ff02::2")
	allNodes := netip.MustParseAddr("ff02::1")
	send := func(c *Conn, m Message, dst netip.Addr) {
		t.Helper()
		b, err := Marshal(m, netip.Addr{}, dst) // the kernel fills the checksum
		if err != nil {
			t.Fatal(err)
		}
		if err := c.SendMLD(dst, b); err != nil {
			t.Fatal(err)
		}
	}
	read := func(c *Conn) (Packet, error) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return c.Read(ctx)
	}
	// The host's kernel reports its own groups (solicited-node) whenever
	// it likes: readFor skips those, and fails on anything else.
	kernelReport := func(p Packet) bool {
		m, err := Parse(p.Payload)
		if err != nil || m.Type() != TypeV2Report {
			return false
		}
		for _, r := range m.(*V2Report).Records {
			if !r.Group.IsLinkLocalMulticast() {
				return false
			}
		}
		return p.Src == hll
	}
	readFor := func(c *Conn, typ MessageType, dst netip.Addr) (Packet, error) {
		for {
			p, err := read(c)
			if err != nil {
				return p, err
			}
			if len(p.Payload) > 0 && MessageType(p.Payload[0]) == typ && p.Dst == dst && !kernelReport(p) {
				return p, nil
			}
			if !kernelReport(p) {
				t.Fatalf("unexpected read %+v", p)
			}
		}
	}

	// The router's own query goes out and is not read back by it; the
	// host reads it.
	send(router, &Query{Version: 2, MaxRespCode: 1000, QRV: 2, QQIC: 125}, allNodes)
	if p, err := readFor(host, TypeQuery, allNodes); err != nil || p.Src != rll {
		t.Fatalf("host read of the router's query: %+v, %v", p, err)
	}
	// ICMPv6 that is not MLD (an echo request, behind the same Router
	// Alert) is filtered in the kernel.
	send(host, echo{}, allNodes)

	for _, tc := range []struct {
		name string
		m    Message
		dst  netip.Addr
	}{
		{"MLDv1 report to an unjoined group", &V1Report{Group: v1grp}, v1grp},
		{"MLDv1 done", &V1Done{Group: v1grp}, allRouters},
		{"MLDv2 report", &V2Report{Records: []Record{{Type: ChangeToExclude, Group: netip.MustParseAddr("ff0e::1:1")}}}, AllMLDv2Route},
		{"query from another querier", &Query{Version: 2, MaxRespCode: 1000, QRV: 2, QQIC: 125}, allNodes},
	} {
		send(host, tc.m, tc.dst)
		p, err := readFor(router, tc.m.Type(), tc.dst)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if p.Src != hll || p.Dst != tc.dst || p.HopLimit != 1 || !p.RouterAlert {
			t.Fatalf("%s: read %+v", tc.name, p)
		}
		if err := Verify(p.Src, p.Dst, p.Payload); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		m, err := Parse(p.Payload)
		if err != nil || m.Type() != tc.m.Type() {
			t.Fatalf("%s: parsed %v, %v", tc.name, m, err)
		}
	}
	// Nothing else queued: not the router's query, not the echo.
	for {
		p, err := read(router)
		if errors.Is(err, context.DeadlineExceeded) {
			break
		}
		if err != nil || !kernelReport(p) {
			t.Fatalf("router read %+v, %v; want nothing but the host kernel's reports", p, err)
		}
	}
	if n := router.Malformed(); n != 0 {
		t.Fatalf("malformed %d", n)
	}
}

// echo is an ICMPv6 echo request, for the filter test.
type echo struct{}

func (echo) Type() MessageType { return 128 }

func (echo) appendTo(b []byte) ([]byte, error) { return append(b, 128, 0, 0, 0, 0, 1, 0, 1), nil }
