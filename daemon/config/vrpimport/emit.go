package vrpimport

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode"

	"go.yaml.in/yaml/v3"

	"github.com/hotcast/hotcast/daemon/config"
)

// emitter builds the YAML document and remembers, for every key path it
// writes (in config's FieldError notation), the VRP line it came from.
type emitter struct {
	lines map[string]src
}

func (e *emitter) at(path string, s src) {
	if _, ok := e.lines[path]; !ok && s.line > 0 {
		e.lines[path] = s
	}
}

func str(v string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v}
}

func integer(v int) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.Itoa(v)}
}

func boolean(v bool) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(v)}
}

func duration(d time.Duration) *yaml.Node { return str(d.String()) }

func flow(items ...*yaml.Node) *yaml.Node {
	return &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle, Content: items}
}

func block(items ...*yaml.Node) *yaml.Node {
	return &yaml.Node{Kind: yaml.SequenceNode, Content: items}
}

// object is a mapping under construction at a key path.
type object struct {
	e     *emitter
	path  string
	node  *yaml.Node
	cited map[int]bool // lines already cited by an earlier key
}

func (e *emitter) object(path string) *object {
	return &object{e: e, path: path, node: &yaml.Node{Kind: yaml.MappingNode}, cited: map[int]bool{}}
}

func (o *object) sub(key string) string {
	if o.path == "" {
		return key
	}
	return o.path + "." + key
}

// set adds key: v with a comment citing the VRP lines it came from.
func (o *object) set(key string, v *yaml.Node, from ...src) {
	k := str(key)
	var fresh []src
	for _, s := range from {
		if !o.cited[s.line] {
			fresh = append(fresh, s)
			o.cited[s.line] = true
		}
	}
	if c := cite(fresh...); c != "" {
		if v.Kind == yaml.ScalarNode || v.Style == yaml.FlowStyle {
			v.LineComment = c
		} else {
			k.LineComment = c
		}
	}
	o.node.Content = append(o.node.Content, k, v)
	for _, s := range from {
		o.e.at(o.sub(key), s)
	}
}

// cite renders source lines as a comment: "line 7: peer-ipv6 ...".
func cite(from ...src) string {
	var parts []string
	seen := map[int]bool{}
	for _, s := range from {
		if s.line == 0 || seen[s.line] {
			continue
		}
		seen[s.line] = true
		parts = append(parts, fmt.Sprintf("line %d: %s", s.line, printable(s.text)))
	}
	if len(parts) == 0 {
		return ""
	}
	return "# " + strings.Join(parts, "; ")
}

// printable keeps a comment on one line of plain text.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, s)
}

const header = `hotcastd configuration converted by "hotcastctl import-vrp" from a Huawei
VRP configuration%s.
Each comment names the VRP line a key came from (docs/import-vrp.md).
Keys VRP has no equivalent of (api, bpf, multicast.upstream.mode,
mld.ignore-reports-while-backup, ...) are left out and take their
defaults (docs/configuration.md).`

// emit renders the parsed model as YAML.
func (p *parser) emit(source string) ([]byte, map[string]src, error) {
	e := &emitter{lines: map[string]src{}}
	root := e.object("")
	from := ""
	if source != "" {
		from = " (" + printable(source) + ")"
	}
	root.node.HeadComment = fmt.Sprintf(header, from)
	root.set("sysname", str(p.sysname.v), p.sysname.src)

	if p.routing.set {
		m := e.object("multicast")
		m.set("routing-enable", boolean(p.routing.v), p.routing.src)
		if !p.routing.v {
			m.node.Content[len(m.node.Content)-1].LineComment += `; off: no interface has "mld enable" or "pim ipv6 sm"`
		}
		if p.upstream != "" {
			up := e.object("multicast.upstream")
			up.set("interface", str(p.upstream))
			up.node.Content[len(up.node.Content)-1].LineComment = "# " + printable(p.upNote)
			e.at("multicast.upstream.interface", p.routing.src)
			m.set("upstream", up.node)
		}
		root.set("multicast", m.node)
	}
	if lo := p.emitLoopback(e); lo != nil {
		root.set("loopback", lo) // its interface key cites the interface lines
	}
	if pim := p.emitPIM(e); pim != nil {
		root.set("pim", pim, append([]src{p.pimv.src}, p.pimv.more...)...)
	}

	if len(p.services) > 0 {
		var items []*yaml.Node
		for i, r := range p.services {
			o := e.object(fmt.Sprintf("remote-backup-services[%d]", i))
			e.at(o.path, r.src)
			o.set("name", str(r.name), r.src)
			if r.peer.IsValid() {
				o.set("peer-ipv6", str(r.peer.String()), r.addrSrc)
			}
			if r.source.IsValid() {
				o.set("source-ipv6", str(r.source.String()), r.addrSrc)
			}
			if r.port != 0 {
				o.set("port", integer(r.port), r.addrSrc)
			}
			items = append(items, o.node)
		}
		root.set("remote-backup-services", block(items...))
	}

	if len(p.profiles) > 0 {
		var items []*yaml.Node
		for i, r := range p.profiles {
			o := e.object(fmt.Sprintf("remote-backup-profiles[%d]", i))
			e.at(o.path, r.src)
			o.set("name", str(r.name), r.src)
			if len(r.services) > 0 {
				var svc []*yaml.Node
				var from []src
				for j, s := range r.services {
					svc = append(svc, str(s.v))
					from = append(from, s.src)
					e.at(fmt.Sprintf("%s.service-type[%d]", o.path, j), s.src)
				}
				o.set("service-type", flow(svc...), from...)
			}
			if r.backupID.set {
				o.set("backup-id", integer(r.backupID.v), r.backupID.src)
				o.set("remote-backup-service", str(r.service.v), r.service.src)
			}
			if r.peerBackup.set {
				o.set("peer-backup", str(r.peerBackup.v), r.peerBackup.src)
			}
			if r.vrid.set {
				ref := e.object(o.sub("vrrp6"))
				ref.set("vrid", integer(r.vrid.v))
				ref.set("interface", str(p.ifByKey[r.vrIf.v].linux))
				e.at(ref.sub("vrid"), r.vrid.src)
				e.at(ref.sub("interface"), r.vrIf.src)
				o.set("vrrp6", ref.node, r.vrid.src)
			}
			items = append(items, o.node)
		}
		root.set("remote-backup-profiles", block(items...))
	}

	if len(p.ifaces) > 0 {
		var items []*yaml.Node
		for i, ifc := range p.ifaces {
			items = append(items, p.emitIface(e, i, ifc))
		}
		root.set("interfaces", block(items...))
	}

	doc := &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root.node}}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, nil, fmt.Errorf("encode yaml: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, nil, fmt.Errorf("encode yaml: %w", err)
	}
	return b.Bytes(), e.lines, nil
}

