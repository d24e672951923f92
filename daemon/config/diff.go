package config

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
)

// ChangeOp is how a named element (service, profile, interface, VRRP6
// group) differs between two configurations.
type ChangeOp int

// Change kinds. Unchanged is the zero value, what the lookups of a
// [ChangeSet] return for an element Diff did not list.
const (
	Unchanged ChangeOp = iota
	Added
	Removed
	Modified
)

// String implements fmt.Stringer.
func (o ChangeOp) String() string {
	switch o {
	case Unchanged:
		return "unchanged"
	case Added:
		return "added"
	case Removed:
		return "removed"
	case Modified:
		return "modified"
	}
	return fmt.Sprintf("ChangeOp(%d)", int(o))
}

// Key paths of the sections [Diff] compares as a whole, as the String forms
// of a [ChangeSet] name them.
const (
	PathSysname       = "sysname"
	PathAPI           = "api"
	PathBPF           = "bpf"
	PathRoutingEnable = "multicast.routing-enable"
	PathUpstream      = "multicast.upstream"
	PathStaticRoutes  = "multicast.static-routes"
	// PathBFDRealtimePriority and PathBFDSessions are the bfd section's
	// keys in the String forms.
	PathBFDRealtimePriority = "bfd.realtime-priority"
	PathBFDSessions         = "bfd.sessions"
	// KeyTrackBFD is remote-backup-services[NAME].track-bfd.
	KeyTrackBFD = "track-bfd"
	// PathPIM and PathLoopback are the pim and loopback sections, KeyPIM
	// an interface's pim ("interfaces[NAME].pim"), as [PIMChange] names
	// them.
	PathPIM      = "pim"
	PathLoopback = "loopback"
	KeyPIM       = "pim"
)

// ErrRestartRequired is wrapped by the errors of [PIMChange.Err]: a change
// hotcastd applies only at start.
var ErrRestartRequired = errors.New("needs a restart of hotcastd")

// Keys of the parts of an interface [Diff] compares as a whole, below
// [InterfaceChange.Path].
const (
	KeyAddresses  = "addresses"
	KeyMLD        = "mld"
	KeyTrackVRRP6 = "multicast-track-vrrp6"
	KeyProfile    = "remote-backup-profile"
	KeyEgress     = "egress"
)

// ChangeSet is what [Diff] found changed, at the granularity a hot reload
// acts on. A bool is true when that section differs; the lists name each
// element that differs, once. List elements are identified by name (VRRP6
// groups by VRID), not position, so reordering a list is no change. Lists
// are in the order of the new configuration, then the removals in the
// order of the old one.
type ChangeSet struct {
	Sysname       bool
	API           bool
	BPF           bool
	RoutingEnable bool // multicast.routing-enable
	Upstream      bool // multicast.upstream (interface or mode)
	StaticRoutes  bool // multicast.static-routes

	Services   []NamedChange // remote-backup-services, by name
	Profiles   []NamedChange // remote-backup-profiles, by name
	Interfaces []InterfaceChange
}

// BFDChange is what [DiffBFD] found changed in the bfd section and in
// which BFD session each remote backup service tracks. (A VRRP6 group
// whose track-bfd changed is in [ChangeSet.Interfaces], as a modified
// group: Reconfigure applies it.)
//
// It is not (yet) a field of ChangeSet: daemon's TestChangeSetHandled
// requires every ChangeSet field to be applied or refused by Reload, and
// Reload does not know BFD yet. Once it does, this becomes ChangeSet.BFD.
type BFDChange struct {
	// RealtimePriority: bfd.realtime-priority (the engine thread's
	// scheduling, set when it starts).
	RealtimePriority bool
	// Sessions lists the bfd.sessions added, removed or modified, by name.
	Sessions []NamedChange
	// ServiceTracks names the remote-backup-services that stay and whose
	// track-bfd changed; a service whose track-bfd alone changed is not in
	// Services (its channel need not restart).
	ServiceTracks []string
}

// Empty reports whether nothing in the BFD part changed.
func (b *BFDChange) Empty() bool {
	return !b.RealtimePriority && len(b.Sessions) == 0 && len(b.ServiceTracks) == 0
}

// Session returns how the bfd session named name changed.
func (b *BFDChange) Session(name string) ChangeOp { return opOf(b.Sessions, name) }

