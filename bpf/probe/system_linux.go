package probe

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/hotcast/hotcast/bpf"
)

// System probes the running kernel. Interfaces and sockets are those of
// the calling thread's network namespace: lock the OS thread to probe
// another one. Probes create only throw-away programs, maps and sockets,
// closed before they return; nothing is attached or pinned.
type System struct{}

var _ Prober = System{}

// KernelRelease is uname -r.
func (System) KernelRelease() (string, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", fmt.Errorf("uname: %w", err)
	}
	return unix.ByteSliceToString(u.Release[:]), nil
}

// StatFS statfs(2)s the deepest existing path at or above path.
func (System) StatFS(path string) (int64, string, error) {
	dir := filepath.Clean(path)
	for {
		if _, err := os.Stat(dir); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, dir, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return st.Type, dir, nil
}

// ProgramType asks cilium/ebpf's feature probe.
func (System) ProgramType(pt ebpf.ProgramType) error { return features.HaveProgramType(pt) }

// MapType asks cilium/ebpf's feature probe.
func (System) MapType(mt ebpf.MapType) error { return features.HaveMapType(mt) }

// Dataplane opens hotcast's dataplane without a pin path (nothing pinned,
// nothing attached) and closes it.
func (System) Dataplane() error {
	dp, err := bpf.Open(bpf.Options{})
	if err != nil {
		return err
	}
	dp.Close()
	return nil
}

// noIfindex names no interface: an attach to it fails with ENODEV when
// the kernel knows the link type.
const noIfindex = 1<<31 - 1

// TCX attaches a throw-away SchedCLS program to an interface that does
// not exist: ENODEV means the kernel has tcx links (cilium/ebpf's own
// probe), ErrNotSupported that it has not.
func (System) TCX() error {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:         ebpf.SchedCLS,
		License:      "Dual BSD/GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
	})
	if err != nil {
		return fmt.Errorf("load sched_cls program: %w", err)
	}
	defer prog.Close()
	l, err := link.AttachTCX(link.TCXOptions{Interface: noIfindex, Program: prog, Attach: ebpf.AttachTCXIngress})
	switch {
	case err == nil:
		l.Close()
		return nil
	case errors.Is(err, unix.ENODEV):
		return nil
	default:
		return err
	}
}

// xdpRedirect is XDP_REDIRECT; xdpAborted XDP_ABORTED.
const (
	xdpAborted  = 0
	xdpDrop     = 1
	xdpPass     = 2
	xdpRedirect = 4
)

// DevmapBroadcast runs a program that calls bpf_redirect_map(devmap,
// 0, BPF_F_BROADCAST|BPF_F_EXCLUDE_INGRESS) once (BPF_PROG_TEST_RUN, no
// frame leaves). A kernel with broadcast returns XDP_REDIRECT; an older
// one takes the flags for a default action out of range and returns
// XDP_ABORTED.
func (System) DevmapBroadcast() error {
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.DevMapHash, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	if err != nil {
		return fmt.Errorf("create devmap: %w", err)
	}
	defer m.Close()
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:    ebpf.XDP,
		License: "Dual BSD/GPL",
		Instructions: asm.Instructions{
			asm.LoadMapPtr(asm.R1, m.FD()),
			asm.Mov.Imm(asm.R2, 0),
			asm.Mov.Imm(asm.R3, unix.BPF_F_BROADCAST|unix.BPF_F_EXCLUDE_INGRESS),
			asm.FnRedirectMap.Call(),
			asm.Return(),
		},
	})
	if err != nil {
		return fmt.Errorf("load redirect_map program: %w", err)
	}
	defer prog.Close()
	ret, err := prog.Run(&ebpf.RunOptions{Data: make([]byte, 64)})
	if err != nil {
		return fmt.Errorf("run redirect_map program: %w", err)
	}
	switch ret {
	case xdpRedirect:
		return nil
	case xdpAborted:
		return fmt.Errorf("bpf_redirect_map refused BPF_F_BROADCAST: %w", ebpf.ErrNotSupported)
	default:
		return fmt.Errorf("bpf_redirect_map with BPF_F_BROADCAST returned %d", ret)
	}
}

