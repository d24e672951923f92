package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotcast/hotcast/bpf"
	"github.com/hotcast/hotcast/ctrl/bfd"
	"github.com/hotcast/hotcast/ctrl/mld"
	"github.com/hotcast/hotcast/ctrl/vrrp6"
	"github.com/hotcast/hotcast/daemon/config"
	"github.com/vishvananda/netlink"
)

// The fakes below are a machine without a kernel: a System whose
// dataplane is Go maps (pinned: it outlives a daemon, as bpffs pins do),
// whose MLD sockets are channels the test writes reports into, and whose
// VRRP6 sockets share a fake LAN with the other fake machines of the
// test. RBS runs over real TCP on ::1 (no root needed), each service's
// listener registered under its source-ipv6. They let the daemon's own
// logic run without root and under -race.

// fakeNet is what the fake machines of one test share: LANs and the RBS
// address book.
type fakeNet struct {
	mu   sync.Mutex
	lans map[string][]*fakeVRRPConn // LAN name -> the sockets on it
	rbs  map[netip.Addr]string      // source-ipv6 -> listener on ::1
}

func newFakeNet() *fakeNet {
	return &fakeNet{lans: map[string][]*fakeVRRPConn{}, rbs: map[netip.Addr]string{}}
}

// deliver puts a VRRP6 frame sent by from on every other socket of its
// LAN (asynchronously: the sender holds its router's lock).
func (n *fakeNet) deliver(from *fakeVRRPConn, frame []byte) {
	// Ethernet (14) + IPv6 (40) + VRRP.
	if len(frame) < 54 {
		return
	}
	ip := frame[14:]
	src, _ := netip.AddrFromSlice(ip[8:24])
	dst, _ := netip.AddrFromSlice(ip[24:40])
	rx := vrrp6.Received{Src: src, Dst: dst, HopLimit: int(ip[7]), Payload: slices.Clone(ip[40:])}
	n.mu.Lock()
	peers := slices.Clone(n.lans[from.lan])
	n.mu.Unlock()
	for _, c := range peers {
		if c != from {
			c.inject(rx)
		}
	}
}

func (n *fakeNet) join(c *fakeVRRPConn) {
	n.mu.Lock()
	n.lans[c.lan] = append(n.lans[c.lan], c)
	n.mu.Unlock()
}

func (n *fakeNet) leave(c *fakeVRRPConn) {
	n.mu.Lock()
	n.lans[c.lan] = slices.DeleteFunc(n.lans[c.lan], func(x *fakeVRRPConn) bool { return x == c })
	n.mu.Unlock()
}

// fakeIf is one interface of a fake machine.
type fakeIf struct {
	index int
	mac   net.HardwareAddr
	lan   string // the LAN its VRRP6 socket joins ("" for none)
	up    bool
	addrs []netip.Prefix
}

// fakeSystem is one machine.
type fakeSystem struct {
	t   *testing.T
	net *fakeNet
	id  byte

	mu      sync.Mutex
	ifs     map[string]*fakeIf
	pinned  *fakeDataplane // what bpffs holds, nil when nothing is pinned
	opens   int
	fail    map[string]error // fault injection: "dataplane", "attach:IF", "mld:IF", "vrrp:IF", "linklocal:IF"
	mldc    map[string]*fakeMLDConn
	vrrpc   map[string]*fakeVRRPConn
	ucast   map[int][]string // unicast filter MACs
	linkSub []*fakeLinkSub
	bfd     *fakeBFD
}

func newFakeSystem(t *testing.T, n *fakeNet, id byte) *fakeSystem {
	return &fakeSystem{t: t, net: n, id: id, ifs: map[string]*fakeIf{}, fail: map[string]error{},
		mldc: map[string]*fakeMLDConn{}, vrrpc: map[string]*fakeVRRPConn{}, ucast: map[int][]string{}}
}

// addIf adds an interface (up) on a LAN.
func (s *fakeSystem) addIf(name, lan string) *fakeIf {
	s.mu.Lock()
	defer s.mu.Unlock()
	idx := len(s.ifs) + 2
	f := &fakeIf{index: idx, mac: net.HardwareAddr{0x02, 0, 0, 0, s.id, byte(idx)}, lan: lan, up: true}
	s.ifs[name] = f
	return f
}

