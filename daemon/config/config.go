// Package config loads and validates the hotcastd configuration file
// (/etc/hotcast/hotcast.yaml).
//
// The schema mirrors the Huawei VRP commands of the "MLD dual-device hot
// backup in a VRRP6 scenario" example: remote-backup-service (RBS),
// remote-backup-profile (RBP), vrrp6 vrid, mld and multicast ipv6 commands.
// docs/configuration.md documents every key.
//
// Loading is a pure function of the file contents: the YAML is decoded
// strictly (unknown keys are errors) into a raw structure, converted into
// [Config] with defaults applied, and then checked by [Config.Validate]. Every
// problem found is reported, each as a [FieldError] naming the key path, and
// no partially validated Config is ever returned.
package config

import (
	"net/netip"
	"time"
)

// Defaults applied by [Load], [LoadBytes] and [Parse] to keys that are
// absent from the file.
const (
	DefaultSocketDir    = "/run/hotcast" // api.socket = DefaultSocketDir/<sysname>.sock
	DefaultPinDir       = "/sys/fs/bpf/hotcast"
	DefaultXDPMode      = XDPNative
	DefaultUpstreamMode = UpstreamStatic
	DefaultRBSPort      = 1025 // VRP remote-backup-service ... port default
	DefaultPeerBackup   = BackupHot

	DefaultMLDVersion                = 2
	DefaultQueryInterval             = 125 * time.Second // RFC 3810 §9.2
	DefaultRobustness                = 2                 // RFC 3810 §9.1
	DefaultMaxResponseTime           = 10 * time.Second  // RFC 3810 §9.3
	DefaultLastListenerQueryInterval = 1 * time.Second   // RFC 3810 §9.8
	DefaultRequireRouterAlert        = true              // RFC 3810 §5
	DefaultMaxGroups                 = 4096

	DefaultPriority          = 100 // RFC 9568 §5.2.4, VRP default
	DefaultPreempt           = true
	DefaultAdvertiseInterval = 1 * time.Second // RFC 9568 §5.2.7
	DefaultTrackReduced      = 10              // VRP "track interface ... reduced" default

	DefaultBFDMinTx            = 10 * time.Millisecond // VRP "min-tx-interval" default
	DefaultBFDMinRx            = 10 * time.Millisecond // VRP "min-rx-interval" default
	DefaultBFDMultiplier       = 3                     // VRP "detect-multiplier" default
	DefaultBFDRealtimePriority = 10                    // SCHED_FIFO priority of the BFD engine thread
	DefaultTrackBFDMode        = TrackBFDPeer
)

// TrackBFDMode is what a failed BFD session tracked by a VRRP6 group does
// (vrrp6[].track-bfd[].mode).
type TrackBFDMode string

// Track modes.
const (
	// TrackBFDPeer: the session runs to the other router of the group on
	// the group's interface; when the peer goes silent a Backup becomes
	// Master at once (VRP "track bfd-session ... peer").
	TrackBFDPeer TrackBFDMode = "peer"
	// TrackBFDReduce: the priority is lowered by reduced while the
	// session is failed (VRP "track bfd-session ... reduced N").
	TrackBFDReduce TrackBFDMode = "reduce"
	// TrackBFDStepDown: while the session is failed a Master gives up at
	// once (priority 0 advert) and the priority is 1.
	TrackBFDStepDown TrackBFDMode = "step-down"
)

// EgressMode selects how copies leave an interface.
type EgressMode string

// Egress modes.
const (
	// EgressXDP: copies are made by the XDP devmap broadcast (the default;
	// fastest towards NICs and XDP-capable peers).
	EgressXDP EgressMode = "xdp"
	// EgressClone: routes towards this interface are replicated in TC with
	// bpf_clone_redirect, whose copies share one buffer; for skb-bound
	// ports (container veths, taps) where a page per copy costs more.
	EgressClone EgressMode = "clone"
)

// XDPMode selects how the XDP program is attached.
type XDPMode string

// XDP attach modes.
const (
	XDPNative  XDPMode = "native"  // driver mode (XDP_FLAGS_DRV_MODE)
	XDPGeneric XDPMode = "generic" // SKB mode (XDP_FLAGS_SKB_MODE), for veth labs
)

// UpstreamMode selects how groups learned from MLD are pulled from upstream.
type UpstreamMode string

// Upstream modes.
const (
	// UpstreamStatic: traffic arrives on the upstream interface without
	// hotcast asking for it (static joins upstream, or flooding).
	UpstreamStatic UpstreamMode = "static"
	// UpstreamMLDProxy: hotcast reports the union of downstream membership
	// on the upstream interface as an MLD host (RFC 4605).
	UpstreamMLDProxy UpstreamMode = "mld-proxy"
)

