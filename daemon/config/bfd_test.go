package config

import (
	"errors"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// bfdBase is base with a bfd section: a LAN session on ge2 towards the
// other router (tracked by vrrp6 vrid 1 in peer mode) and an upstream
// one on ge3 (reduce), the RBS link's session on ge1 tracked by
// service1.
func bfdBase(t *testing.T) string {
	t.Helper()
	return edit(t,
		"    hold-time: 9s\n", "    hold-time: 9s\n    track-bfd: rbs\n",
		"        track-interface: [{name: ge3, reduced: 100}]\n",
		"        track-interface: [{name: ge3, reduced: 100}]\n        track-bfd:\n          - {session: lan}\n          - {session: up, mode: reduce, reduced: 50}\n",
	) + `bfd:
  realtime-priority: 20
  sessions:
    - name: lan
      interface: ge2
      peer: fe80::2
      min-tx: 3.3ms
      min-rx: 3.3ms
      multiplier: 3
    - name: up
      interface: ge3
      peer: 2001:db8:20::2
      source: 2001:db8:20::1
    - name: rbs
      interface: ge1
      peer: 2001:db8:10::2
      passive: true
`
}

func TestBFDConfig(t *testing.T) {
	c, err := LoadBytes([]byte(bfdBase(t)))
	if err != nil {
		t.Fatal(err)
	}
	want := &BFD{RealtimePriority: 20, Sessions: []BFDSession{
		{Name: "lan", Interface: "ge2", Peer: netip.MustParseAddr("fe80::2"), MinTx: 3300 * time.Microsecond, MinRx: 3300 * time.Microsecond, Multiplier: 3},
		{Name: "up", Interface: "ge3", Peer: netip.MustParseAddr("2001:db8:20::2"), Source: netip.MustParseAddr("2001:db8:20::1"),
			MinTx: DefaultBFDMinTx, MinRx: DefaultBFDMinRx, Multiplier: DefaultBFDMultiplier},
		{Name: "rbs", Interface: "ge1", Peer: netip.MustParseAddr("2001:db8:10::2"),
			MinTx: DefaultBFDMinTx, MinRx: DefaultBFDMinRx, Multiplier: DefaultBFDMultiplier, Passive: true},
	}}
	if !reflect.DeepEqual(c.BFD, want) {
		t.Errorf("bfd:\n got %+v\nwant %+v", c.BFD, want)
	}
	g := c.VRRP6Group(VRRP6Ref{VRID: 1, Interface: "ge2"})
	if wantT := []TrackBFD{{Session: "lan", Mode: TrackBFDPeer}, {Session: "up", Mode: TrackBFDReduce, Reduced: 50}}; !reflect.DeepEqual(g.TrackBFD, wantT) {
		t.Errorf("track-bfd %+v, want %+v", g.TrackBFD, wantT)
	}
	if c.Service("service1").TrackBFD != "rbs" || c.BFDSession("rbs") == nil || c.BFDSession("nosuch") != nil {
		t.Error("service1 track-bfd or BFDSession lookup")
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate of a loaded config: %v", err)
	}

	// Without a bfd section there is none; a section without keys has
	// the default priority.
	c, err = LoadBytes([]byte(base))
	if err != nil || c.BFD != nil {
		t.Fatalf("no bfd section: %v, %+v", err, c.BFD)
	}
	c, err = LoadBytes([]byte(base + "bfd: {sessions: []}\n"))
	if err != nil || c.BFD == nil || c.BFD.RealtimePriority != DefaultBFDRealtimePriority {
		t.Fatalf("empty bfd section: %v, %+v", err, c.BFD)
	}
}

func TestBFDInvalid(t *testing.T) {
	tests := []struct {
		name      string
		old, repl string
		path, msg string
		is        error
	}{
		{"unknown key", "      multiplier: 3\n", "      multiplier: 3\n      multiplyer: 3\n",
			"bfd.sessions[0].multiplyer", "unknown key", ErrUnknownKey},
		{"unknown bfd key", "  realtime-priority: 20\n", "  realtime-priority: 20\n  priority: 20\n",
			"bfd.priority", "unknown key", ErrUnknownKey},
		{"priority too high", "  realtime-priority: 20\n", "  realtime-priority: 100\n",
			"bfd.realtime-priority", "must be in 0..99", nil},
		{"no name", "    - name: lan\n", "    - name: \"\"\n",
			"bfd.sessions[0].name", "required", ErrRequired},
		{"duplicate name", "    - name: rbs\n", "    - name: up\n",
			"bfd.sessions[2].name", "duplicate", ErrDuplicate},
		{"unknown interface", "      interface: ge1\n      peer: 2001:db8:10::2\n", "      interface: ge9\n      peer: 2001:db8:10::2\n",
			"bfd.sessions[2].interface", "no interface", ErrUndefined},
		{"no peer", "      peer: fe80::2\n", "",
			"bfd.sessions[0].peer", "required", ErrRequired},
		{"multicast peer", "      peer: fe80::2\n", "      peer: ff02::1\n",
			"bfd.sessions[0].peer", "not a unicast address", nil},
		{"bad peer", "      peer: fe80::2\n", "      peer: fe80::zz\n",
			"bfd.sessions[0].peer", "invalid IPv6 address", nil},
		{"duplicate peer", "      peer: 2001:db8:10::2\n      passive: true\n", "      peer: 2001:db8:10::2\n      passive: true\n    - {name: rbs2, interface: ge1, peer: \"2001:db8:10::2\"}\n",
			"bfd.sessions[3].peer", "one session per neighbour", ErrDuplicate},
		{"source is peer", "      source: 2001:db8:20::1\n", "      source: 2001:db8:20::2\n",
			"bfd.sessions[1].source", "equals peer", nil},
		{"min-tx too short", "      min-tx: 3.3ms\n", "      min-tx: 500us\n",
			"bfd.sessions[0].min-tx", "must be in 1ms..1m0s", nil},
		{"min-rx fraction", "      min-rx: 3.3ms\n", "      min-rx: 3300500ns\n",
			"bfd.sessions[0].min-rx", "whole number of microseconds", nil},
		{"min-rx not a duration", "      min-rx: 3.3ms\n", "      min-rx: 3\n",
			"bfd.sessions[0].min-rx", "duration", ErrType},
		{"multiplier 0", "      multiplier: 3\n", "      multiplier: 0\n",
			"bfd.sessions[0].multiplier", "must be in 1..255", nil},
		{"track unknown session", "          - {session: lan}\n", "          - {session: lna}\n",
			"interfaces[1].vrrp6[0].track-bfd[0].session", "no bfd session", ErrUndefined},
		{"track twice", "          - {session: up, mode: reduce, reduced: 50}\n", "          - {session: lan, mode: step-down}\n",
			"interfaces[1].vrrp6[0].track-bfd[1].session", "duplicate", ErrDuplicate},
		{"peer on another link", "          - {session: lan}\n", "          - {session: rbs}\n",
			"interfaces[1].vrrp6[0].track-bfd[0].mode", "must not make this router Master", nil},
		{"bad mode", "          - {session: lan}\n", "          - {session: lan, mode: fast}\n",
			"interfaces[1].vrrp6[0].track-bfd[0].mode", "invalid mode", nil},
		{"reduced without reduce", "          - {session: lan}\n", "          - {session: lan, reduced: 10}\n",
			"interfaces[1].vrrp6[0].track-bfd[0].reduced", "applies to mode", nil},
		{"service tracks unknown session", "    track-bfd: rbs\n", "    track-bfd: rsb\n",
			"remote-backup-services[0].track-bfd", "no bfd session", ErrUndefined},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			y := bfdBase(t)
			if strings.Count(y, tt.old) != 1 {
				t.Fatalf("%q occurs %d times", tt.old, strings.Count(y, tt.old))
			}
			_, err := LoadBytes([]byte(strings.Replace(y, tt.old, tt.repl, 1)))
			if err == nil {
				t.Fatal("accepted")
			}
			var found *FieldError
			for _, fe := range FieldErrors(err) {
				if fe.Path == tt.path {
					found = fe
				}
			}
			switch {
			case found == nil:
				t.Fatalf("no error at %s: %v", tt.path, err)
			case !strings.Contains(found.Error(), tt.msg):
				t.Errorf("%v, want %q", found, tt.msg)
			case tt.is != nil && !errors.Is(found, tt.is):
				t.Errorf("%v is not %v", found, tt.is)
			}
		})
	}
}

