package vrpimport

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hotcast/hotcast/daemon/config"
)

// src is where a value came from: a line number and its text.
type src struct {
	line int
	text string
}

// Parsed model. Every value remembers its source line so the YAML can cite
// it and config errors can be traced back to the VRP input.

type rbs struct {
	src
	name         string
	peer, source netip.Addr
	port         int // 0: absent
	addrSrc      src // the peer-ipv6 line
}

type rbp struct {
	src
	name       string
	services   []valSrc[string]
	backupID   valSrc[int]
	service    valSrc[string]
	peerBackup valSrc[string]
	vrid       valSrc[int]
	vrIf       valSrc[ifKey]
}

type valSrc[T any] struct {
	src
	v   T
	set bool
}

func (v *valSrc[T]) put(s src, x T) { *v = valSrc[T]{src: s, v: x, set: true} }

type iface struct {
	src
	key    ifKey
	linux  string // "" while unmapped
	mapped bool   // linux set (default or --map)
	more   []src  // further "interface" lines for the same interface
	l2     valSrc[bool]
	addrs  []valSrc[netip.Prefix]
	mld    mldConf
	groups []*group
	track  valSrc[int]
	prof   valSrc[string]
	pim    pimIf
}

// pimIf is an interface's "pim ipv6" commands.
type pimIf struct {
	sm           valSrc[bool]
	ignoreDR     valSrc[bool]
	ignoreAssert valSrc[bool]
	drPriority   valSrc[uint32]
	hello        valSrc[time.Duration]
	lines        []src // every line above, warned about when PIM is not converted
}

// loopback is "interface LoopBack0": the router's own addresses
// (loopback.addresses), whatever Linux interface holds them.
type loopback struct {
	src          // the interface line; line 0: none in the file
	more  []src  // further "interface LoopBack0" lines
	linux string // loopback.interface: "lo" or --map's
	addrs []valSrc[netip.Prefix]
}

// pimView is the "pim-ipv6" view.
type pimView struct {
	src        // the pim-ipv6 line; line 0: none in the file
	more       []src
	rps        []*staticRP
	never      valSrc[bool] // spt-switch-threshold infinity
	jpInterval valSrc[time.Duration]
	jpHold     valSrc[time.Duration]
	ssmACL     valSrc[string]
	ssm        valSrc[netip.Prefix] // from ssmACL, when it resolves
	ssmFrom    []src                // the ACL lines it came from
	lines      []src                // the converted lines, warned about when PIM is not converted
}

// staticRP is "static-rp ADDRESS [ACL] [preferred]".
type staticRP struct {
	src
	addr  netip.Addr
	acl   string       // "": none; an acl6 number or name
	group netip.Prefix // set in finish
	from  []src        // the ACL lines group came from
	why   string       // why acl does not translate; "": it does
	// dropped: left out, its ACL untranslated and every group served by
	// another RP.
	dropped bool
}

// acl6 is an "acl ipv6" view, read only as a group range.
type acl6 struct {
	src
	names []string // its number and name, lower case
	rules []aclRule
}

// aclRule is "rule [ID] permit|deny [source PREFIX|any]"; simple is false
// for anything else in the rule (a time range, a fragment match, ...).
type aclRule struct {
	src
	permit bool
	source netip.Prefix // ::/0 for any
	simple bool
}

type mldConf struct {
	enable        valSrc[bool]
	version       valSrc[int]
	queryInterval valSrc[time.Duration]
	robustness    valSrc[int]
	maxResp       valSrc[time.Duration]
	lastListener  valSrc[time.Duration]
	routerAlert   valSrc[bool]
	maxGroups     valSrc[int]
}

type group struct {
	src
	vrid     int
	vips     []valSrc[netip.Addr] // link-local first once finished
	priority valSrc[int]
	preempt  valSrc[bool]
	delay    valSrc[time.Duration]
	adv      valSrc[time.Duration]
	tracks   []track
}

type track struct {
	src
	key     ifKey
	reduced int // 0: default
}

// view is the configuration view a line belongs to.
type viewKind int

const (
	viewNone viewKind = iota
	viewRBS
	viewRBP
	viewIface
	viewSkipIface // an interface that is not converted
	viewLoopback  // interface LoopBack0
	viewPIM       // pim-ipv6
	viewACL       // acl ipv6
	viewOther     // a view hotcast does not model (isis, vlan, ...)
)

type parser struct {
	opts     Options
	userMap  map[ifKey]string
	mapUsed  map[ifKey]bool
	commands int

	sysname  valSrc[string]
	routing  valSrc[bool]
	services []*rbs
	profiles []*rbp
	ifaces   []*iface
	ifByKey  map[ifKey]*iface
	upstream string
	upNote   string
	lo       loopback
	pimv     pimView
	acls     []*acl6
	// pimOn: PIM is converted (an interface has pim ipv6 sm and no
	// --upstream asks for the MLD edge instead); set by finish.
	pimOn bool

	view       viewKind
	curRBS     *rbs
	curRBP     *rbp
	curIf      *iface
	curACL     *acl6
	viewHeader src
	viewReason string

	warns []Warning
	errs  []*LineError
}

func newParser(opts Options) (*parser, error) {
	p := &parser{
		opts:    opts,
		userMap: map[ifKey]string{},
		mapUsed: map[ifKey]bool{},
		ifByKey: map[ifKey]*iface{},
	}
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(opts.Map)) {
		v := opts.Map[k]
		key, err := parseIfName(k)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("--map %s=%s: %w", k, v, err))
		case v == "":
			errs = append(errs, fmt.Errorf("--map %s=: %w: empty Linux name", k, ErrInterfaceName))
		case p.userMap[key] != "" && p.userMap[key] != v:
			errs = append(errs, fmt.Errorf("--map %s=%s: %w: %s is already mapped to %s", k, v, ErrInterfaceName, k, p.userMap[key]))
		default:
			p.userMap[key] = v
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *parser) warn(s src, format string, args ...any) {
	p.warns = append(p.warns, Warning{Line: s.line, Text: s.text, Reason: fmt.Sprintf(format, args...)})
}