func (s *fakeSystem) failOn(what string, err error) {
	s.mu.Lock()
	s.fail[what] = err
	s.mu.Unlock()
}

func (s *fakeSystem) fault(what string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fail[what]
}

func (s *fakeSystem) byIndex(index int) (string, *fakeIf) {
	for n, f := range s.ifs {
		if f.index == index {
			return n, f
		}
	}
	return "", nil
}

func (s *fakeSystem) Interface(name string) (*net.Interface, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.ifs[name]
	if f == nil {
		return nil, fmt.Errorf("route ip+net: no such network interface %s", name)
	}
	return &net.Interface{Index: f.index, Name: name, HardwareAddr: f.mac, MTU: 1500, Flags: net.FlagUp | net.FlagMulticast}, nil
}

func (s *fakeSystem) LinkUp(name string) (bool, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.ifs[name]
	if f == nil {
		return false, false
	}
	return f.up, true
}

func (s *fakeSystem) SubscribeLinks(ch chan<- netlink.LinkUpdate, done <-chan struct{}) error {
	sub := &fakeLinkSub{ch: ch}
	s.mu.Lock()
	s.linkSub = append(s.linkSub, sub)
	s.mu.Unlock()
	go func() {
		<-done
		s.endLinks(sub)
	}()
	return nil
}

// fakeLinkSub is one link subscription.
type fakeLinkSub struct {
	ch   chan<- netlink.LinkUpdate
	once sync.Once
}

// endLinks ends subscriptions (all when none is named), closing their
// channels as netlink does.
func (s *fakeSystem) endLinks(only ...*fakeLinkSub) int {
	s.mu.Lock()
	var ended []*fakeLinkSub
	s.linkSub = slices.DeleteFunc(s.linkSub, func(x *fakeLinkSub) bool {
		if len(only) == 0 || slices.Contains(only, x) {
			ended = append(ended, x)
			return true
		}
		return false
	})
	s.mu.Unlock()
	for _, x := range ended {
		x.once.Do(func() { close(x.ch) })
	}
	return len(ended)
}

// setLink changes a link's operational state and tells the subscribers.
func (s *fakeSystem) setLink(name string, up bool) {
	s.mu.Lock()
	s.ifs[name].up = up
	st := netlink.LinkOperState(netlink.OperDown)
	if up {
		st = netlink.OperUp
	}
	subs := slices.Clone(s.linkSub)
	s.mu.Unlock()
	u := netlink.LinkUpdate{Link: &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: name, OperState: st}}}
	for _, x := range subs {
		x.ch <- u
	}
}

func (s *fakeSystem) KeepAddrOnDown(string) error { return nil }

func (s *fakeSystem) Addrs(index int) ([]netip.Addr, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, f := s.byIndex(index)
	if f == nil {
		return nil, errors.New("link not found")
	}
	out := []netip.Addr{}
	for _, p := range f.addrs {
		out = append(out, p.Addr())
	}
	return out, nil
}

func (s *fakeSystem) AddAddr(index int, p netip.Prefix) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, f := s.byIndex(index)
	if f == nil {
		return errors.New("link not found")
	}
	if !slices.Contains(f.addrs, p) {
		f.addrs = append(f.addrs, p)
	}
	return nil
}

func (s *fakeSystem) DelAddr(index int, p netip.Prefix) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, f := s.byIndex(index)
	if f == nil {
		return errors.New("link not found")
	}
	f.addrs = slices.DeleteFunc(f.addrs, func(x netip.Prefix) bool { return x == p })
	return nil
}

// addrs returns an interface's addresses (sorted strings).
func (s *fakeSystem) addrs(name string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, p := range s.ifs[name].addrs {
		out = append(out, p.String())
	}
	slices.Sort(out)
	return out
}