// DevmapProgram loads an XDP program for BPF_XDP_DEVMAP and puts it in a
// devmap entry of loopback (struct bpf_devmap_val: ifindex, program fd).
func (System) DevmapProgram() error {
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		return fmt.Errorf("find lo: %w", err)
	}
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.DevMapHash, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	if errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("devmap with an 8-byte value (ifindex and program): %w", ebpf.ErrNotSupported)
	}
	if err != nil {
		return fmt.Errorf("create devmap: %w", err)
	}
	defer m.Close()
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:         ebpf.XDP,
		AttachType:   ebpf.AttachXDPDevMap,
		License:      "Dual BSD/GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, xdpPass), asm.Return()},
	})
	if err != nil {
		return fmt.Errorf("load devmap program: %w", err)
	}
	defer prog.Close()
	val := make([]byte, 8)
	binary.NativeEndian.PutUint32(val[0:], uint32(lo.Index))
	binary.NativeEndian.PutUint32(val[4:], uint32(prog.FD()))
	if err := m.Put(uint32(lo.Index), val); errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("devmap entry with a program: %w", ebpf.ErrNotSupported)
	} else if err != nil {
		return fmt.Errorf("devmap entry with a program: %w", err)
	}
	return nil
}

// XDPLiveFrames runs an XDP_DROP program once in live-frame mode: a
// kernel without BPF_F_TEST_XDP_LIVE_FRAMES refuses the flag (EINVAL).
func (System) XDPLiveFrames() error {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:         ebpf.XDP,
		License:      "Dual BSD/GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, xdpDrop), asm.Return()},
	})
	if err != nil {
		return fmt.Errorf("load xdp program: %w", err)
	}
	defer prog.Close()
	_, err = prog.Run(&ebpf.RunOptions{Data: make([]byte, 64), Repeat: 1, Flags: unix.BPF_F_TEST_XDP_LIVE_FRAMES})
	if errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("live frames: %w", ebpf.ErrNotSupported)
	}
	if err != nil {
		return fmt.Errorf("run in live-frame mode: %w", err)
	}
	return nil
}

// FileExists stats path.
func (System) FileExists(path string) (bool, error) {
	_, err := os.Stat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, os.ErrNotExist):
		return false, nil
	default:
		return false, err
	}
}

// Socket opens and closes a socket. A missing address family or protocol
// is ErrNotSupported.
func (System) Socket(domain, typ, proto int) error {
	fd, err := unix.Socket(domain, typ|unix.SOCK_CLOEXEC, proto)
	if errors.Is(err, unix.EAFNOSUPPORT) || errors.Is(err, unix.EPROTONOSUPPORT) {
		return fmt.Errorf("socket(%d, %d, %d): %w (%w)", domain, typ, proto, ebpf.ErrNotSupported, err)
	}
	if err != nil {
		return fmt.Errorf("socket(%d, %d, %d): %w", domain, typ, proto, err)
	}
	return unix.Close(fd)
}

// Links lists the namespace's interfaces.
func (System) Links() ([]Link, error) {
	ls, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	out := make([]Link, 0, len(ls))
	for _, l := range ls {
		a := l.Attrs()
		out = append(out, Link{
			Name:     a.Name,
			Index:    a.Index,
			Kind:     l.Type(),
			Ethernet: a.EncapType == "ether" && len(a.HardwareAddr) == 6,
			Loopback: a.Flags&net.FlagLoopback != 0,
		})
	}
	return out, nil
}

// netdev generic netlink family (include/uapi/linux/netdev.h, 6.3+).
const (
	netdevFamily         = "netdev"
	netdevCmdDevGet      = 1
	netdevADevIfindex    = 1
	netdevADevXDPFeature = 3
)

