// Package probe reports what the running kernel offers hotcast and what
// hotcast will use: the BPF program and map types of the fast path, tcx
// links, devmap broadcast and devmap programs, native or generic XDP per
// interface, bpffs, ip6mr and the sockets MLD and VRRP6 need. Every check
// has a verdict; only a missing required feature fails the report
// ([Report.ExitCode]).
//
// [Evaluate] turns what a [Prober] finds into verdicts; [System] is the
// prober of the running kernel (Linux), probing from the calling thread's
// network namespace.
package probe

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// Verdict is the outcome of one check.
type Verdict string

// Verdicts.
const (
	OK              Verdict = "ok"
	MissingOptional Verdict = "missing-optional" // hotcast runs without it
	MissingRequired Verdict = "missing-required" // hotcast cannot run as configured
)

// Check names (stable: they key the JSON output).
const (
	CheckKernel          = "kernel"
	CheckBPFFS           = "bpffs"
	CheckProgXDP         = "prog-xdp"
	CheckProgSchedCLS    = "prog-sched-cls"
	CheckMapDevMapHash   = "map-devmap-hash"
	CheckMapArrayOfMaps  = "map-array-of-maps"
	CheckDataplane       = "dataplane"
	CheckTCX             = "tcx"
	CheckDevmapBroadcast = "devmap-broadcast"
	CheckDevmapProg      = "devmap-prog"
	CheckXDPLiveFrames   = "xdp-live-frames"
	CheckIP6MR           = "ip6mr"
	CheckAFPacket        = "af-packet"
	CheckRawIPv6         = "raw-ipv6"
	CheckInterfaces      = "interfaces" // listing them failed
	CheckXDP             = "xdp"        // one per interface
)

// XDP modes, as bpf.xdp-mode spells them.
const (
	ModeNative  = "native"
	ModeGeneric = "generic"
)

// BPFRoot is where hotcastd mounts a bpffs when none is mounted.
const BPFRoot = "/sys/fs/bpf"

// IP6MRFile exists when the kernel has IPv6 multicast routing
// (CONFIG_IPV6_MROUTE).
const IP6MRFile = "/proc/net/ip6_mr_vif"

// Check is one probed fact and its verdict.
type Check struct {
	Name      string  `json:"name"`
	Interface string  `json:"interface,omitempty"` // per-interface checks
	Verdict   Verdict `json:"verdict"`
	Reason    string  `json:"reason"`
}

// XDP support of an interface's driver.
const (
	XDPNative      = "native"       // basic and redirect in driver mode
	XDPGenericOnly = "generic-only" // no native XDP: generic (SKB) mode only
	XDPUnknown     = "unknown"      // the kernel does not say (no netdev netlink family)
)

// Interface is what was found about one interface.
type Interface struct {
	Name        string   `json:"name"`
	Index       int      `json:"ifindex,omitempty"`
	Kind        string   `json:"kind,omitempty"`         // netlink link type: veth, device, bridge, ...
	XDP         string   `json:"xdp,omitempty"`          // XDPNative, XDPGenericOnly, XDPUnknown; "" when absent
	XDPFeatures []string `json:"xdp_features,omitempty"` // netdev xdp-features flags
	// Mode is the XDP mode hotcast attaches in: ModeNative, ModeGeneric,
	// "none" (configured, nothing attached) or "" (no configuration).
	Mode string `json:"mode,omitempty"`
}

// Uses is what hotcast will use on this kernel.
type Uses struct {
	XDPMode         string `json:"xdp_mode,omitempty"` // configured bpf.xdp-mode; "" without a configuration
	TCX             bool   `json:"tcx"`
	DevmapBroadcast bool   `json:"devmap_broadcast"`
	MLDReceive      string `json:"mld_receive"` // how MLD reaches the daemon
	IP6MR           bool   `json:"ip6mr"`       // never: hotcast does not use kernel multicast routing
}

// Report is the outcome of all checks.
type Report struct {
	Kernel     string      `json:"kernel"`
	Config     bool        `json:"config"` // checked against a configuration
	Checks     []Check     `json:"checks"`
	Interfaces []Interface `json:"interfaces"`
	Uses       Uses        `json:"uses"`
}

