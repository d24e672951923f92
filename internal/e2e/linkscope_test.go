package e2e

import (
	"net/netip"
	"testing"
	"time"

	"github.com/hotcast/hotcast/internal/labtest"
)

// testNoLinkScopeRoutes: hosts report their link-local-scope groups
// (solicited-node ff02::1:ffXX:XXXX, RFC 4291 §2.7.1) and hotcast keeps
// the MLD state (RFC 3810 §6), but such groups are never forwarded beyond
// the link (RFC 4291 §2.7), so they get no route: routes are a scarce map.
func testNoLinkScopeRoutes(t *testing.T, b bins) {
	l := newLAN(t, b, lanOpts{hosts: []string{"hL"}})
	hL := l.hosts["hL"]
	b16 := hL.ll.As16()
	sn := netip.AddrFrom16([16]byte{0xff, 0x02, 11: 1, 12: 0xff, 13: b16[13], 14: b16[14], 15: b16[15]})
	labtest.Eventually(t, 5*time.Second, "hL's solicited-node group "+sn.String(), func() bool {
		return findGroup(mldGroups(l.d), "ge1", sn) != nil
	})
	for _, r := range fwdTable(l.d).Routes {
		g, err := netip.ParseAddr(r.Group)
		if err != nil {
			t.Fatalf("route group %q: %v", r.Group, err)
		}
		if g.As16()[1]&0x0f <= 2 {
			t.Errorf("route for a link-local-scope group: %+v", r)
		}
	}
}
