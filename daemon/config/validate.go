package config

import (
	"fmt"
	"net"
	"net/netip"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/hotcast/hotcast/internal/inet"
)

// Limits enforced by Validate.
const (
	// MaxSocketPath is the longest unix socket path (sun_path is 108 bytes
	// including the terminating NUL).
	MaxSocketPath = 107
	// BPFFSRoot is the conventional bpffs mount point; bpf.pin-path must be
	// below it.
	BPFFSRoot = "/sys/fs/bpf"

	// MaxQueryInterval is the VRP upper bound of "mld timer query"; it is also
	// encodable in the QQIC field (RFC 3810 §5.1.9, max 31744 s).
	MaxQueryInterval = 18000 * time.Second
	// MaxResponseTimeV2 is the largest Maximum Response Code of RFC 3810
	// §5.1.3: mantissa 0xfff, exponent 7 -> (0x1fff) << 10 ms.
	MaxResponseTimeV2 = 8387584 * time.Millisecond
	// MaxResponseTimeV1 is the largest Maximum Response Delay of RFC 2710
	// §3.4 (16-bit milliseconds).
	MaxResponseTimeV1 = 65535 * time.Millisecond

	// MinAdvertiseInterval and MaxAdvertiseInterval bound the 12-bit
	// centisecond Max Advertise Interval of RFC 9568 §5.2.7.
	MinAdvertiseInterval = 10 * time.Millisecond
	MaxAdvertiseInterval = 4095 * 10 * time.Millisecond
	// MaxPreemptDelay is the VRP bound of "vrrp6 vrid N preempt-mode timer
	// delay" (0..3600 s).
	MaxPreemptDelay = 3600 * time.Second

	// MinHoldTime and MaxHoldTime bound remote-backup-services[].hold-time.
	MinHoldTime = 1 * time.Second
	MaxHoldTime = 3600 * time.Second

	// MaxPIMHelloInterval is the VRP bound of "pim ipv6 timer hello"
	// (interfaces[].pim.hello-interval, 1s..18000s).
	MaxPIMHelloInterval = 18000 * time.Second
	// MaxJoinPruneHoldtime bounds pim.join-prune-holdtime: the 16-bit
	// Holdtime of a Join/Prune in seconds (RFC 7761 §4.9.5).
	MaxJoinPruneHoldtime = 65535 * time.Second

	// MinBFDInterval and MaxBFDInterval bound bfd.sessions[].min-tx and
	// min-rx: whole microseconds on the wire (RFC 5880 §4.1); 1 ms is
	// below what the engine holds (docs/bfd.md), 60 s VRP's top.
	MinBFDInterval = time.Millisecond
	MaxBFDInterval = 60 * time.Second

	// ifNameSize is IFNAMSIZ from <linux/if.h>; names hold at most 15 bytes.
	ifNameSize = 16
	// maxMaxGroups bounds interfaces[].mld.max-groups.
	maxMaxGroups = 1 << 20
)

// nameRE is the syntax of sysname and of service and profile names.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// Validate checks c without modifying it. It reports every problem, each as
// a [FieldError] naming the key path, joined with errors.Join and sorted by
// path. It does not apply defaults: a Config built in code must set every
// field that [Load] would default.
func (c *Config) Validate() error {
	var errs errList
	c.validate(&errs)
	return errs.err()
}

// validate appends c's problems to errs.
func (c *Config) validate(errs *errList) {
	v := validator{c: c, errs: errs, ifIndex: map[string]int{}, addrSeen: map[netip.Addr]string{}}
	v.top()
	v.interfaces()
	v.loopback()
	v.pim()
	v.multicast()
	v.services()
	v.profiles()
	v.bfd()
}

type validator struct {
	c       *Config
	errs    *errList
	ifIndex map[string]int // interface name -> first index
	// addrSeen is where each address of interfaces[].addresses and
	// loopback.addresses was first configured.
	addrSeen map[netip.Addr]string
}

func (v *validator) add(path string, err error)            { v.errs.add(path, err) }
func (v *validator) addf(path, format string, args ...any) { v.errs.addf(path, format, args...) }
func (v *validator) knownInterface(name string) bool       { _, ok := v.ifIndex[name]; return ok }
func (v *validator) undefIf(path, name string) {
	v.add(path, errUndef("interface", strconv.Quote(name)+" in interfaces"))
}