// BackupMode is the RBP "peer-backup" mode.
type BackupMode string

// Backup modes. VRP also has cold and warm backup; hotcast implements hot
// backup only.
const (
	BackupHot BackupMode = "hot"
)

// ServiceType is an RBP "service-type".
type ServiceType string

// Service types. VRP knows others (igmp, ...); hotcast backs up MLD only.
const (
	ServiceMLD ServiceType = "mld"
)

// Config is a fully validated hotcastd configuration. Values returned by
// [Load], [LoadBytes] and [Parse] have every default filled in.
type Config struct {
	// Sysname names this router (VRP "sysname"); it also names the default
	// socket and pin paths.
	Sysname    string
	API        API
	BPF        BPF
	Multicast  Multicast
	Services   []RBS       // remote-backup-services
	Profiles   []RBP       // remote-backup-profiles
	Interfaces []Interface // interfaces
	// BFD is the bfd section; nil when the file has none.
	BFD *BFD
	// PIM is the global PIM-SM configuration (VRP "pim-ipv6" view); nil
	// when the file has no pim section. PIM runs on the interfaces whose
	// PIM is set, with or without it (no RP: SSM only).
	PIM *PIM
	// Loopback is the router's loopback address set (VRP "interface
	// LoopBack0"): addresses the daemon puts on Loopback.Interface, which
	// PIM counts among the router's own (an RP address, a Register source).
	Loopback Loopback
}

// Defaults of the pim section (RFC 7761 §4.11, VRP defaults).
const (
	DefaultSPTSwitch         = SPTSwitchImmediate
	DefaultPIMHelloInterval  = 30 * time.Second
	DefaultPIMDRPriority     = 1
	DefaultJoinPruneInterval = 60 * time.Second
	DefaultJoinPruneHoldtime = 210 * time.Second
	DefaultLoopbackInterface = "lo"
	DefaultPIMMode           = PIMModeSM
)

// SPTSwitch is when a last-hop router leaves the RP tree for the source's
// (VRP "spt-switch-threshold": immediate is the default, never is
// "spt-switch-threshold infinity").
type SPTSwitch string

// SPT switch policies.
const (
	SPTSwitchImmediate SPTSwitch = "immediate"
	SPTSwitchNever     SPTSwitch = "never"
)

// PIMMode is interfaces[].pim.mode; only sparse mode exists.
type PIMMode string

// PIM modes.
const (
	PIMModeSM PIMMode = "sm" // VRP "pim ipv6 sm"
)

// PIM is the global PIM-SM configuration.
type PIM struct {
	// StaticRPs map group ranges to RPs (VRP "static-rp ADDRESS
	// [ACL]"); the longest matching range wins.
	StaticRPs []StaticRP
	// SSMRange is the Source-Specific Multicast range: (S,G) joins only,
	// no RP. Default ff30::/12 (every ff3x::/32, RFC 4607).
	SSMRange netip.Prefix
	// SPTSwitch is the last-hop routers' switch to the source tree.
	SPTSwitch SPTSwitch
	// AcceptRegister, when set, lists the DR addresses an RP takes
	// Registers from (VRP "register-policy"); nil: any.
	AcceptRegister []netip.Prefix
	// AcceptRegisterSources, when set, lists the sources an RP takes
	// Registers for; nil: any.
	AcceptRegisterSources []netip.Prefix
	// JoinPruneInterval is t_periodic, JoinPruneHoldtime the Holdtime
	// sent in Join/Prunes (VRP "timer join-prune", "holdtime join-prune").
	JoinPruneInterval time.Duration
	JoinPruneHoldtime time.Duration
}

// StaticRP is one static RP (VRP "static-rp"): GroupRange is ff00::/8
// when not given.
type StaticRP struct {
	Address    netip.Addr
	GroupRange netip.Prefix
}

// InterfacePIM is PIM on one interface (VRP "pim ipv6 sm" and the
// interface's pim ipv6 commands).
type InterfacePIM struct {
	Mode          PIMMode
	HelloInterval time.Duration // "pim ipv6 timer hello", default 30 s
	DRPriority    uint32        // "pim ipv6 hello-option dr-priority", default 1
	// IgnoreDRState: create join state for this interface's listeners
	// whatever the DR election ("pim ipv6 ignore dr-state").
	IgnoreDRState bool
	// IgnoreAssertState: send no Assert here and never stop forwarding on
	// losing one ("pim ipv6 ignore assert-state").
	IgnoreAssertState bool
}

// Loopback is the loopback interface's configured addresses.
type Loopback struct {
	Interface string // default "lo"
	Addresses []netip.Prefix
}