func TestDiffBFD(t *testing.T) {
	a, err := LoadBytes([]byte(bfdBase(t)))
	if err != nil {
		t.Fatal(err)
	}
	y := strings.Replace(bfdBase(t), "      min-tx: 3.3ms\n", "      min-tx: 10ms\n", 1)
	y = strings.Replace(y, "    track-bfd: rbs\n", "    track-bfd: up\n", 1)
	y = strings.Replace(y, "  realtime-priority: 20\n", "", 1)
	y = strings.Replace(y, "    - name: rbs\n", "    - name: rbs2\n", 1)
	y = strings.Replace(y, "    track-bfd: up\n", "    track-bfd: rbs2\n", 1)
	b, err := LoadBytes([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	got := DiffBFD(a, b)
	want := BFDChange{
		RealtimePriority: true,
		Sessions:         []NamedChange{{"lan", Modified}, {"rbs2", Added}, {"rbs", Removed}},
		ServiceTracks:    []string{"service1"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("DiffBFD:\n got %+v\nwant %+v", got, want)
	}
	if got.Session("lan") != Modified || got.Session("up") != Unchanged {
		t.Error("Session lookup")
	}
	wantS := []string{"bfd.realtime-priority modified", "bfd.sessions[lan] modified", "bfd.sessions[rbs2] added",
		"bfd.sessions[rbs] removed", "remote-backup-services[service1].track-bfd modified"}
	if !slices.Equal(got.Strings(), wantS) {
		t.Errorf("Strings %q\nwant %q", got.Strings(), wantS)
	}
	// A service whose track-bfd alone changed keeps its channel.
	if cs := Diff(a, b); cs.Service("service1") != Unchanged {
		t.Errorf("Diff marks service1 %v for a track-bfd change", cs.Service("service1"))
	}
	if cs := DiffBFD(a, a); !cs.Empty() {
		t.Errorf("no change: %+v", cs)
	}
	noBFD, err := LoadBytes([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if cs := DiffBFD(noBFD, a); !cs.RealtimePriority || len(cs.Sessions) != 3 || cs.Sessions[0].Op != Added {
		t.Errorf("bfd added: %+v", cs)
	}
}