func (p *parser) fail(s src, err error) {
	p.errs = append(p.errs, &LineError{Line: s.line, Text: s.text, Err: err})
}

func (p *parser) failf(s src, sentinel error, format string, args ...any) {
	p.fail(s, fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...)))
}

func (p *parser) err() error {
	if len(p.errs) == 0 {
		return nil
	}
	slices.SortStableFunc(p.errs, func(a, b *LineError) int { return cmp.Compare(a.Line, b.Line) })
	errs := make([]error, len(p.errs))
	for i, e := range p.errs {
		errs[i] = e
	}
	return errors.Join(errs...)
}

func (p *parser) sortedWarnings() []Warning {
	w := slices.Clone(p.warns)
	slices.SortStableFunc(w, func(a, b Warning) int { return cmp.Compare(a.Line, b.Line) })
	return w
}

// parse reads the configuration line by line. VRP prints a view's commands
// indented by one space below the command that opened it, and separates
// top-level blocks with "#". The indentation common to all lines (e.g. from
// a document the configuration was pasted from) is ignored.
func (p *parser) parse(b []byte) {
	lines := strings.Split(string(b), "\n")
	base := -1
	for _, l := range lines {
		l = strings.TrimRight(l, " \t\r")
		if l == "" {
			continue
		}
		if n := len(l) - len(strings.TrimLeft(l, " \t")); base < 0 || n < base {
			base = n
		}
	}
	for i, l := range lines {
		s := src{line: i + 1, text: strings.TrimSpace(l)}
		if !utf8.ValidString(l) {
			s.text = strings.ToValidUTF8(s.text, "?")
			p.failf(s, ErrSyntax, "not valid UTF-8")
			continue
		}
		if s.text == "" {
			continue
		}
		l = strings.TrimRight(l, " \t\r")
		indent := len(l) - len(strings.TrimLeft(l, " \t")) - base
		switch {
		case strings.HasPrefix(s.text, "#"):
			if indent == 0 {
				p.view = viewNone
			}
			continue
		case strings.HasPrefix(s.text, "!"): // VRP comment lines ("!Software Version ...")
			continue
		}
		p.commands++
		words := strings.Fields(s.text)
		if indent == 0 {
			p.top(s, words)
			continue
		}
		switch p.view {
		case viewRBS:
			p.inRBS(s, words)
		case viewRBP:
			p.inRBP(s, words)
		case viewIface:
			p.inIface(s, words)
		case viewLoopback:
			p.inLoopback(s, words)
		case viewPIM:
			p.inPIM(s, words)
		case viewACL:
			p.inACL(s, words)
		case viewSkipIface, viewOther:
			p.warn(s, "not converted: inside %q (line %d), %s", p.viewHeader.text, p.viewHeader.line, p.viewReason)
		default:
			p.failf(s, ErrSyntax, "indented command outside a view (a top-level command or \"#\" closed the view before it)")
		}
	}
}

// kw reports whether words starts with the keywords want (case-insensitive).
func kw(words []string, want ...string) bool {
	if len(words) < len(want) {
		return false
	}
	for i, w := range want {
		if !strings.EqualFold(words[i], w) {
			return false
		}
	}
	return true
}

// Reasons for commands hotcast does not model.
const (
	reasonPIMv4       = "not modelled: IPv4 PIM; hotcast is IPv6 only"
	reasonPIMOther    = "not modelled: hotcast's PIM-SM has no equivalent of this command"
	reasonPIMUpstream = "not converted: --upstream makes hotcast an MLD edge router that pulls traffic from multicast.upstream instead of running PIM"
	reasonPIMNoSM     = "not converted: no converted interface has \"pim ipv6 sm\", so hotcast runs no PIM"
	reasonACL         = "not converted: hotcast has no ACLs; a one-rule acl6 is read as the group range of the static-rp or ssm-policy that names it"
	reasonISIS        = "not modelled: hotcast does not run IS-IS; unicast routing is left to the operating system"
	reasonL2          = "not modelled: hotcast routes between layer-3 interfaces; layer-2 switching is left to the operating system (a Linux bridge)"
	reasonLink        = "not modelled: hotcast does not change link state; bring the link up with the operating system (ip link set IF up)"
	reasonOther       = "not modelled: hotcast has no equivalent of this command"
)

func (p *parser) top(s src, w []string) {
	p.view = viewNone
	switch {
	case kw(w, "sysname"):
		if len(w) < 2 {
			p.failf(s, ErrSyntax, "want sysname NAME")
			return
		}
		p.sysname.put(s, strings.Join(w[1:], " "))
	case kw(w, "multicast", "ipv6", "routing-enable") && len(w) == 3:
		p.routing.put(s, true)
	case kw(w, "remote-backup-service"):
		if len(w) != 2 {
			p.failf(s, ErrSyntax, "want remote-backup-service NAME")
			p.enterOther(s, "which has a syntax error")
			return
		}
		p.curRBS = p.rbsNamed(s, w[1])
		p.view = viewRBS
	case kw(w, "remote-backup-profile"):
		if len(w) != 2 {
			p.failf(s, ErrSyntax, "want remote-backup-profile NAME")
			p.enterOther(s, "which has a syntax error")
			return
		}
		p.curRBP = p.rbpNamed(s, w[1])
		p.view = viewRBP
	case kw(w, "interface"):
		p.enterIface(s, w[1:])
	case kw(w, "isis"):
		p.warn(s, "%s", reasonISIS)
		p.enterOther(s, "hotcast does not run IS-IS")
	case kw(w, "pim-ipv6") && len(w) == 1:
		if p.pimv.line == 0 {
			p.pimv.src = s
		} else {
			p.pimv.more = append(p.pimv.more, s)
		}
		p.view = viewPIM
	case kw(w, "pim-ipv6"):
		p.warn(s, "not modelled: PIM in a VPN instance; hotcast routes in the main table only")
		p.enterOther(s, "hotcast does not route VPN instances")
	case kw(w, "pim"):
		p.warn(s, "%s", reasonPIMv4)
		p.enterOther(s, "hotcast does not run IPv4 PIM")
	case kw(w, "acl", "ipv6"):
		p.enterACL(s, w[2:])
	case kw(w, "vlan"):
		p.warn(s, "%s", reasonL2)
		p.enterOther(s, "hotcast does not model VLANs")
	case kw(w, "return"):
		p.commands--
	default:
		p.warn(s, "%s", reasonOther)
		p.enterOther(s, "a view hotcast does not model")
	}
}

