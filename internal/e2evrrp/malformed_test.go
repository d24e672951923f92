package e2evrrp

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/hotcast/hotcast/daemon/api"
)

// scapyAdverts sends VRRPv3 adverts for VRID 1 with the routers' address
// list from the host: argv iface, source, then "kind,count,dstmac"...
// Every malformed kind carries priority 250, above both routers, so that
// one accepted by mistake would change the Master.
const scapyAdverts = `
import socket, struct, sys
from scapy.all import Ether, IPv6, Raw, sendp, get_if_hwaddr

iface, src = sys.argv[1], sys.argv[2]
dst = "ff02::12"
vips = ["fe80::1", "2001:db8::50"]

def csum(p):
    data = socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
    data += struct.pack("!I3xB", len(p), 112) + p
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff

def advert(version=3, prio=250, good_sum=True):
    body = b"".join(socket.inet_pton(socket.AF_INET6, a) for a in vips)
    p = struct.pack("!BBBBHH", (version << 4) | 1, 1, prio, len(vips), 10, 0) + body
    c = csum(p)
    if not good_sum:
        c ^= 0x00ff
    return p[:6] + struct.pack("!H", c) + p[8:]

cases = {
    "badsum": (255, advert(good_sum=False)),  # RFC 9568 7.1: checksum
    "hl64": (64, advert()),                   # hop limit not 255
    "short": (255, advert()[:4]),             # shorter than the header
    "ver2": (255, advert(version=2)),         # version is not 3
    "control": (255, advert(prio=1)),         # valid, lowest priority
}
mac = get_if_hwaddr(iface)
for arg in sys.argv[3:]:
    kind, n, dmac = arg.split(",")
    hl, payload = cases[kind]
    pkt = Ether(src=mac, dst=dmac) / IPv6(src=src, dst=dst, hlim=hl, nh=112) / Raw(payload)
    sendp(pkt, iface=iface, count=int(n), inter=0.01, verbose=False)
`

// sendAdverts runs the scapy sender in the host's namespace.
func (l *lab) sendAdverts(t *testing.T, args ...string) {
	t.Helper()
	script := filepath.Join(t.TempDir(), "adverts.py")
	if err := os.WriteFile(script, []byte(scapyAdverts), 0o600); err != nil {
		t.Fatal(err)
	}
	// Debian's scapy is for the system python (PATH's python3 may lack it).
	py := "/usr/bin/python3"
	if out, err := exec.Command(py, "-c", "import scapy.all").CombinedOutput(); err != nil {
		t.Skipf("python3-scapy not usable: %v %s", err, out)
	}
	src := l.h1.WaitLinkLocal(t)
	all := append([]string{script, "h1", src.String()}, args...)
	if out, err := l.host.Command(context.Background(), py, all...).CombinedOutput(); err != nil {
		t.Fatalf("scapy: %v\n%s", err, out)
	}
}

// TestMalformedAdvertsChangeNothing sends adverts that RFC 9568 §7.1 says
// to discard (bad checksum, hop limit 64, truncated, version 2), each
// with a priority above the Master's, into the LAN: both routers count
// each one under its drop reason and neither changes state. A valid
// advert from the same sender (priority 1, unicast to A's MAC) is a
// control: A receives and discards it as lower priority, dropping nothing.
func TestMalformedAdvertsChangeNothing(t *testing.T) {
	l := newLab(t, pairSpecs(time.Second, pairAdvInt), false)
	a, b := l.start(0), l.start(1)
	waitState(t, a, "Master", 5*time.Second)
	waitState(t, b, "Backup", 2*time.Second)
	time.Sleep(200 * time.Millisecond)
	before := []api.VRRP6{a.mustStatus(t), b.mustStatus(t)}

	const n = 5
	group := "33:33:00:00:00:12"
	l.sendAdverts(t,
		fmt.Sprintf("badsum,%d,%s", n, group),
		fmt.Sprintf("hl64,%d,%s", n, group),
		fmt.Sprintf("short,%d,%s", n, group),
		fmt.Sprintf("ver2,%d,%s", n, group),
		fmt.Sprintf("control,1,%s", a.lan.MAC))
	// Longer than B's Master_Down_Interval and A's preempt handling: a
	// mistaken acceptance would have shown by then.
	time.Sleep(500 * time.Millisecond)

	for i, r := range []*hcRouter{a, b} {
		after := r.mustStatus(t)
		if after.State != before[i].State || len(after.Transitions) != len(before[i].Transitions) {
			t.Errorf("%s: %s -> %s, transitions %d -> %d", r.spec.name, before[i].State, after.State, len(before[i].Transitions), len(after.Transitions))
		}
		if after.MasterAddress != before[i].MasterAddress || after.MasterPriority != before[i].MasterPriority {
			t.Errorf("%s: master %s/%d -> %s/%d", r.spec.name, before[i].MasterAddress, before[i].MasterPriority, after.MasterAddress, after.MasterPriority)
		}
		for _, reason := range []string{"BadChecksum", "HopLimit", "Truncated", "BadVersion"} {
			if d := after.Drops[reason] - before[i].Drops[reason]; d != n {
				t.Errorf("%s: drops[%s] +%d, want +%d (drops %v)", r.spec.name, reason, d, n, after.Drops)
			}
		}
		var total, was uint64
		for _, v := range after.Drops {
			total += v
		}
		for _, v := range before[i].Drops {
			was += v
		}
		if total-was != 4*n {
			t.Errorf("%s: %d drops in all, want %d: %v", r.spec.name, total-was, 4*n, after.Drops)
		}
		t.Logf("%s (%s): drops %v", r.spec.name, after.State, after.Drops)
	}
	// The control reached A only, valid and lower: discarded by the state
	// machine, not dropped.
	st := a.mustStatus(t)
	if d := st.Counters["lower_priority_discarded"] - before[0].Counters["lower_priority_discarded"]; d != 1 {
		t.Errorf("A: lower_priority_discarded +%d, want +1 (the control advert)", d)
	}
	if st.Counters["address_mismatch"] != before[0].Counters["address_mismatch"] {
		t.Errorf("A: address_mismatch %d -> %d", before[0].Counters["address_mismatch"], st.Counters["address_mismatch"])
	}
	a.wantGate(t, "forward")
	b.wantGate(t, "muted")
}