// Strings lists the changes as [ChangeSet.Strings] does:
// "bfd.realtime-priority modified", "bfd.sessions[lan] added",
// "remote-backup-services[service1].track-bfd modified".
func (b *BFDChange) Strings() []string {
	var out []string
	add := func(path string, op ChangeOp) { out = append(out, path+" "+op.String()) }
	if b.RealtimePriority {
		add(PathBFDRealtimePriority, Modified)
	}
	for _, c := range b.Sessions {
		add(PathBFDSessions+"["+c.Name+"]", c.Op)
	}
	for _, n := range b.ServiceTracks {
		add("remote-backup-services["+n+"]."+KeyTrackBFD, Modified)
	}
	return out
}

// DiffBFD computes what changed in BFD from old to new: the bfd section's
// sessions by name, and the services whose track-bfd changed ([Diff]
// leaves track-bfd out of its comparison of services).
func DiffBFD(old, new *Config) BFDChange {
	var cs BFDChange
	for _, n := range new.Services {
		if o := old.Service(n.Name); o != nil && o.TrackBFD != n.TrackBFD {
			cs.ServiceTracks = append(cs.ServiceTracks, n.Name)
		}
	}
	var oldBFD, newBFD BFD
	if old.BFD != nil {
		oldBFD = *old.BFD
	}
	if new.BFD != nil {
		newBFD = *new.BFD
	}
	cs.RealtimePriority = oldBFD.RealtimePriority != newBFD.RealtimePriority
	cs.Sessions = diffNamed(oldBFD.Sessions, newBFD.Sessions, func(s BFDSession) string { return s.Name },
		func(name string, op ChangeOp) NamedChange { return NamedChange{name, op} })
	return cs
}

// PIMChange is what [DiffPIM] found changed in the PIM configuration: the
// pim section, the loopback section (the RP and Register addresses PIM
// counts as the router's own) and each interface's pim. hotcastd does not
// apply any of it in place in this release: a reload with a PIMChange that
// is not empty must be refused as a whole ([PIMChange.Err],
// [PIMChange.Refused]).
//
// Like [BFDChange] it is not a field of ChangeSet, whose every field
// daemon's TestChangeSetHandled requires Reload to apply or refuse: the
// reload calls DiffPIM itself.
type PIMChange struct {
	PIM      bool // pim (any key; added or removed)
	Loopback bool // loopback (interface or addresses)
	// Interfaces lists, by interface name, each interfaces[].pim added,
	// removed or modified; an interface added or removed with a pim
	// counts as its pim added or removed.
	Interfaces []NamedChange
}

// DiffPIM computes what changed in PIM from old to new.
func DiffPIM(old, new *Config) PIMChange {
	cs := PIMChange{
		PIM:      !reflect.DeepEqual(old.PIM, new.PIM),
		Loopback: !reflect.DeepEqual(old.Loopback, new.Loopback),
	}
	has := func(c *Config, name string) *InterfacePIM {
		if ifc := c.Interface(name); ifc != nil {
			return ifc.PIM
		}
		return nil
	}
	seen := map[string]bool{}
	add := func(name string) {
		if seen[name] {
			return
		}
		seen[name] = true
		o, n := has(old, name), has(new, name)
		switch {
		case o == nil && n != nil:
			cs.Interfaces = append(cs.Interfaces, NamedChange{name, Added})
		case o != nil && n == nil:
			cs.Interfaces = append(cs.Interfaces, NamedChange{name, Removed})
		case o != nil && *o != *n:
			cs.Interfaces = append(cs.Interfaces, NamedChange{name, Modified})
		}
	}
	for i := range new.Interfaces {
		add(new.Interfaces[i].Name)
	}
	for i := range old.Interfaces {
		add(old.Interfaces[i].Name)
	}
	return cs
}

// Empty reports whether nothing in PIM changed.
func (p *PIMChange) Empty() bool { return !p.PIM && !p.Loopback && len(p.Interfaces) == 0 }

// Interface returns how the pim of the interface named name changed.
func (p *PIMChange) Interface(name string) ChangeOp { return opOf(p.Interfaces, name) }

// Strings lists the changes as [ChangeSet.Strings] does: "pim modified",
// "loopback modified", "interfaces[ge2].pim added".
func (p *PIMChange) Strings() []string {
	var out []string
	for _, c := range p.changes() {
		out = append(out, c.path+" "+c.op.String())
	}
	return out
}

// Refused lists the changes as a reload refuses them, "PATH OP (why)", in
// the form of daemon's refused list: "pim modified (changing PIM needs a
// restart of hotcastd)".
func (p *PIMChange) Refused() []string {
	var out []string
	for _, c := range p.changes() {
		out = append(out, c.path+" "+c.op.String()+" ("+c.why+" "+ErrRestartRequired.Error()+")")
	}
	return out
}