func (p *parser) enterOther(s src, reason string) {
	p.view, p.viewHeader, p.viewReason = viewOther, s, reason
}

func (p *parser) rbsNamed(s src, name string) *rbs {
	for _, r := range p.services {
		if r.name == name {
			return r
		}
	}
	r := &rbs{src: s, name: name}
	p.services = append(p.services, r)
	return r
}

func (p *parser) rbpNamed(s src, name string) *rbp {
	for _, r := range p.profiles {
		if r.name == name {
			return r
		}
	}
	r := &rbp{src: s, name: name}
	p.profiles = append(p.profiles, r)
	return r
}

func (p *parser) enterIface(s src, w []string) {
	if len(w) == 0 {
		p.failf(s, ErrSyntax, "want interface NAME")
		p.enterOther(s, "which has a syntax error")
		return
	}
	key, err := parseIfName(w...)
	if err != nil {
		p.fail(s, err)
		p.enterOther(s, "which has a syntax error")
		return
	}
	if ifc := p.ifByKey[key]; ifc != nil { // a second block for the same interface
		p.curIf, p.view = ifc, viewIface
		ifc.more = append(ifc.more, s)
		if !ifc.mapped {
			p.view, p.viewHeader, p.viewReason = viewSkipIface, s, "an interface that is not converted"
			p.warn(s, "not converted: no Linux name for this interface (use --map %s=NAME)", strings.Join(w, ""))
		}
		return
	}
	if key == loopback0 {
		p.enterLoopback(s)
		return
	}
	ifc := &iface{src: s, key: key}
	if v, ok := p.userMap[key]; ok {
		ifc.linux, ifc.mapped = v, true
		p.mapUsed[key] = true
	} else if v, ok := defaultLinuxName(key); ok {
		ifc.linux, ifc.mapped = v, true
	}
	p.ifaces = append(p.ifaces, ifc)
	p.ifByKey[key] = ifc
	switch {
	case ifc.mapped:
		p.curIf, p.view = ifc, viewIface
	case isNull(key):
		p.warn(s, "not modelled: the null interface (a discard sink) has no hotcast counterpart")
		p.view, p.viewHeader, p.viewReason = viewSkipIface, s, "an interface that is not converted"
	default:
		p.warn(s, "not converted: no Linux name for this interface (only GigabitEthernetX/Y/Z maps by default, to geZ; use --map %s=NAME)", strings.Join(w, ""))
		p.view, p.viewHeader, p.viewReason = viewSkipIface, s, "an interface that is not converted"
	}
}

// number parses a decimal in [lo, hi]; what names it in errors.
func number(tok, what string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(tok)
	if err != nil || strings.HasPrefix(tok, "+") {
		return 0, fmt.Errorf("%w: %s %q is not a number", ErrSyntax, what, tok)
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("%w: %s %d, want %d..%d", ErrRange, what, n, lo, hi)
	}
	return n, nil
}

// ipv6 parses an IPv6 address as VRP prints it (upper-case hex is fine).
func ipv6(tok string) (netip.Addr, error) {
	a, err := netip.ParseAddr(tok)
	switch {
	case err != nil:
		return netip.Addr{}, fmt.Errorf("%w: %q is not an IPv6 address", ErrSyntax, tok)
	case a.Is4():
		return netip.Addr{}, fmt.Errorf("%w: %s is an IPv4 address; hotcast is IPv6 only", ErrUnsupported, tok)
	case a.Zone() != "" || a.Is4In6():
		return netip.Addr{}, fmt.Errorf("%w: %q is not a plain IPv6 address", ErrSyntax, tok)
	}
	return a, nil
}

func (p *parser) inRBS(s src, w []string) {
	r := p.curRBS
	switch {
	case kw(w, "peer-ipv6"):
		// peer-ipv6 A source-ipv6 B [port P], keywords in any order.
		var peer, source netip.Addr
		port := 0
		if len(w)%2 != 0 {
			p.failf(s, ErrSyntax, "want peer-ipv6 ADDRESS source-ipv6 ADDRESS port PORT")
			return
		}
		bad := false
		for i := 0; i < len(w); i += 2 {
			var err error
			switch strings.ToLower(w[i]) {
			case "peer-ipv6":
				peer, err = ipv6(w[i+1])
			case "source-ipv6":
				source, err = ipv6(w[i+1])
			case "port":
				port, err = number(w[i+1], "port", 1, 65535)
			default:
				err = fmt.Errorf("%w: unexpected %q; want peer-ipv6 ADDRESS source-ipv6 ADDRESS port PORT", ErrSyntax, w[i])
			}
			if err != nil {
				p.fail(s, err)
				bad = true
			}
		}
		if bad {
			return
		}
		if !source.IsValid() {
			p.failf(s, ErrSyntax, "missing source-ipv6 ADDRESS")
			return
		}
		r.peer, r.source, r.port, r.addrSrc = peer, source, port, s
	case kw(w, "peer"):
		p.failf(s, ErrUnsupported, "an IPv4 RBS channel; hotcast's RBS runs over IPv6 (peer-ipv6 ... source-ipv6 ...)")
	case kw(w, "ssl-policy"):
		p.warn(s, "not converted: hotcast secures the channel with TLS 1.3 from files; set remote-backup-services[].tls (cert, key, ca) by hand")
	default:
		p.warn(s, "%s (in remote-backup-service %s)", reasonOther, r.name)
	}
}