// AllGroups is ff00::/8, every IPv6 multicast group: the group range of a
// static RP given without one.
func AllGroups() netip.Prefix { return netip.PrefixFrom(netip.AddrFrom16([16]byte{0xff}), 8) }

// DefaultSSMRange is ff30::/12, the default pim.ssm-range: every
// ff3x::/32 of RFC 4607 §1 (and the rest of ff3x::/16).
func DefaultSSMRange() netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom16([16]byte{0xff, 0x30}), 12)
}

// DefaultPIM returns the pim section with every default and no static RP:
// what PIM runs with when the file has interfaces with pim but no pim
// section (see [Config.PIMSettings]).
func DefaultPIM() PIM {
	return PIM{
		SSMRange:          DefaultSSMRange(),
		SPTSwitch:         DefaultSPTSwitch,
		JoinPruneInterval: DefaultJoinPruneInterval,
		JoinPruneHoldtime: DefaultJoinPruneHoldtime,
	}
}

// PIMSettings returns the pim section, or [DefaultPIM] when the file has
// none. The StaticRPs and accept lists are shared with c, not copied.
func (c *Config) PIMSettings() PIM {
	if c.PIM != nil {
		return *c.PIM
	}
	return DefaultPIM()
}

// PIMEnabled reports whether any interface runs PIM.
func (c *Config) PIMEnabled() bool {
	for i := range c.Interfaces {
		if c.Interfaces[i].PIM != nil {
			return true
		}
	}
	return false
}

// BFD is Bidirectional Forwarding Detection (RFC 5880, 5881: single hop,
// IPv6, asynchronous mode).
type BFD struct {
	// RealtimePriority is the SCHED_FIFO priority of the engine thread,
	// 1..99; 0 runs it SCHED_OTHER.
	RealtimePriority int
	Sessions         []BFDSession
}

// BFDSession is one session towards a peer on an interface (VRP "bfd NAME
// bind peer-ipv6 ... interface ...").
type BFDSession struct {
	Name      string
	Interface string
	Peer      netip.Addr
	Source    netip.Addr // zero: the kernel's choice
	// MinTx is the Desired Min TX Interval, MinRx the Required Min RX
	// Interval, Multiplier the Detect Mult (RFC 5880 §4.1).
	MinTx      time.Duration
	MinRx      time.Duration
	Multiplier uint8
	// Passive sends nothing until the peer is heard (RFC 5880 §6.1).
	Passive bool
}

// TrackBFD makes a VRRP6 group follow a BFD session.
type TrackBFD struct {
	Session string
	Mode    TrackBFDMode
	Reduced uint8 // mode reduce only
}

// API is the local control and metrics endpoint.
type API struct {
	Socket        string // unix socket path for hotcastctl
	MetricsListen string // host:port for Prometheus metrics; "" disables
}

// BPF is where the dataplane is pinned and how it is attached.
type BPF struct {
	PinPath string // directory on a bpffs
	XDPMode XDPMode
}

// Multicast is the global multicast routing configuration (VRP "multicast
// ipv6 routing-enable" and static routes).
type Multicast struct {
	RoutingEnable bool
	Upstream      Upstream
	StaticRoutes  []StaticRoute
}

// Upstream is where multicast traffic comes from.
type Upstream struct {
	Interface string // RPF interface for groups learned through MLD
	Mode      UpstreamMode
}

// StaticRoute is a configured (S,G) route, or (*,G) when Source is the zero
// Addr.
type StaticRoute struct {
	Group      netip.Addr
	Source     netip.Addr // zero for (*,G)
	Incoming   string     // defaults to Multicast.Upstream.Interface
	Interfaces []string   // outgoing interfaces
}

// RBS is a remote backup service: the TCP channel to the peer router (VRP
// "remote-backup-service NAME" / "peer-ipv6 ... source-ipv6 ... port ...").
type RBS struct {
	Name       string
	PeerIPv6   netip.Addr
	SourceIPv6 netip.Addr
	Port       uint16
	HoldTime   time.Duration // 0: the RBS implementation's default
	TLS        *TLS          // nil: plain TCP
	// TrackBFD names the BFD session that watches this service's link
	// ("": none); shown in display remote-backup-service. It never makes
	// a VRRP6 Backup Master (docs/bfd.md, the split-brain rule).
	TrackBFD string
}

// TLS configures TLS 1.3 with mutual authentication on an RBS channel.
type TLS struct {
	Cert string
	Key  string
	CA   string
}

