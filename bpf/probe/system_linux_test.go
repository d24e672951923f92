package probe

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"

	"github.com/hotcast/hotcast/internal/netnstest"
)

// kernelAtLeast compares the running kernel with major.minor.
func kernelAtLeast(t *testing.T, major, minor uint32) bool {
	t.Helper()
	v, err := features.LinuxVersionCode()
	if err != nil {
		t.Fatalf("kernel version: %v", err)
	}
	return v >= major<<16|minor<<8
}

// The real probe, in a fresh namespace with one veth pair, against what
// is known of this machine.
func TestSystemProbe(t *testing.T) {
	ns := netnstest.New(t, "prb")
	a, b := netnstest.Veth(t, ns, netnstest.UniqueName("pa"), ns, netnstest.UniqueName("pb"))
	ns.Enter(t)

	w := Want{Config: true, XDPMode: ModeNative, Sockets: true, Interfaces: []WantIface{
		{Name: a.Name, XDP: true}, {Name: b.Name, XDP: true, Clone: true}, {Name: "hcabsent0", XDP: true},
	}}
	r := Evaluate(System{}, w)
	for _, c := range r.Checks {
		t.Logf("%-18s %-10s %-16s %s", c.Name, c.Interface, c.Verdict, c.Reason)
	}

	// What hotcast needs and this machine kind has.
	for _, name := range []string{CheckProgXDP, CheckProgSchedCLS, CheckMapDevMapHash, CheckMapArrayOfMaps,
		CheckDataplane, CheckAFPacket, CheckRawIPv6} {
		if c := find(t, r, name, ""); c.Verdict != OK {
			t.Errorf("%s: %+v, want ok", name, c)
		}
	}
	// Version-dated features: present from the version they came in.
	for _, f := range []struct {
		name         string
		major, minor uint32
	}{{CheckDevmapProg, 5, 8}, {CheckDevmapBroadcast, 5, 13}, {CheckXDPLiveFrames, 5, 18}, {CheckTCX, 6, 6}} {
		c := find(t, r, f.name, "")
		if kernelAtLeast(t, f.major, f.minor) && c.Verdict != OK {
			t.Errorf("%s on a %d.%d+ kernel: %+v, want ok", f.name, f.major, f.minor, c)
		}
	}
	if !r.Uses.TCX || !r.Uses.DevmapBroadcast {
		t.Errorf("uses %+v", r.Uses)
	}
	if c := find(t, r, CheckBPFFS, ""); c.Verdict == MissingRequired {
		t.Errorf("bpffs: %+v", c)
	}

	// ip6mr: absent exactly when the kernel lacks CONFIG_IPV6_MROUTE.
	_, err := os.Stat(IP6MRFile)
	switch c := find(t, r, CheckIP6MR, ""); {
	case err == nil && c.Verdict != OK:
		t.Errorf("%s exists, but %+v", IP6MRFile, c)
	case errors.Is(err, os.ErrNotExist) && c.Verdict != MissingOptional:
		t.Errorf("%s absent, but %+v", IP6MRFile, c)
	}

	// veth has native XDP; its peer has neither XDP nor GRO, so nothing
	// redirected out of it would arrive: said, and only with XDP egress.
	ifs := map[string]Interface{}
	for _, i := range r.Interfaces {
		ifs[i.Name] = i
	}
	for _, l := range []*netnstest.Link{a, b} {
		got := ifs[l.Name]
		if got.XDP != XDPNative || got.Kind != "veth" || got.Index != l.Index || got.Mode != ModeNative ||
			!slices.Contains(got.XDPFeatures, "basic") || !slices.Contains(got.XDPFeatures, "redirect") ||
			slices.Contains(got.XDPFeatures, "ndo-xmit") {
			t.Errorf("%s: %+v, want native veth without ndo-xmit", l.Name, got)
		}
	}
	if c := find(t, r, CheckXDP, a.Name); c.Verdict != MissingOptional || !strings.Contains(c.Reason, "GRO") {
		t.Errorf("%s (XDP egress): %+v", a.Name, c)
	}
	if c := find(t, r, CheckXDP, b.Name); c.Verdict != OK {
		t.Errorf("%s (clone egress): %+v", b.Name, c)
	}
	if c := find(t, r, CheckXDP, "hcabsent0"); c.Verdict != MissingRequired {
		t.Errorf("absent interface: %+v", c)
	}
	if r.ExitCode() != 1 || r.KernelExitCode() != 0 {
		t.Errorf("exit %d, kernel exit %d; want 1 (absent interface), 0", r.ExitCode(), r.KernelExitCode())
	}

	// An XDP program on b makes a transmit-capable (ndo-xmit): the probe
	// reads the kernel's live xdp-features.
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type: ebpf.XDP, License: "Dual BSD/GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, xdpPass), asm.Return()},
	})
	if err != nil {
		t.Fatalf("load xdp pass: %v", err)
	}
	defer prog.Close()
	l, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: b.Index, Flags: link.XDPDriverMode})
	if err != nil {
		t.Fatalf("attach xdp to %s: %v", b.Name, err)
	}
	defer l.Close()
	r = Evaluate(System{}, Want{Config: true, XDPMode: ModeNative, Sockets: true, Interfaces: []WantIface{{Name: a.Name, XDP: true}}})
	if c := find(t, r, CheckXDP, a.Name); c.Verdict != OK || !strings.Contains(c.Reason, "ndo-xmit") {
		t.Errorf("%s with XDP on its peer: %+v, want ok with ndo-xmit", a.Name, c)
	}
	if r.ExitCode() != 0 {
		t.Errorf("exit %d, want 0: %+v", r.ExitCode(), r.Missing(MissingRequired))
	}

	// Without a configuration: every Ethernet interface but loopback.
	r = Evaluate(System{}, Want{})
	var names []string
	for _, i := range r.Interfaces {
		names = append(names, i.Name)
	}
	want := []string{a.Name, b.Name}
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("interfaces %v, want %v", names, want)
	}
	if r.ExitCode() != 0 {
		t.Errorf("no config: exit %d: %+v", r.ExitCode(), r.Missing(MissingRequired))
	}
}

// The probes leave nothing behind: no program on any interface of the
// namespace (XDP or tcx), however often they run.
func TestSystemProbeLeavesNothing(t *testing.T) {
	ns := netnstest.New(t, "prb")
	a, b := netnstest.Veth(t, ns, netnstest.UniqueName("pa"), ns, netnstest.UniqueName("pb"))
	ns.Enter(t)
	for range 3 {
		if r := Evaluate(System{}, Want{}); r.ExitCode() != 0 {
			t.Fatalf("exit %d: %+v", r.ExitCode(), r.Missing(MissingRequired))
		}
	}
	for _, l := range []*netnstest.Link{a, b} {
		nl, err := netlink.LinkByIndex(l.Index)
		if err != nil {
			t.Fatalf("find %s: %v", l.Name, err)
		}
		if x := nl.Attrs().Xdp; x != nil && x.Attached {
			t.Errorf("an XDP program on %s after probing: %+v", l.Name, x)
		}
		for _, at := range []ebpf.AttachType{ebpf.AttachTCXIngress, ebpf.AttachTCXEgress} {
			q, err := link.QueryPrograms(link.QueryOptions{Target: l.Index, Attach: at})
			if err != nil {
				t.Fatalf("query %s %v: %v", l.Name, at, err)
			}
			if len(q.Programs) != 0 {
				t.Errorf("%d tcx programs (%v) on %s after probing", len(q.Programs), at, l.Name)
			}
		}
	}
}