func (p *parser) inRBP(s src, w []string) {
	r := p.curRBP
	switch {
	case kw(w, "service-type") && len(w) == 2:
		if !strings.EqualFold(w[1], "mld") {
			p.failf(s, ErrUnsupported, "service type %q: hotcast backs up mld only", w[1])
			return
		}
		r.services = append(r.services, valSrc[string]{src: s, v: "mld", set: true})
	case kw(w, "backup-id") && len(w) == 4 && strings.EqualFold(w[2], "remote-backup-service"):
		id, err := number(w[1], "backup-id", 1, 65535)
		if err != nil {
			p.fail(s, err)
			return
		}
		r.backupID.put(s, id)
		r.service.put(s, w[3])
	case kw(w, "backup-id"):
		p.failf(s, ErrSyntax, "want backup-id ID remote-backup-service NAME")
	case kw(w, "peer-backup") && len(w) == 2:
		if !strings.EqualFold(w[1], "hot") {
			p.failf(s, ErrUnsupported, "peer-backup %s: hotcast implements hot backup only", w[1])
			return
		}
		r.peerBackup.put(s, "hot")
	case kw(w, "vrrp6-id"):
		if len(w) < 4 || !strings.EqualFold(w[2], "interface") {
			p.failf(s, ErrSyntax, "want vrrp6-id VRID interface NAME")
			return
		}
		vrid, err := number(w[1], "vrrp6-id", 1, 255)
		if err != nil {
			p.fail(s, err)
			return
		}
		key, err := parseIfName(w[3:]...)
		if err != nil {
			p.fail(s, err)
			return
		}
		r.vrid.put(s, vrid)
		r.vrIf.put(s, key)
	case kw(w, "vrrp-id"):
		p.failf(s, ErrUnsupported, "an IPv4 VRRP group; hotcast tracks VRRP6 groups (vrrp6-id)")
	default:
		p.warn(s, "%s (in remote-backup-profile %s)", reasonOther, r.name)
	}
}

func (p *parser) inIface(s src, w []string) {
	ifc := p.curIf
	switch {
	case kw(w, "ipv6", "enable") && len(w) == 2:
		// Implied: every hotcast interface is an IPv6 interface.
	case kw(w, "ipv6", "address"):
		p.address(s, &ifc.addrs, w[2:])
	case kw(w, "vrrp6", "vrid"):
		p.vrrp6(s, ifc, w[2:])
	case kw(w, "mld"):
		p.mld(s, ifc, w[1:])
	case kw(w, "multicast", "ipv6", "track", "vrrp6", "vrid") && len(w) == 6:
		vrid, err := number(w[5], "vrid", 1, 255)
		if err != nil {
			p.fail(s, err)
			return
		}
		ifc.track.put(s, vrid)
	case kw(w, "remote-backup-profile") && len(w) == 2:
		ifc.prof.put(s, w[1])
	case kw(w, "portswitch") && len(w) == 1:
		ifc.l2.put(s, true)
		p.warn(s, "%s", reasonL2)
	case kw(w, "undo", "portswitch") && len(w) == 2:
		ifc.l2.put(s, false) // a routed port, as every hotcast interface is
	case kw(w, "port"):
		p.warn(s, "%s", reasonL2)
	case kw(w, "undo", "shutdown"), kw(w, "shutdown"):
		p.warn(s, "%s", reasonLink)
	case kw(w, "pim"):
		p.pimIface(s, ifc, w)
	case kw(w, "isis"):
		p.warn(s, "%s", reasonISIS)
	default:
		p.warn(s, "%s (in interface %s)", reasonOther, ifc.linux)
	}
}

// pimIface handles "pim ipv6 ..." in an interface view: PIM-SM on the
// interface (interfaces[].pim), RFC 7761.
func (p *parser) pimIface(s src, ifc *iface, w []string) {
	if !kw(w, "pim", "ipv6") {
		p.warn(s, "%s", reasonPIMv4)
		return
	}
	m := &ifc.pim
	a := w[2:]
	switch {
	case kw(a, "sm") && len(a) == 1:
		m.sm.put(s, true)
	case kw(a, "ignore", "dr-state") && len(a) == 2:
		m.ignoreDR.put(s, true)
	case kw(a, "ignore", "assert-state") && len(a) == 2:
		m.ignoreAssert.put(s, true)
	case kw(a, "hello-option", "dr-priority") && len(a) == 3:
		n, err := strconv.ParseUint(a[2], 10, 64)
		switch {
		case err != nil || strings.HasPrefix(a[2], "+"):
			p.failf(s, ErrSyntax, "dr-priority %q is not a number", a[2])
			return
		case n > math.MaxUint32:
			p.failf(s, ErrRange, "dr-priority %d, want 0..%d", n, uint64(math.MaxUint32))
			return
		}
		m.drPriority.put(s, uint32(n))
	case kw(a, "timer", "hello") && len(a) == 3:
		n, err := number(a[2], "hello interval", 1, 18000)
		if err != nil {
			p.fail(s, err)
			return
		}
		m.hello.put(s, time.Duration(n)*time.Second)
	default:
		p.warn(s, "%s (in interface %s)", reasonPIMOther, ifc.linux)
		return
	}
	m.lines = append(m.lines, s)
}

// loopback0 is the loopback whose addresses become loopback.addresses.
const loopback0 ifKey = "loopback0"

func (p *parser) enterLoopback(s src) {
	p.view = viewLoopback
	if p.lo.line != 0 {
		p.lo.more = append(p.lo.more, s)
		return
	}
	p.lo.src, p.lo.linux = s, config.DefaultLoopbackInterface
	if v, ok := p.userMap[loopback0]; ok {
		p.lo.linux = v
		p.mapUsed[loopback0] = true
	}
}

// inLoopback handles the lines of interface LoopBack0.
func (p *parser) inLoopback(s src, w []string) {
	switch {
	case kw(w, "ipv6", "enable") && len(w) == 2:
		// Implied, as on every interface.
	case kw(w, "ipv6", "address"):
		p.address(s, &p.lo.addrs, w[2:])
	case kw(w, "pim"):
		p.warn(s, "not modelled: hotcast runs no PIM on the loopback; its addresses count as the router's own without it")
	case kw(w, "isis"):
		p.warn(s, "%s", reasonISIS)
	case kw(w, "undo", "shutdown"), kw(w, "shutdown"):
		p.warn(s, "%s", reasonLink)
	default:
		p.warn(s, "%s (in interface LoopBack0)", reasonOther)
	}
}

