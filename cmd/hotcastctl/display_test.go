package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotcast/hotcast/daemon/api"
)

// display bfd session renders VRP's table and totals, and the verbose
// form the negotiated timers and who tracks the session.
func TestPrintBFD(t *testing.T) {
	up := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	ss := []api.BFDSession{
		{Name: "lan", Interface: "ge2", PeerAddress: "2001:db8:50::2", LocalAddress: "2001:db8:50::1", State: "Up", RemoteState: "Up",
			LocalDiscr: 8192, RemoteDiscr: 8193, DetectMult: 3, RemoteDetectMult: 3, DesiredMinTx: 0.0033, RequiredMinRx: 0.0033,
			TxInterval: 0.0033, DetectTime: 0.0099, UpSince: &up, UptimeSeconds: 42, LocalDiag: "NoDiagnostic", RemoteDiag: "NoDiagnostic",
			TrackedBy: []string{"vrrp6 ge2 vrid 1 (peer)"}, Counters: map[string]uint64{"received": 10, "sent": 11},
			Drops: map[string]uint64{"hop-limit": 2}, EnginePolicy: "SCHED_FIFO 10"},
		{Name: "rbs", Interface: "ge1", PeerAddress: "2001:db8:10::2", LocalAddress: "--", State: "Down", LocalDiscr: 8194},
	}
	var b bytes.Buffer
	printBFD(&b, ss)
	out := b.String()
	for _, want := range []string{
		"8192       8193       2001:DB8:50::2             Up        lan              ge2",
		"8194       0          2001:DB8:10::2             Down      rbs              ge1",
		"Total UP/DOWN Session Number : 1/1",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	b.Reset()
	printBFDVerbose(&b, ss[:1])
	out = b.String()
	for _, want := range []string{
		"Actual Tx Interval        : 3.3 ms",
		"Detection Time            : 9.9 ms",
		"Tracked By                : vrrp6 ge2 vrid 1 (peer)",
		"Up Since                  : 2026-12-04 10:00:00 (42 s)",
		"Drops                     : hop-limit=2",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("verbose lacks %q:\n%s", want, out)
		}
	}
}

// fakeDaemon serves canned answers by path on a unix socket, as hotcastd
// does, and records the queries it got.
type fakeDaemon struct {
	socket string
	mu     sync.Mutex
	query  map[string]string // path -> raw query of the last request
}