// Missing returns the checks with verdict v.
func (r *Report) Missing(v Verdict) []Check {
	var out []Check
	for _, c := range r.Checks {
		if c.Verdict == v {
			out = append(out, c)
		}
	}
	return out
}

// ExitCode is 0 when everything required is present, 1 otherwise.
func (r *Report) ExitCode() int {
	if len(r.Missing(MissingRequired)) > 0 {
		return 1
	}
	return 0
}

// KernelExitCode is ExitCode counting only checks of the kernel itself,
// not of interfaces (which depend on the network namespace the probe runs
// in): what `hotcastd --check` exits with.
func (r *Report) KernelExitCode() int {
	for _, c := range r.Missing(MissingRequired) {
		if c.OfKernel() {
			return 1
		}
	}
	return 0
}

// OfKernel reports whether c is about the kernel itself, not about the
// interfaces of the network namespace the probe ran in.
func (c Check) OfKernel() bool { return c.Interface == "" && c.Name != CheckInterfaces }

// Want is what a configuration needs of the kernel. The zero Want (no
// configuration) checks for everything hotcast can use and reports every
// Ethernet interface of the namespace.
type Want struct {
	Config     bool   // false: no configuration
	PinPath    string // bpf.pin-path; "" means BPFRoot
	XDPMode    string // ModeNative or ModeGeneric
	Interfaces []WantIface
	// Sockets: MLD, an MLD proxy, VRRP6 or PIM is configured, so AF_PACKET and
	// raw IPv6 sockets are required.
	Sockets bool
}

// WantIface is one configured interface.
type WantIface struct {
	Name  string
	XDP   bool // hotcast attaches its programs here
	Clone bool // egress: clone (copies leave through TC, not an XDP redirect)
}

// Link is an interface as the prober lists it.
type Link struct {
	Name     string
	Index    int
	Kind     string
	Ethernet bool
	Loopback bool
}

// XDPFeatures is a netdev xdp-features bit set (enum netdev_xdp_act).
type XDPFeatures uint64

// netdev_xdp_act bits (include/uapi/linux/netdev.h).
const (
	XDPActBasic       XDPFeatures = 1 << 0
	XDPActRedirect    XDPFeatures = 1 << 1
	XDPActNDOXmit     XDPFeatures = 1 << 2
	XDPActXSKZerocopy XDPFeatures = 1 << 3
	XDPActHWOffload   XDPFeatures = 1 << 4
	XDPActRxSG        XDPFeatures = 1 << 5
	XDPActNDOXmitSG   XDPFeatures = 1 << 6
)