// aclName reads the ACL argument of static-rp and ssm-policy: an acl6
// number, or acl6-name NAME; ok is false for anything else.
func aclName(w []string) (name string, ok bool) {
	switch {
	case len(w) == 1 && !strings.EqualFold(w[0], "acl6-name"):
		return strings.ToLower(w[0]), true
	case len(w) == 2 && strings.EqualFold(w[0], "acl6-name"):
		return strings.ToLower(w[1]), true
	}
	return "", false
}

// inPIM handles the lines of the pim-ipv6 view: the global PIM-SM
// configuration (pim).
func (p *parser) inPIM(s src, w []string) {
	v := &p.pimv
	seconds := func(tok, what string, out *valSrc[time.Duration]) {
		n, err := number(tok, what, 1, 65535)
		if err != nil {
			p.fail(s, err)
			return
		}
		out.put(s, time.Duration(n)*time.Second)
		v.lines = append(v.lines, s)
	}
	switch {
	case kw(w, "static-rp") && len(w) >= 2:
		a, err := ipv6(w[1])
		if err != nil {
			p.fail(s, err)
			return
		}
		rp := &staticRP{src: s, addr: a}
		rest := w[2:]
		if n := len(rest); n > 0 && strings.EqualFold(rest[n-1], "preferred") {
			p.warn(s, "\"preferred\" not converted: it prefers the static RP to one learned by BSR, and hotcast has static RPs only")
			rest = rest[:n-1]
		}
		if len(rest) > 0 {
			name, ok := aclName(rest)
			if !ok {
				p.failf(s, ErrSyntax, "want static-rp ADDRESS [ACL6-NUMBER | acl6-name NAME] [preferred]")
				return
			}
			rp.acl = name
		}
		v.rps = append(v.rps, rp)
		v.lines = append(v.lines, s)
	case kw(w, "static-rp"):
		p.failf(s, ErrSyntax, "want static-rp ADDRESS [ACL6-NUMBER | acl6-name NAME] [preferred]")
	case kw(w, "spt-switch-threshold", "infinity") && len(w) == 2:
		v.never.put(s, true)
		v.lines = append(v.lines, s)
	case kw(w, "spt-switch-threshold"):
		p.warn(s, "not converted: hotcast switches to the source tree at the first packet (spt-switch: immediate, the default) or never (spt-switch-threshold infinity); rate thresholds and group policies are not modelled")
	case kw(w, "timer", "join-prune") && len(w) == 3:
		seconds(w[2], "join/prune interval", &v.jpInterval)
	case kw(w, "holdtime", "join-prune") && len(w) == 3:
		seconds(w[2], "join/prune holdtime", &v.jpHold)
	case kw(w, "ssm-policy"):
		name, ok := aclName(w[1:])
		if !ok {
			p.failf(s, ErrSyntax, "want ssm-policy ACL6-NUMBER or ssm-policy acl6-name NAME")
			return
		}
		v.ssmACL.put(s, name)
		v.lines = append(v.lines, s)
	default:
		p.warn(s, "%s (in pim-ipv6)", reasonPIMOther)
	}
}

// enterACL handles "acl ipv6 [number] N" and "acl ipv6 name NAME [basic |
// advance | number N]" (w starts after "ipv6").
func (p *parser) enterACL(s src, w []string) {
	a := &acl6{src: s}
	switch {
	case len(w) == 1:
		a.names = []string{strings.ToLower(w[0])}
	case len(w) == 2 && strings.EqualFold(w[0], "number"):
		a.names = []string{strings.ToLower(w[1])}
	case len(w) >= 2 && strings.EqualFold(w[0], "name"):
		a.names = []string{strings.ToLower(w[1])}
		if len(w) == 4 && strings.EqualFold(w[2], "number") {
			a.names = append(a.names, strings.ToLower(w[3]))
		}
	}
	p.warn(s, "%s", reasonACL)
	if a.names == nil {
		p.enterOther(s, "an ACL hotcast does not read")
		return
	}
	p.acls = append(p.acls, a)
	p.view, p.viewHeader, p.curACL = viewACL, s, a
}

// inACL records a rule of an acl6 view; every line is warned about (the
// YAML also cites a rule it took a group range from).
func (p *parser) inACL(s src, w []string) {
	p.warn(s, "not converted: inside %q (line %d), hotcast has no ACLs", p.viewHeader.text, p.viewHeader.line)
	if !kw(w, "rule") {
		return
	}
	r := aclRule{src: s}
	rest := w[1:]
	if len(rest) > 0 {
		if _, err := strconv.Atoi(rest[0]); err == nil {
			rest = rest[1:]
		}
	}
	switch {
	case kw(rest, "permit"):
		r.permit = true
	case kw(rest, "deny"):
	default:
		p.curACL.rules = append(p.curACL.rules, r)
		return
	}
	rest = rest[1:]
	switch {
	case len(rest) == 0, len(rest) == 2 && kw(rest, "source", "any"):
		r.source, r.simple = netip.PrefixFrom(netip.IPv6Unspecified(), 0), true
	case len(rest) == 2 && kw(rest, "source"):
		if pfx, err := netip.ParsePrefix(rest[1]); err == nil && pfx.Addr().Is6() && pfx.Addr().Zone() == "" {
			r.source, r.simple = pfx.Masked(), true
		}
	case len(rest) == 3 && kw(rest, "source"):
		if pfx, err := netip.ParsePrefix(rest[1] + "/" + rest[2]); err == nil && pfx.Addr().Is6() && pfx.Addr().Zone() == "" {
			r.source, r.simple = pfx.Masked(), true
		}
	}
	p.curACL.rules = append(p.curACL.rules, r)
}

