package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sort"
	"time"
)

// Kernel baselines: what the kernel path is.
const (
	// baselineIP6MR is the kernel's IPv6 multicast routing (ip6mr), its
	// (S,G) route installed by smcroute: the like-for-like comparison,
	// where the kernel has CONFIG_IPV6_MROUTE.
	baselineIP6MR = "ip6mr"
	// baselineBridge is the kernel's own L2 multicast replication: the
	// router's interfaces are the ports of a Linux bridge with MLD
	// snooping (mcast_snooping 1, its own querier), which forwards the
	// stream to the ports whose receivers joined the group.
	baselineBridge = "bridge"
)

// ip6mrProc is the file a kernel with CONFIG_IPV6_MROUTE has.
const ip6mrProc = "/proc/net/ip6_mr_vif"

// haveIP6MR reports whether the running kernel has IPv6 multicast routing.
func haveIP6MR() bool {
	_, err := os.Stat(ip6mrProc)
	return err == nil
}

// resolveBaseline turns the -baseline flag into a baseline: auto is ip6mr
// where the kernel has it, else the bridge. The note says which and why.
func resolveBaseline(flag string, ip6mr bool) (baseline, note string, err error) {
	switch flag {
	case "auto":
		if ip6mr {
			return baselineIP6MR, "kernel baseline: ip6mr (smcroute); this kernel has CONFIG_IPV6_MROUTE", nil
		}
		return baselineBridge, "kernel baseline: a Linux bridge with MLD snooping; this kernel has no CONFIG_IPV6_MROUTE (" + ip6mrProc + " absent), so ip6mr cannot be measured", nil
	case baselineIP6MR:
		if !ip6mr {
			return "", "", fmt.Errorf("-baseline ip6mr: this kernel has no CONFIG_IPV6_MROUTE (%s absent); use -baseline bridge or auto", ip6mrProc)
		}
		return baselineIP6MR, "kernel baseline: ip6mr (smcroute), as asked", nil
	case baselineBridge:
		note := "kernel baseline: a Linux bridge with MLD snooping, as asked"
		if !ip6mr {
			note += "; this kernel has no CONFIG_IPV6_MROUTE (" + ip6mrProc + " absent)"
		}
		return baselineBridge, note, nil
	}
	return "", "", fmt.Errorf("-baseline %q: want auto, ip6mr or bridge", flag)
}

// bridgeName is the bridge of the bridge baseline, in the router namespace.
const bridgeName = "br0"

// makeBridge makes the router's interfaces the ports of a bridge with MLD
// snooping. The bridge is its own querier (there is no other router), with
// short timers so that it takes charge within a second or two of the
// receivers' joins instead of the default 10 s query response interval;
// ports leave a group at once on an MLD Done (fast leave), so a smaller
// fan-out takes effect without a last-member query round.
func (t *topo) makeBridge() error {
	run := func(args ...string) error {
		if out, err := t.rtr.command(args[0], args[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("%v: %w: %s", args, err, out)
		}
		return nil
	}
	// Timers in centiseconds. The querier is switched on once they are
	// set: it then waits one query response interval before it takes
	// charge (and the bridge floods until it does).
	if err := run("ip", "link", "add", bridgeName, "type", "bridge",
		"mcast_snooping", "1", "mcast_query_response_interval", "100",
		"mcast_startup_query_interval", "100", "mcast_query_interval", "1000"); err != nil {
		return fmt.Errorf("bridge baseline: %w", err)
	}
	if err := run("ip", "link", "set", bridgeName, "type", "bridge", "mcast_querier", "1"); err != nil {
		return fmt.Errorf("bridge baseline: %w", err)
	}
	for _, l := range append([]*link{t.r0}, t.r...) {
		if err := run("ip", "link", "set", l.name, "master", bridgeName); err != nil {
			return fmt.Errorf("bridge baseline: %w", err)
		}
	}
	for _, l := range t.r {
		if err := run("bridge", "link", "set", "dev", l.name, "fastleave", "on"); err != nil {
			return fmt.Errorf("bridge baseline: %w", err)
		}
	}
	if err := run("ip", "link", "set", bridgeName, "up"); err != nil {
		return fmt.Errorf("bridge baseline: %w", err)
	}
	return nil
}

// mdbPorts returns the bridge ports its MLD snooping has for the group.
func (t *topo) mdbPorts() ([]string, error) {
	out, err := t.rtr.command("bridge", "-j", "mdb", "show", "dev", bridgeName).Output()
	if err != nil {
		return nil, fmt.Errorf("bridge mdb show: %w", err)
	}
	return parseMDB(out, grpAddr.String())
}

// parseMDB reads `bridge -j mdb show` output: the ports holding grp.
func parseMDB(js []byte, grp string) ([]string, error) {
	var doc []struct {
		MDB []struct {
			Port string `json:"port"`
			Grp  string `json:"grp"`
		} `json:"mdb"`
	}
	if err := json.Unmarshal(js, &doc); err != nil {
		return nil, fmt.Errorf("parse bridge mdb: %w", err)
	}
	var ports []string
	for _, d := range doc {
		for _, e := range d.MDB {
			if e.Grp == grp && !slices.Contains(ports, e.Port) {
				ports = append(ports, e.Port)
			}
		}
	}
	sort.Strings(ports)
	return ports, nil
}

// waitMDB waits until the bridge's snooping database holds the group on
// exactly the given ports: the receivers' MLD reports (joins) and dones
// (leaves) have been seen.
func (t *topo) waitMDB(ctx context.Context, ports []string, within time.Duration) error {
	want := slices.Clone(ports)
	sort.Strings(want)
	deadline := time.Now().Add(within)
	for {
		got, err := t.mdbPorts()
		if err != nil {
			return err
		}
		if slices.Equal(got, want) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bridge baseline: MLD snooping has %s on ports %v after %s, want %v", grpAddr, got, within, want)
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}
