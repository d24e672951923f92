// Package netnstest builds throw-away network namespaces, veth pairs and
// bridges for privileged tests. Everything it creates is removed in
// t.Cleanup, also when the test fails. Namespaces are named (bind-mounted
// under /var/run/netns) so that tools can enter them with nsenter.
package netnstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// RequireRoot skips when not root: privileged tests need CAP_NET_ADMIN and
// CAP_BPF. CI runs as root, so there they always run.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("privileged test in CI without root")
		}
		t.Skip("needs root (CAP_NET_ADMIN, CAP_BPF)")
	}
}

// NS is a named network namespace.
type NS struct {
	Name   string
	handle netns.NsHandle
}

// UniqueName returns prefix plus a random suffix, short enough for an
// interface name when prefix is at most 6 characters.
func UniqueName(prefix string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// New creates a named namespace (lo up) removed at cleanup.
func New(t testing.TB, prefix string) *NS {
	t.Helper()
	RequireRoot(t)
	name := UniqueName("hc" + prefix)
	ns, err := newNamed(name)
	if err != nil {
		t.Fatalf("create netns %s: %v", name, err)
	}
	n := &NS{Name: name, handle: ns}
	t.Cleanup(func() {
		n.handle.Close()
		if err := netns.DeleteNamed(name); err != nil {
			t.Logf("delete netns %s: %v", name, err)
		}
	})
	n.Do(t, func() error {
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		return netlink.LinkSetUp(lo)
	})
	return n
}

func newNamed(name string) (netns.NsHandle, error) {
	type res struct {
		h   netns.NsHandle
		err error
	}
	ch := make(chan res, 1)
	go func() {
		// The thread ends up in the new namespace: never unlock it, so the
		// runtime throws the thread away when the goroutine ends.
		runtime.LockOSThread()
		h, err := netns.NewNamed(name)
		ch <- res{h, err}
	}()
	r := <-ch
	return r.h, r.err
}

// Path is the namespace's bind mount.
func (n *NS) Path() string { return "/var/run/netns/" + n.Name }

// Do runs f on an OS thread inside the namespace and fails the test on
// error.
func (n *NS) Do(t testing.TB, f func() error) {
	t.Helper()
	if err := n.Run(f); err != nil {
		t.Fatalf("in netns %s: %v", n.Name, err)
	}
}

// Run runs f on an OS thread inside the namespace.
func (n *NS) Run(f func() error) error {
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: see newNamed
		if err := netns.Set(n.handle); err != nil {
			ch <- fmt.Errorf("enter netns: %w", err)
			return
		}
		ch <- f()
	}()
	return <-ch
}

// Handle returns a netlink handle bound to the namespace.
func (n *NS) Handle(t testing.TB) *netlink.Handle {
	t.Helper()
	h, err := netlink.NewHandleAt(n.handle)
	if err != nil {
		t.Fatalf("netlink handle for %s: %v", n.Name, err)
	}
	t.Cleanup(h.Close)
	return h
}

// Command returns a command that runs inside the namespace (nsenter keeps
// /sys and so bpffs as they are, unlike ip netns exec).
func (n *NS) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	all := append([]string{"--net=" + n.Path(), "--", name}, args...)
	return exec.CommandContext(ctx, "nsenter", all...)
}

// Link is one end of a veth pair.
type Link struct {
	NS      *NS
	Name    string
	Index   int
	MAC     net.HardwareAddr
	LinkLoc net.IP // the kernel's link-local address (after DAD)
}

// Veth creates a veth pair aName in a and bName in b, both up, with IPv6
// DAD off so addresses are usable at once. It returns both ends.
func Veth(t testing.TB, a *NS, aName string, b *NS, bName string) (*Link, *Link) {
	t.Helper()
	ha, hb := a.Handle(t), b.Handle(t)
	for _, x := range []struct {
		ns   *NS
		name string
	}{{a, aName}, {b, bName}} {
		x.ns.Do(t, func() error { return disableDAD(x.name) })
	}
	va := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: aName}, PeerName: bName, PeerNamespace: netlink.NsFd(int(b.handle))}
	if err := ha.LinkAdd(va); err != nil {
		t.Fatalf("add veth %s/%s: %v", aName, bName, err)
	}
	ends := make([]*Link, 2)
	for i, x := range []struct {
		ns   *NS
		h    *netlink.Handle
		name string
	}{{a, ha, aName}, {b, hb, bName}} {
		l, err := x.h.LinkByName(x.name)
		if err != nil {
			t.Fatalf("find %s: %v", x.name, err)
		}
		if err := x.h.LinkSetUp(l); err != nil {
			t.Fatalf("up %s: %v", x.name, err)
		}
		ends[i] = &Link{NS: x.ns, Name: x.name, Index: l.Attrs().Index, MAC: l.Attrs().HardwareAddr}
	}
	return ends[0], ends[1]
}

