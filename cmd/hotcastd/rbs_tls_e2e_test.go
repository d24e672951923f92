package main

import (
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/hotcast/hotcast/internal/labtest"
	"github.com/hotcast/hotcast/internal/testpki"
)

// TestRBSTLS runs the reference scenario with the RBS channel on TLS 1.3
// with mutual authentication (`tls: {cert, key, ca}` on both services):
// the session comes up and replicates; B restarted with a certificate from
// another CA is refused by A and nothing is replicated; B restarted with a
// good certificate is resynchronised.
func TestRBSTLS(t *testing.T) {
	ca := testpki.New(t, "rbs-ca")
	dir := t.TempDir()
	addrA, addrB := netip.MustParseAddr("2001:db8:10::1"), netip.MustParseAddr("2001:db8:10::2")
	fa, fb := ca.WriteLeaf(t, dir, "A", addrA), ca.WriteLeaf(t, dir, "B", addrB)
	r := newRef(t, refOpts{hot: true, tlsA: &fa, tlsB: &fb})
	r.waitRBS(t, 10*time.Second)
	for name, d := range map[string]*labtest.Daemon{"A": r.da, "B": r.db} {
		s := rbsService(t, d)
		if s.TCPState != "connected" || s.SSLPolicyName != "tls13-mutual" || s.SSLState != "connected" {
			t.Errorf("%s's remote-backup-service: tcp %s, ssl-policy %s, ssl-state %s", name, s.TCPState, s.SSLPolicyName, s.SSLState)
		}
	}
	labtest.Join(t, r.hv2, g1, netip.Addr{})
	labtest.Join(t, r.hv2, g3, sS)
	waitGroups(t, r.da, "ge2", 10*time.Second, []netip.Addr{g1, g3})
	r.waitConverged(t, 5*time.Second, "over TLS")

	// B comes back presenting a certificate of another CA (still trusting
	// the right one): A refuses the handshake, B receives nothing.
	evil := testpki.New(t, "evil-ca").WriteLeaf(t, dir, "B-evil", addrB)
	r.db.Stop()
	replace(t, evil.Cert, fb.Cert)
	replace(t, evil.Key, fb.Key)
	r.db.Start()
	labtest.Eventually(t, 10*time.Second, "A refuses B's certificate", func() bool {
		return rbsService(t, r.da).Errors["tls"] >= 1
	})
	time.Sleep(2 * time.Second) // a few more dial attempts (backoff <= 2 s)
	for name, d := range map[string]*labtest.Daemon{"A": r.da, "B": r.db} {
		if s := rbsService(t, d); s.TCPState == "connected" || s.SSLState == "connected" {
			t.Fatalf("%s: session up with a certificate from another CA: %+v", name, s)
		}
	}
	if gs, _ := mldGroupSet(t, r.db, "ge3"); len(gs) != 0 {
		t.Fatalf("B learned %v through a refused channel", gs)
	}

	// A good certificate again: the session is back and B is resynced.
	good := ca.WriteLeaf(t, dir, "B-new", addrB)
	r.db.Stop()
	replace(t, good.Cert, fb.Cert)
	replace(t, good.Key, fb.Key)
	r.db.Start()
	r.waitRBS(t, 10*time.Second)
	r.waitConverged(t, 5*time.Second, "after B's certificate was fixed")
	if s := rbsService(t, r.db); s.SSLState != "connected" {
		t.Errorf("B's ssl-state %s", s.SSLState)
	}
}

func replace(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}