func (v *validator) top() {
	c := v.c
	switch {
	case c.Sysname == "":
		v.add("sysname", ErrRequired)
	case !nameRE.MatchString(c.Sysname) || c.Sysname == "." || c.Sysname == "..":
		v.addf("sysname", "invalid name %q: want 1-64 of A-Z a-z 0-9 _ . - (and not . or ..)", c.Sysname)
	}

	switch s := c.API.Socket; {
	case s == "":
		v.add("api.socket", ErrRequired)
	case !path.IsAbs(s) || path.Clean(s) != s:
		v.addf("api.socket", "%q must be a clean absolute path", s)
	case len(s) > MaxSocketPath:
		v.addf("api.socket", "path is %d bytes, a unix socket path holds at most %d", len(s), MaxSocketPath)
	}
	if l := c.API.MetricsListen; l != "" {
		if err := checkListen(l); err != nil {
			v.add("api.metrics-listen", err)
		}
	}

	switch p := c.BPF.PinPath; {
	case p == "":
		v.add("bpf.pin-path", ErrRequired)
	case !path.IsAbs(p) || path.Clean(p) != p:
		v.addf("bpf.pin-path", "%q must be a clean absolute path", p)
	case !strings.HasPrefix(p, BPFFSRoot+"/"):
		v.addf("bpf.pin-path", "%q must be below the bpffs mount %s", p, BPFFSRoot)
	}
	switch c.BPF.XDPMode {
	case XDPNative, XDPGeneric:
	default:
		v.addf("bpf.xdp-mode", "invalid mode %q: want %q or %q", c.BPF.XDPMode, XDPNative, XDPGeneric)
	}
}

// checkListen accepts "host:port" with an IP literal or empty host.
func checkListen(l string) error {
	host, port, err := net.SplitHostPort(l)
	if err != nil {
		return fmt.Errorf("invalid listen address %q: want host:port, e.g. \"[::1]:9469\"", l)
	}
	if host != "" {
		if _, err := netip.ParseAddr(host); err != nil {
			return fmt.Errorf("invalid listen address %q: host must be an IP address or empty", l)
		}
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("invalid listen address %q: port must be in 1..65535", l)
	}
	return nil
}

func (v *validator) interfaces() {
	c := v.c
	for i := range c.Interfaces {
		ifc := &c.Interfaces[i]
		p := fmt.Sprintf("interfaces[%d]", i)
		if err := checkIfName(ifc.Name); err != nil {
			v.add(p+".name", err)
		} else if first, dup := v.ifIndex[ifc.Name]; dup {
			v.add(p+".name", errDup(strconv.Quote(ifc.Name), fmt.Sprintf("interfaces[%d].name", first)))
		} else {
			v.ifIndex[ifc.Name] = i
		}
		for j, pfx := range ifc.Addresses {
			v.address(fmt.Sprintf("%s.addresses[%d]", p, j), pfx, false)
		}
	}
	// References need the full interface table, so they come second.
	for i := range c.Interfaces {
		v.mld(i)
		v.vrrp6(i)
		v.interfacePIM(i)
	}
}

// address checks an address of interfaces[].addresses or
// loopback.addresses (global: not link-local either) and that no address
// is configured twice.
func (v *validator) address(ap string, pfx netip.Prefix, global bool) {
	a := pfx.Addr()
	switch {
	case !pfx.IsValid() || !a.Is6() || a.Is4In6() || a.Zone() != "":
		v.addf(ap, "%s is not an IPv6 prefix", pfx)
	case a.IsUnspecified() || a.IsMulticast() || a.IsLoopback():
		v.addf(ap, "%s is not a unicast address", a)
	case global && a.IsLinkLocalUnicast():
		v.addf(ap, "%s is not a global unicast address (link-local addresses are the kernel's)", a)
	case pfx.Bits() == 0:
		v.addf(ap, "prefix length of %s must be 1..128", pfx)
	default:
		if first, dup := v.addrSeen[a]; dup {
			v.add(ap, errDup(a, first))
		} else {
			v.addrSeen[a] = ap
		}
	}
}

// loopback checks the loopback section (VRP "interface LoopBack0").
func (v *validator) loopback() {
	l := &v.c.Loopback
	switch err := checkIfName(l.Interface); {
	case l.Interface == "" && len(l.Addresses) == 0:
		// A Config built in code without a loopback.
	case err != nil:
		v.add("loopback.interface", err)
	case v.knownInterface(l.Interface):
		v.addf("loopback.interface", "%q is also interfaces[%d].name: the loopback gets no fast path, leave it out of interfaces (loopback.interface defaults to %q)",
			l.Interface, v.ifIndex[l.Interface], DefaultLoopbackInterface)
	}
	for j, pfx := range l.Addresses {
		v.address(fmt.Sprintf("loopback.addresses[%d]", j), pfx, true)
	}
}

// isGroupRange reports whether p is a range of IPv6 multicast groups:
// inside ff00::/8.
func isGroupRange(p netip.Prefix) bool {
	return p.IsValid() && p.Addr().Is6() && !p.Addr().Is4In6() && p.Bits() >= 8 && p.Addr().IsMulticast()
}