// Names lists the set flags by their netdev names.
func (f XDPFeatures) Names() []string {
	xdpActNames := [...]string{"basic", "redirect", "ndo-xmit", "xsk-zerocopy", "hw-offload", "rx-sg", "ndo-xmit-sg"}
	out := []string{}
	for i, n := range xdpActNames {
		if f&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	if rest := f &^ (1<<len(xdpActNames) - 1); rest != 0 {
		out = append(out, fmt.Sprintf("%#x", uint64(rest)))
	}
	return out
}

// Native reports native XDP as hotcast's ingress needs it: programs run
// in the driver and may redirect.
func (f XDPFeatures) Native() bool {
	return f&(XDPActBasic|XDPActRedirect) == XDPActBasic|XDPActRedirect
}

// Prober finds the facts. Methods return nil when the feature is there,
// an error wrapping [ebpf.ErrNotSupported] when the kernel lacks it, and
// any other error when probing failed (EPERM without privileges).
type Prober interface {
	KernelRelease() (string, error)
	// StatFS returns the filesystem magic of path, or of its deepest
	// existing ancestor, and that ancestor.
	StatFS(path string) (magic int64, at string, err error)
	ProgramType(ebpf.ProgramType) error
	MapType(ebpf.MapType) error
	// Dataplane loads hotcast's own programs and maps, unpinned, and
	// closes them.
	Dataplane() error
	TCX() error
	DevmapBroadcast() error
	DevmapProgram() error
	XDPLiveFrames() error
	FileExists(path string) (bool, error)
	Socket(domain, typ, proto int) error
	Links() ([]Link, error)
	// XDPFeatures returns the xdp-features of the given interfaces by
	// ifindex, leaving out those the kernel does not describe.
	XDPFeatures(ifindexes []int) (map[int]XDPFeatures, error)
}

// Evaluate runs every check of w with p.
func Evaluate(p Prober, w Want) *Report {
	r := &Report{
		Config:     w.Config,
		Interfaces: []Interface{}, // [] in JSON, not null
		Uses:       Uses{XDPMode: w.XDPMode, MLDReceive: "AF_PACKET"},
	}
	add := func(name, ifname string, v Verdict, format string, args ...any) {
		r.Checks = append(r.Checks, Check{Name: name, Interface: ifname, Verdict: v, Reason: fmt.Sprintf(format, args...)})
	}
	// feature adds a check of err: ok, or missing with a verdict by need.
	feature := func(name string, required bool, err error, okReason, missingReason string) bool {
		if err == nil {
			add(name, "", OK, "%s", okReason)
			return true
		}
		v := MissingOptional
		if required {
			v = MissingRequired
		}
		add(name, "", v, "%s", failReason(err, missingReason))
		return false
	}

	// Kernel: informational; the features below are probed, not inferred.
	if rel, err := p.KernelRelease(); err != nil {
		add(CheckKernel, "", MissingOptional, "uname: %v", err)
	} else {
		r.Kernel = rel
		add(CheckKernel, "", OK, "Linux %s (features are probed, not inferred from the version)", rel)
	}

	r.checkBPFFS(p, w, add)

	feature(CheckProgXDP, true, p.ProgramType(ebpf.XDP),
		"XDP programs: hotcast's fast path (hc_ingress, devmap egress)",
		"no XDP programs: hotcast's fast path is XDP")
	feature(CheckProgSchedCLS, true, p.ProgramType(ebpf.SchedCLS),
		"SchedCLS programs: hotcast's TC ingress and egress programs",
		"no SchedCLS programs: hotcast's TC ingress and egress programs need them")
	feature(CheckMapDevMapHash, true, p.MapType(ebpf.DevMapHash),
		"DevMapHash maps (5.4+): the outgoing-interface sets",
		"no DevMapHash maps (5.4+): the outgoing-interface sets are devmaps")
	feature(CheckMapArrayOfMaps, true, p.MapType(ebpf.ArrayOfMaps),
		"ArrayOfMaps maps: the table of outgoing-interface sets",
		"no ArrayOfMaps maps: the table of outgoing-interface sets needs them")
	feature(CheckDataplane, true, p.Dataplane(),
		"hotcast's programs and maps load (the verifier accepts them)",
		"hotcast's programs do not load")
	r.Uses.TCX = feature(CheckTCX, true, p.TCX(),
		"tcx links (6.6+): hotcast attaches its TC programs with them",
		"no tcx links (6.6+): hotcast attaches its TC programs with them")
	r.Uses.DevmapBroadcast = feature(CheckDevmapBroadcast, true, p.DevmapBroadcast(),
		"bpf_redirect_map with BPF_F_BROADCAST|BPF_F_EXCLUDE_INGRESS (5.13+): one redirect makes every copy",
		"no devmap broadcast (BPF_F_BROADCAST, 5.13+): hotcast makes its copies with it")
	feature(CheckDevmapProg, true, p.DevmapProgram(),
		"devmap egress programs (BPF_XDP_DEVMAP, 5.8+): the per-copy gate and source MAC",
		"no devmap egress programs (BPF_XDP_DEVMAP, 5.8+): hotcast rewrites each copy with one")
	feature(CheckXDPLiveFrames, false, p.XDPLiveFrames(),
		"BPF_F_TEST_XDP_LIVE_FRAMES (5.18+): the benchmark generator can run",
		"no BPF_F_TEST_XDP_LIVE_FRAMES (5.18+): only the benchmark generator needs it")

	switch ok, err := p.FileExists(IP6MRFile); {
	case err != nil:
		add(CheckIP6MR, "", MissingOptional, "stat %s: %v; hotcast does not need ip6mr", IP6MRFile, err)
	case ok:
		add(CheckIP6MR, "", OK, "present (CONFIG_IPV6_MROUTE); hotcast does not use it: MLD is received on AF_PACKET either way")
	default:
		add(CheckIP6MR, "", MissingOptional, "%s absent (no CONFIG_IPV6_MROUTE): hotcast does not need it, MLD is received on AF_PACKET either way; only the smcroute comparisons do", IP6MRFile)
	}

	sockets := !w.Config || w.Sockets
	unused := ""
	if !sockets {
		unused = " (not used by this configuration: no MLD, MLD proxy, VRRP6 or PIM)"
	}
	feature(CheckAFPacket, sockets, p.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0),
		"AF_PACKET sockets: MLD reception, ALLMULTI, VRRP6 frames and PIM's data arrival"+unused,
		"no AF_PACKET sockets (CONFIG_PACKET): MLD reception, VRRP6 and PIM need them"+unused)
	rawErr := p.Socket(unix.AF_INET6, unix.SOCK_RAW, unix.IPPROTO_ICMPV6)
	if rawErr == nil {
		rawErr = p.Socket(unix.AF_INET6, unix.SOCK_RAW, vrrpProto)
	}
	if rawErr == nil {
		rawErr = p.Socket(unix.AF_INET6, unix.SOCK_RAW, pimProto)
	}
	feature(CheckRawIPv6, sockets, rawErr,
		"raw IPv6 sockets: MLD queries (ICMPv6), VRRP6 adverts (protocol 112) and PIM (103)"+unused,
		"no raw IPv6 sockets: MLD queries, VRRP6 adverts and PIM need them"+unused)

	r.checkInterfaces(p, w, add)
	return r
}

