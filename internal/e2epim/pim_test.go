package e2epim

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hotcast/hotcast/daemon/api"
	"github.com/hotcast/hotcast/internal/labtest"
	"github.com/hotcast/hotcast/internal/netnstest"
)

var (
	src   = netip.MustParseAddr("2001:db8:40::2")
	asmG  = netip.MustParseAddr("ff0e::1:1") // through the RP, then the SPT
	ssmG  = netip.MustParseAddr("ff3e::1:3") // (S,G) joins only
	rpAdr = "2001:db8:22::22"
)

const deviceD = `
sysname: DeviceD
api: {socket: "%SOCKET%"}
bpf: {pin-path: "%PIN%"}
multicast: {routing-enable: true}
loopback: {addresses: ["2001:db8:22::22/128"]}
pim:
  static-rp: [{address: "2001:db8:22::22"}]
interfaces:
  - {name: ge1, addresses: ["2001:db8:40::1/64"], pim: {mode: sm}}
  - {name: ge2, addresses: ["2001:db8:30::2/64"], pim: {mode: sm}}
  - {name: ge3, addresses: ["2001:db8:20::2/64"], pim: {mode: sm}}
`

// edge is DeviceA or DeviceB: the LAN (lan) with VRRP6, MLD (reports
// ignored while Backup: the standby learns through RBS alone), the gate,
// the hot-backup profile and PIM ignoring DR and assert state; the
// upstream (up) towards DeviceD; the RBS link ge1.
const edge = `
sysname: %[1]s
api: {socket: "%%SOCKET%%"}
bpf: {pin-path: "%%PIN%%"}
multicast: {routing-enable: true}
pim:
  static-rp: [{address: "2001:db8:22::22"}]
remote-backup-services:
  - {name: service1, peer-ipv6: "2001:db8:10::%[3]d", source-ipv6: "2001:db8:10::%[2]d", port: 1025}
remote-backup-profiles:
  - {name: profile1, service-type: [mld], backup-id: 10, remote-backup-service: service1, peer-backup: hot, vrrp6: {vrid: 1, interface: %[4]s}}
interfaces:
  - {name: ge1, addresses: ["2001:db8:10::%[2]d/64"]}
  - name: %[4]s
    addresses: ["2001:db8:50::%[2]d/64"]
    mld: {enable: true, ignore-reports-while-backup: true}
    vrrp6:
      - {vrid: 1, virtual-ip: ["fe80::1", "2001:db8::50"], priority: %[6]d, preempt-delay: 10s, advertise-interval: 100ms}
    multicast-track-vrrp6: 1
    remote-backup-profile: profile1
    pim: {mode: sm, ignore-dr-state: true, ignore-assert-state: true}
  - {name: %[5]s, addresses: ["2001:db8:%[7]d::1/64"], pim: {mode: sm}}
`

type router struct {
	name     string
	ns       *netnstest.NS
	d        *labtest.Daemon
	hc       *http.Client
	lan, up  string // interface names
	upstream string // DeviceD's address on the upstream link
}

