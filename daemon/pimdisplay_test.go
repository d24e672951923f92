package daemon

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hotcast/hotcast/ctrl/pim"
	"github.com/hotcast/hotcast/daemon/api"
	"github.com/hotcast/hotcast/daemon/config"
	"github.com/hotcast/hotcast/internal/clock/clocktest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// A PIM router on a fake clock for the display and metrics tests:
//
//	ge1 (ifindex 2, fe80::1): towards the RP and the sources; neighbour
//	    fe80::2 (DR, priority 1, LAN Prune Delay, a secondary address)
//	ge2 (ifindex 3, fe80::ff): downstream; neighbour fe80::3 (no DR
//	    Priority option, never expires), so this router is DR by address;
//	    MLD listeners of pimG; fe80::3 joins (pimS, pimG) and (pimS, pimSSM)
var (
	pimRP  = netip.MustParseAddr("2001:db8:ff::1")
	pimS   = netip.MustParseAddr("2001:db8:5::10")
	pimG   = netip.MustParseAddr("ff1e::1234")
	pimSSM = netip.MustParseAddr("ff3e::1")
	pimT0  = time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
)

type pimHalfRand struct{}

func (pimHalfRand) Int64N(n int64) int64 { return n / 2 }
func (pimHalfRand) Uint32() uint32       { return 0x11223344 }

type pimDiscard struct{}

func (pimDiscard) SendPIM(netip.Addr, []byte) error { return nil }

func pimInject(t *testing.T, ifc *pim.Interface, src netip.Addr, m pim.Message) {
	t.Helper()
	b, err := pim.Marshal(m, src, pim.AllPIMRouters)
	if err != nil {
		t.Fatal(err)
	}
	if d := ifc.HandlePacket(pim.Packet{Src: src, Dst: pim.AllPIMRouters, HopLimit: pim.HopLimit, Payload: b}); d != pim.DropNone {
		t.Fatalf("%v from %v dropped: %v", m.Type(), src, d)
	}
}