// vrrpProto is VRRP's IP protocol number (RFC 9568), pimProto PIM's (RFC 7761).
const (
	vrrpProto = 112
	pimProto  = 103
)

type addFunc func(name, ifname string, v Verdict, format string, args ...any)

func (r *Report) checkBPFFS(p Prober, w Want, add addFunc) {
	path := w.PinPath
	if path == "" {
		path = BPFRoot
	}
	magic, at, err := p.StatFS(path)
	switch {
	case err != nil:
		add(CheckBPFFS, "", MissingRequired, "%s", failReason(err, "statfs "+path))
	case magic == unix.BPF_FS_MAGIC:
		if at == path {
			add(CheckBPFFS, "", OK, "%s is on a bpffs", path)
		} else {
			add(CheckBPFFS, "", OK, "%s is on a bpffs (at %s; hotcastd creates the rest)", path, at)
		}
	case under(path, BPFRoot):
		add(CheckBPFFS, "", MissingOptional, "no bpffs mounted at %s: hotcastd mounts one at start (pins live as long as that mount)", BPFRoot)
	default:
		add(CheckBPFFS, "", MissingRequired, "%s is not on a bpffs and not under %s: mount a bpffs there or change bpf.pin-path", path, BPFRoot)
	}
}

func under(path, root string) bool {
	return path == root || strings.HasPrefix(path, root+"/")
}