func (r *router) get(path string, v any) error {
	resp, err := r.hc.Get("http://hotcastd" + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func (r *router) routes(t *testing.T) api.ForwardingTable {
	t.Helper()
	var ft api.ForwardingTable
	if err := r.get(api.PathForwardingTable, &ft); err != nil {
		t.Logf("%s: forwarding table: %v", r.name, err)
	}
	return ft
}

// route is the fast path's route for (s, g) ("*" for (*,G)).
func (r *router) route(t *testing.T, s string, g netip.Addr) *api.Route {
	ft := r.routes(t)
	for i, rt := range ft.Routes {
		if rt.Source == s && rt.Group == g.String() {
			return &ft.Routes[i]
		}
	}
	return nil
}

// pimRoute is the router's PIM entry for (s, g), s "" for (*,G).
func (r *router) pimRoute(s string, g netip.Addr) *api.PIMRoute {
	var rt api.PIMRoutingTable
	if err := r.get(api.PathPIMRoutes, &rt); err != nil {
		return nil
	}
	for i, e := range rt.Routes {
		if e.Source == s && e.Group == g.String() {
			return &rt.Routes[i]
		}
	}
	return nil
}

func (r *router) vrrp(t *testing.T) api.VRRP6 {
	t.Helper()
	var vs []api.VRRP6
	if err := r.get(api.PathVRRP6, &vs); err != nil || len(vs) != 1 {
		return api.VRRP6{}
	}
	return vs[0]
}

func start(t *testing.T, ns *netnstest.NS, hcd, hcctl, name, yaml string) *router {
	t.Helper()
	r := &router{name: name, ns: ns}
	r.d = labtest.StartDaemon(t, ns, hcd, hcctl, yaml)
	sock := r.d.Socket
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}
	r.hc = &http.Client{Transport: tr, Timeout: 2 * time.Second}
	t.Cleanup(tr.CloseIdleConnections)
	return r
}

func route6(t *testing.T, ns *netnstest.NS, dst, via, dev string) {
	t.Helper()
	if out, err := exec.Command("ip", "-n", ns.Name, "-6", "route", "add", dst, "via", via, "dev", dev).CombinedOutput(); err != nil {
		t.Fatalf("%s: ip route add %s via %s: %v: %s", ns.Name, dst, via, err, out)
	}
}

func linkDown(t *testing.T, ns *netnstest.NS, names ...string) {
	t.Helper()
	h := ns.Handle(t)
	for _, n := range names {
		l, err := h.LinkByName(n)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.LinkSetDown(l); err != nil {
			t.Fatal(err)
		}
	}
}

// TestReferencePIM runs the reference topology on PIM-SM alone:
//
//	src:s0 --- ge1:DeviceD:ge3 --- ge3:DeviceA:ge2 --- lan --- h1
//	               DeviceD:ge2 --- ge2:DeviceB:ge3 ---/
//	                 DeviceA:ge1 --- ge1:DeviceB (RBS)
//
// and proves what issue 12 asks of it: the routers learn the RP from
// configuration and join upstream; the standby, which knows the LAN's
// listeners only through RBS, has upstream state and receives the
// streams while muted, and the host gets no duplicate; a leave prunes
// upstream on both routers and empties DeviceD's state; after DeviceA
// fails, DeviceB forwards within Master_Down_Interval (+5 ms) with no
// duplicate.
func TestReferencePIM(t *testing.T) {
	netnstest.RequireRoot(t)
	hcd, hcctl := labtest.Binaries(t)
	srcNS := netnstest.New(t, "src")
	nsD := netnstest.New(t, "dD")
	nsA := netnstest.New(t, "dA")
	nsB := netnstest.New(t, "dB")
	lan := netnstest.New(t, "lan")
	host := netnstest.New(t, "h1")

	s0, _ := netnstest.Veth(t, srcNS, "s0", nsD, "ge1")
	netnstest.Veth(t, nsD, "ge3", nsA, "ge3")
	netnstest.Veth(t, nsD, "ge2", nsB, "ge2")
	netnstest.Veth(t, nsA, "ge1", nsB, "ge1")
	_, pa := netnstest.Veth(t, nsA, "ge2", lan, "p-a")
	_, pb := netnstest.Veth(t, nsB, "ge3", lan, "p-b")
	h1, ph := netnstest.Veth(t, host, "h1", lan, "p-h")
	// The routers' XDP redirects onto their LAN ports: the switch's ends
	// need an XDP program to receive them.
	labtest.NewReceiver(t, pa)
	labtest.NewReceiver(t, pb)
	netnstest.Bridge(t, lan, "br0", pa, pb, ph)
	s0.AddAddr(t, src.String()+"/64")
	h1.AddAddr(t, "2001:db8:50::100/64")
	h1.WaitLinkLocal(t)

	// What the routers send each other, captured on DeviceD's link to
	// DeviceA for an independent decoder (tshark) at the end.
	capture := startCapture(t, nsD, "ge3")

	// DeviceD first (the interfaces get their addresses from it), then
	// the unicast routes the reference's IS-IS would give.
	d := start(t, nsD, hcd, hcctl, "DeviceD", deviceD)
	a := start(t, nsA, hcd, hcctl, "DeviceA", fmt.Sprintf(edge, "DeviceA", 1, 2, "ge2", "ge3", 200, 20))
	a.lan, a.up, a.upstream = "ge2", "ge3", "2001:db8:20::2"
	labtest.Eventually(t, 5*time.Second, "DeviceA up", func() bool { return a.vrrp(t).State != "" })
	b := start(t, nsB, hcd, hcctl, "DeviceB", fmt.Sprintf(edge, "DeviceB", 2, 1, "ge3", "ge2", 120, 30))
	b.lan, b.up, b.upstream = "ge3", "ge2", "2001:db8:30::2"
	for _, r := range []*router{a, b} {
		for _, dst := range []string{"2001:db8:40::/64", rpAdr + "/128"} {
			route6(t, r.ns, dst, r.upstream, r.up)
		}
	}
	if out, err := exec.Command("ip", "-n", srcNS.Name, "-6", "route", "add", "default", "via", "2001:db8:40::1", "dev", "s0").CombinedOutput(); err != nil {
		t.Fatalf("source default route: %v: %s", err, out)
	}
	dumpOnFailure(t, d, a, b)
	labtest.Eventually(t, 10*time.Second, "A Master, B Backup", func() bool {
		return a.vrrp(t).State == "Master" && b.vrrp(t).State == "Backup"
	})

	meter := labtest.NewGapMeter(t, h1)
	leaveASM := labtest.Join(t, h1, asmG, netip.Addr{})
	leaveSSM := labtest.Join(t, h1, ssmG, src)
	const pps = 1000
	stream := labtest.StartStream(t, s0, src, []netip.Addr{asmG, ssmG}, pps)
	defer stream.Stop()

	// Both routers join upstream: the Master from its hosts, the standby
	// from what RBS gave it; DeviceD forwards (S,G) from ge1 to both.
	srcS := src.String()
	labtest.Eventually(t, 15*time.Second, "both routers' (S,G) routes from DeviceD, and DeviceD's to both", func() bool {
		for _, r := range []*router{a, b} {
			for _, g := range []netip.Addr{asmG, ssmG} {
				rt := r.route(t, srcS, g)
				if rt == nil || rt.Incoming != r.up || !slices.Contains(rt.Outgoing, r.lan) {
					return false
				}
			}
		}
		for _, g := range []netip.Addr{asmG, ssmG} {
			rt := d.route(t, srcS, g)
			if rt == nil || rt.Incoming != "ge1" || !slices.Contains(rt.Outgoing, "ge2") || !slices.Contains(rt.Outgoing, "ge3") {
				return false
			}
		}
		return true
	})
	// Both routers' PIM state: joined on the source tree towards
	// DeviceD, the LAN downstream for local (MLD) receivers; the
	// standby's learned through RBS.
	for _, r := range []*router{a, b} {
		for _, g := range []netip.Addr{asmG, ssmG} {
			e := r.pimRoute(srcS, g)
			if e == nil || !e.Joined || e.UpstreamInterface != r.up || e.UpstreamNeighbor == "" || !slices.Contains(e.Flags, "SPT") ||
				len(e.Downstreams) != 1 || e.Downstreams[0].Interface != r.lan || !e.Downstreams[0].Local {
				t.Errorf("%s: PIM (S,%v) %+v, want joined on the SPT via %s, downstream %s local", r.name, g, e, r.up, r.lan)
			}
		}
		if e := r.pimRoute("", asmG); e == nil || e.RP != rpAdr || !e.Joined {
			t.Errorf("%s: PIM (*,%v) %+v, want joined towards RP %s", r.name, asmG, e, rpAdr)
		}
	}
	if e := d.pimRoute("", asmG); e == nil || !slices.Contains(e.Flags, "LocalRP") || len(e.Downstreams) != 2 {
		t.Errorf("DeviceD: PIM (*,%v) %+v, want the RP's entry with both routers downstream", asmG, e)
	}
	// The standby pulls the streams, muted: its (S,G) counters move, its
	// LAN gate is shut, the host sees each packet once.
	before := map[netip.Addr]uint64{}
	for _, g := range []netip.Addr{asmG, ssmG} {
		before[g] = b.route(t, srcS, g).Packets
	}
	time.Sleep(500 * time.Millisecond)
	for _, g := range []netip.Addr{asmG, ssmG} {
		if now := b.route(t, srcS, g).Packets; now < before[g]+pps/4 {
			t.Errorf("standby's (S,%v) counted %d packets in 500 ms: it does not receive the stream", g, now-before[g])
		}
	}
	if gate := b.routes(t).Gates[b.lan]; gate != "muted" {
		t.Errorf("standby's LAN gate %q, want muted", gate)
	}
	// The Master's copies reach the standby's LAN interface, off its RPF
	// interface: dropped in the fast path, counted, and no Assert (the
	// LAN ignores assert state), on either router.
	if n := b.routes(t).Reasons["drop_rpf"]; n == 0 {
		t.Errorf("standby: no drop_rpf: the Master's copies on the LAN were not seen and dropped")
	}
	for _, r := range []*router{a, b} {
		var rt api.PIMRoutingTable
		if err := r.get(api.PathPIMRoutes, &rt); err != nil {
			t.Fatal(err)
		}
		if n := rt.Statistics.Assert["sent"] + rt.Statistics.Assert["received"]; n != 0 {
			t.Errorf("%s: %d Asserts sent or received on a LAN that ignores assert state", r.name, n)
		}
	}
	var groups []api.MLDGroup
	b.d.CtlJSON(&groups, "display", "mld", "group")
	for _, g := range groups {
		if g.Group == asmG.String() && !g.Synced {
			t.Errorf("standby's MLD group %s not synced: it must know the listener through RBS only", g.Group)
		}
	}
	for _, g := range []netip.Addr{asmG, ssmG} {
		if r := meter.Report(g); r.Received == 0 || r.Duplicates != 0 {
			t.Errorf("host, %v: %d received, %d duplicates (want >0, 0)", g, r.Received, r.Duplicates)
		}
	}

	// A leave on the LAN: MLD's last listener query on the Master, then
	// both routers prune upstream and DeviceD stops sending the group.
	leaveASM()
	labtest.Eventually(t, 5*time.Second, "the Master to drop the ASM group", func() bool {
		rt := a.route(t, srcS, asmG)
		return rt == nil || !slices.Contains(rt.Outgoing, a.lan)
	})
	pruned := time.Now()
	labtest.Eventually(t, 5*time.Second, "DeviceD to stop sending the ASM group to both routers", func() bool {
		for _, s := range []string{srcS, "*"} {
			if rt := d.route(t, s, asmG); rt != nil && len(rt.Outgoing) > 0 {
				return false
			}
		}
		return true
	})
	// The prune delay on DeviceD's point-to-point links is at most the
	// J/P override interval (2.5 s) plus the propagation delay (0.5 s).
	if took := time.Since(pruned); took > 3500*time.Millisecond {
		t.Errorf("DeviceD pruned the ASM group %v after the Master's leave, want within the prune delay (3 s)", took)
	}
	labtest.Eventually(t, 5*time.Second, "the standby's ASM route to go", func() bool {
		rt := b.route(t, srcS, asmG)
		return rt == nil || !slices.Contains(rt.Outgoing, b.lan)
	})
	// DeviceD's RP state for the group is empty: no (*,G), no joined
	// downstream left (an (S,G) of the directly connected source may
	// stay while its Keepalive Timer runs, with nothing downstream).
	labtest.Eventually(t, 5*time.Second, "DeviceD's join state for the ASM group to empty", func() bool {
		if d.pimRoute("", asmG) != nil {
			return false
		}
		e := d.pimRoute(srcS, asmG)
		return e == nil || len(e.Downstreams) == 0
	})
	for _, r := range []*router{a, b} {
		if e := r.pimRoute("", asmG); e != nil {
			t.Errorf("%s: PIM (*,%v) left after the leave: %+v", r.name, asmG, e)
		}
	}

	// Back, then DeviceA fails.
	labtest.Join(t, h1, asmG, netip.Addr{})
	labtest.Eventually(t, 15*time.Second, "both routers' ASM routes again", func() bool {
		for _, r := range []*router{a, b} {
			rt := r.route(t, srcS, asmG)
			if rt == nil || !slices.Contains(rt.Outgoing, r.lan) {
				return false
			}
		}
		return true
	})
	time.Sleep(300 * time.Millisecond)
	mdi := labtest.MasterDownInterval(b.vrrp(t))
	meter.Reset()
	time.Sleep(200 * time.Millisecond)
	failed := time.Now()
	linkDown(t, nsA, "ge1", "ge2", "ge3")
	labtest.Eventually(t, 3*time.Second, "DeviceB Master", func() bool { return b.vrrp(t).State == "Master" })
	time.Sleep(500 * time.Millisecond)
	meter.Settle(50*time.Millisecond, time.Second)
	for _, g := range []netip.Addr{asmG, ssmG} {
		r := meter.Report(g)
		gap := r.LossGap(pps)
		t.Logf("%v: failover loss %v (Master_Down_Interval %v), %d received, %d duplicates", g, gap, mdi, r.Received, r.Duplicates)
		if gap > mdi+5*time.Millisecond {
			t.Errorf("%v: receivers lost %v of the stream at the failover, want at most Master_Down_Interval %v + 5 ms", g, gap, mdi)
		}
		if r.Duplicates != 0 {
			t.Errorf("%v: %d duplicates across the failover", g, r.Duplicates)
		}
		if r.Received == 0 {
			t.Errorf("%v: nothing received after the failover", g)
		}
	}
	_ = failed
	leaveSSM()
	capture.check(t, "Hello", "Join/Prune")
}

// capture is tcpdump writing a link's PIM frames to a file.
type capture struct {
	cmd  *exec.Cmd
	path string
}

func startCapture(t *testing.T, ns *netnstest.NS, ifname string) *capture {
	t.Helper()
	if _, err := exec.LookPath("tcpdump"); err != nil {
		t.Skip("tcpdump not installed (make deps-test)")
	}
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Skip("tshark not installed (make deps-test)")
	}
	c := &capture{path: t.TempDir() + "/pim.pcap"}
	c.cmd = exec.Command("nsenter", "--net="+ns.Path(), "--", "tcpdump", "-i", ifname, "-U", "-n", "-w", c.path, "ip6 proto 103")
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("tcpdump: %v", err)
	}
	t.Cleanup(func() { c.stop() })
	time.Sleep(300 * time.Millisecond) // tcpdump attaches its filter
	return c
}