// testPIMView builds the router above and returns its view, the clock
// 10 s after the joins.
func testPIMView(t *testing.T) (pimView, *clocktest.Fake) {
	t.Helper()
	clk := clocktest.New(pimT0)
	rpf := &pim.StaticRPF{}
	rpf.Set(netip.MustParsePrefix("2001:db8:ff::/48"), pim.RPFRoute{Ifindex: 2, Nexthop: netip.MustParseAddr("fe80::2")})
	rpf.Set(netip.MustParsePrefix("2001:db8:5::/48"), pim.RPFRoute{Ifindex: 2, Nexthop: netip.MustParseAddr("fe80::2")})
	rps, err := pim.NewRPSet([]pim.StaticRP{{Address: pimRP}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := pim.NewRouter(pim.RouterConfig{RPs: rps, RPF: rpf, Clock: clk, Rand: pimHalfRand{}})
	if err != nil {
		t.Fatal(err)
	}
	v := pimView{Router: r, Names: map[int]string{2: "ge1", 3: "ge2"}, SPT: config.SPTSwitchImmediate,
		RPs:  []config.StaticRP{{Address: pimRP}},
		Data: pimDataStats{DataRx: 7, DataDropped: 1, RegistersTx: 2, CounterPolls: 40}}
	for _, p := range []struct {
		name string
		idx  int
		ll   string
		opt  pim.IfaceOptions
	}{{"ge1", 2, "fe80::1", pim.IfaceOptions{}}, {"ge2", 3, "fe80::ff", pim.IfaceOptions{IgnoreAssertState: true}}} {
		cfg := pim.DefaultConfig(p.name, netip.MustParseAddr(p.ll))
		cfg.Clock, cfg.Rand, cfg.Sender = clk, pimHalfRand{}, pimDiscard{}
		cfg.OnEvent, cfg.OnMessage = r.HandleEvent, r.HandleMessage
		ifc, err := pim.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.AddInterface(p.idx, ifc, p.opt); err != nil {
			t.Fatal(err)
		}
		ifc.Start()
		v.Ifaces = append(v.Ifaces, pimIfaceView{Name: p.name, Index: p.idx, Ifc: ifc, Opt: p.opt,
			Cfg: config.InterfacePIM{Mode: config.PIMModeSM, IgnoreAssertState: p.opt.IgnoreAssertState}})
	}
	ge1, ge2 := v.Ifaces[0].Ifc, v.Ifaces[1].Ifc
	clk.Advance(3 * time.Second) // the first Hellos (rand(0, 5 s) / 2 = 2.5 s)
	pimInject(t, ge1, netip.MustParseAddr("fe80::2"), &pim.Hello{
		Holdtime: new(uint16(105)), DRPriority: new(uint32(1)), GenerationID: new(uint32(0x2acefe15)),
		LANPruneDelay: &pim.LANPruneDelay{PropagationDelay: 500, OverrideInterval: 2500},
		Addresses:     []netip.Addr{netip.MustParseAddr("2001:db8:1::2")}})
	pimInject(t, ge2, netip.MustParseAddr("fe80::3"), &pim.Hello{
		Holdtime: new(uint16(pim.HoldtimeForever)), GenerationID: new(uint32(7))})
	if err := r.SetLocalMembership(3, pimG, true, nil); err != nil {
		t.Fatal(err)
	}
	pimInject(t, ge2, netip.MustParseAddr("fe80::3"), &pim.JoinPrune{UpstreamNeighbor: netip.MustParseAddr("fe80::ff"), Holdtime: 210,
		Groups: []pim.GroupSet{
			{Group: pim.SingleGroup(pimG), Joins: []pim.Source{pim.SG(pimS)}},
			{Group: pim.SingleGroup(pimSSM), Joins: []pim.Source{pim.SG(pimS)}},
		}})
	// Refused: a (*,G) join for an SSM group (the Router's no-rp), and
	// a Hello with a bad checksum (the Interface's).
	pimInject(t, ge2, netip.MustParseAddr("fe80::3"), &pim.JoinPrune{UpstreamNeighbor: netip.MustParseAddr("fe80::ff"), Holdtime: 210,
		Groups: []pim.GroupSet{{Group: pim.SingleGroup(pimSSM), Joins: []pim.Source{pim.StarG(pimRP)}}}})
	b, err := pim.Marshal(&pim.Hello{Holdtime: new(uint16(105))}, netip.MustParseAddr("fe80::9"), pim.AllPIMRouters)
	if err != nil {
		t.Fatal(err)
	}
	b[2] ^= 0xff
	if d := ge1.HandlePacket(pim.Packet{Src: netip.MustParseAddr("fe80::9"), Dst: pim.AllPIMRouters, HopLimit: pim.HopLimit, Payload: b}); d != pim.DropBadChecksum {
		t.Fatalf("corrupted hello: %v, want bad-checksum", d)
	}
	clk.Advance(10 * time.Second)
	return v, clk
}

// display pim neighbor: both neighbours with their Hello options, times
// on the router's clock; one interface's only; an interface without PIM is
// an error.
func TestPIMNeighborsOf(t *testing.T) {
	v, clk := testPIMView(t)
	got, err := pimNeighborsOf(v, "", clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	since := pimT0.Add(3 * time.Second)
	want := []api.PIMNeighbor{
		{Interface: "ge1", Address: "fe80::2", SecondaryAddresses: []string{"2001:db8:1::2"}, Since: since, UptimeSeconds: 10,
			ExpiresIn: 95, Holdtime: 105, DRPriority: new(uint32(1)), GenerationID: new(uint32(0x2acefe15)), IsDR: true,
			LANPruneDelay: &api.PIMLANPruneDelay{PropagationDelay: 0.5, OverrideInterval: 2.5}},
		{Interface: "ge2", Address: "fe80::3", SecondaryAddresses: []string{}, Since: since, UptimeSeconds: 10,
			NeverExpires: true, Holdtime: 65535, GenerationID: new(uint32(7))},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("neighbors:\n got %s\nwant %s", pimJSON(t, got), pimJSON(t, want))
	}
	got, err = pimNeighborsOf(v, "ge2", clk.Now())
	if err != nil || len(got) != 1 || got[0].Address != "fe80::3" {
		t.Fatalf("neighbors of ge2: %+v, %v", got, err)
	}
	if _, err := pimNeighborsOf(v, "ge9", clk.Now()); err == nil || err.Error() != "interface ge9: pim not enabled" {
		t.Fatalf("neighbors of ge9: %v", err)
	}
}

func pimJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// display pim interface: the DR elected on each link, the timers and the
// LAN Prune Delay values in force, the options, the counters.
func TestPIMInterfacesOf(t *testing.T) {
	v, clk := testPIMView(t)
	got, err := pimInterfacesOf(v, "", clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("interfaces: %s", pimJSON(t, got))
	}
	ge1, ge2 := got[0], got[1]
	msgs := func(hello, jp uint64) map[string]uint64 {
		return map[string]uint64{"hello": hello, "join-prune": jp, "assert": 0, "register": 0, "register-stop": 0}
	}
	want1 := api.PIMInterface{Interface: "ge1", State: "up", Address: "fe80::1", GenerationID: 0x11223344, Neighbors: 1,
		DR: "fe80::2", DRPriority: 1, HelloInterval: 30, Holdtime: 105, NextHello: 19.5,
		LANDelayEnabled: true, PropagationDelay: 0.5, OverrideInterval: 2.5, JoinSuppression: true,
		Received: msgs(1, 0), Sent: msgs(2, 2),
		Counters: map[string]uint64{"send_errors": 0, "neighbors_up": 1, "neighbors_down": 0, "neighbor_restarts": 0, "dr_changes": 2},
		Drops:    map[string]uint64{"bad-checksum": 1}}
	if !reflect.DeepEqual(ge1, want1) {
		t.Errorf("ge1:\n got %s\nwant %s", pimJSON(t, ge1), pimJSON(t, want1))
	}
	// ge2: fe80::3 sends no DR Priority, so the higher address wins.
	// Its Hellos lack the LAN Prune Delay option: the defaults are in
	// force and the negotiation is off.
	want2 := api.PIMInterface{Interface: "ge2", State: "up", Address: "fe80::ff", GenerationID: 0x11223344, Neighbors: 1,
		DR: "fe80::ff", IsDR: true, DRPriority: 1, HelloInterval: 30, Holdtime: 105, NextHello: 19.5,
		PropagationDelay: 0.5, OverrideInterval: 2.5, JoinSuppression: true, IgnoreAssertState: true,
		Received: msgs(1, 2), Sent: msgs(2, 0),
		Counters: map[string]uint64{"send_errors": 0, "neighbors_up": 1, "neighbors_down": 0, "neighbor_restarts": 0, "dr_changes": 1},
		Drops:    map[string]uint64{}}
	if !reflect.DeepEqual(ge2, want2) {
		t.Errorf("ge2:\n got %s\nwant %s", pimJSON(t, ge2), pimJSON(t, want2))
	}
	// Stopped: down, no DR.
	v.Ifaces[0].Ifc.Stop()
	got, err = pimInterfacesOf(v, "ge1", clk.Now())
	if err != nil || len(got) != 1 || got[0].State != "down" || got[0].DR != "" || got[0].IsDR || got[0].Neighbors != 0 {
		t.Fatalf("stopped ge1: %s, %v", pimJSON(t, got), err)
	}
}

// display pim routing-table: the (*,G) of the MLD listeners, the (S,G)
// fe80::3 joined (ASM and SSM), their upstream and downstream state, the
// totals, the RP and the counters; a group's entries only.
func TestPIMRoutingTableOf(t *testing.T) {
	v, clk := testPIMView(t)
	got := pimRoutingTableOf(v, netip.Addr{}, clk.Now())
	up := func(r api.PIMRoute) api.PIMRoute {
		r.UpstreamInterface, r.UpstreamNeighbor, r.Joined = "ge1", "fe80::2", true
		return r
	}
	want := api.PIMRoutingTable{
		StarGEntries: 1, SGEntries: 2,
		Routes: []api.PIMRoute{
			up(api.PIMRoute{Group: "ff1e::1234", RP: "2001:db8:ff::1", Protocol: "pim-sm", Flags: []string{"WC", "RPT"},
				Downstreams: []api.PIMDownstream{{Interface: "ge2", Local: true}}}),
			up(api.PIMRoute{Source: "2001:db8:5::10", Group: "ff1e::1234", RP: "2001:db8:ff::1", Protocol: "pim-sm", Flags: []string{"SPT"},
				Downstreams: []api.PIMDownstream{{Interface: "ge2", Joined: true, ExpiresIn: 200, Local: true}}}),
			up(api.PIMRoute{Source: "2001:db8:5::10", Group: "ff3e::1", Protocol: "pim-ssm", Flags: []string{"SPT"},
				Downstreams: []api.PIMDownstream{{Interface: "ge2", Joined: true, ExpiresIn: 200}}}),
		},
		RPs:       []api.PIMRP{{Address: "2001:db8:ff::1", GroupRange: "ff00::/8"}},
		SPTSwitch: "immediate",
		Statistics: api.PIMStats{
			JoinPrune:      map[string]uint64{"received": 2, "seen": 0, "sent": 2},
			JoinPruneDrops: map[string]uint64{"no-rp": 1},
			Assert:         map[string]uint64{"received": 0, "sent": 0, "dropped": 0},
			Register: map[string]uint64{"sent": 0, "null_sent": 0, "received": 0, "decapsulated": 0,
				"stop_sent": 0, "stop_received": 0},
			RegisterDrops: map[string]uint64{},
			Data: map[string]uint64{"data_received": 7, "data_dropped": 1, "registers_sent": 2, "register_errors": 0,
				"decap_forwarded": 0, "decap_errors": 0, "counter_polls": 40},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("routing table:\n got %s\nwant %s", pimJSON(t, got), pimJSON(t, want))
	}
	// In JSON a (*,G) has no source, an SSM (S,G) no RP.
	js := pimJSON(t, got.Routes)
	if !strings.HasPrefix(js, `[{"group":"ff1e::1234","rp":"2001:db8:ff::1",`) || !strings.Contains(js, `{"source":"2001:db8:5::10","group":"ff3e::1","protocol":"pim-ssm",`) {
		t.Errorf("routes JSON: %s", js)
	}

	ssm := pimRoutingTableOf(v, pimSSM, clk.Now())
	if ssm.StarGEntries != 0 || ssm.SGEntries != 1 || len(ssm.Routes) != 1 || ssm.Routes[0].Group != "ff3e::1" {
		t.Fatalf("routing table of %v: %s", pimSSM, pimJSON(t, ssm))
	}
}

// The handlers while PIM is off answer "PIM is not running" (400, which
// hotcastctl prints); a bad group is refused before that.
func TestPIMHandlersNotRunning(t *testing.T) {
	d := &Daemon{}
	for _, tt := range []struct {
		path string
		h    func(*http.Request) (any, error)
		want string
	}{
		{api.PathPIMNeighbors, d.pimNeighbors, api.PIMNotRunning},
		{api.PathPIMInterfaces + "?interface=ge1", d.pimInterfaces, api.PIMNotRunning},
		{api.PathPIMRoutes, d.pimRoutes, api.PIMNotRunning},
		{api.PathPIMRoutes + "?group=ff1e::1", d.pimRoutes, api.PIMNotRunning},
		{api.PathPIMRoutes + "?group=2001:db8::1", d.pimRoutes, "group 2001:db8::1: not an IPv6 multicast address"},
		{api.PathPIMRoutes + "?group=nope", d.pimRoutes, `group: ParseAddr("nope"): unable to parse IP`},
	} {
		w := httptest.NewRecorder()
		jsonHandler(tt.h)(w, httptest.NewRequest(http.MethodGet, tt.path, nil))
		if w.Code != http.StatusBadRequest || strings.TrimSpace(w.Body.String()) != tt.want {
			t.Errorf("GET %s: %d %q, want 400 %q", tt.path, w.Code, w.Body.String(), tt.want)
		}
	}
}

// pimCollector exposes the PIM part of the daemon's collector on a view.
type pimCollector struct {
	c *collector
	v pimView
}

func (p pimCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range p.c.pim.all() {
		ch <- d
	}
}

func (p pimCollector) Collect(ch chan<- prometheus.Metric) { p.c.pim.collect(ch, p.v) }

// The PIM metrics of the router above, as Prometheus scrapes them.
func TestPIMMetrics(t *testing.T) {
	v, _ := testPIMView(t)
	reg := prometheus.NewRegistry()
	reg.MustRegister(pimCollector{newCollector(&Daemon{cfg: &config.Config{Sysname: "r1"}}), v})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
		if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
			t.Fatal(err)
		}
	}
	wantNames := []string{"hotcast_pim_asserts_total", "hotcast_pim_counter_polls_total", "hotcast_pim_data_packets_total",
		"hotcast_pim_dr", "hotcast_pim_dr_changes_total", "hotcast_pim_drops_total", "hotcast_pim_joinprune_drops_total",
		"hotcast_pim_joinprune_total", "hotcast_pim_messages_total", "hotcast_pim_neighbor_events_total", "hotcast_pim_neighbors",
		"hotcast_pim_register_drops_total", "hotcast_pim_register_total", "hotcast_pim_router_send_errors_total",
		"hotcast_pim_routes", "hotcast_pim_send_errors_total"}
	if !slices.Equal(names, wantNames) {
		t.Errorf("metric families:\n got %q\nwant %q", names, wantNames)
	}
	out := b.String()
	for _, want := range []string{
		`hotcast_pim_neighbors{interface="ge1",sysname="r1"} 1`,
		`hotcast_pim_dr{interface="ge1",sysname="r1"} 0`,
		`hotcast_pim_dr{interface="ge2",sysname="r1"} 1`,
		`hotcast_pim_messages_total{direction="received",interface="ge2",sysname="r1",type="join-prune"} 2`,
		`hotcast_pim_messages_total{direction="sent",interface="ge1",sysname="r1",type="join-prune"} 2`,
		`hotcast_pim_messages_total{direction="sent",interface="ge1",sysname="r1",type="hello"} 2`,
		`hotcast_pim_drops_total{interface="ge1",reason="bad-checksum",sysname="r1"} 1`,
		`hotcast_pim_drops_total{interface="ge2",reason="bad-checksum",sysname="r1"} 0`,
		`hotcast_pim_neighbor_events_total{event="up",interface="ge2",sysname="r1"} 1`,
		`hotcast_pim_dr_changes_total{interface="ge1",sysname="r1"} 2`,
		`hotcast_pim_joinprune_total{direction="received",sysname="r1"} 2`,
		`hotcast_pim_joinprune_total{direction="sent",sysname="r1"} 2`,
		`hotcast_pim_joinprune_drops_total{reason="no-rp",sysname="r1"} 1`,
		`hotcast_pim_joinprune_drops_total{reason="state-limit",sysname="r1"} 0`,
		`hotcast_pim_asserts_total{direction="dropped",sysname="r1"} 0`,
		`hotcast_pim_register_total{kind="register_stop_received",sysname="r1"} 0`,
		`hotcast_pim_register_drops_total{reason="not-rp",sysname="r1"} 0`,
		`hotcast_pim_routes{kind="star_g",sysname="r1"} 1`,
		`hotcast_pim_routes{kind="s_g",sysname="r1"} 2`,
		`hotcast_pim_data_packets_total{event="received",sysname="r1"} 7`,
		`hotcast_pim_data_packets_total{event="registered",sysname="r1"} 2`,
		`hotcast_pim_counter_polls_total{sysname="r1"} 40`,
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("metrics lack %s", want)
		}
	}
	// Every interface drop reason and every message type has a series,
	// zero or not.
	if n := strings.Count(out, "hotcast_pim_drops_total{"); n != 2*len(pim.DropReasons()) {
		t.Errorf("%d hotcast_pim_drops_total series, want %d", n, 2*len(pim.DropReasons()))
	}
	if n := strings.Count(out, "hotcast_pim_messages_total{"); n != 2*2*len(pimMessageTypes()) {
		t.Errorf("%d hotcast_pim_messages_total series, want %d", n, 2*2*len(pimMessageTypes()))
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", out)
	}
}
