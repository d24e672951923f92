package e2e

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/hotcast/hotcast/daemon/api"
	"github.com/hotcast/hotcast/internal/labtest"
	"github.com/hotcast/hotcast/internal/netnstest"
)

// testQuerierElection: two hotcast routers on one LAN elect the one with
// the lowest link-local address as querier (RFC 3810 §7.6.2); both learn
// the hosts' membership; when the querier dies the other takes over when
// its Other Querier Present timer expires (§9.5).
func testQuerierElection(t *testing.T, b bins) {
	g := netip.MustParseAddr("ff1e::70:1")
	sw := netnstest.New(t, "sw")
	sw.Sysctl(t, "net/ipv6/conf/default/disable_ipv6", "1")
	sw.Sysctl(t, "net/ipv6/conf/all/disable_ipv6", "1")
	var ports []*netnstest.Link
	var rtrs []*netnstest.NS
	for k := range 2 {
		rtr := netnstest.New(t, "rtr")
		_, p := netnstest.Veth(t, rtr, "ge1", sw, fmt.Sprintf("p%d", k))
		netnstest.Dummy(t, rtr, "ge3")
		ports = append(ports, p)
		rtrs = append(rtrs, rtr)
	}
	h := newHost(t, "hQ", sw, "p9", false)
	ports = append(ports, &netnstest.Link{NS: sw, Name: h.port})
	netnstest.Bridge(t, sw, "br0", ports...)
	ipLink(t, sw, "set", "br0", "type", "bridge", "mcast_snooping", "0")

	yaml := `
sysname: Q%d
api: {socket: "%%SOCKET%%"}
bpf: {pin-path: "%%PIN%%"}
multicast:
  routing-enable: true
  upstream: {interface: ge3, mode: static}
interfaces:
  - name: ge1
    mld: ` + mldYAML("") + `
  - name: ge3
`
	var ds []*labtest.Daemon
	for k, rtr := range rtrs {
		ds = append(ds, labtest.StartDaemon(t, rtr, b.hotcastd, b.hotcastctl, fmt.Sprintf(yaml, k)))
	}
	h.joinASM(t, g)

	var st [2]api.MLDInterface
	read := func() {
		for k, d := range ds {
			st[k] = mldIfaces(d)["ge1"]
		}
	}
	settled := func() bool {
		read()
		a0, a1 := netip.MustParseAddr(st[0].Address), netip.MustParseAddr(st[1].Address)
		low := a0
		if a1.Less(a0) {
			low = a1
		}
		return st[0].IsQuerier != st[1].IsQuerier &&
			st[0].Querier == low.String() && st[1].Querier == low.String() &&
			(st[0].IsQuerier == (a0 == low))
	}
	labtest.Eventually(t, 5*time.Second, "one querier, the lowest address, agreed by both", settled)
	q, nq := 0, 1
	if st[1].IsQuerier {
		q, nq = 1, 0
	}
	t.Logf("querier %s (router %d), non-querier %s", st[q].Address, q, st[nq].Address)

	// Stable: the non-querier stays quiet for a query interval.
	sent := st[nq].Sent["general_query"]
	time.Sleep(queryInterval + 500*time.Millisecond)
	if !settled() {
		t.Fatalf("election not stable: %+v", st)
	}
	if s := st[nq].Sent["general_query"]; s != sent {
		t.Errorf("non-querier sent %d general queries while the querier was present", s-sent)
	}
	if st[nq].OtherQuerierRemaining <= 0 || st[nq].OtherQuerierRemaining > oqpi.Seconds() {
		t.Errorf("non-querier's other querier present timer %.2fs, want in (0, %s]", st[nq].OtherQuerierRemaining, oqpi)
	}
	// Both keep the membership (RFC 3810 §7: all routers, not only the querier).
	for k, d := range ds {
		if findGroup(mldGroups(d), "ge1", g) == nil || findRoute(fwdTable(d), netip.Addr{}, g) == nil {
			t.Errorf("router %d lacks the membership of %s", k, g)
		}
	}

	// The querier dies; the other takes over when its timer runs out.
	ds[q].Stop()
	stopped := time.Now()
	st[nq] = mldIfaces(ds[nq])["ge1"]
	due := time.Now().Add(time.Duration(st[nq].OtherQuerierRemaining * float64(time.Second)))
	for !st[nq].IsQuerier {
		if time.Now().After(due.Add(2 * time.Second)) {
			t.Fatalf("no takeover %s after the querier stopped (Other Querier Present Interval %s)", since(stopped), oqpi)
		}
		time.Sleep(20 * time.Millisecond)
		st[nq] = mldIfaces(ds[nq])["ge1"]
	}
	late := time.Since(due)
	t.Logf("takeover %s after the querier stopped, %s after its timer's due time", since(stopped), late.Round(time.Millisecond))
	if late < -300*time.Millisecond || late > 700*time.Millisecond {
		t.Errorf("takeover %s off the Other Querier Present timer", late)
	}
	if took := time.Since(stopped); took > oqpi+700*time.Millisecond {
		t.Errorf("takeover took %s, more than the Other Querier Present Interval %s", took, oqpi)
	}
	if st[nq].Querier != st[nq].Address {
		t.Errorf("after takeover querier %q, want itself %s", st[nq].Querier, st[nq].Address)
	}
}