func newFakeDaemon(t *testing.T, answers map[string]string, status int) *fakeDaemon {
	t.Helper()
	dir, err := os.MkdirTemp("", "hcctl") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	f := &fakeDaemon{socket: filepath.Join(dir, "s"), query: map[string]string{}}
	l, err := net.Listen("unix", f.socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.query[r.URL.Path] = r.URL.RawQuery
		f.mu.Unlock()
		body, ok := answers[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if status != http.StatusOK {
			http.Error(w, body, status)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(body))
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return f
}

func (f *fakeDaemon) lastQuery(path string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.query[path]
}

// Canned answers of a daemon whose PIM runs on ge1 (towards the RP) and
// ge2 (listeners; this router is DR there).
const (
	pimNeighborsJSON = `[
 {"interface": "ge1", "address": "fe80::2", "secondary_addresses": ["2001:db8:1::2"], "since": "2026-12-04T10:00:03Z",
  "uptime": 3725, "expires_in": 95, "never_expires": false, "holdtime": 105, "dr_priority": 1,
  "generation_id": 718208533, "is_dr": true,
  "lan_prune_delay": {"propagation_delay": 0.5, "override_interval": 2.5, "tracking": false}},
 {"interface": "ge2", "address": "fe80::3", "secondary_addresses": [], "since": "2026-12-04T10:00:03Z",
  "uptime": 10, "expires_in": 0, "never_expires": true, "holdtime": 65535, "generation_id": 7, "is_dr": false}]`
	pimInterfacesJSON = `[
 {"interface": "ge1", "state": "up", "address": "fe80::1", "generation_id": 287454020, "neighbors": 1, "dr": "fe80::2",
  "is_dr": false, "dr_priority": 1, "hello_interval": 30, "holdtime": 105, "next_hello": 19.5, "lan_delay_enabled": true,
  "propagation_delay": 0.5, "override_interval": 2.5, "join_suppression": true, "ignore_dr_state": false,
  "ignore_assert_state": false, "received": {"hello": 1, "join-prune": 0}, "sent": {"hello": 2, "join-prune": 2},
  "counters": {"dr_changes": 2, "neighbors_up": 1}, "drops": {"bad-checksum": 1}},
 {"interface": "ge2", "state": "up", "address": "fe80::ff", "generation_id": 287454020, "neighbors": 1, "dr": "fe80::ff",
  "is_dr": true, "dr_priority": 1, "hello_interval": 30, "holdtime": 105, "next_hello": 19.5, "lan_delay_enabled": false,
  "propagation_delay": 0.5, "override_interval": 2.5, "join_suppression": true, "ignore_dr_state": true,
  "ignore_assert_state": true, "received": {"hello": 1}, "sent": {"hello": 2}, "counters": {}, "drops": {}},
 {"interface": "ge3", "state": "down", "address": "fe80::1", "generation_id": 0, "neighbors": 0, "dr": "",
  "is_dr": false, "dr_priority": 10, "hello_interval": 10, "holdtime": 35, "next_hello": 0, "lan_delay_enabled": false,
  "propagation_delay": 0.5, "override_interval": 2.5, "join_suppression": true, "ignore_dr_state": false,
  "ignore_assert_state": false, "received": {}, "sent": {}, "counters": {}, "drops": {}}]`
	pimRoutesJSON = `{"star_g_entries": 2, "s_g_entries": 2, "routes": [
 {"group": "ff1e::1234", "rp": "2001:db8:ff::1", "protocol": "pim-sm", "flags": ["WC", "RPT"],
  "upstream_interface": "ge1", "upstream_neighbor": "fe80::2", "joined": true,
  "downstreams": [{"interface": "ge2", "joined": false, "expires_in": 0, "local": true}]},
 {"source": "2001:db8:5::10", "group": "ff1e::1234", "rp": "2001:db8:ff::1", "protocol": "pim-sm", "flags": ["SPT"],
  "upstream_interface": "ge1", "upstream_neighbor": "fe80::2", "joined": true,
  "downstreams": [{"interface": "ge2", "joined": true, "expires_in": 200, "local": true},
                  {"interface": "ge3", "joined": true, "expires_in": 61, "local": false}]},
 {"group": "ff1e::9", "rp": "2001:db8::1", "protocol": "pim-sm", "flags": ["WC", "LocalRP"], "joined": false,
  "downstreams": []},
 {"source": "2001:db8:5::10", "group": "ff3e::1", "protocol": "pim-ssm", "flags": ["SPT"],
  "upstream_interface": "ge1", "joined": true,
  "downstreams": [{"interface": "ge2", "joined": true, "expires_in": 200, "local": false}]}],
 "rps": [{"address": "2001:db8:ff::1", "group_range": "ff00::/8"}], "spt_switch": "immediate",
 "statistics": {"join_prune": {"received": 2, "seen": 0, "sent": 2}, "join_prune_drops": {"no-rp": 1},
  "assert": {"dropped": 0, "received": 0, "sent": 0}, "register": {"sent": 3, "stop_received": 1},
  "register_drops": {}, "send_errors": 0, "data": {"data_received": 7, "counter_polls": 40}}}`
)

func pimAnswers() map[string]string {
	return map[string]string{api.PathPIMNeighbors: pimNeighborsJSON, api.PathPIMInterfaces: pimInterfacesJSON, api.PathPIMRoutes: pimRoutesJSON}
}

// display pim neighbor|interface|routing-table: VRP's text forms from the
// daemon's answers, the argument passed as the query.
func TestDisplayPIM(t *testing.T) {
	f := newFakeDaemon(t, pimAnswers(), http.StatusOK)
	for _, tt := range []struct {
		args  []string
		path  string
		query string
		want  []string
	}{
		{[]string{"display", "pim", "neighbor"}, api.PathPIMNeighbors, "", []string{
			" Total Number of Neighbors = 2\n",
			"\n Neighbor                   Interface        Uptime    Expires   Dr-Priority\n",
			" FE80::2                    ge1              01:02:05  00:01:35  1\n",
			" FE80::3                    ge2              00:00:10  never     -\n",
		}},
		{[]string{"display", "pim", "ipv6", "neighbor", "ge1", "verbose"}, api.PathPIMNeighbors, "interface=ge1", []string{
			"\n Neighbor: FE80::2\n     Interface: ge1\n     Uptime: 01:02:05\n     Expiry time: 00:01:35\n" +
				"     DR Priority: 1\n     DR: Yes\n     Generation ID: 0X2ACEFE15\n     Holdtime: 105 s\n" +
				"     LAN delay: 500 ms\n     Override interval: 2500 ms\n     Neighbor tracking: disabled\n" +
				"     Secondary address list:\n         2001:DB8:1::2\n",
			"\n Neighbor: FE80::3\n     Interface: ge2\n     Uptime: 00:00:10\n     Expiry time: never\n" +
				"     DR Priority: -\n     DR: No\n     Generation ID: 0X00000007\n     Holdtime: 65535 s\n" +
				"     LAN delay: -\n     Override interval: -\n     Neighbor tracking: -\n     Secondary address list: -\n",
		}},
		{[]string{"display", "pim", "interface"}, api.PathPIMInterfaces, "", []string{
			" Interface        State NbrCnt HelloInt DR-Pri     DR-Address\n",
			" ge1              up    1      30       1          FE80::2\n",
			" ge2              up    1      30       1          FE80::FF (local)\n",
			" ge3              down  0      10       10         -\n",
		}},
		{[]string{"display", "pim", "interface", "ge2", "verbose"}, api.PathPIMInterfaces, "interface=ge2", []string{
			" Interface: ge1, FE80::1\n     PIM version: 2\n     PIM mode: Sparse\n     PIM state: up\n" +
				"     PIM DR: FE80::2\n     PIM DR Priority (configured): 1\n     PIM neighbor count: 1\n" +
				"     PIM hello interval: 30 s\n     PIM hello hold interval: 105 s\n     PIM next hello: 19.5 s\n" +
				"     PIM LAN delay (negotiated): 500 ms\n     PIM hello override interval (negotiated): 2500 ms\n" +
				"     PIM neighbor tracking (negotiated): disabled\n     PIM generation ID: 0X11223344\n" +
				"     PIM ignore dr-state: disabled\n     PIM ignore assert-state: disabled\n" +
				"     Received: hello=1 join-prune=0\n     Sent: hello=2 join-prune=2\n" +
				"     Counters: dr_changes=2 neighbors_up=1\n     Drops: bad-checksum=1\n",
			"\n Interface: ge2, FE80::FF\n",
			"     PIM DR: FE80::FF (local)\n",
			"     PIM LAN delay (negotiated): 500 ms (defaults: not every router sends the LAN Prune Delay option)\n",
			"     PIM ignore dr-state: enabled\n     PIM ignore assert-state: enabled\n",
			"     Counters: none\n     Drops: none\n",
			"     PIM state: down\n     PIM DR: -\n",
			"     PIM next hello: -\n",
		}},
		{[]string{"display", "pim", "routing-table"}, api.PathPIMRoutes, "", []string{
			" Total 2 (*, G) entries; 2 (S, G) entries\n",
			"\n (*, FF1E::1234)\n     RP: 2001:DB8:FF::1\n     Protocol: pim-sm, Flag: WC RPT\n" +
				"     Upstream interface: ge1\n         Upstream neighbor: FE80::2\n         RPF prime neighbor: FE80::2\n" +
				"         Upstream state: Joined\n     Downstream interface(s) information:\n" +
				"     Total number of downstreams: 1\n         1: ge2\n             Protocol: mld, Expires: -\n",
			"\n (2001:DB8:5::10, FF1E::1234)\n     RP: 2001:DB8:FF::1\n     Protocol: pim-sm, Flag: SPT\n" +
				"     Upstream interface: ge1\n         Upstream neighbor: FE80::2\n         RPF prime neighbor: FE80::2\n" +
				"         Upstream state: Joined\n     Downstream interface(s) information:\n" +
				"     Total number of downstreams: 2\n         1: ge2\n             Protocol: pim-sm/mld, Expires: 00:03:20\n" +
				"         2: ge3\n             Protocol: pim-sm, Expires: 00:01:01\n",
			"\n (*, FF1E::9)\n     RP: 2001:DB8::1 (local)\n     Protocol: pim-sm, Flag: WC LocalRP\n" +
				"     Upstream interface: Register\n         Upstream neighbor: NULL\n         RPF prime neighbor: NULL\n" +
				"         Upstream state: NotJoined\n     Downstream interface(s) information: None\n",
			"\n (2001:DB8:5::10, FF3E::1)\n     Protocol: pim-ssm, Flag: SPT\n     Upstream interface: ge1\n" +
				"         Upstream neighbor: NULL\n",
		}},
		{[]string{"display", "pim", "routing-table", "ff1e::1234"}, api.PathPIMRoutes, "group=ff1e%3A%3A1234", []string{
			" Total 2 (*, G) entries; 2 (S, G) entries\n", // the canned answer is not filtered
		}},
		{[]string{"display", "pim", "routing-table", "statistics"}, api.PathPIMRoutes, "", []string{
			" Total 2 (*, G) entries; 2 (S, G) entries\n Static RP: 2001:DB8:FF::1, group range FF00::/8\n SPT switch: immediate\n" +
				" Join/Prune       : received=2 seen=0 sent=2\n Join/Prune drops : no-rp=1\n" +
				" Assert           : dropped=0 received=0 sent=0\n Register         : sent=3 stop_received=1\n" +
				" Register drops   : none\n Send errors      : 0\n Data path        : counter_polls=40 data_received=7\n",
		}},
	} {
		t.Run(strings.Join(tt.args[2:], " "), func(t *testing.T) {
			var b bytes.Buffer
			if err := run(append([]string{"--socket", f.socket}, tt.args...), &b); err != nil {
				t.Fatal(err)
			}
			out := b.String()
			for _, want := range tt.want {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			if testing.Verbose() {
				t.Logf("%s", out)
			}
			if q := f.lastQuery(tt.path); q != tt.query {
				t.Errorf("query %q, want %q", q, tt.query)
			}
			if tt.args[len(tt.args)-1] != "statistics" && strings.Contains(out, "Join/Prune drops") {
				t.Errorf("routing table shows the statistics:\n%s", out)
			}
		})
	}
}

// --json prints the daemon's answer, indented, whatever the form.
func TestDisplayPIMJSON(t *testing.T) {
	f := newFakeDaemon(t, pimAnswers(), http.StatusOK)
	for _, tt := range []struct {
		args []string
		raw  string
	}{
		{[]string{"display", "pim", "neighbor", "--json"}, pimNeighborsJSON},
		{[]string{"display", "pim", "interface", "verbose", "--json"}, pimInterfacesJSON},
		{[]string{"display", "pim", "routing-table", "--json"}, pimRoutesJSON},
		{[]string{"display", "pim", "routing-table", "statistics", "--json"}, pimRoutesJSON},
	} {
		var b bytes.Buffer
		if err := run(append([]string{"--socket", f.socket}, tt.args...), &b); err != nil {
			t.Fatalf("%v: %v", tt.args, err)
		}
		var got, want any
		if err := json.Unmarshal(b.Bytes(), &got); err != nil {
			t.Fatalf("%v: not JSON: %v\n%s", tt.args, err, b.String())
		}
		if err := json.Unmarshal([]byte(tt.raw), &want); err != nil {
			t.Fatal(err)
		}
		if pretty(t, got) != pretty(t, want) || !strings.Contains(b.String(), "\n  ") {
			t.Errorf("%v:\n%s", tt.args, b.String())
		}
	}
	// The fields a script reads, by their stable names.
	var b bytes.Buffer
	if err := run([]string{"--socket", f.socket, "display", "pim", "routing-table", "--json"}, &b); err != nil {
		t.Fatal(err)
	}
	var rt api.PIMRoutingTable
	if err := json.Unmarshal(b.Bytes(), &rt); err != nil {
		t.Fatal(err)
	}
	if rt.StarGEntries != 2 || len(rt.Routes) != 4 || rt.Routes[0].Source != "" || rt.Routes[1].Downstreams[1].ExpiresIn != 61 ||
		rt.Statistics.JoinPruneDrops["no-rp"] != 1 {
		t.Errorf("decoded: %+v", rt)
	}
}

func pretty(t *testing.T, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// While PIM is off the daemon says so and hotcastctl prints just that;
// other errors keep the daemon's status.
func TestDisplayPIMNotRunning(t *testing.T) {
	off := map[string]string{api.PathPIMNeighbors: api.PIMNotRunning, api.PathPIMInterfaces: api.PIMNotRunning, api.PathPIMRoutes: api.PIMNotRunning}
	f := newFakeDaemon(t, off, http.StatusBadRequest)
	for _, args := range [][]string{
		{"display", "pim", "neighbor"},
		{"display", "pim", "interface", "ge1", "verbose"},
		{"display", "pim", "routing-table"},
		{"display", "pim", "routing-table", "statistics", "--json"},
	} {
		var b bytes.Buffer
		err := run(append([]string{"--socket", f.socket}, args...), &b)
		if err == nil || err.Error() != "PIM is not running" || b.Len() != 0 {
			t.Errorf("%v: %v, output %q", args, err, b.String())
		}
	}
	bad := newFakeDaemon(t, map[string]string{api.PathPIMInterfaces: "interface ge9: pim not enabled"}, http.StatusBadRequest)
	err := run([]string{"--socket", bad.socket, "display", "pim", "interface", "ge9"}, &bytes.Buffer{})
	var se *api.StatusError
	if !errors.As(err, &se) || err.Error() != "hotcastd: 400 Bad Request: interface ge9: pim not enabled" {
		t.Errorf("unknown interface: %v", err)
	}
	for _, args := range [][]string{
		{"display", "pim"},
		{"display", "pim", "rp-info"},
		{"display", "pim", "neighbor", "ge1", "ge2"},
		{"display", "pim", "routing-table", "ff1e::1", "extra"},
	} {
		if err := run(append([]string{"--socket", f.socket}, args...), &bytes.Buffer{}); err == nil {
			t.Errorf("%v: accepted", args)
		}
	}
}
