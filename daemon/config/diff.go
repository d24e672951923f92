package config

import (
	"fmt"
	"reflect"
)

// ChangeOp is the kind of a [Change].
type ChangeOp int

// Change kinds.
const (
	Added ChangeOp = iota + 1
	Removed
	Modified
)

// String implements fmt.Stringer.
func (o ChangeOp) String() string {
	switch o {
	case Added:
		return "added"
	case Removed:
		return "removed"
	case Modified:
		return "modified"
	}
	return fmt.Sprintf("ChangeOp(%d)", int(o))
}

// Change is one difference found by [Diff]. Path uses the key names of the
// file, but list elements are identified by their name rather than their
// position, so reordering a list is not a change: "interfaces[ge2].mld",
// "interfaces[ge2].vrrp6[1]" (by VRID), "remote-backup-services[service1]".
type Change struct {
	Path string
	Op   ChangeOp
}

func (c Change) String() string { return c.Path + " " + c.Op.String() }

// Diff lists what changed from old to new, at the granularity a hot reload
// acts on: whole sections (sysname, api, bpf, multicast.upstream,
// multicast.static-routes, ...), each service and profile, and each
// interface's addresses, mld, vrrp6 group, multicast-track-vrrp6,
// remote-backup-profile and egress. The order is deterministic: the order
// of new, then removals in the order of old.
func Diff(old, new *Config) []Change {
	var out []Change
	mod := func(path string, a, b any) {
		if !reflect.DeepEqual(a, b) {
			out = append(out, Change{path, Modified})
		}
	}
	mod("sysname", old.Sysname, new.Sysname)
	mod("api", old.API, new.API)
	mod("bpf", old.BPF, new.BPF)
	mod("multicast.routing-enable", old.Multicast.RoutingEnable, new.Multicast.RoutingEnable)
	mod("multicast.upstream", old.Multicast.Upstream, new.Multicast.Upstream)
	mod("multicast.static-routes", old.Multicast.StaticRoutes, new.Multicast.StaticRoutes)

	out = append(out, diffNamed("remote-backup-services", old.Services, new.Services,
		func(s RBS) string { return s.Name }, nil)...)
	out = append(out, diffNamed("remote-backup-profiles", old.Profiles, new.Profiles,
		func(p RBP) string { return p.Name }, nil)...)
	out = append(out, diffNamed("interfaces", old.Interfaces, new.Interfaces,
		func(i Interface) string { return i.Name },
		func(p string, a, b Interface) []Change {
			var out []Change
			for _, f := range []struct {
				key  string
				x, y any
			}{
				{"addresses", a.Addresses, b.Addresses},
				{"mld", a.MLD, b.MLD},
				{"multicast-track-vrrp6", a.MulticastTrackVRRP6, b.MulticastTrackVRRP6},
				{"remote-backup-profile", a.RemoteBackupProfile, b.RemoteBackupProfile},
				{"egress", a.Egress, b.Egress},
			} {
				if !reflect.DeepEqual(f.x, f.y) {
					out = append(out, Change{p + "." + f.key, Modified})
				}
			}
			return append(out, diffNamed(p+".vrrp6", a.VRRP6, b.VRRP6,
				func(g VRRP6) string { return fmt.Sprint(g.VRID) }, nil)...)
		})...)
	return out
}

// diffNamed compares two lists keyed by name. inner, if set, refines a
// modified element into finer changes; otherwise the element is Modified.
func diffNamed[T any](path string, old, new []T, key func(T) string, inner func(string, T, T) []Change) []Change {
	var out []Change
	oldBy := map[string]T{}
	for _, o := range old {
		oldBy[key(o)] = o
	}
	newBy := map[string]bool{}
	for _, n := range new {
		k := key(n)
		newBy[k] = true
		p := path + "[" + k + "]"
		o, ok := oldBy[k]
		switch {
		case !ok:
			out = append(out, Change{p, Added})
		case reflect.DeepEqual(o, n):
		case inner != nil:
			out = append(out, inner(p, o, n)...)
		default:
			out = append(out, Change{p, Modified})
		}
	}
	for _, o := range old {
		if k := key(o); !newBy[k] {
			out = append(out, Change{path + "[" + k + "]", Removed})
		}
	}
	return out
}