func (r *Report) checkInterfaces(p Prober, w Want, add addFunc) {
	links, err := p.Links()
	if err != nil {
		add(CheckInterfaces, "", MissingRequired, "%s", failReason(err, "list interfaces"))
		return
	}
	byName := map[string]Link{}
	var idxs []int
	for _, l := range links {
		byName[l.Name] = l
		if !l.Loopback {
			idxs = append(idxs, l.Index)
		}
	}
	feats, ferr := p.XDPFeatures(idxs)
	unknown := ""
	if ferr != nil {
		unknown = failReason(ferr, "no netdev netlink family (kernel 6.3+)")
	}

	wants := w.Interfaces
	if !w.Config {
		wants = nil
		for _, l := range links {
			if l.Ethernet && !l.Loopback {
				wants = append(wants, WantIface{Name: l.Name})
			}
		}
		slices.SortFunc(wants, func(a, b WantIface) int { return strings.Compare(a.Name, b.Name) })
	}
	for _, wi := range wants {
		l, ok := byName[wi.Name]
		ifc := Interface{Name: wi.Name}
		if w.Config {
			ifc.Mode = "none"
			if wi.XDP {
				ifc.Mode = w.XDPMode
			}
		}
		if !ok {
			r.Interfaces = append(r.Interfaces, ifc)
			add(CheckXDP, wi.Name, MissingRequired, "not in this network namespace: run where hotcastd runs, or fix interfaces[].name")
			continue
		}
		ifc.Index, ifc.Kind = l.Index, l.Kind
		f, known := feats[l.Index]
		switch {
		case ferr != nil || !known:
			ifc.XDP = XDPUnknown
		case f.Native():
			ifc.XDP = XDPNative
			ifc.XDPFeatures = f.Names()
		default:
			ifc.XDP = XDPGenericOnly
			ifc.XDPFeatures = f.Names()
		}
		r.Interfaces = append(r.Interfaces, ifc)
		if ferr == nil && !known {
			unknown = "the netdev netlink family does not list it"
		}

		if !l.Ethernet {
			if w.Config {
				add(CheckXDP, wi.Name, MissingRequired, "not an Ethernet interface (%s): hotcast forwards Ethernet frames", l.Kind)
			}
			continue
		}
		driver := "driver"
		if l.Kind != "" && l.Kind != "device" {
			driver = l.Kind + " driver"
		}
		native := "native XDP (" + strings.Join(ifc.XDPFeatures, ", ") + ")"
		switch {
		case w.Config && !wi.XDP:
			add(CheckXDP, wi.Name, OK, "hotcast attaches nothing here (multicast.routing-enable false, no vrrp6); driver XDP: %s", ifc.XDP)
		case !w.Config && ifc.XDP == XDPUnknown:
			add(CheckXDP, wi.Name, MissingOptional, "native XDP support unknown: %s; generic XDP always works", unknown)
		case !w.Config && ifc.XDP == XDPNative:
			add(CheckXDP, wi.Name, OK, "%s", native)
		case !w.Config:
			add(CheckXDP, wi.Name, MissingOptional, "generic only: the %s has no native XDP; configure bpf.xdp-mode: generic for it", driver)
		case w.XDPMode == ModeGeneric:
			if ifc.XDP == XDPNative {
				add(CheckXDP, wi.Name, OK, "generic (SKB) XDP as configured; the %s offers %s, bpf.xdp-mode: native is faster", driver, native)
			} else {
				add(CheckXDP, wi.Name, OK, "generic (SKB) XDP as configured (driver XDP: %s)", ifc.XDP)
			}
		case ifc.XDP == XDPUnknown:
			add(CheckXDP, wi.Name, MissingOptional, "bpf.xdp-mode native, native XDP support unknown: %s; the attach fails at start if the driver lacks it (then set bpf.xdp-mode: generic)", unknown)
		case ifc.XDP == XDPGenericOnly:
			add(CheckXDP, wi.Name, MissingRequired, "bpf.xdp-mode native, but the %s has no native XDP (generic only): set bpf.xdp-mode: generic", driver)
		case !wi.Clone && f&XDPActNDOXmit == 0:
			hint := ""
			if l.Kind == "veth" {
				hint = " (veth: its peer needs an XDP program or GRO on)"
			}
			add(CheckXDP, wi.Name, MissingOptional, "%s, but no ndo-xmit now: copies redirected out of %s are dropped%s; egress: clone or bpf.xdp-mode: generic avoid that", native, wi.Name, hint)
		default:
			add(CheckXDP, wi.Name, OK, "%s; bpf.xdp-mode native", native)
		}
	}
}

// failReason is the reason text of a failed probe: missing when the
// kernel lacks the feature, the error otherwise.
func failReason(err error, missing string) string {
	switch {
	case errors.Is(err, ebpf.ErrNotSupported):
		return missing
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return "cannot probe: permission denied; run as root, as hotcastd runs (CAP_BPF, CAP_NET_ADMIN, CAP_NET_RAW)"
	default:
		return fmt.Sprintf("%s: %v", missing, firstLine(err))
	}
}

// firstLine keeps a verifier log out of a one-line reason.
func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}