func (s *fakeSystem) LinkLocal(index int) (netip.Addr, error) {
	s.mu.Lock()
	name, f := s.byIndex(index)
	s.mu.Unlock()
	if f == nil {
		return netip.Addr{}, errors.New("link not found")
	}
	if err := s.fault("linklocal:" + name); err != nil {
		return netip.Addr{}, err
	}
	return netip.AddrFrom16([16]byte{0: 0xfe, 1: 0x80, 14: s.id, 15: byte(index)}), nil
}

func (s *fakeSystem) SetUnicastMAC(index int, mac net.HardwareAddr, add bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := mac.String()
	s.ucast[index] = slices.DeleteFunc(s.ucast[index], func(x string) bool { return x == m })
	if add {
		s.ucast[index] = append(s.ucast[index], m)
	}
	return nil
}

func (s *fakeSystem) OpenDataplane(bpf.Options) (Dataplane, error) {
	if err := s.fault("dataplane"); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opens++
	if s.pinned != nil {
		s.pinned.reopen()
		return s.pinned, nil
	}
	s.pinned = newFakeDataplane(s)
	return s.pinned, nil
}

func (s *fakeSystem) CleanupDataplane(string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pinned = nil
	return nil
}

// dataplane returns what bpffs holds (nil: nothing).
func (s *fakeSystem) dataplane() *fakeDataplane {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pinned
}

func (s *fakeSystem) ListenMLD(ifname string, ll netip.Addr, _ *slog.Logger) (MLDConn, error) {
	if err := s.fault("mld:" + ifname); err != nil {
		return nil, err
	}
	c := &fakeMLDConn{ll: ll, in: make(chan mld.Packet, 64), closed: make(chan struct{})}
	s.mu.Lock()
	s.mldc[ifname] = c
	s.mu.Unlock()
	return c, nil
}

func (s *fakeSystem) ListenVRRP(ifname string, _ *slog.Logger) (VRRPConn, error) {
	if err := s.fault("vrrp:" + ifname); err != nil {
		return nil, err
	}
	s.mu.Lock()
	f := s.ifs[ifname]
	c := &fakeVRRPConn{net: s.net, lan: f.lan, in: make(chan vrrp6.Received, 256), closed: make(chan struct{})}
	s.vrrpc[ifname] = c
	s.mu.Unlock()
	s.net.join(c)
	return c, nil
}

func (s *fakeSystem) OpenBFD(bfd.EngineConfig) (BFDManager, error) {
	if err := s.fault("bfd"); err != nil {
		return nil, err
	}
	m := &fakeBFD{sessions: map[string]*fakeBFDSession{}}
	s.mu.Lock()
	s.bfd = m
	s.mu.Unlock()
	return m, nil
}

// bfdManager returns the last BFD engine opened.
func (s *fakeSystem) bfdManager() *fakeBFD {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bfd
}

// vrrp returns the interface's last opened VRRP6 socket.
func (s *fakeSystem) vrrp(ifname string) *fakeVRRPConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.vrrpc[ifname]
}

// mld returns the interface's last opened MLD socket.
func (s *fakeSystem) mld(ifname string) *fakeMLDConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mldc[ifname]
}

// The fake machine has no PIM: its tests run none (PIM is tested on real
// sockets in internal/e2epim).
func (s *fakeSystem) PIMRPF() (PIMRPF, error) { return nil, errors.New("fake: no pim") }
func (s *fakeSystem) ListenPIM(string, netip.Addr) (PIMConn, error) {
	return nil, errors.New("fake: no pim")
}
func (s *fakeSystem) ListenPIMUnicast() (PIMUnicastConn, error) {
	return nil, errors.New("fake: no pim")
}
func (s *fakeSystem) ListenData(string) (DataConn, error) { return nil, errors.New("fake: no pim") }