// checkRange checks a prefix that names a range (not an address on an
// interface): IPv6, no zone, and written as its network address.
func checkRange(pfx netip.Prefix) error {
	a := pfx.Addr()
	switch {
	case !pfx.IsValid() || !a.Is6() || a.Is4In6() || a.Zone() != "":
		return fmt.Errorf("%s is not an IPv6 prefix", pfx)
	case pfx.Masked() != pfx:
		return fmt.Errorf("%s has bits set past its length; write %s", pfx, pfx.Masked())
	}
	return nil
}

// pim checks the pim section.
func (v *validator) pim() {
	c := v.c
	g := c.PIM
	if g == nil {
		return
	}
	if !c.PIMEnabled() {
		v.addf("pim", "no interface runs pim: add pim: {mode: %s} to the interfaces PIM runs on, or remove the pim section", PIMModeSM)
	}
	ssmOK := false
	switch err := checkRange(g.SSMRange); {
	case err != nil:
		v.add("pim.ssm-range", err)
	case !isGroupRange(g.SSMRange):
		v.addf("pim.ssm-range", "%s is not a multicast range (inside ff00::/8)", g.SSMRange)
	default:
		ssmOK = true
	}
	switch g.SPTSwitch {
	case SPTSwitchImmediate, SPTSwitchNever:
	default:
		v.addf("pim.spt-switch", "invalid value %q: want %q or %q", g.SPTSwitch, SPTSwitchImmediate, SPTSwitchNever)
	}

	ranges := map[netip.Prefix]string{}
	for i := range g.StaticRPs {
		rp := &g.StaticRPs[i]
		p := fmt.Sprintf("pim.static-rp[%d]", i)
		switch a := rp.Address; {
		case !a.IsValid():
			v.add(p+".address", ErrRequired)
		case !a.Is6() || a.Is4In6() || a.Zone() != "":
			v.addf(p+".address", "%s is not an IPv6 address", a)
		case a.IsUnspecified() || a.IsMulticast() || a.IsLoopback() || a.IsLinkLocalUnicast():
			v.addf(p+".address", "%s is not a global unicast address (Registers are unicast to an RP and Joins follow the unicast route towards it)", a)
		}
		gp := p + ".group-range"
		switch err := checkRange(rp.GroupRange); {
		case !rp.GroupRange.IsValid():
			v.addf(gp, "%w (%s for every group)", ErrRequired, AllGroups())
		case err != nil:
			v.add(gp, err)
		case !isGroupRange(rp.GroupRange):
			v.addf(gp, "%s is not a multicast range (inside ff00::/8)", rp.GroupRange)
		case ssmOK && g.SSMRange.Bits() <= rp.GroupRange.Bits() && g.SSMRange.Contains(rp.GroupRange.Addr()):
			v.addf(gp, "%s is inside pim.ssm-range %s, whose groups have no RP (RFC 7761 §4.8, RFC 4607)", rp.GroupRange, g.SSMRange)
		default:
			if first, dup := ranges[rp.GroupRange]; dup {
				v.addf(gp, "%w group range %s (first used at %s): one RP per range", ErrDuplicate, rp.GroupRange, first)
			} else {
				ranges[rp.GroupRange] = gp
			}
		}
	}

	for _, l := range []struct {
		key string
		l   []netip.Prefix
	}{{"accept-register", g.AcceptRegister}, {"accept-register-sources", g.AcceptRegisterSources}} {
		for j, pfx := range l.l {
			ap := fmt.Sprintf("pim.%s[%d]", l.key, j)
			if err := checkRange(pfx); err != nil {
				v.add(ap, err)
			} else if pfx.Bits() >= 8 && pfx.Addr().IsMulticast() {
				v.addf(ap, "%s is a multicast range; the list holds unicast addresses", pfx)
			}
		}
	}

	jpOK := true
	switch d := g.JoinPruneInterval; {
	case d <= 0 || d > MaxJoinPruneHoldtime:
		v.add("pim.join-prune-interval", errRange("1s", MaxJoinPruneHoldtime, d))
		jpOK = false
	case d%time.Second != 0:
		v.addf("pim.join-prune-interval", "%s is not a whole number of seconds", d)
		jpOK = false
	}
	switch h := g.JoinPruneHoldtime; {
	case h < time.Second || h > MaxJoinPruneHoldtime:
		v.addf("pim.join-prune-holdtime", "must be in 1s..%s (the 16-bit Holdtime of a Join/Prune, RFC 7761 §4.9.5), got %s", MaxJoinPruneHoldtime, h)
	case h%time.Second != 0:
		v.addf("pim.join-prune-holdtime", "%s is not a whole number of seconds (RFC 7761 §4.9.5)", h)
	case jpOK && h < g.JoinPruneInterval:
		v.addf("pim.join-prune-holdtime", "%s is less than pim.join-prune-interval %s: the join state would expire between two Join/Prunes (RFC 7761 §4.11: the default is 3.5 × the interval)", h, g.JoinPruneInterval)
	}
}