// aclRange resolves an acl6 to the group range it permits: one rule,
// "permit source PREFIX" (or any) with a multicast PREFIX. Otherwise why
// says why not.
func (p *parser) aclRange(name string) (pfx netip.Prefix, from []src, why string) {
	var a *acl6
	for _, x := range p.acls {
		if slices.Contains(x.names, name) {
			a = x
		}
	}
	switch {
	case a == nil:
		return netip.Prefix{}, nil, fmt.Sprintf("no acl ipv6 %s in the configuration", name)
	case len(a.rules) != 1:
		return netip.Prefix{}, nil, fmt.Sprintf("acl ipv6 %s (line %d) has %d rules, hotcast reads one", name, a.line, len(a.rules))
	}
	r := a.rules[0]
	switch {
	case !r.simple || !r.permit:
		return netip.Prefix{}, nil, fmt.Sprintf("its rule (line %d) is not \"rule permit source PREFIX\"", r.line)
	case r.source.Bits() == 0:
		pfx = config.AllGroups()
	case r.source.Bits() < 8 || !r.source.Addr().IsMulticast():
		return netip.Prefix{}, nil, fmt.Sprintf("its rule (line %d) permits %s, not a range of multicast groups", r.line, r.source)
	default:
		pfx = r.source
	}
	return pfx, []src{a.src, r.src}, ""
}

// address handles "ipv6 address A/L", "ipv6 address A L" and the link-local
// and EUI-64 forms, which are not modelled; into is the interface's list.
func (p *parser) address(s src, into *[]valSrc[netip.Prefix], w []string) {
	switch {
	case len(w) >= 1 && strings.EqualFold(w[len(w)-1], "link-local"), kw(w, "auto"):
		p.warn(s, "not modelled: the kernel configures the interface's link-local address (RFC 4862 §5.3)")
		return
	case len(w) >= 1 && strings.EqualFold(w[len(w)-1], "eui-64"):
		p.failf(s, ErrUnsupported, "an EUI-64 address depends on the MAC address; write the full address")
		return
	}
	var pfx netip.Prefix
	var err error
	switch len(w) {
	case 1:
		pfx, err = netip.ParsePrefix(w[0])
	case 2:
		var n int
		n, err = number(w[1], "prefix length", 1, 128)
		if err == nil {
			pfx, err = netip.ParsePrefix(w[0] + "/" + strconv.Itoa(n))
		}
	default:
		p.failf(s, ErrSyntax, "want ipv6 address ADDRESS/LENGTH or ipv6 address ADDRESS LENGTH")
		return
	}
	if err != nil {
		if !errors.Is(err, ErrRange) && !errors.Is(err, ErrSyntax) {
			err = fmt.Errorf("%w: %q is not an IPv6 prefix", ErrSyntax, strings.Join(w, " "))
		}
		p.fail(s, err)
		return
	}
	if a := pfx.Addr(); !a.Is6() || a.Is4In6() || a.Zone() != "" {
		p.failf(s, ErrUnsupported, "%s is not an IPv6 prefix; hotcast is IPv6 only", pfx)
		return
	}
	*into = append(*into, valSrc[netip.Prefix]{src: s, v: pfx, set: true})
}

func (ifc *iface) group(s src, vrid int) *group {
	for _, g := range ifc.groups {
		if g.vrid == vrid {
			return g
		}
	}
	g := &group{src: s, vrid: vrid}
	ifc.groups = append(ifc.groups, g)
	return g
}

// vrrp6 handles "vrrp6 vrid N ..." (w starts at N), RFC 9568.
func (p *parser) vrrp6(s src, ifc *iface, w []string) {
	if len(w) < 2 {
		p.failf(s, ErrSyntax, "want vrrp6 vrid VRID COMMAND")
		return
	}
	vrid, err := number(w[0], "vrrp6 vrid", 1, 255)
	if err != nil {
		p.fail(s, err)
		return
	}
	args := w[1:]
	switch {
	case kw(args, "virtual-ip") && (len(args) == 2 || len(args) == 3 && strings.EqualFold(args[2], "link-local")):
		a, err := ipv6(args[1])
		if err != nil {
			p.fail(s, err)
			return
		}
		if ll := len(args) == 3; ll != a.IsLinkLocalUnicast() {
			if ll {
				p.failf(s, ErrSyntax, "%s is not a link-local address (fe80::/10)", args[1])
			} else {
				p.failf(s, ErrSyntax, "%s is link-local: write \"virtual-ip %s link-local\"", args[1], args[1])
			}
			return
		}
		g := ifc.group(s, vrid)
		g.vips = append(g.vips, valSrc[netip.Addr]{src: s, v: a, set: true})
	case kw(args, "virtual-ip"):
		p.failf(s, ErrSyntax, "want vrrp6 vrid %d virtual-ip ADDRESS [link-local]", vrid)
	case kw(args, "priority") && len(args) == 2:
		pr, err := number(args[1], "priority", 1, 255)
		if err != nil {
			p.fail(s, err)
			return
		}
		ifc.group(s, vrid).priority.put(s, pr)
	case kw(args, "preempt-mode", "timer", "delay") && len(args) == 4:
		d, err := number(args[3], "preempt delay", 0, 3600)
		if err != nil {
			p.fail(s, err)
			return
		}
		g := ifc.group(s, vrid)
		g.delay.put(s, time.Duration(d)*time.Second)
	case kw(args, "preempt-mode", "disable") && len(args) == 2:
		ifc.group(s, vrid).preempt.put(s, false)
	case kw(args, "timer", "advertise", "millisecond") && len(args) == 4:
		ms, err := number(args[3], "advertise interval (ms)", 100, 500)
		if err == nil && ms != 100 && ms != 200 && ms != 500 {
			err = fmt.Errorf("%w: advertise interval %dms, want 100, 200 or 500", ErrRange, ms)
		}
		if err != nil {
			p.fail(s, err)
			return
		}
		ifc.group(s, vrid).adv.put(s, time.Duration(ms)*time.Millisecond)
	case kw(args, "timer", "advertise") && len(args) == 3:
		cs, err := number(args[2], "advertise interval (centiseconds)", 100, 4095)
		if err != nil {
			p.fail(s, err)
			return
		}
		ifc.group(s, vrid).adv.put(s, time.Duration(cs)*10*time.Millisecond)
	case kw(args, "track", "interface") && len(args) >= 3:
		rest := args[2:]
		reduced := 0
		if n := len(rest); n >= 3 && strings.EqualFold(rest[n-2], "reduced") {
			r, err := number(rest[n-1], "reduced", 1, 255)
			if err != nil {
				p.fail(s, err)
				return
			}
			reduced, rest = r, rest[:n-2]
		}
		key, err := parseIfName(rest...)
		if err != nil {
			p.fail(s, err)
			return
		}
		g := ifc.group(s, vrid)
		g.tracks = append(g.tracks, track{src: s, key: key, reduced: reduced})
	default:
		p.warn(s, "%s (in interface %s)", reasonOther, ifc.linux)
	}
}

