package main

import (
	"bytes"
	"strings"
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