// Err returns nil when nothing changed, else one [FieldError] per change,
// each wrapping [ErrRestartRequired] and naming the key:
// "pim: changing PIM needs a restart of hotcastd".
func (p *PIMChange) Err() error {
	var errs []error
	for _, c := range p.changes() {
		errs = append(errs, &FieldError{Path: c.path, Err: fmt.Errorf("%s %w", c.why, ErrRestartRequired)})
	}
	return errors.Join(errs...)
}

type pimChangeItem struct {
	path string
	op   ChangeOp
	why  string
}

func (p *PIMChange) changes() []pimChangeItem {
	var out []pimChangeItem
	if p.PIM {
		out = append(out, pimChangeItem{PathPIM, Modified, "changing PIM"})
	}
	if p.Loopback {
		out = append(out, pimChangeItem{PathLoopback, Modified, "changing the loopback addresses"})
	}
	for _, c := range p.Interfaces {
		why := "changing PIM"
		switch c.Op {
		case Added:
			why = "starting PIM on an interface"
		case Removed:
			why = "stopping PIM on an interface"
		}
		out = append(out, pimChangeItem{"interfaces[" + c.Name + "]." + KeyPIM, c.Op, why})
	}
	return out
}

// NamedChange is an added, removed or modified service or profile.
type NamedChange struct {
	Name string
	Op   ChangeOp
}

// InterfaceChange is an added or removed interface, or one that stays and
// whose parts listed here changed (Op Modified; at least one part).
type InterfaceChange struct {
	Name string
	Op   ChangeOp

	Addresses  bool // addresses
	MLD        bool // mld (any parameter, or enable)
	TrackVRRP6 bool // multicast-track-vrrp6
	Profile    bool // remote-backup-profile
	Egress     bool // egress
	// VRRP6 lists the groups added, removed or modified, by VRID.
	VRRP6 []GroupChange
}

// GroupChange is an added, removed or modified VRRP6 group of an
// interface.
type GroupChange struct {
	VRID uint8
	Op   ChangeOp
}

// Empty reports whether nothing changed.
func (cs *ChangeSet) Empty() bool {
	return !cs.Sysname && !cs.API && !cs.BPF && !cs.RoutingEnable && !cs.Upstream && !cs.StaticRoutes &&
		len(cs.Services) == 0 && len(cs.Profiles) == 0 && len(cs.Interfaces) == 0
}

// Service returns how the service named name changed.
func (cs *ChangeSet) Service(name string) ChangeOp { return opOf(cs.Services, name) }

// Profile returns how the profile named name changed.
func (cs *ChangeSet) Profile(name string) ChangeOp { return opOf(cs.Profiles, name) }

func opOf(l []NamedChange, name string) ChangeOp {
	for _, c := range l {
		if c.Name == name {
			return c.Op
		}
	}
	return Unchanged
}

// Interface returns the change of the interface named name, or nil if it
// is unchanged.
func (cs *ChangeSet) Interface(name string) *InterfaceChange {
	for i := range cs.Interfaces {
		if cs.Interfaces[i].Name == name {
			return &cs.Interfaces[i]
		}
	}
	return nil
}

// Group returns how the VRRP6 group with the given VRID changed.
func (ic *InterfaceChange) Group(vrid uint8) ChangeOp {
	for _, g := range ic.VRRP6 {
		if g.VRID == vrid {
			return g.Op
		}
	}
	return Unchanged
}

// Path is the interface's key path in the String forms,
// "interfaces[NAME]".
func (ic *InterfaceChange) Path() string { return "interfaces[" + ic.Name + "]" }