// disableDAD sets accept_dad=0 for an interface name (before it exists,
// through the default) so addresses need no DAD wait.
func disableDAD(name string) error {
	for _, p := range []string{"/proc/sys/net/ipv6/conf/default/accept_dad", "/proc/sys/net/ipv6/conf/all/accept_dad"} {
		if err := os.WriteFile(p, []byte("0"), 0o644); err != nil {
			return fmt.Errorf("disable dad: %w", err)
		}
	}
	return nil
}

// AddAddr adds an address (prefix form) to a link, without DAD.
func (l *Link) AddAddr(t testing.TB, cidr string) {
	t.Helper()
	addr, err := netlink.ParseAddr(cidr)
	if err != nil {
		t.Fatalf("parse %s: %v", cidr, err)
	}
	addr.Flags |= unix.IFA_F_NODAD
	h := l.NS.Handle(t)
	nl, err := h.LinkByName(l.Name)
	if err != nil {
		t.Fatalf("find %s: %v", l.Name, err)
	}
	if err := h.AddrAdd(nl, addr); err != nil {
		t.Fatalf("add %s to %s: %v", cidr, l.Name, err)
	}
}

// Bridge creates a Linux bridge in ns (up) and enslaves the given links.
// Its MLD snooping is on (the Linux default).
func Bridge(t testing.TB, ns *NS, name string, ports ...*Link) {
	t.Helper()
	bridge(t, ns, name, true, ports...)
}

// Switch is Bridge with MLD snooping off: a plain layer-2 switch, like the
// reference's DeviceC (no "mld-snooping enable"). A snooping bridge only
// forwards reports to the port of the querier it elected, so a VRRP6
// backup that takes over would not hear reports until the bridge's other
// querier timer expires.
func Switch(t testing.TB, ns *NS, name string, ports ...*Link) {
	t.Helper()
	bridge(t, ns, name, false, ports...)
}

func bridge(t testing.TB, ns *NS, name string, snooping bool, ports ...*Link) {
	t.Helper()
	h := ns.Handle(t)
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}, MulticastSnooping: &snooping}
	if err := h.LinkAdd(br); err != nil {
		t.Fatalf("add bridge %s: %v", name, err)
	}
	for _, p := range ports {
		l, err := h.LinkByName(p.Name)
		if err != nil {
			t.Fatalf("find %s: %v", p.Name, err)
		}
		if err := h.LinkSetMaster(l, br); err != nil {
			t.Fatalf("enslave %s: %v", p.Name, err)
		}
	}
	if err := h.LinkSetUp(br); err != nil {
		t.Fatalf("up bridge %s: %v", name, err)
	}
}

// Sysctl writes a sysctl inside the namespace.
func (n *NS) Sysctl(t testing.TB, key, value string) {
	t.Helper()
	n.Do(t, func() error {
		return os.WriteFile("/proc/sys/"+key, []byte(value), 0o644)
	})
}

// Enter moves the calling goroutine's OS thread into the namespace for the
// rest of the goroutine (a test or subtest body). The thread is never
// unlocked: the runtime discards it when the goroutine ends, so no other
// goroutine ever runs in the namespace by accident.
func (n *NS) Enter(t testing.TB) {
	t.Helper()
	runtime.LockOSThread()
	if err := netns.Set(n.handle); err != nil {
		t.Fatalf("enter netns %s: %v", n.Name, err)
	}
}

// Dummy creates an up interface in ns that goes nowhere: one end of a veth
// pair whose peer (NAME+"p") stays in ns too (this kernel may have no dummy
// driver; veth is always there).
func Dummy(t testing.TB, ns *NS, name string) *Link {
	t.Helper()
	a, _ := Veth(t, ns, name, ns, name+"p")
	return a
}

// WaitLinkLocal returns l's link-local address once the kernel has
// assigned it (not tentative), failing the test after 5 s.
func (l *Link) WaitLinkLocal(t testing.TB) netip.Addr {
	t.Helper()
	h := l.NS.Handle(t)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if nl, err := h.LinkByIndex(l.Index); err == nil {
			if addrs, err := h.AddrList(nl, netlink.FAMILY_V6); err == nil {
				for _, a := range addrs {
					ip, ok := netip.AddrFromSlice(a.IP)
					if ok && ip.IsLinkLocalUnicast() && a.Flags&unix.IFA_F_TENTATIVE == 0 {
						return ip
					}
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no link-local address on %s", l.Name)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