// interfacePIM checks interfaces[i].pim, and that MLD and PIM agree.
func (v *validator) interfacePIM(i int) {
	c := v.c
	ifc := &c.Interfaces[i]
	p := fmt.Sprintf("interfaces[%d].pim", i)
	ip := ifc.PIM
	if ip == nil {
		if ifc.MLD.Enable && c.PIMEnabled() {
			v.addf(p, "%w: mld.enable is true and other interfaces run pim: the listeners MLD learns here are PIM's local members (local_receiver_include, RFC 7761 §4.1.6), so this interface needs pim: {mode: %s} too", ErrRequired, PIMModeSM)
		}
		return
	}
	if !c.Multicast.RoutingEnable {
		v.addf(p, "needs multicast.routing-enable: true")
	}
	switch ip.Mode {
	case PIMModeSM:
	case "":
		v.addf(p+".mode", "%w: pim on an interface needs mode: %s", ErrRequired, PIMModeSM)
	case "dm", "ssm", "dense":
		v.addf(p+".mode", "%q: %w, hotcast runs PIM-SM only (mode: %s; SSM is sparse mode in pim.ssm-range)", ip.Mode, ErrUnsupported, PIMModeSM)
	default:
		v.addf(p+".mode", "invalid mode %q: want %q", ip.Mode, PIMModeSM)
	}
	switch h := ip.HelloInterval; {
	case h < time.Second || h > MaxPIMHelloInterval:
		v.add(p+".hello-interval", errRange("1s", MaxPIMHelloInterval, h))
	case h%time.Second != 0:
		v.addf(p+".hello-interval", "%s is not a whole number of seconds (the Hello Holdtime is in seconds, RFC 7761 §4.9.2)", h)
	}
}