func (p *parser) emitIface(e *emitter, i int, ifc *iface) *yaml.Node {
	o := e.object(fmt.Sprintf("interfaces[%d]", i))
	e.at(o.path, ifc.src)
	o.set("name", str(ifc.linux), append([]src{ifc.src}, ifc.more...)...)
	if len(ifc.addrs) > 0 {
		var as []*yaml.Node
		var from []src
		for j, a := range ifc.addrs {
			as = append(as, str(prefixString(a.v)))
			from = append(from, a.src)
			e.at(fmt.Sprintf("%s.addresses[%d]", o.path, j), a.src)
		}
		o.set("addresses", flow(as...), from...)
	}
	if m := p.emitMLD(e, o.sub("mld"), &ifc.mld); m != nil {
		o.set("mld", m)
	}
	if len(ifc.groups) > 0 {
		var gs []*yaml.Node
		for j, g := range ifc.groups {
			gs = append(gs, p.emitGroup(e, fmt.Sprintf("%s.vrrp6[%d]", o.path, j), g))
		}
		o.set("vrrp6", block(gs...))
	}
	if ifc.track.set {
		o.set("multicast-track-vrrp6", integer(ifc.track.v), ifc.track.src)
	}
	if ifc.prof.set {
		o.set("remote-backup-profile", str(ifc.prof.v), ifc.prof.src)
	}
	switch {
	case p.pimOn && ifc.pim.sm.set:
		o.set("pim", p.emitIfacePIM(e, o.sub("pim"), &ifc.pim))
	case p.pimOn && ifc.mld.enable.set && ifc.mld.enable.v:
		// config requires pim here; its error names the mld line.
		e.at(o.sub("pim"), ifc.mld.enable.src)
	}
	return o.node
}

func (p *parser) emitIfacePIM(e *emitter, path string, m *pimIf) *yaml.Node {
	o := e.object(path)
	e.at(path, m.sm.src)
	o.set("mode", str(string(config.PIMModeSM)), m.sm.src)
	if m.hello.set {
		o.set("hello-interval", duration(m.hello.v), m.hello.src)
	}
	if m.drPriority.set {
		o.set("dr-priority", integer(int(m.drPriority.v)), m.drPriority.src)
	}
	if m.ignoreDR.set {
		o.set("ignore-dr-state", boolean(true), m.ignoreDR.src)
	}
	if m.ignoreAssert.set {
		o.set("ignore-assert-state", boolean(true), m.ignoreAssert.src)
	}
	return o.node
}

// emitLoopback renders interface LoopBack0 as the loopback section, or
// returns nil (and warns) when it has no address.
func (p *parser) emitLoopback(e *emitter) *yaml.Node {
	lo := &p.lo
	if lo.line == 0 {
		return nil
	}
	if len(lo.addrs) == 0 {
		p.warn(lo.src, "not converted: the loopback has no ipv6 address")
		return nil
	}
	o := e.object("loopback")
	e.at("loopback", lo.src)
	o.set("interface", str(lo.linux), append([]src{lo.src}, lo.more...)...)
	var as []*yaml.Node
	var from []src
	for j, a := range lo.addrs {
		as = append(as, str(prefixString(a.v)))
		from = append(from, a.src)
		e.at(fmt.Sprintf("loopback.addresses[%d]", j), a.src)
	}
	o.set("addresses", flow(as...), from...)
	return o.node
}

