package e2e

import (
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hotcast/hotcast/internal/labtest"
	"github.com/hotcast/hotcast/internal/netnstest"
)

// bins are the hotcast binaries, built once per top-level test.
type bins struct{ hotcastd, hotcastctl string }

func build(t *testing.T) bins {
	t.Helper()
	netnstest.RequireRoot(t)
	d, c := labtest.Binaries(t)
	return bins{d, c}
}

// lan is a router with an upstream sender and a switched LAN:
//
//	snd:s0 --- ge3:rtr:ge1 --- p0:[br0 in sw]:p1..pN --- eth0:host1..hostN
//	               rtr:ge2 --- eth0:solo (optional)
//
// The switch is a Linux bridge with IPv6 off on its own ports, so the only
// MLD speakers are the router and the hosts. With snooping on (the Linux
// default, here with MLDv2 snooping) each host receives only what it
// joined; the sink on p0 counts what the router sent onto ge1.
type lan struct {
	rtr, snd, sw *netnstest.NS
	s0           *netnstest.Link
	wire         *labtest.Receiver // on p0: the router's output on ge1
	hosts        map[string]*host
	d            *labtest.Daemon
	up           time.Time // when the daemon answered
}

type lanOpts struct {
	hosts    []string // behind the switch on ge1
	v1       []string // of those, forced to MLDv1
	solo     string   // alone on ge2, "" for none
	ge1Extra string   // more ge1 mld keys, e.g. ", max-groups: 50"
	snooping bool
}

func newLAN(t *testing.T, b bins, o lanOpts) *lan {
	t.Helper()
	l := &lan{snd: netnstest.New(t, "snd"), rtr: netnstest.New(t, "rtr"), sw: netnstest.New(t, "sw"), hosts: map[string]*host{}}
	l.sw.Sysctl(t, "net/ipv6/conf/default/disable_ipv6", "1")
	l.sw.Sysctl(t, "net/ipv6/conf/all/disable_ipv6", "1")
	l.s0, _ = netnstest.Veth(t, l.snd, "s0", l.rtr, "ge3")
	_, p0 := netnstest.Veth(t, l.rtr, "ge1", l.sw, "p0")
	l.wire = labtest.NewReceiver(t, p0)
	ports := []*netnstest.Link{p0}
	for k, name := range o.hosts {
		h := newHost(t, name, l.sw, fmt.Sprintf("p%d", k+1), slices.Contains(o.v1, name))
		l.hosts[name] = h
		ports = append(ports, &netnstest.Link{NS: l.sw, Name: h.port})
	}
	netnstest.Bridge(t, l.sw, "br0", ports...)
	snoop := "0"
	if o.snooping {
		snoop = "1"
	}
	ipLink(t, l.sw, "set", "br0", "type", "bridge", "mcast_snooping", snoop, "mcast_mld_version", "2")

	ifaces := "  - name: ge1\n    mld: " + mldYAML(o.ge1Extra) + "\n  - name: ge3\n"
	if o.solo != "" {
		l.hosts[o.solo] = newHost(t, o.solo, l.rtr, "ge2", false)
		ifaces += "  - name: ge2\n    mld: " + mldYAML("") + "\n"
	}
	yaml := `
sysname: MLDE2E
api: {socket: "%SOCKET%"}
bpf: {pin-path: "%PIN%"}
multicast:
  routing-enable: true
  upstream: {interface: ge3, mode: static}
interfaces:
` + ifaces
	l.d = labtest.StartDaemon(t, l.rtr, b.hotcastd, b.hotcastctl, yaml)
	l.up = time.Now()
	return l
}

// snoopingSettled waits until a snooping switch has stopped flooding: a
// Linux bridge floods for one Maximum Response Delay after it first hears
// a querier (the "delay timer" of net/bridge/br_multicast.c), so that
// listeners have the time to report.
func (l *lan) snoopingSettled() {
	time.Sleep(time.Until(l.up.Add(respInterval + 500*time.Millisecond)))
}

// dump logs the daemon's MLD and forwarding state (on failure paths).
func (l *lan) dump(t *testing.T) {
	t.Helper()
	var b strings.Builder
	for _, args := range [][]string{
		{"display", "mld", "group"},
		{"display", "mld", "interface"},
		{"display", "multicast", "forwarding-table"},
	} {
		out, _ := l.d.CtlErr(args...)
		fmt.Fprintf(&b, "$ hotcastctl %s\n%s\n", strings.Join(args, " "), out)
	}
	for _, c := range [][]string{{"bridge", "-n", l.sw.Name, "-d", "mdb", "show"}, {"ip", "-n", l.sw.Name, "-d", "link", "show", "br0"}} {
		out, _ := exec.Command(c[0], c[1:]...).CombinedOutput()
		fmt.Fprintf(&b, "$ %s\n%s\n", strings.Join(c, " "), out)
	}
	t.Log(b.String())
}
