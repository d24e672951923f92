package e2e

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hotcast/hotcast/ctrl/mld"
	"github.com/hotcast/hotcast/daemon/api"
	"github.com/hotcast/hotcast/internal/labtest"
	"github.com/hotcast/hotcast/internal/netnstest"
	"github.com/mdlayher/packet"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// Addresses used by the tests. ff1e::/16 groups are ASM (transient,
// global scope); ff3e::/32 is the SSM range (RFC 4607).
var (
	srcS  = netip.MustParseAddr("2001:db8:40::2")
	srcS2 = netip.MustParseAddr("2001:db8:40::3")
)

// mldTimers are the MLD timers of the tests' router interfaces, short
// for speed: Query Interval 3 s, Query Response Interval 1 s, robustness
// 2, Last Listener Query Interval 500 ms. Derived (RFC 3810 §9): MALI
// 7 s, Other Querier Present Interval 6.5 s, LLQT 1 s.
const (
	queryInterval = 3 * time.Second
	respInterval  = time.Second
	robustness    = 2
	llqi          = 500 * time.Millisecond
	mali          = robustness*queryInterval + respInterval
	llqt          = robustness * llqi
	oqpi          = robustness*queryInterval + respInterval/2
)

// mldYAML is the mld block of an interface with the timers above.
func mldYAML(extra string) string {
	return fmt.Sprintf("{enable: true, query-interval: %s, robustness: %d, max-response-time: %s, last-listener-query-interval: %s%s}",
		queryInterval, robustness, respInterval, llqi, extra)
}

// host is a Linux host in its own namespace with one interface (eth0),
// counting the routed multicast it receives with a pass-mode sink.
type host struct {
	name string
	ns   *netnstest.NS
	link *netnstest.Link
	rcv  *labtest.Receiver
	port string // its switch port, when behind the switch
	ll   netip.Addr
}

// newHost makes a namespace with eth0 connected to peerName in peer.
func newHost(t *testing.T, name string, peer *netnstest.NS, peerName string, v1 bool) *host {
	t.Helper()
	h := &host{name: name, ns: netnstest.New(t, "h"), port: peerName}
	if v1 {
		// Before the link exists: the default applies to it.
		h.ns.Sysctl(t, "net/ipv6/conf/default/force_mld_version", "1")
		h.ns.Sysctl(t, "net/ipv6/conf/all/force_mld_version", "1")
	}
	_, h.link = netnstest.Veth(t, peer, peerName, h.ns, "eth0")
	h.rcv = labtest.NewReceiver(t, h.link)
	h.ll = h.link.WaitLinkLocal(t)
	return h
}

// count returns the frames of group g the host received.
func (h *host) count(t *testing.T, g netip.Addr) uint64 { return h.rcv.Count(t, g) }

// listener is an application socket on a host, joined to groups through
// the host's own stack (which then sends the MLD reports itself).
type listener struct {
	c  net.PacketConn
	pc *ipv6.PacketConn
}

// listen opens a UDP socket inside the host's namespace.
func (h *host) listen(t *testing.T) *listener {
	t.Helper()
	l := &listener{}
	h.ns.Do(t, func() error {
		c, err := net.ListenPacket("udp6", "[::]:0")
		if err != nil {
			return err
		}
		l.c, l.pc = c, ipv6.NewPacketConn(c)
		return nil
	})
	t.Cleanup(func() { l.c.Close() })
	return l
}

// joinASM joins group g (any source) with IPV6_JOIN_GROUP.
func (h *host) joinASM(t *testing.T, g netip.Addr) *listener {
	t.Helper()
	l := h.listen(t)
	ifi := &net.Interface{Index: h.link.Index, Name: h.link.Name}
	if err := l.pc.JoinGroup(ifi, &net.UDPAddr{IP: g.AsSlice()}); err != nil {
		t.Fatalf("%s: join %s: %v", h.name, g, err)
	}
	return l
}

// joinSSM joins (s, g) with MCAST_JOIN_SOURCE_GROUP.
func (h *host) joinSSM(t *testing.T, s, g netip.Addr) *listener {
	t.Helper()
	l := h.listen(t)
	ifi := &net.Interface{Index: h.link.Index, Name: h.link.Name}
	if err := l.pc.JoinSourceSpecificGroup(ifi, &net.UDPAddr{IP: g.AsSlice()}, &net.UDPAddr{IP: s.AsSlice()}); err != nil {
		t.Fatalf("%s: join (%s, %s): %v", h.name, s, g, err)
	}
	return l
}

// leave closes the socket: the host's stack reports the change.
func (l *listener) leave() { l.c.Close() }