// mld handles "mld ..." in an interface view (w starts after "mld"), RFC 3810.
func (p *parser) mld(s src, ifc *iface, w []string) {
	m := &ifc.mld
	seconds := func(tok, what string, lo, hi int, v *valSrc[time.Duration]) {
		n, err := number(tok, what, lo, hi)
		if err != nil {
			p.fail(s, err)
			return
		}
		v.put(s, time.Duration(n)*time.Second)
	}
	integer := func(tok, what string, lo, hi int, v *valSrc[int]) {
		n, err := number(tok, what, lo, hi)
		if err != nil {
			p.fail(s, err)
			return
		}
		v.put(s, n)
	}
	switch {
	case kw(w, "enable") && len(w) == 1:
		m.enable.put(s, true)
	case kw(w, "version") && len(w) == 2:
		integer(w[1], "mld version", 1, 2, &m.version)
	case kw(w, "timer", "query") && len(w) == 3:
		seconds(w[2], "query interval", 1, 18000, &m.queryInterval)
	case kw(w, "robust-count") && len(w) == 2:
		integer(w[1], "robust-count", 1, 7, &m.robustness)
	case kw(w, "max-response-time") && len(w) == 2:
		seconds(w[1], "max-response-time", 1, 8387, &m.maxResp)
	case kw(w, "lastlistener-queryinterval") && len(w) == 2:
		seconds(w[1], "lastlistener-queryinterval", 1, 8387, &m.lastListener)
	case kw(w, "require-router-alert") && len(w) == 1:
		m.routerAlert.put(s, true)
	case kw(w, "limit") && len(w) == 2:
		integer(w[1], "mld limit", 1, 1048576, &m.maxGroups)
	default:
		p.warn(s, "%s (in interface %s)", reasonOther, ifc.linux)
	}
}

// finish resolves what needs the whole file: layer-2 interfaces, interface
// references, Linux name clashes, the order of virtual addresses and the
// upstream interface.
func (p *parser) finish() {
	for k := range p.userMap {
		if !p.mapUsed[k] {
			p.warn(src{}, "--map %s: no such interface in the configuration", k)
		}
	}
	if !p.sysname.set {
		p.sysname.put(src{}, "HUAWEI")
		p.warn(src{}, "no sysname command: using HUAWEI, the VRP default")
	}

	// Layer-2 ports are left out; unmapped interfaces were never in.
	var kept []*iface
	byLinux := map[string]*iface{}
	for _, ifc := range p.ifaces {
		if !ifc.mapped {
			continue
		}
		if ifc.l2.set && ifc.l2.v {
			p.warn(ifc.src, "left out: a layer-2 port (portswitch, line %d)", ifc.l2.line)
			continue
		}
		if first := byLinux[ifc.linux]; first != nil {
			p.failf(ifc.src, ErrInterfaceName, "maps to %s, as does %s on line %d; give each a name with --map", ifc.linux, first.text, first.line)
			continue
		}
		byLinux[ifc.linux] = ifc
		kept = append(kept, ifc)
	}
	p.ifaces = kept

	ref := func(s src, k ifKey) string {
		ifc := p.ifByKey[k]
		switch {
		case ifc == nil:
			p.failf(s, ErrInterfaceName, "interface %s is not configured (no interface block)", k)
		case ifc.l2.set && ifc.l2.v:
			p.failf(s, ErrInterfaceName, "interface %s is a layer-2 port (portswitch, line %d); hotcast needs a layer-3 interface", k, ifc.l2.line)
		case !ifc.mapped:
			p.failf(s, ErrInterfaceName, "interface %s has no Linux name; use --map %s=NAME", k, k)
		default:
			return ifc.linux
		}
		return ""
	}
	for _, r := range p.profiles {
		if r.vrIf.set {
			ref(r.vrIf.src, r.vrIf.v)
		}
	}
	for _, ifc := range p.ifaces {
		for _, g := range ifc.groups {
			for _, t := range g.tracks {
				ref(t.src, t.key)
			}
			p.orderVIPs(g)
		}
	}
	p.finishPIM()
	p.inferUpstream()
}