func (s *fakeSystem) RBSTransport(sc *config.RBS) (func(context.Context) (net.Conn, error), func(context.Context) (net.Listener, error)) {
	src, peer := sc.SourceIPv6, sc.PeerIPv6
	listen := func(ctx context.Context) (net.Listener, error) {
		var lc net.ListenConfig
		l, err := lc.Listen(ctx, "tcp6", "[::1]:0")
		if err != nil {
			return nil, err
		}
		s.net.mu.Lock()
		s.net.rbs[src] = l.Addr().String()
		s.net.mu.Unlock()
		return fakeRBSListener{Listener: l, peer: peer}, nil
	}
	dial := func(ctx context.Context) (net.Conn, error) {
		s.net.mu.Lock()
		addr := s.net.rbs[peer]
		s.net.mu.Unlock()
		if addr == "" {
			return nil, fmt.Errorf("dial %s: connection refused", peer)
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp6", addr)
		if err != nil {
			return nil, err
		}
		return fakeRBSConn{Conn: c, local: src, remote: peer}, nil
	}
	return dial, listen
}

// fakeRBSListener accepts on ::1 what, in the fake world, came from the
// service's peer: the connections say so.
type fakeRBSListener struct {
	net.Listener
	peer netip.Addr
}

func (l fakeRBSListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return fakeRBSConn{Conn: c, local: netip.Addr{}, remote: l.peer}, nil
}

// fakeRBSConn is a ::1 connection carrying the fake world's addresses.
type fakeRBSConn struct {
	net.Conn
	local, remote netip.Addr
}

func (c fakeRBSConn) RemoteAddr() net.Addr {
	p := c.Conn.RemoteAddr().(*net.TCPAddr).Port
	return net.TCPAddrFromAddrPort(netip.AddrPortFrom(c.remote, uint16(p)))
}

func (c fakeRBSConn) LocalAddr() net.Addr {
	if !c.local.IsValid() {
		return c.Conn.LocalAddr()
	}
	p := c.Conn.LocalAddr().(*net.TCPAddr).Port
	return net.TCPAddrFromAddrPort(netip.AddrPortFrom(c.local, uint16(p)))
}

// fakeBFD is a BFD engine whose sessions change state when the test says.
type fakeBFD struct {
	mu       sync.Mutex
	sessions map[string]*fakeBFDSession
	closed   bool
}

type fakeBFDSession struct {
	cfg      bfd.Config
	state    bfd.State
	watchers []chan bfd.StateChange
}

func (f *fakeBFD) Add(c bfd.Config) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sessions[c.Name] != nil {
		return fmt.Errorf("bfd session %q exists", c.Name)
	}
	f.sessions[c.Name] = &fakeBFDSession{cfg: c, state: bfd.StateDown}
	return nil
}

func (f *fakeBFD) Reconfigure(c bfd.Config) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.sessions[c.Name]
	if s == nil {
		return fmt.Errorf("bfd session %q: no such session", c.Name)
	}
	s.cfg = c
	return nil
}

func (f *fakeBFD) Remove(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.sessions, name)
	return nil
}

func (f *fakeBFD) Watch(name string) (<-chan bfd.StateChange, func(), error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.sessions[name]
	if s == nil {
		return nil, nil, fmt.Errorf("bfd session %q: no such session", name)
	}
	ch := make(chan bfd.StateChange, 16)
	ch <- bfd.StateChange{Name: name, Interface: s.cfg.Interface, Peer: s.cfg.Peer, To: s.state}
	s.watchers = append(s.watchers, ch)
	return ch, func() {}, nil
}

// set moves a session to a state: Down after Up is a detection-time
// expiry (the peer fell silent) at lastRx.
func (f *fakeBFD) set(name string, to bfd.State, lastRx time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.sessions[name]
	c := bfd.StateChange{Name: name, Interface: s.cfg.Interface, Peer: s.cfg.Peer, From: s.state, To: to, Time: time.Now(), LastRx: lastRx}
	if s.state == bfd.StateUp && to == bfd.StateDown {
		c.Failed, c.Diag = true, bfd.DiagControlDetectionTimeExpired
	}
	s.state = to
	for _, w := range s.watchers {
		w <- c
	}
}

func (f *fakeBFD) Sessions() []bfd.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []bfd.Status
	for _, s := range f.sessions {
		out = append(out, bfd.Status{Name: s.cfg.Name, Interface: s.cfg.Interface, Local: s.cfg.Local, Peer: s.cfg.Peer, State: s.state, DetectMult: s.cfg.DetectMult})
	}
	return out
}