// Strings lists the changes one per entry as "PATH OP", for logs and
// messages: the key names of the file, list elements by name in brackets
// ("interfaces[ge2].mld modified", "interfaces[ge2].vrrp6[1] added",
// "remote-backup-services[service1] removed"), in the order of the set:
// the sections, services, profiles, then interfaces, each interface's
// parts in the order of its fields.
func (cs *ChangeSet) Strings() []string {
	var out []string
	add := func(path string, op ChangeOp) { out = append(out, path+" "+op.String()) }
	for _, s := range []struct {
		changed bool
		path    string
	}{
		{cs.Sysname, PathSysname},
		{cs.API, PathAPI},
		{cs.BPF, PathBPF},
		{cs.RoutingEnable, PathRoutingEnable},
		{cs.Upstream, PathUpstream},
		{cs.StaticRoutes, PathStaticRoutes},
	} {
		if s.changed {
			add(s.path, Modified)
		}
	}
	for _, c := range cs.Services {
		add("remote-backup-services["+c.Name+"]", c.Op)
	}
	for _, c := range cs.Profiles {
		add("remote-backup-profiles["+c.Name+"]", c.Op)
	}
	for i := range cs.Interfaces {
		ic := &cs.Interfaces[i]
		if ic.Op != Modified {
			add(ic.Path(), ic.Op)
			continue
		}
		for _, p := range []struct {
			changed bool
			key     string
		}{
			{ic.Addresses, KeyAddresses},
			{ic.MLD, KeyMLD},
			{ic.TrackVRRP6, KeyTrackVRRP6},
			{ic.Profile, KeyProfile},
			{ic.Egress, KeyEgress},
		} {
			if p.changed {
				add(ic.Path()+"."+p.key, Modified)
			}
		}
		for _, g := range ic.VRRP6 {
			add(fmt.Sprintf("%s.vrrp6[%d]", ic.Path(), g.VRID), g.Op)
		}
	}
	return out
}

// String is [ChangeSet.Strings] joined with ", ".
func (cs *ChangeSet) String() string { return strings.Join(cs.Strings(), ", ") }

// Diff computes what changed from old to new. The bfd section and the
// services' track-bfd are [DiffBFD]'s.
func Diff(old, new *Config) ChangeSet {
	same := reflect.DeepEqual
	cs := ChangeSet{
		Sysname:       old.Sysname != new.Sysname,
		API:           old.API != new.API,
		BPF:           old.BPF != new.BPF,
		RoutingEnable: old.Multicast.RoutingEnable != new.Multicast.RoutingEnable,
		Upstream:      old.Multicast.Upstream != new.Multicast.Upstream,
		StaticRoutes:  !same(old.Multicast.StaticRoutes, new.Multicast.StaticRoutes),
	}
	named := func(name string, op ChangeOp) NamedChange { return NamedChange{name, op} }
	// A service whose track-bfd alone changed keeps its channel.
	untracked := func(l []RBS) []RBS {
		out := make([]RBS, len(l))
		for i, s := range l {
			s.TrackBFD = ""
			out[i] = s
		}
		return out
	}
	cs.Services = diffNamed(untracked(old.Services), untracked(new.Services), func(s RBS) string { return s.Name }, named)
	cs.Profiles = diffNamed(old.Profiles, new.Profiles, func(p RBP) string { return p.Name }, named)
	for _, ic := range diffNamed(old.Interfaces, new.Interfaces, func(i Interface) string { return i.Name },
		func(name string, op ChangeOp) InterfaceChange { return InterfaceChange{Name: name, Op: op} }) {
		if ic.Op == Modified {
			a, b := old.Interface(ic.Name), new.Interface(ic.Name)
			ic.Addresses = !same(a.Addresses, b.Addresses)
			ic.MLD = a.MLD != b.MLD
			ic.TrackVRRP6 = a.MulticastTrackVRRP6 != b.MulticastTrackVRRP6
			ic.Profile = a.RemoteBackupProfile != b.RemoteBackupProfile
			ic.Egress = a.Egress != b.Egress
			ic.VRRP6 = diffNamed(a.VRRP6, b.VRRP6, func(g VRRP6) uint8 { return g.VRID },
				func(vrid uint8, op ChangeOp) GroupChange { return GroupChange{vrid, op} })
			if !ic.Addresses && !ic.MLD && !ic.TrackVRRP6 && !ic.Profile && !ic.Egress && len(ic.VRRP6) == 0 {
				continue // only the order of its groups changed
			}
		}
		cs.Interfaces = append(cs.Interfaces, ic)
	}
	return cs
}

// diffNamed compares two lists keyed by key and makes a change with mk for
// each element added, modified (not deeply equal) or removed: in the order
// of new, then the removals in the order of old.
func diffNamed[T any, K comparable, C any](old, new []T, key func(T) K, mk func(K, ChangeOp) C) []C {
	var out []C
	oldBy := map[K]T{}
	for _, o := range old {
		oldBy[key(o)] = o
	}
	inNew := map[K]bool{}
	for _, n := range new {
		k := key(n)
		inNew[k] = true
		switch o, ok := oldBy[k]; {
		case !ok:
			out = append(out, mk(k, Added))
		case !reflect.DeepEqual(o, n):
			out = append(out, mk(k, Modified))
		}
	}
	for _, o := range old {
		if k := key(o); !inNew[k] {
			out = append(out, mk(k, Removed))
		}
	}
	return out
}