func (c *capture) stop() {
	if c.cmd.Process != nil && c.cmd.ProcessState == nil {
		_ = c.cmd.Process.Signal(os.Interrupt)
		_ = c.cmd.Wait()
	}
}

// tsharkBad is what tshark prints for a packet it finds wrong.
var tsharkBad = regexp.MustCompile(`(?i)malformed|incorrect|\[bad|checksum status: bad|expert info \((warning|error)|exception occurred|short frame`)

// check stops the capture and has tshark decode it: every frame PIM, each
// message type in want seen, no malformed frame, bad checksum or warning.
func (c *capture) check(t *testing.T, want ...string) {
	t.Helper()
	c.stop()
	out, err := exec.Command("tshark", "-n", "-V", "-r", c.path).CombinedOutput()
	if err != nil {
		t.Fatalf("tshark: %v: %s", err, out)
	}
	text := string(out)
	frames := strings.Count(text, "\nFrame ") + strings.Count(text[:min(len(text), 6)], "Frame ")
	if frames == 0 {
		t.Fatal("tshark decoded no frame of the capture")
	}
	for _, line := range strings.Split(text, "\n") {
		if tsharkBad.MatchString(line) {
			t.Errorf("tshark: %s", strings.TrimSpace(line))
		}
	}
	for _, w := range want {
		if !strings.Contains(text, "= Type: "+w+" (") {
			t.Errorf("tshark saw no PIM %s in %d frames", w, frames)
		}
	}
	if n := strings.Count(text, "Protocol Independent Multicast"); n < frames {
		t.Errorf("%d of %d frames decode as PIM", n, frames)
	}
	t.Logf("tshark decoded %d PIM frames hotcast sent, no warning", frames)
}

// dumpOnFailure shows the routers' tables when the test failed (before the
// daemons stop: cleanups run last in first out).
func dumpOnFailure(t *testing.T, rs ...*router) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, r := range rs {
			for _, what := range [][]string{{"multicast", "forwarding-table"}, {"pim", "routing-table"}, {"pim", "routing-table", "statistics"}, {"pim", "neighbor"}} {
				out, _ := r.d.CtlErr(append([]string{"display"}, what...)...)
				t.Logf("%s: display %s:\n%s", r.name, strings.Join(what, " "), out)
			}
		}
	})
}

func lastLines(s string, n int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}