// checkIfName applies the kernel's dev_valid_name rules.
func checkIfName(n string) error {
	switch {
	case n == "":
		return ErrRequired
	case len(n) >= ifNameSize:
		return fmt.Errorf("interface name %q is longer than %d bytes (IFNAMSIZ)", n, ifNameSize-1)
	case n == "." || n == "..":
		return fmt.Errorf("invalid interface name %q", n)
	case strings.ContainsAny(n, "/:") || strings.IndexFunc(n, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0:
		return fmt.Errorf("invalid interface name %q: no '/', ':', spaces or control characters", n)
	}
	return nil
}

func (v *validator) mld(i int) {
	ifc := &v.c.Interfaces[i]
	m := &ifc.MLD
	p := fmt.Sprintf("interfaces[%d].mld", i)

	maxResp := MaxResponseTimeV2
	switch m.Version {
	case 1:
		maxResp = MaxResponseTimeV1
	case 2:
	default:
		v.add(p+".version", errRange(1, 2, m.Version))
	}
	qiOK := true
	switch qi := m.QueryInterval; {
	case qi < time.Second || qi > MaxQueryInterval:
		v.add(p+".query-interval", errRange("1s", MaxQueryInterval, qi))
		qiOK = false
	case qi%time.Second != 0:
		v.addf(p+".query-interval", "%s is not a whole number of seconds (QQIC, RFC 3810 §5.1.9)", qi)
		qiOK = false
	}
	if m.Robustness < 1 || m.Robustness > 7 {
		v.add(p+".robustness", errRange(1, 7, m.Robustness))
	}
	for _, t := range []struct {
		key string
		d   time.Duration
	}{
		{"max-response-time", m.MaxResponseTime},
		{"last-listener-query-interval", m.LastListenerQueryInterval},
	} {
		switch {
		case t.d < time.Millisecond || t.d > maxResp:
			v.addf(p+"."+t.key, "must be in 1ms..%s for MLDv%d (largest encodable response delay), got %s", maxResp, m.Version, t.d)
		case t.d%time.Millisecond != 0:
			v.addf(p+"."+t.key, "%s is not a whole number of milliseconds", t.d)
		}
	}
	if qiOK && m.MaxResponseTime >= m.QueryInterval {
		v.addf(p+".max-response-time", "%s must be less than query-interval %s (RFC 3810 §9.3)", m.MaxResponseTime, m.QueryInterval)
	}
	if m.MaxGroups < 1 || m.MaxGroups > maxMaxGroups {
		v.add(p+".max-groups", errRange(1, maxMaxGroups, m.MaxGroups))
	}
	if m.IgnoreReportsWhileBackup && ifc.MulticastTrackVRRP6 == 0 {
		v.addf(p+".ignore-reports-while-backup", "needs interfaces[%d].multicast-track-vrrp6 (the VRRP6 group whose Backup state it follows)", i)
	}
}

func (v *validator) vrrp6(i int) {
	ifc := &v.c.Interfaces[i]
	p := fmt.Sprintf("interfaces[%d]", i)
	vrids := map[uint8]string{}
	vips := map[netip.Addr]string{}
	for j := range ifc.VRRP6 {
		g := &ifc.VRRP6[j]
		gp := fmt.Sprintf("%s.vrrp6[%d]", p, j)
		if g.VRID == 0 {
			v.add(gp+".vrid", errRange(1, 255, 0))
		} else if first, dup := vrids[g.VRID]; dup {
			v.add(gp+".vrid", errDup(g.VRID, first))
		} else {
			vrids[g.VRID] = gp + ".vrid"
		}

		if len(g.VirtualIPs) == 0 {
			v.addf(gp+".virtual-ip", "%w: at least one address, the first link-local (RFC 9568 §5.2.9)", ErrRequired)
		}
		for k, a := range g.VirtualIPs {
			ap := fmt.Sprintf("%s.virtual-ip[%d]", gp, k)
			switch {
			case !a.Is6() || a.Is4In6() || a.Zone() != "":
				v.addf(ap, "%s is not an IPv6 address", a)
			case a.IsUnspecified() || a.IsMulticast() || a.IsLoopback():
				v.addf(ap, "%s is not a unicast address", a)
			case k == 0 && !a.IsLinkLocalUnicast():
				v.addf(ap, "the first virtual address must be link-local (fe80::/10), got %s (RFC 9568 §5.2.9)", a)
			case k > 0 && a.IsLinkLocalUnicast():
				v.addf(ap, "only the first virtual address may be link-local, got %s", a)
			default:
				if first, dup := vips[a]; dup {
					v.add(ap, errDup(a, first))
				} else {
					vips[a] = ap
				}
			}
		}
		if g.Priority == 0 {
			v.addf(gp+".priority", "0 is reserved (a Master sends priority 0 when it stops, RFC 9568 §5.2.4); want 1..255")
		}
		if g.PreemptDelay < 0 || g.PreemptDelay > MaxPreemptDelay {
			v.add(gp+".preempt-delay", errRange("0s", MaxPreemptDelay, g.PreemptDelay))
		} else if !g.Preempt && g.PreemptDelay != 0 {
			v.addf(gp+".preempt-delay", "has no effect with preempt: false")
		}
		switch ai := g.AdvertiseInterval; {
		case ai < MinAdvertiseInterval || ai > MaxAdvertiseInterval:
			v.add(gp+".advertise-interval", errRange(MinAdvertiseInterval, MaxAdvertiseInterval, ai))
		case ai%(10*time.Millisecond) != 0:
			v.addf(gp+".advertise-interval", "%s is not a multiple of 10ms (centiseconds, RFC 9568 §5.2.7)", ai)
		}
		sessions := map[string]string{}
		for k, t := range g.TrackBFD {
			tp := fmt.Sprintf("%s.track-bfd[%d]", gp, k)
			s := v.c.BFDSession(t.Session)
			switch {
			case t.Session == "":
				v.add(tp+".session", ErrRequired)
			case s == nil:
				v.add(tp+".session", errUndef("bfd session", strconv.Quote(t.Session)+" in bfd.sessions"))
			default:
				if first, dup := sessions[t.Session]; dup {
					v.add(tp+".session", errDup(strconv.Quote(t.Session), first))
				} else {
					sessions[t.Session] = tp + ".session"
				}
			}
			switch t.Mode {
			case TrackBFDPeer:
				// The split-brain rule: a session on another link (the
				// RBS link) says nothing about the Master on the LAN.
				if s != nil && s.Interface != ifc.Name {
					v.addf(tp+".mode", "peer needs a session on the group's interface %q, %q runs on %q (a failure on another link must not make this router Master; use reduce or step-down)", ifc.Name, t.Session, s.Interface)
				}
			case TrackBFDReduce:
				if t.Reduced == 0 {
					v.add(tp+".reduced", errRange(1, 255, 0))
				}
			case TrackBFDStepDown:
			default:
				v.addf(tp+".mode", "invalid mode %q: want %q, %q or %q", t.Mode, TrackBFDPeer, TrackBFDReduce, TrackBFDStepDown)
			}
			if t.Mode != TrackBFDReduce && t.Reduced != 0 {
				v.addf(tp+".reduced", "applies to mode %q only, not %q", TrackBFDReduce, t.Mode)
			}
		}
		tracked := map[string]string{}
		for k, t := range g.TrackInterfaces {
			tp := fmt.Sprintf("%s.track-interface[%d]", gp, k)
			switch {
			case t.Name == "":
				v.add(tp+".name", ErrRequired)
			case !v.knownInterface(t.Name):
				v.undefIf(tp+".name", t.Name)
			default:
				if first, dup := tracked[t.Name]; dup {
					v.add(tp+".name", errDup(strconv.Quote(t.Name), first))
				} else {
					tracked[t.Name] = tp + ".name"
				}
			}
			if t.Reduced == 0 {
				v.add(tp+".reduced", errRange(1, 255, 0))
			}
		}
	}

	if ifc.Egress != "" && ifc.Egress != EgressXDP && ifc.Egress != EgressClone {
		v.addf(p+".egress", "invalid mode %q: want %q or %q", ifc.Egress, EgressXDP, EgressClone)
	}
	if id := ifc.MulticastTrackVRRP6; id != 0 && ifc.Group(id) == nil {
		v.add(p+".multicast-track-vrrp6", errUndef("vrrp6 group", fmt.Sprintf("with vrid %d on interface %q", id, ifc.Name)))
	}
	if n := ifc.RemoteBackupProfile; n != "" {
		prof := v.c.Profile(n)
		switch {
		case prof == nil:
			v.add(p+".remote-backup-profile", errUndef("remote-backup-profile", strconv.Quote(n)))
		case prof.VRRP6.Interface != ifc.Name:
			v.addf(p+".remote-backup-profile", "profile %q tracks vrrp6 on interface %q, not %q", n, prof.VRRP6.Interface, ifc.Name)
		}
	}
}

func (v *validator) multicast() {
	m := &v.c.Multicast
	switch m.Upstream.Mode {
	case UpstreamStatic, UpstreamMLDProxy:
	default:
		v.addf("multicast.upstream.mode", "invalid mode %q: want %q or %q", m.Upstream.Mode, UpstreamStatic, UpstreamMLDProxy)
	}
	up := m.Upstream.Interface
	pim := v.c.PIMEnabled()
	switch {
	case pim && (up != "" || m.Upstream.Mode == UpstreamMLDProxy):
		v.addf("multicast.upstream", "must not be set when interfaces run pim: PIM finds the upstream of each source and RP by RPF through the kernel FIB; remove multicast.upstream")
	case up == "" && m.RoutingEnable && !pim:
		v.addf("multicast.upstream.interface", "%w when multicast.routing-enable is true (and no interface runs pim)", ErrRequired)
	case up != "" && !v.knownInterface(up):
		v.undefIf("multicast.upstream.interface", up)
	case up != "" && m.Upstream.Mode == UpstreamMLDProxy && v.c.Interface(up).MLD.Enable:
		v.addf("multicast.upstream.interface", "%q has mld.enable: an MLD proxy is a host on its upstream interface (RFC 4605 §1)", up)
	}

	if len(m.StaticRoutes) > 0 && !m.RoutingEnable {
		v.addf("multicast.static-routes", "needs multicast.routing-enable: true")
	}
	type sg struct{ s, g netip.Addr }
	seen := map[sg]string{}
	for i := range m.StaticRoutes {
		r := &m.StaticRoutes[i]
		p := fmt.Sprintf("multicast.static-routes[%d]", i)
		groupOK := false
		switch g := r.Group; {
		case !g.IsValid():
			v.add(p+".group", ErrRequired)
		case !g.Is6() || !g.IsMulticast():
			v.addf(p+".group", "%s is not an IPv6 multicast address (ff00::/8)", g)
		case inet.MulticastScope(g) <= 2 || inet.MulticastScope(g) == 0xf:
			v.addf(p+".group", "%s has scope %d; routed groups need scope 3..14 (RFC 4291 §2.7: not interface- or link-local)", g, inet.MulticastScope(g))
		default:
			groupOK = true
		}
		if s := r.Source; s.IsValid() {
			switch {
			case !s.Is6() || s.Is4In6() || s.Zone() != "":
				v.addf(p+".source", "%s is not an IPv6 address", s)
			case s.IsUnspecified() || s.IsMulticast() || s.IsLoopback() || s.IsLinkLocalUnicast():
				v.addf(p+".source", "%s is not a routable unicast source", s)
			}
		} else if groupOK && isSSM(r.Group) {
			v.addf(p+".source", "%w: %s is in the SSM range ff3x::/96, which has no (*,G) (RFC 4607 §1)", ErrRequired, r.Group)
		}
		if groupOK {
			k := sg{r.Source, r.Group}
			if first, dup := seen[k]; dup {
				v.add(p, errDup(routeName(r), first))
			} else {
				seen[k] = p
			}
		}

		switch {
		case r.Incoming == "" && pim:
			v.addf(p+".incoming", "%w: with pim there is no multicast.upstream.interface to default to; name the interface the route's traffic arrives on", ErrRequired)
		case r.Incoming == "":
			v.addf(p+".incoming", "%w: multicast.upstream.interface is not set to default to", ErrRequired)
		case !v.knownInterface(r.Incoming):
			v.undefIf(p+".incoming", r.Incoming)
		}
		if len(r.Interfaces) == 0 {
			v.addf(p+".interfaces", "%w: at least one outgoing interface", ErrRequired)
		}
		outs := map[string]string{}
		for j, o := range r.Interfaces {
			op := fmt.Sprintf("%s.interfaces[%d]", p, j)
			switch {
			case !v.knownInterface(o):
				v.undefIf(op, o)
			case o == r.Incoming:
				v.addf(op, "%q is the incoming interface", o)
			default:
				if first, dup := outs[o]; dup {
					v.add(op, errDup(strconv.Quote(o), first))
				} else {
					outs[o] = op
				}
			}
		}
	}
}

// isSSM reports whether a is in ff3x::/96 (RFC 4607 §1, RFC 3306 §6).
func isSSM(a netip.Addr) bool {
	b := a.As16()
	if b[0] != 0xff || b[1]&0xf0 != 0x30 {
		return false
	}
	for _, x := range b[2:12] {
		if x != 0 {
			return false
		}
	}
	return true
}

func routeName(r *StaticRoute) string {
	if r.Source.IsValid() {
		return fmt.Sprintf("(%s, %s)", r.Source, r.Group)
	}
	return fmt.Sprintf("(*, %s)", r.Group)
}

func (v *validator) services() {
	names := map[string]string{}
	for i := range v.c.Services {
		s := &v.c.Services[i]
		p := fmt.Sprintf("remote-backup-services[%d]", i)
		v.name(names, p+".name", s.Name)
		for _, a := range []struct {
			key  string
			addr netip.Addr
		}{{"peer-ipv6", s.PeerIPv6}, {"source-ipv6", s.SourceIPv6}} {
			switch x := a.addr; {
			case !x.IsValid():
				v.add(p+"."+a.key, ErrRequired)
			case !x.Is6() || x.Is4In6() || x.Zone() != "":
				v.addf(p+"."+a.key, "%s is not an IPv6 address", x)
			case x.IsUnspecified() || x.IsMulticast() || x.IsLinkLocalUnicast():
				v.addf(p+"."+a.key, "%s is not a global unicast address", x)
			}
		}
		if s.PeerIPv6.IsValid() && s.PeerIPv6 == s.SourceIPv6 {
			v.addf(p+".peer-ipv6", "equals source-ipv6 %s", s.SourceIPv6)
		}
		if s.Port == 0 {
			v.add(p+".port", errRange(1, 65535, 0))
		}
		if n := s.TrackBFD; n != "" && v.c.BFDSession(n) == nil {
			v.add(p+".track-bfd", errUndef("bfd session", strconv.Quote(n)+" in bfd.sessions"))
		}
		if h := s.HoldTime; h != 0 && (h < MinHoldTime || h > MaxHoldTime) {
			v.add(p+".hold-time", errRange(MinHoldTime, MaxHoldTime, h))
		}
		if t := s.TLS; t != nil {
			set := 0
			for _, f := range []struct{ key, val string }{{"cert", t.Cert}, {"key", t.Key}, {"ca", t.CA}} {
				switch {
				case f.val == "":
				case !path.IsAbs(f.val):
					set++
					v.addf(p+".tls."+f.key, "%q must be an absolute path", f.val)
				default:
					set++
				}
			}
			if set != 3 {
				for _, f := range []struct{ key, val string }{{"cert", t.Cert}, {"key", t.Key}, {"ca", t.CA}} {
					if f.val == "" {
						v.addf(p+".tls."+f.key, "%w: tls needs cert, key and ca together", ErrRequired)
					}
				}
			}
		}
	}
}

// name checks a service or profile name and its uniqueness.
func (v *validator) name(seen map[string]string, p, n string) {
	switch {
	case n == "":
		v.add(p, ErrRequired)
	case !nameRE.MatchString(n):
		v.addf(p, "invalid name %q: want 1-64 of A-Z a-z 0-9 _ . -", n)
	default:
		if first, dup := seen[n]; dup {
			v.add(p, errDup(strconv.Quote(n), first))
		} else {
			seen[n] = p
		}
	}
}

func (v *validator) profiles() {
	names := map[string]string{}
	type idKey struct {
		service string
		id      uint16
	}
	ids := map[idKey]string{}
	for i := range v.c.Profiles {
		r := &v.c.Profiles[i]
		p := fmt.Sprintf("remote-backup-profiles[%d]", i)
		v.name(names, p+".name", r.Name)

		if len(r.ServiceTypes) == 0 {
			v.addf(p+".service-type", "%w: at least one service type (%q)", ErrRequired, ServiceMLD)
		}
		sts := map[ServiceType]string{}
		for j, st := range r.ServiceTypes {
			sp := fmt.Sprintf("%s.service-type[%d]", p, j)
			switch {
			case st != ServiceMLD:
				v.addf(sp, "%q: %w, hotcast backs up %q only", st, ErrUnsupported, ServiceMLD)
			default:
				if first, dup := sts[st]; dup {
					v.add(sp, errDup(strconv.Quote(string(st)), first))
				} else {
					sts[st] = sp
				}
			}
		}

		if r.BackupID == 0 {
			v.add(p+".backup-id", errRange(1, 65535, 0))
		}
		switch {
		case r.Service == "":
			v.add(p+".remote-backup-service", ErrRequired)
		case v.c.Service(r.Service) == nil:
			v.add(p+".remote-backup-service", errUndef("remote-backup-service", strconv.Quote(r.Service)))
		case r.BackupID != 0:
			k := idKey{r.Service, r.BackupID}
			if first, dup := ids[k]; dup {
				v.addf(p+".backup-id", "%w %d on remote-backup-service %q (first used at %s)", ErrDuplicate, r.BackupID, r.Service, first)
			} else {
				ids[k] = p + ".backup-id"
			}
		}

		switch r.PeerBackup {
		case BackupHot:
		case "cold", "warm":
			v.addf(p+".peer-backup", "%q: %w, hotcast implements hot backup only (entries synchronized in real time)", r.PeerBackup, ErrUnsupported)
		default:
			v.addf(p+".peer-backup", "invalid mode %q: want %q", r.PeerBackup, BackupHot)
		}

		ref := r.VRRP6
		if ref.VRID == 0 {
			v.add(p+".vrrp6.vrid", errRange(1, 255, 0))
		}
		switch {
		case ref.Interface == "":
			v.add(p+".vrrp6.interface", ErrRequired)
		case !v.knownInterface(ref.Interface):
			v.undefIf(p+".vrrp6.interface", ref.Interface)
		case ref.VRID != 0 && v.c.VRRP6Group(ref) == nil:
			v.add(p+".vrrp6.vrid", errUndef("vrrp6 group", fmt.Sprintf("with vrid %d on interface %q", ref.VRID, ref.Interface)))
		}
	}
}

func (v *validator) bfd() {
	b := v.c.BFD
	if b == nil {
		return
	}
	if b.RealtimePriority < 0 || b.RealtimePriority > 99 {
		v.add("bfd.realtime-priority", errRange(0, 99, b.RealtimePriority))
	}
	names := map[string]string{}
	type peerKey struct {
		ifname string
		peer   netip.Addr
	}
	peers := map[peerKey]string{}
	for i := range b.Sessions {
		s := &b.Sessions[i]
		p := fmt.Sprintf("bfd.sessions[%d]", i)
		v.name(names, p+".name", s.Name)
		ifOK := false
		switch {
		case s.Interface == "":
			v.add(p+".interface", ErrRequired)
		case !v.knownInterface(s.Interface):
			v.undefIf(p+".interface", s.Interface)
		default:
			ifOK = true
		}
		switch a := s.Peer; {
		case !a.IsValid():
			v.add(p+".peer", ErrRequired)
		case !a.Is6() || a.Is4In6() || a.Zone() != "":
			v.addf(p+".peer", "%s is not an IPv6 address", a)
		case a.IsUnspecified() || a.IsMulticast() || a.IsLoopback():
			v.addf(p+".peer", "%s is not a unicast address (single-hop BFD runs to one neighbour, RFC 5881)", a)
		case ifOK:
			k := peerKey{s.Interface, a}
			if first, dup := peers[k]; dup {
				v.addf(p+".peer", "%w peer %s on interface %q (first used at %s): one session per neighbour and interface (RFC 5881 §3)", ErrDuplicate, a, s.Interface, first)
			} else {
				peers[k] = p + ".peer"
			}
		}
		if a := s.Source; a.IsValid() {
			switch {
			case !a.Is6() || a.Is4In6() || a.Zone() != "":
				v.addf(p+".source", "%s is not an IPv6 address", a)
			case a.IsUnspecified() || a.IsMulticast() || a.IsLoopback():
				v.addf(p+".source", "%s is not a unicast address", a)
			case a == s.Peer:
				v.addf(p+".source", "equals peer %s", a)
			}
		}
		for _, d := range []struct {
			key string
			d   time.Duration
		}{{"min-tx", s.MinTx}, {"min-rx", s.MinRx}} {
			switch {
			case d.d < MinBFDInterval || d.d > MaxBFDInterval:
				v.add(p+"."+d.key, errRange(MinBFDInterval, MaxBFDInterval, d.d))
			case d.d%time.Microsecond != 0:
				v.addf(p+"."+d.key, "%s is not a whole number of microseconds (RFC 5880 §4.1)", d.d)
			}
		}
		if s.Multiplier == 0 {
			v.add(p+".multiplier", errRange(1, 255, 0))
		}
	}
}