func (f *fakeBFD) Stats() bfd.ManagerStats { return bfd.ManagerStats{} }

func (f *fakeBFD) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

// fakeMLDConn is an MLD socket: the test injects what hosts send; what
// the router sends is recorded.
type fakeMLDConn struct {
	ll     netip.Addr
	in     chan mld.Packet
	once   sync.Once
	closed chan struct{}

	mu   sync.Mutex
	sent []mld.Message
}

func (c *fakeMLDConn) SendMLD(dst netip.Addr, icmp []byte) error {
	select {
	case <-c.closed:
		return net.ErrClosed
	default:
	}
	m, err := mld.Parse(icmp)
	if err != nil {
		return fmt.Errorf("fake mld send to %s: %w", dst, err)
	}
	c.mu.Lock()
	c.sent = append(c.sent, m)
	c.mu.Unlock()
	return nil
}

func (c *fakeMLDConn) Read(ctx context.Context) (mld.Packet, error) {
	select {
	case p := <-c.in:
		return p, nil
	case <-c.closed:
		return mld.Packet{}, net.ErrClosed
	case <-ctx.Done():
		return mld.Packet{}, ctx.Err()
	}
}

func (c *fakeMLDConn) Malformed() uint64 { return 0 }

func (c *fakeMLDConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

func (c *fakeMLDConn) isClosed() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

// queries counts the queries the router sent.
func (c *fakeMLDConn) queries() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, m := range c.sent {
		if m.Type() == mld.TypeQuery {
			n++
		}
	}
	return n
}

// report injects a host's report (or done) as the socket would read it.
func (c *fakeMLDConn) report(t *testing.T, host netip.Addr, m mld.Message) {
	t.Helper()
	dst := netip.MustParseAddr("ff02::16")
	switch m := m.(type) {
	case *mld.V1Report:
		dst = m.Group
	case *mld.V1Done:
		dst = netip.MustParseAddr("ff02::2")
	}
	b, err := mld.Marshal(m, host, dst)
	if err != nil {
		t.Fatal(err)
	}
	c.in <- mld.Packet{Src: host, Dst: dst, HopLimit: 1, RouterAlert: true, Payload: b}
}

// fakeVRRPConn is a VRRP6 socket on a fake LAN.
type fakeVRRPConn struct {
	net    *fakeNet
	lan    string
	mute   atomic.Bool // its adverts no longer reach the LAN (a cut)
	in     chan vrrp6.Received
	once   sync.Once
	closed chan struct{}
}

func (c *fakeVRRPConn) SendAdvert(frame []byte) error {
	select {
	case <-c.closed:
		return net.ErrClosed
	default:
	}
	if !c.mute.Load() {
		c.net.deliver(c, frame)
	}
	return nil
}

func (c *fakeVRRPConn) SendUnsolicitedNA([]byte) error { return nil }

func (c *fakeVRRPConn) inject(rx vrrp6.Received) {
	select {
	case c.in <- rx:
	case <-c.closed:
	default: // a full socket buffer drops
	}
}

func (c *fakeVRRPConn) Serve(d *vrrp6.Demux) error {
	for {
		select {
		case rx := <-c.in:
			d.HandleAdvert(rx.Src, rx.Dst, rx.HopLimit, rx.Payload)
		case <-c.closed:
			return nil
		}
	}
}

func (c *fakeVRRPConn) Close() error {
	c.once.Do(func() {
		close(c.closed)
		c.net.leave(c)
	})
	return nil
}

// fakeDataplane is the pinned fast path's maps, in Go.
type fakeDataplane struct {
	sys *fakeSystem

	mu       sync.Mutex
	adopted  bool
	closed   bool
	attached map[string]int
	tc       map[string]int
	ifaces   map[int]bpf.Iface
	routes   map[bpf.RouteKey]bpf.Route
	vrrp     map[string][]netip.Addr // "ifindex/vrid" of Master groups -> VIPs
	writes   int                     // route writes (ReplaceRoutes, DeleteRoutes calls)
}