// XDPFeatures asks the netdev family for each device
// (NETDEV_CMD_DEV_GET with NETDEV_A_DEV_IFINDEX) and returns its
// NETDEV_A_DEV_XDP_FEATURES. One request per device, not a dump: this
// kernel's netdev dump replies lack NLM_F_MULTI, so vishvananda/netlink
// stops at the first. A device the family refuses (loopback) is left
// out; a kernel without the family (before 6.3) is ErrNotSupported.
func (System) XDPFeatures(ifindexes []int) (map[int]XDPFeatures, error) {
	famID, err := genlFamilyID(netdevFamily)
	if errors.Is(err, unix.ENOENT) {
		return nil, fmt.Errorf("generic netlink family %q: %w", netdevFamily, ebpf.ErrNotSupported)
	}
	if err != nil {
		return nil, fmt.Errorf("generic netlink family %q: %w", netdevFamily, err)
	}
	out := map[int]XDPFeatures{}
	for _, idx := range ifindexes {
		req := nl.NewNetlinkRequest(int(famID), 0)
		req.AddData(genlHeader{netdevCmdDevGet, 1})
		req.AddData(nl.NewRtAttr(netdevADevIfindex, nl.Uint32Attr(uint32(idx))))
		msgs, err := req.Execute(unix.NETLINK_GENERIC, 0)
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENODEV) {
			continue // not a device the family describes (loopback), or gone
		}
		if err != nil {
			return nil, fmt.Errorf("netdev dev-get ifindex %d: %w", idx, err)
		}
		for _, m := range msgs {
			if f, ok, err := parseDevGet(m, idx); err != nil {
				return nil, fmt.Errorf("netdev dev-get ifindex %d: %w", idx, err)
			} else if ok {
				out[idx] = f
			}
		}
	}
	return out, nil
}

// genlFamilyID resolves a generic netlink family name (CTRL_CMD_GETFAMILY;
// ENOENT when the kernel has no such family). Not netlink.GenlFamilyGet:
// it sends nl.Genlmsg, see genlHeader.
func genlFamilyID(name string) (uint16, error) {
	req := nl.NewNetlinkRequest(unix.GENL_ID_CTRL, 0)
	req.AddData(genlHeader{unix.CTRL_CMD_GETFAMILY, nl.GENL_CTRL_VERSION})
	req.AddData(nl.NewRtAttr(unix.CTRL_ATTR_FAMILY_NAME, nl.ZeroTerminated(name)))
	msgs, err := req.Execute(unix.NETLINK_GENERIC, 0)
	if err != nil {
		return 0, err
	}
	for _, m := range msgs {
		if len(m) < nl.SizeofGenlmsg {
			continue
		}
		attrs, err := nl.ParseRouteAttr(m[nl.SizeofGenlmsg:])
		if err != nil {
			return 0, err
		}
		for _, a := range attrs {
			if a.Attr.Type == unix.CTRL_ATTR_FAMILY_ID && len(a.Value) >= 2 {
				return binary.NativeEndian.Uint16(a.Value), nil
			}
		}
	}
	return 0, fmt.Errorf("family %q: no id in the reply", name)
}

// genlHeader is struct genlmsghdr (cmd, version, reserved 0). Not
// nl.Genlmsg: that struct is 2 bytes but serialises 4, so its reserved
// field carries whatever follows it in memory, and the kernel refuses a
// non-zero one with EINVAL.
type genlHeader struct{ cmd, version uint8 }

func (h genlHeader) Len() int          { return nl.SizeofGenlmsg }
func (h genlHeader) Serialize() []byte { return []byte{h.cmd, h.version, 0, 0} }

// parseDevGet reads NETDEV_A_DEV_XDP_FEATURES from a dev-get reply for
// ifindex.
func parseDevGet(m []byte, ifindex int) (XDPFeatures, bool, error) {
	if len(m) < nl.SizeofGenlmsg {
		return 0, false, errors.New("short reply")
	}
	attrs, err := nl.ParseRouteAttr(m[nl.SizeofGenlmsg:])
	if err != nil {
		return 0, false, err
	}
	var f XDPFeatures
	haveIdx, haveF := false, false
	for _, a := range attrs {
		switch a.Attr.Type &^ (unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER) {
		case netdevADevIfindex:
			haveIdx = len(a.Value) >= 4 && int(binary.NativeEndian.Uint32(a.Value)) == ifindex
		case netdevADevXDPFeature:
			if len(a.Value) >= 8 {
				f, haveF = XDPFeatures(binary.NativeEndian.Uint64(a.Value)), true
			}
		}
	}
	return f, haveIdx && haveF, nil
}