// emitPIM renders the pim-ipv6 view as the pim section, or returns nil
// when PIM is not converted or the view has nothing to convert.
func (p *parser) emitPIM(e *emitter) *yaml.Node {
	v := &p.pimv
	if !p.pimOn || v.line == 0 {
		return nil
	}
	o := e.object("pim")
	e.at("pim", v.src)
	if len(v.rps) > 0 {
		var items []*yaml.Node
		for i, rp := range v.rps {
			ro := e.object(fmt.Sprintf("pim.static-rp[%d]", i))
			e.at(ro.path, rp.src)
			ro.set("address", str(rp.addr.String()), rp.src)
			if rp.acl != "" {
				ro.set("group-range", str(rp.group.String()), append([]src{rp.src}, rp.from...)...)
			}
			items = append(items, ro.node)
		}
		o.set("static-rp", block(items...))
	}
	if v.ssm.set {
		o.set("ssm-range", str(v.ssm.v.String()), append([]src{v.ssm.src}, v.ssmFrom...)...)
	}
	if v.never.set {
		o.set("spt-switch", str(string(config.SPTSwitchNever)), v.never.src)
	}
	if v.jpInterval.set {
		o.set("join-prune-interval", duration(v.jpInterval.v), v.jpInterval.src)
	}
	if v.jpHold.set {
		o.set("join-prune-holdtime", duration(v.jpHold.v), v.jpHold.src)
	}
	if len(o.node.Content) == 0 {
		return nil
	}
	return o.node
}

// prefixString writes an address with its length as VRP did: the address
// itself, not the network address.
func prefixString(p netip.Prefix) string {
	return p.Addr().String() + "/" + strconv.Itoa(p.Bits())
}

func (p *parser) emitMLD(e *emitter, path string, m *mldConf) *yaml.Node {
	o := e.object(path)
	if m.enable.set {
		o.set("enable", boolean(m.enable.v), m.enable.src)
	}
	if m.version.set {
		o.set("version", integer(m.version.v), m.version.src)
	}
	if m.queryInterval.set {
		o.set("query-interval", duration(m.queryInterval.v), m.queryInterval.src)
	}
	if m.robustness.set {
		o.set("robustness", integer(m.robustness.v), m.robustness.src)
	}
	if m.maxResp.set {
		o.set("max-response-time", duration(m.maxResp.v), m.maxResp.src)
	}
	if m.lastListener.set {
		o.set("last-listener-query-interval", duration(m.lastListener.v), m.lastListener.src)
	}
	if m.routerAlert.set {
		o.set("require-router-alert", boolean(m.routerAlert.v), m.routerAlert.src)
	}
	if m.maxGroups.set {
		o.set("max-groups", integer(m.maxGroups.v), m.maxGroups.src)
	}
	if len(o.node.Content) == 0 {
		return nil
	}
	return o.node
}

func (p *parser) emitGroup(e *emitter, path string, g *group) *yaml.Node {
	o := e.object(path)
	e.at(path, g.src)
	o.set("vrid", integer(g.vrid), g.src)
	var vs []*yaml.Node
	var from []src
	for k, v := range g.vips {
		vs = append(vs, str(v.v.String()))
		from = append(from, v.src)
		e.at(fmt.Sprintf("%s.virtual-ip[%d]", path, k), v.src)
	}
	o.set("virtual-ip", flow(vs...), from...)
	if g.priority.set {
		o.set("priority", integer(g.priority.v), g.priority.src)
	}
	if g.preempt.set {
		o.set("preempt", boolean(g.preempt.v), g.preempt.src)
	}
	if g.delay.set {
		o.set("preempt-delay", duration(g.delay.v), g.delay.src)
	}
	if g.adv.set {
		o.set("advertise-interval", duration(g.adv.v), g.adv.src)
	}
	if len(g.tracks) > 0 {
		var ts []*yaml.Node
		for k, t := range g.tracks {
			to := e.object(fmt.Sprintf("%s.track-interface[%d]", path, k))
			e.at(to.path, t.src)
			to.set("name", str(p.ifByKey[t.key].linux), t.src)
			if t.reduced != 0 {
				to.set("reduced", integer(t.reduced), t.src)
			}
			ts = append(ts, to.node)
		}
		o.set("track-interface", block(ts...))
	}
	return o.node
}

// explain turns config.LoadBytes errors about the converted file into
// errors that name the VRP line to fix.
func (p *parser) explain(err error, lines map[string]src) error {
	fes := config.FieldErrors(err)
	if len(fes) == 0 {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	errs := make([]error, 0, len(fes))
	for _, fe := range fes {
		s := lookup(lines, fe.Path)
		errs = append(errs, &LineError{Line: s.line, Text: s.text, Err: fmt.Errorf("%w: %w", ErrInvalid, fe)})
	}
	return errors.Join(errs...)
}

// lookup finds the VRP line of path or of its nearest recorded parent:
// "interfaces[1].vrrp6[0].priority" falls back to "interfaces[1].vrrp6[0]",
// then "interfaces[1]".
func lookup(lines map[string]src, path string) src {
	for path != "" {
		if s, ok := lines[path]; ok {
			return s
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return src{}
}
