package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// nsDir is where iproute2 (and so nsenter) find named namespaces.
const nsDir = "/var/run/netns/"

// namedNS is a named network namespace the harness created and deletes.
type namedNS struct {
	name   string
	handle netns.NsHandle
	nl     *netlink.Handle
}

// uniqueTag returns n random hex characters.
func uniqueTag(n int) string {
	b := make([]byte, (n+1)/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

// newNS creates a named namespace with lo up and IPv6 DAD off (addresses
// usable at once). It goes through `ip netns add`, like every other tool on
// the box: iproute2 makes /run/netns a shared mount point before its first
// namespace, and a namespace bind-mounted there before that happens would
// end up hidden under it, impossible to delete.
func newNS(name string) (*namedNS, error) {
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("create netns %s: %w: %s", name, err, out)
	}
	h, err := netns.GetFromName(name)
	if err != nil {
		_ = exec.Command("ip", "netns", "del", name).Run()
		return nil, fmt.Errorf("open netns %s: %w", name, err)
	}
	n := &namedNS{name: name, handle: h}
	nl, err := netlink.NewHandleAt(h)
	if err != nil {
		n.close()
		return nil, fmt.Errorf("netlink handle in %s: %w", name, err)
	}
	n.nl = nl
	err = n.run(func() error {
		for _, k := range []string{"net/ipv6/conf/all/accept_dad", "net/ipv6/conf/default/accept_dad"} {
			if err := sysctl(k, "0"); err != nil {
				return err
			}
		}
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		return netlink.LinkSetUp(lo)
	})
	if err != nil {
		n.close()
		return nil, fmt.Errorf("set up netns %s: %w", name, err)
	}
	return n, nil
}

// path is the namespace's bind mount.
func (n *namedNS) path() string { return nsDir + n.name }

// run runs f on an OS thread inside the namespace.
func (n *namedNS) run(f func() error) error {
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: see newNS
		if err := netns.Set(n.handle); err != nil {
			ch <- fmt.Errorf("enter netns %s: %w", n.name, err)
			return
		}
		ch <- f()
	}()
	return <-ch
}

// command returns a command that runs inside the namespace. nsenter keeps
// the mount namespace (and /sys) as it is, unlike ip netns exec.
func (n *namedNS) command(name string, args ...string) *exec.Cmd {
	all := append([]string{"--net=" + n.path(), "--", name}, args...)
	return exec.Command("nsenter", all...)
}

// close deletes the namespace; its veths go with it.
func (n *namedNS) close() error {
	if n.nl != nil {
		n.nl.Close()
	}
	n.handle.Close()
	if out, err := exec.Command("ip", "netns", "del", n.name).CombinedOutput(); err != nil {
		return fmt.Errorf("delete netns %s: %w: %s", n.name, err, out)
	}
	return nil
}

// sysctl writes /proc/sys/KEY; the caller's thread decides the namespace.
func sysctl(key, value string) error {
	if err := os.WriteFile("/proc/sys/"+key, []byte(value), 0o644); err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", key, value, err)
	}
	return nil
}

// link is one end of a veth pair.
type link struct {
	ns    *namedNS
	name  string
	index int
	mac   []byte
}

// veth creates a veth pair aName in a and bName in b, both up.
func veth(a *namedNS, aName string, b *namedNS, bName string) (*link, *link, error) {
	va := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: aName}, PeerName: bName, PeerNamespace: netlink.NsFd(int(b.handle))}
	if err := a.nl.LinkAdd(va); err != nil {
		return nil, nil, fmt.Errorf("add veth %s/%s: %w", aName, bName, err)
	}
	var ends [2]*link
	for i, x := range []struct {
		ns   *namedNS
		name string
	}{{a, aName}, {b, bName}} {
		l, err := x.ns.nl.LinkByName(x.name)
		if err != nil {
			return nil, nil, fmt.Errorf("find %s: %w", x.name, err)
		}
		if err := x.ns.nl.LinkSetUp(l); err != nil {
			return nil, nil, fmt.Errorf("up %s: %w", x.name, err)
		}
		ends[i] = &link{ns: x.ns, name: x.name, index: l.Attrs().Index, mac: l.Attrs().HardwareAddr}
	}
	return ends[0], ends[1], nil
}

// addAddr adds an address without DAD.
func (l *link) addAddr(cidr string) error {
	a, err := netlink.ParseAddr(cidr)
	if err != nil {
		return fmt.Errorf("parse %s: %w", cidr, err)
	}
	a.Flags |= unix.IFA_F_NODAD
	nl, err := l.ns.nl.LinkByName(l.name)
	if err != nil {
		return fmt.Errorf("find %s: %w", l.name, err)
	}
	if err := l.ns.nl.AddrAdd(nl, a); err != nil {
		return fmt.Errorf("add %s to %s: %w", cidr, l.name, err)
	}
	return nil
}

// stats returns the link's counters.
func (l *link) stats() (*netlink.LinkStatistics, error) {
	nl, err := l.ns.nl.LinkByName(l.name)
	if err != nil {
		return nil, fmt.Errorf("find %s: %w", l.name, err)
	}
	s := nl.Attrs().Statistics
	if s == nil {
		return nil, fmt.Errorf("%s: no statistics", l.name)
	}
	return s, nil
}

// ethtool runs ethtool ARGS inside the link's namespace.
func (l *link) ethtool(args ...string) error {
	out, err := l.ns.command("ethtool", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ethtool %v: %w: %s", args, err, out)
	}
	return nil
}

// qdiscStats returns the root qdisc's sent packets and drops.
func (l *link) qdiscStats() (sent, drops uint32, err error) {
	nl, err := l.ns.nl.LinkByName(l.name)
	if err != nil {
		return 0, 0, fmt.Errorf("find %s: %w", l.name, err)
	}
	qs, err := l.ns.nl.QdiscList(nl)
	if err != nil {
		return 0, 0, fmt.Errorf("qdiscs of %s: %w", l.name, err)
	}
	for _, q := range qs {
		a := q.Attrs()
		if a.Parent != netlink.HANDLE_ROOT || a.Statistics == nil || a.Statistics.Basic == nil || a.Statistics.Queue == nil {
			continue
		}
		return a.Statistics.Basic.Packets, a.Statistics.Queue.Drops, nil
	}
	return 0, 0, fmt.Errorf("%s: no root qdisc statistics", l.name)
}