func newFakeDataplane(s *fakeSystem) *fakeDataplane {
	return &fakeDataplane{sys: s, attached: map[string]int{}, tc: map[string]int{}, ifaces: map[int]bpf.Iface{},
		routes: map[bpf.RouteKey]bpf.Route{}, vrrp: map[string][]netip.Addr{}}
}

func (f *fakeDataplane) reopen() {
	f.mu.Lock()
	f.adopted, f.closed = true, false
	f.mu.Unlock()
}

func (f *fakeDataplane) ReplaceRoutes(rs []bpf.Route) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range rs {
		if err := r.Validate(); err != nil {
			return err
		}
	}
	for _, r := range rs {
		r.OIfs = slices.Clone(r.OIfs)
		f.routes[r.RouteKey] = r
	}
	f.writes++
	return nil
}

func (f *fakeDataplane) DeleteRoutes(ks []bpf.RouteKey) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, k := range ks {
		delete(f.routes, k)
	}
	f.writes++
	return nil
}

func (f *fakeDataplane) SetVRRPMaster(ifindex int, vrid uint8, vips []netip.Addr, master bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := fmt.Sprintf("%d/%d", ifindex, vrid)
	if master {
		f.vrrp[k] = slices.Clone(vips)
	} else {
		delete(f.vrrp, k)
	}
	return nil
}

func (f *fakeDataplane) SetIface(ifindex int, e bpf.Iface) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.ifaces[ifindex]; !ok {
		return fmt.Errorf("ifindex %d: not in the ifaces map", ifindex)
	}
	f.ifaces[ifindex] = e
	return nil
}

func (f *fakeDataplane) Adopted() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.adopted
}

func (f *fakeDataplane) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

func (f *fakeDataplane) Attached() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(maps.Keys(f.attached))
}

func (f *fakeDataplane) Attach(name string, ifindex int) error {
	if err := f.sys.fault("attach:" + name); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attached[name] = ifindex
	return nil
}

func (f *fakeDataplane) AttachTC(name string, ifindex int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tc[name] = ifindex
	return nil
}

func (f *fakeDataplane) Detach(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.attached, name)
	delete(f.tc, name)
	return nil
}

func (f *fakeDataplane) EnsureIface(ifindex int, initial bpf.Iface) (bpf.Iface, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if cur, ok := f.ifaces[ifindex]; ok {
		return cur, nil
	}
	f.ifaces[ifindex] = initial
	return initial, nil
}

func (f *fakeDataplane) Iface(ifindex int) (bpf.Iface, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.ifaces[ifindex]
	if !ok {
		return bpf.Iface{}, fmt.Errorf("ifindex %d: not in the ifaces map", ifindex)
	}
	return e, nil
}

func (f *fakeDataplane) DeleteIface(ifindex int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.ifaces, ifindex)
	return nil
}

func (f *fakeDataplane) Routes() ([]bpf.RouteStats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]bpf.RouteStats, 0, len(f.routes))
	for _, r := range f.routes {
		out = append(out, bpf.RouteStats{Route: r})
	}
	return out, nil
}

func (f *fakeDataplane) Reasons() (map[bpf.Reason]uint64, error) { return map[bpf.Reason]uint64{}, nil }

func (f *fakeDataplane) Counters([]bpf.RouteKey) (map[bpf.RouteKey]bpf.Counter, error) {
	return map[bpf.RouteKey]bpf.Counter{}, nil
}

// gate returns an interface's gate (false when it has no entry).
func (f *fakeDataplane) gate(ifindex int) (forward, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.ifaces[ifindex]
	return e.Gate == bpf.GateForward, ok
}

// route returns the outgoing interfaces of a route (ok false: none).
func (f *fakeDataplane) route(src, group string) (oifs []int, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	g := netip.MustParseAddr(group)
	for k, r := range f.routes {
		if k.Group != g {
			continue
		}
		if src == "" && k.IsStar() || src != "" && k.Source == netip.MustParseAddr(src) {
			return slices.Clone(r.OIfs), true
		}
	}
	return nil, false
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