// RBP is a remote backup profile (VRP "remote-backup-profile NAME"): which
// services are backed up over which RBS, and which VRRP6 group decides who is
// master.
type RBP struct {
	Name         string
	ServiceTypes []ServiceType // VRP "service-type mld"
	BackupID     uint16        // VRP "backup-id ID remote-backup-service NAME"
	Service      string        // RBS name
	PeerBackup   BackupMode    // VRP "peer-backup hot"
	VRRP6        VRRP6Ref      // VRP "vrrp6-id VRID interface IF"
}

// VRRP6Ref names a VRRP6 group by interface and VRID.
type VRRP6Ref struct {
	VRID      uint8
	Interface string
}

// Interface is the per-interface configuration.
type Interface struct {
	Name  string // Linux interface name
	MLD   MLD
	VRRP6 []VRRP6
	// MulticastTrackVRRP6 is the VRID whose state gates multicast forwarding
	// on this interface (VRP "multicast ipv6 track vrrp6 vrid N"); 0: none.
	MulticastTrackVRRP6 uint8
	// RemoteBackupProfile binds the interface to an RBP (VRP
	// "remote-backup-profile NAME" in the interface view); "": none.
	RemoteBackupProfile string
	// Addresses are ensured on the interface by the daemon.
	Addresses []netip.Prefix
	// Egress is how copies leave this interface; "" means EgressXDP.
	Egress EgressMode
	// PIM is PIM-SM on this interface; nil: no PIM.
	PIM *InterfacePIM
}

// MLD is the per-interface MLD querier configuration (RFC 3810).
type MLD struct {
	Enable                    bool
	Version                   int // 1 (RFC 2710) or 2 (RFC 3810)
	QueryInterval             time.Duration
	Robustness                uint8
	MaxResponseTime           time.Duration
	LastListenerQueryInterval time.Duration
	RequireRouterAlert        bool
	MaxGroups                 int
	// IgnoreReportsWhileBackup drops reports on this interface while the
	// tracked VRRP6 group is Backup (lab knob: in the reference topology the
	// backup's LAN link is down, so it hears no reports).
	IgnoreReportsWhileBackup bool
}

// VRRP6 is one VRRPv3 group for IPv6 on an interface (RFC 9568).
type VRRP6 struct {
	VRID              uint8
	VirtualIPs        []netip.Addr // first is link-local
	Priority          uint8
	Preempt           bool
	PreemptDelay      time.Duration
	AdvertiseInterval time.Duration
	AcceptMode        bool
	TrackInterfaces   []Track
	TrackBFD          []TrackBFD
}

// Track lowers a VRRP6 group's priority by Reduced while interface Name is
// down (VRP "vrrp6 vrid N track interface IF reduced R").
type Track struct {
	Name    string
	Reduced uint8
}

// Interface returns the interface named name, or nil.
func (c *Config) Interface(name string) *Interface {
	for i := range c.Interfaces {
		if c.Interfaces[i].Name == name {
			return &c.Interfaces[i]
		}
	}
	return nil
}

// Service returns the remote backup service named name, or nil.
func (c *Config) Service(name string) *RBS {
	for i := range c.Services {
		if c.Services[i].Name == name {
			return &c.Services[i]
		}
	}
	return nil
}

// BFDSession returns the BFD session named name, or nil.
func (c *Config) BFDSession(name string) *BFDSession {
	if c.BFD == nil {
		return nil
	}
	for i := range c.BFD.Sessions {
		if c.BFD.Sessions[i].Name == name {
			return &c.BFD.Sessions[i]
		}
	}
	return nil
}

// Profile returns the remote backup profile named name, or nil.
func (c *Config) Profile(name string) *RBP {
	for i := range c.Profiles {
		if c.Profiles[i].Name == name {
			return &c.Profiles[i]
		}
	}
	return nil
}

// VRRP6Group returns the group referenced by ref, or nil.
func (c *Config) VRRP6Group(ref VRRP6Ref) *VRRP6 {
	ifc := c.Interface(ref.Interface)
	if ifc == nil {
		return nil
	}
	return ifc.Group(ref.VRID)
}

// Group returns the VRRP6 group with the given VRID on the interface, or nil.
func (i *Interface) Group(vrid uint8) *VRRP6 {
	for k := range i.VRRP6 {
		if i.VRRP6[k].VRID == vrid {
			return &i.VRRP6[k]
		}
	}
	return nil
}

// HasService reports whether the profile backs up service type t.
func (p *RBP) HasService(t ServiceType) bool {
	for _, s := range p.ServiceTypes {
		if s == t {
			return true
		}
	}
	return false
}

// Keepalive returns the keepalive interval of the RBS channel: a third of
// the hold time, or 0 when the hold time is the implementation default.
func (s *RBS) Keepalive() time.Duration { return s.HoldTime / 3 }
