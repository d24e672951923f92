package e2e

import (
	"encoding/json"
	"net/netip"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/hotcast/hotcast/ctrl/mld"
	"github.com/hotcast/hotcast/internal/labtest"
	"github.com/hotcast/hotcast/internal/netnstest"
)

// testProxyUpstream: with multicast.upstream.mode mld-proxy, hotcast
// reports the downstream membership upstream as a host (RFC 4605 §4.1).
// The upstream is a snooping Linux bridge (MLDv2 snooping) with a querier
// host on it: it forwards to hotcast only the groups hotcast reported, and
// stops when the last downstream listener leaves.
//
//	snd:s0 --- u1:[ubr, snooping]:u0 --- ge3:rtr:ge1 --- eth0:hP
//	                  ubr:u2 --- eth0:hI (querier)
func testProxyUpstream(t *testing.T, b bins) {
	var (
		gA = netip.MustParseAddr("ff1e::80:1") // hP, ASM
		gS = netip.MustParseAddr("ff3e::80:2") // hP, (srcS, gS)
		gX = netip.MustParseAddr("ff1e::80:3") // nobody
	)
	up, snd, rtr := netnstest.New(t, "up"), netnstest.New(t, "snd"), netnstest.New(t, "rtr")
	up.Sysctl(t, "net/ipv6/conf/default/disable_ipv6", "1")
	s0, _ := netnstest.Veth(t, snd, "s0", up, "u1")
	_, u0 := netnstest.Veth(t, rtr, "ge3", up, "u0")
	idle := newHost(t, "hI", up, "u2", false) // listens to nothing
	up.Sysctl(t, "net/ipv6/conf/default/disable_ipv6", "0")
	netnstest.Bridge(t, up, "ubr", u0, &netnstest.Link{NS: up, Name: "u1"}, &netnstest.Link{NS: up, Name: "u2"})
	ipLink(t, up, "set", "ubr", "type", "bridge", "mcast_snooping", "1", "mcast_mld_version", "2")
	hP := newHost(t, "hP", rtr, "ge1", false)

	yaml := `
sysname: PROXY
api: {socket: "%SOCKET%"}
bpf: {pin-path: "%PIN%"}
multicast:
  routing-enable: true
  upstream: {interface: ge3, mode: mld-proxy}
interfaces:
  - name: ge1
    mld: ` + mldYAML("") + `
  - name: ge3
`
	d := labtest.StartDaemon(t, rtr, b.hotcastd, b.hotcastctl, yaml)
	// hI is the upstream querier (the bridge's own querier is unreliable:
	// it rarely queries, and the bridge floods while no querier is known).
	// Its general query makes the bridge snoop selectively once the
	// query's response delay has passed, and hotcast answer upstream.
	querier := idle.rawSender(t)
	query := func(g netip.Addr) {
		q := &mld.Query{Version: 2, Group: g, MaxRespCode: uint16(respInterval.Milliseconds()), QRV: robustness, QQIC: uint8(queryInterval.Seconds())}
		dst := mld.AllNodes
		if g.IsValid() {
			dst = g
		}
		querier.send(t, mldFrame{src: idle.ll, dst: dst, hopLimit: 1, routerAlert: true, icmp: marshal(t, q, idle.ll, dst)})
	}
	query(netip.Addr{})
	queried := time.Now()
	joinA := hP.joinASM(t, gA)
	hP.joinSSM(t, srcS, gS)
	labtest.Eventually(t, 5*time.Second, "routes of the downstream joins", func() bool {
		ft := fwdTable(d)
		return findRoute(ft, netip.Addr{}, gA) != nil && findRoute(ft, srcS, gS) != nil
	})

	// Upstream, the snooping bridge learns hotcast's reports on u0.
	mdb := func() []string { return mdbGroups(t, up, "u0") }
	labtest.Eventually(t, 5*time.Second, "the proxy's memberships in the upstream bridge", func() bool {
		m := mdb()
		return slices.Contains(m, gA.String()) && slices.Contains(m, gS.String())
	})
	if m := mdb(); slices.Contains(m, gX.String()) {
		t.Errorf("upstream bridge has %s on the proxy's port, which nobody joined: %v", gX, m)
	}
	time.Sleep(time.Until(queried.Add(respInterval + 300*time.Millisecond)))

	missBefore := fwdTable(d).Reasons["pass_miss"]
	st := labtest.StartStream(t, s0, srcS, []netip.Addr{gA, gS, gX}, 200)
	time.Sleep(time.Second)
	n := st.Stop()
	labtest.Eventually(t, 3*time.Second, "the reported groups at hP", func() bool {
		return hP.count(t, gA) == n && hP.count(t, gS) == n
	})
	if c := hP.count(t, gX); c != 0 {
		t.Errorf("hP received %d frames of %s", c, gX)
	}
	// The bridge forwarded to hotcast only what it reported: no frame of
	// gX reached ge3 (it would count as a route miss there).
	if miss := fwdTable(d).Reasons["pass_miss"] - missBefore; miss != 0 {
		out, _ := exec.Command("bridge", "-n", up.Name, "-d", "-s", "mdb", "show").CombinedOutput()
		t.Errorf("%d frames without a route reached ge3: the upstream forwarded groups hotcast did not report\n%s", miss, out)
	}

	// The last downstream listener of gA leaves: hotcast reports it
	// upstream and the bridge stops forwarding gA to it.
	joinA.leave()
	// The querier asks for remaining listeners (RFC 3810 §7.6.3.1).
	time.Sleep(100 * time.Millisecond)
	query(gA)
	time.Sleep(llqi)
	query(gA)
	labtest.Eventually(t, llqt+5*time.Second, "gA leaving the upstream bridge's port", func() bool {
		return !slices.Contains(mdb(), gA.String())
	})
	if !slices.Contains(mdb(), gS.String()) {
		t.Errorf("gS left upstream with gA")
	}
}

// mdbGroups returns the groups the bridge in ns has on port.
func mdbGroups(t *testing.T, ns *netnstest.NS, port string) []string {
	t.Helper()
	out, err := exec.Command("bridge", "-n", ns.Name, "-j", "mdb", "show").Output()
	if err != nil {
		t.Fatalf("bridge mdb show: %v", err)
	}
	var v []struct {
		MDB []struct {
			Port string `json:"port"`
			Grp  string `json:"grp"`
		} `json:"mdb"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("bridge mdb show: %v\n%s", err, out)
	}
	var gs []string
	for _, x := range v {
		for _, e := range x.MDB {
			if e.Port == port && !slices.Contains(gs, e.Grp) {
				gs = append(gs, e.Grp)
			}
		}
	}
	return gs
}