// ipLink runs "ip -n NS link ..." (for what netnstest has no helper).
func ipLink(t *testing.T, ns *netnstest.NS, args ...string) {
	t.Helper()
	all := append([]string{"-n", ns.Name, "link"}, args...)
	if out, err := exec.Command("ip", all...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(all, " "), err, out)
	}
}

// ---- the daemon's view (hotcastctl --json, into the API types) ----

func mldGroups(d *labtest.Daemon) []api.MLDGroup {
	var gs []api.MLDGroup
	d.CtlJSON(&gs, "display", "mld", "group")
	return gs
}

// findGroup returns the record of g on iface, or nil.
func findGroup(gs []api.MLDGroup, iface string, g netip.Addr) *api.MLDGroup {
	for k := range gs {
		if gs[k].Interface == iface && gs[k].Group == g.String() {
			return &gs[k]
		}
	}
	return nil
}

func mldIfaces(d *labtest.Daemon) map[string]api.MLDInterface {
	var is []api.MLDInterface
	d.CtlJSON(&is, "display", "mld", "interface")
	out := map[string]api.MLDInterface{}
	for _, i := range is {
		out[i.Interface] = i
	}
	return out
}

func fwdTable(d *labtest.Daemon) api.ForwardingTable {
	var ft api.ForwardingTable
	d.CtlJSON(&ft, "display", "multicast", "forwarding-table")
	return ft
}

// findRoute returns the route (s, g), s invalid meaning (*, g), or nil.
func findRoute(ft api.ForwardingTable, s, g netip.Addr) *api.Route {
	src := "*"
	if s.IsValid() {
		src = s.String()
	}
	return labtest.FindRoute(ft, src, g)
}

// routesOf returns the routes of group g, formatted, sorted.
func routesOf(ft api.ForwardingTable, g netip.Addr) []string {
	var out []string
	for _, r := range ft.Routes {
		if r.Group == g.String() {
			out = append(out, fmt.Sprintf("(%s, %s) %s -> %s", r.Source, r.Group, r.Incoming, strings.Join(r.Outgoing, ",")))
		}
	}
	slices.Sort(out)
	return out
}

// ---- hand-made MLD frames for hostile input ----

// mldFrame describes one crafted MLD packet.
type mldFrame struct {
	src, dst    netip.Addr
	hopLimit    uint8
	routerAlert bool
	icmp        []byte // ICMPv6 message, checksum included
}

// encode builds the Ethernet frame: IPv6, optional Hop-by-Hop header with
// the MLD Router Alert (RFC 2711), then the ICMPv6 message.
func (f mldFrame) encode(srcMAC net.HardwareAddr) []byte {
	d := f.dst.As16()
	b := []byte{0x33, 0x33, d[12], d[13], d[14], d[15]}
	b = append(b, srcMAC...)
	b = append(b, 0x86, 0xdd, 0x60, 0, 0, 0)
	plen := len(f.icmp)
	nh := byte(58)
	if f.routerAlert {
		plen += 8
		nh = 0
	}
	b = binary.BigEndian.AppendUint16(b, uint16(plen))
	b = append(b, nh, f.hopLimit)
	s := f.src.As16()
	b = append(b, s[:]...)
	b = append(b, d[:]...)
	if f.routerAlert {
		b = append(b, 58, 0, 5, 2, 0, 0, 1, 0)
	}
	return append(b, f.icmp...)
}

// marshal is mld.Marshal failing the test on error.
func marshal(t *testing.T, m mld.Message, src, dst netip.Addr) []byte {
	t.Helper()
	b, err := mld.Marshal(m, src, dst)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rawSender writes crafted frames from a host's interface.
type rawSender struct {
	c   *packet.Conn
	mac net.HardwareAddr
}

func (h *host) rawSender(t *testing.T) *rawSender {
	t.Helper()
	s := &rawSender{mac: h.link.MAC}
	h.ns.Do(t, func() error {
		ifi, err := net.InterfaceByIndex(h.link.Index)
		if err != nil {
			return err
		}
		s.c, err = packet.Listen(ifi, packet.Raw, unix.ETH_P_IPV6, nil)
		return err
	})
	t.Cleanup(func() { s.c.Close() })
	return s
}

func (s *rawSender) send(t *testing.T, f mldFrame) {
	t.Helper()
	b := f.encode(s.mac)
	for {
		_, err := s.c.WriteTo(b, &packet.Addr{HardwareAddr: b[:6]})
		if errors.Is(err, unix.ENOBUFS) {
			time.Sleep(time.Millisecond)
			continue
		}
		if err != nil {
			t.Fatalf("send crafted frame: %v", err)
		}
		return
	}
}

// since formats a duration for logs.
func since(t0 time.Time) string { return time.Since(t0).Round(time.Millisecond).String() }