// finishPIM decides whether PIM is converted: when a converted interface
// has pim ipv6 sm and --upstream does not ask for the MLD edge instead.
// Then it resolves the ACLs static-rp and ssm-policy name; otherwise
// every PIM line is warned about.
func (p *parser) finishPIM() {
	sm := false
	for _, ifc := range p.ifaces {
		sm = sm || ifc.pim.sm.set
	}
	p.pimOn = sm && p.opts.Upstream == ""
	v := &p.pimv
	if !p.pimOn {
		reason := reasonPIMNoSM
		if sm {
			reason = reasonPIMUpstream
		}
		for _, ifc := range p.ifaces {
			for _, s := range ifc.pim.lines {
				p.warn(s, "%s", reason)
			}
		}
		for _, s := range append(append([]src{v.src}, v.more...), v.lines...) {
			if s.line != 0 {
				p.warn(s, "%s", reason)
			}
		}
		return
	}
	for _, ifc := range p.ifaces {
		if ifc.pim.sm.set {
			continue
		}
		for _, s := range ifc.pim.lines {
			p.warn(s, "not converted: the interface has no \"pim ipv6 sm\" (line %d is its interface line)", ifc.line)
		}
	}
	// An RP whose ACL does not translate serves every group, unless
	// another RP does already: then it is left out (two RPs for one
	// range are an error, and the other's range is the one known).
	var all *staticRP // the RP of ff00::/8 known for sure
	var unresolved []*staticRP
	for _, rp := range v.rps {
		rp.group = config.AllGroups()
		if rp.acl == "" {
			all = cmp.Or(all, rp)
			continue
		}
		pfx, from, why := p.aclRange(rp.acl)
		if why != "" {
			rp.why = why
			unresolved = append(unresolved, rp)
			continue
		}
		rp.group, rp.from = pfx, from
		if pfx == config.AllGroups() {
			all = cmp.Or(all, rp)
		}
		p.warn(rp.src, "group-range %s read from acl ipv6 %s (line %d); check it", pfx, rp.acl, from[0].line)
	}
	for _, rp := range unresolved {
		if all != nil {
			rp.dropped = true
			p.warn(rp.src, "left out: ACL %s not translated (%s), and static-rp %s (line %d) serves every group already; write its pim.static-rp[] entry by hand", rp.acl, rp.why, all.addr, all.line)
			continue
		}
		all = rp
		p.warn(rp.src, "ACL %s not translated (%s): the RP serves %s, every group; set pim.static-rp[].group-range by hand", rp.acl, rp.why, rp.group)
	}
	v.rps = slices.DeleteFunc(v.rps, func(rp *staticRP) bool { return rp.dropped })
	if a := v.ssmACL; a.set {
		pfx, from, why := p.aclRange(a.v)
		switch {
		case why != "":
			p.warn(a.src, "ACL %s not translated (%s): pim.ssm-range stays %s", a.v, why, config.DefaultSSMRange())
		default:
			v.ssm.put(a.src, pfx)
			v.ssmFrom = from
			p.warn(a.src, "ssm-range %s read from acl ipv6 %s (line %d); check it", pfx, a.v, from[0].line)
		}
	}
	if v.line == 0 {
		p.warn(src{}, "no pim-ipv6 static-rp: hotcast's PIM runs with no RP, so only SSM groups (%s) are routed", config.DefaultSSMRange())
	} else if len(v.rps) == 0 && !v.never.set && !v.jpInterval.set && !v.jpHold.set && !v.ssm.set {
		for _, s := range append([]src{v.src}, v.more...) {
			p.warn(s, "not converted: nothing in the view that hotcast models, so PIM runs with its defaults and no RP (only SSM groups are routed)")
		}
	}
}

// orderVIPs puts the link-local virtual address first: RFC 9568 §5.2.9
// requires it, whatever order the VRP lines came in.
func (p *parser) orderVIPs(g *group) {
	var ll, rest []valSrc[netip.Addr]
	for _, v := range g.vips {
		if v.v.IsLinkLocalUnicast() {
			ll = append(ll, v)
		} else {
			rest = append(rest, v)
		}
	}
	switch {
	case len(ll) == 0:
		p.failf(g.src, ErrUnsupported, "vrrp6 vrid %d has no link-local virtual-ip; RFC 9568 §5.2.9 needs one (vrrp6 vrid %d virtual-ip FE80::1 link-local)", g.vrid, g.vrid)
	case len(ll) > 1:
		p.failf(ll[1].src, ErrUnsupported, "vrrp6 vrid %d has a second link-local virtual-ip (first on line %d); RFC 9568 §5.2.9 allows one", g.vrid, ll[0].line)
	}
	g.vips = append(ll, rest...)
}

// inferUpstream picks multicast.upstream.interface for a router that runs
// no PIM in hotcast (PIM, when converted, finds the upstream by RPF and
// has none): an MLD edge router needs the RPF interface named. It is
// --upstream if given, else the one converted interface that carries
// neither MLD nor VRRP6 nor the local end of an RBS channel.
func (p *parser) inferUpstream() {
	if p.opts.Upstream != "" {
		if !p.routing.set {
			p.failf(src{}, ErrUpstream, "--upstream %s given, but the configuration has no multicast ipv6 routing-enable", p.opts.Upstream)
			return
		}
		p.upstream = p.resolve(p.opts.Upstream)
		if p.upstream == "" {
			p.failf(src{}, ErrUpstream, "--upstream %s: no such converted interface", p.opts.Upstream)
		}
		p.upNote = "--upstream " + p.opts.Upstream
		return
	}
	if !p.routing.set || p.pimOn {
		// PIM finds the upstream by RPF: no multicast.upstream.
		return
	}
	edge := false
	for _, ifc := range p.ifaces {
		edge = edge || ifc.mld.enable.v
	}
	if !edge {
		p.routing.v = false
		p.warn(p.routing.src, "written as routing-enable: false: no converted interface has \"mld enable\" or \"pim ipv6 sm\", so hotcast would have "+
			"no listeners to forward to and no PIM to route for; pass --upstream IF to keep it on")
		return
	}
	var cands []*iface
	for _, ifc := range p.ifaces {
		if ifc.mld.enable.v || len(ifc.groups) > 0 || p.rbsSource(ifc) {
			continue
		}
		cands = append(cands, ifc)
	}
	if len(cands) != 1 {
		names := make([]string, len(cands))
		for i, c := range cands {
			names[i] = c.linux
		}
		list := "none"
		if len(names) > 0 {
			list = strings.Join(names, ", ")
		}
		p.failf(p.routing.src, ErrUpstream, "cannot infer multicast.upstream.interface: want exactly one interface without MLD, VRRP6 or an RBS source address, found %s; pass --upstream IF", list)
		return
	}
	p.upstream = cands[0].linux
	p.upNote = fmt.Sprintf("inferred: the only interface without MLD, VRRP6 or an RBS source (%s, line %d)", cands[0].text, cands[0].line)
	p.warn(cands[0].src, "multicast.upstream.interface: %s inferred (the only interface without MLD, VRRP6 or an RBS source address); check it, or pass --upstream IF", cands[0].linux)
}

// rbsSource reports whether an RBS channel's source-ipv6 is on ifc.
func (p *parser) rbsSource(ifc *iface) bool {
	for _, r := range p.services {
		for _, a := range ifc.addrs {
			if r.source.IsValid() && a.v.Contains(r.source) {
				return true
			}
		}
	}
	return false
}

// resolve maps a VRP or Linux interface name to the Linux name of a
// converted interface, or "".
func (p *parser) resolve(name string) string {
	if k, err := parseIfName(name); err == nil {
		if ifc := p.ifByKey[k]; ifc != nil && ifc.mapped && !(ifc.l2.set && ifc.l2.v) {
			return ifc.linux
		}
	}
	for _, ifc := range p.ifaces {
		if ifc.linux == name {
			return name
		}
	}
	return ""
}
