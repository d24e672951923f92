package e2e

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/hotcast/hotcast/daemon/api"
	"github.com/hotcast/hotcast/internal/labtest"
	"github.com/hotcast/hotcast/internal/netnstest"
)

// previousVersion is the commit of the last release before the restructure
// of issue 11 ("labtest: one HC_BENCH switch and parser; one SyncBuffer"):
// the version whose pinned dataplane the current hotcastd must adopt.
const previousVersion = "a76834078b138e7ff15f395031e2ec8eaf34fe95"

// upgradeYAML needs no MLD (the previous version opened its MLD sockets
// with MRT6_INIT, which kernels without CONFIG_IPV6_MROUTE refuse): static
// routes from up0, an (S,G) to lan0 and lan1 and a (*,G) to lan0 only, and
// a VRRP6 group on lan1 that gates lan1's forwarding, so that every kind of
// pinned state exists: routes, outgoing sets, counters, ifaces with a gate,
// vmacs and vips, and xdp, tci and tc links.
const upgradeYAML = `
sysname: UPGRADE
api: {socket: "%SOCKET%"}
bpf: {pin-path: "%PIN%"}
multicast:
  routing-enable: true
  upstream: {interface: up0, mode: static}
  static-routes:
    - {group: "ff3e::8:1", source: "2001:db8:40::2", interfaces: [lan0, lan1]}
    - {group: "ff1e::8:2", interfaces: [lan0]}
interfaces:
  - name: up0
  - name: lan0
    addresses: ["2001:db8:8::1/64"]
  - name: lan1
    addresses: ["2001:db8:9::1/64"]
    vrrp6:
      - {vrid: 9, virtual-ip: ["fe80::9", "2001:db8:9::9"], priority: 200, advertise-interval: 100ms}
    multicast-track-vrrp6: 9
`

var (
	upgradeSSM = netip.MustParseAddr("ff3e::8:1") // (S,G) to lan0 and lan1
	upgradeASM = netip.MustParseAddr("ff1e::8:2") // (*,G) to lan0
)

// TestAdoptPreviousVersion: hotcastd of the previous release runs a
// dataplane and crashes (SIGKILL: the pins stay, and the fast path forwards
// without a daemon); the current hotcastd starts on the same pins and
// configuration. It must adopt the dataplane (the same kernel maps and
// links, the routes with their counters, the VRRP6 virtual MAC and IPs)
// and keep forwarding, its CLI must show the routes, and --cleanup must
// remove everything.
func TestAdoptPreviousVersion(t *testing.T) {
	netnstest.RequireRoot(t)
	oldD := buildPrevious(t)
	hotcastd, hotcastctl := labtest.Binaries(t)
	oldBin := <-oldD
	if oldBin.err != nil {
		t.Fatalf("build hotcastd %s: %v", previousVersion[:7], oldBin.err)
	}

	// snd:s0 --- up0:rtr:lan0 --- h0:rcv
	//                rtr:lan1 --- h1:rcv
	snd, rtr, rcv := netnstest.New(t, "snd"), netnstest.New(t, "rtr"), netnstest.New(t, "rcv")
	s0, _ := netnstest.Veth(t, snd, "s0", rtr, "up0")
	_, h0 := netnstest.Veth(t, rtr, "lan0", rcv, "h0")
	lan1, h1 := netnstest.Veth(t, rtr, "lan1", rcv, "h1")
	r0, r1 := labtest.NewReceiver(t, h0), labtest.NewReceiver(t, h1)
	gaps0, gaps1 := labtest.NewGapMeter(t, h0), labtest.NewGapMeter(t, h1)

	d := labtest.StartDaemon(t, rtr, oldBin.path, hotcastctl, upgradeYAML)
	waitMaster(t, d, "previous version")
	labtest.StartStream(t, s0, srcS, []netip.Addr{upgradeSSM, upgradeASM}, 200)
	flows := func(step string) {
		t.Helper()
		type want struct {
			r *labtest.Receiver
			g netip.Addr
		}
		ws := []want{{r0, upgradeSSM}, {r0, upgradeASM}, {r1, upgradeSSM}}
		before := make([]uint64, len(ws))
		for i, w := range ws {
			before[i] = w.r.Count(t, w.g)
		}
		labtest.Eventually(t, 5*time.Second, step+": 100 more frames of each route on h0 and h1", func() bool {
			for i, w := range ws {
				if w.r.Count(t, w.g) < before[i]+100 {
					return false
				}
			}
			return true
		})
		t.Logf("%s: forwarding (h0 %d+%d frames, h1 %d)", step, r0.Count(t, upgradeSSM), r0.Count(t, upgradeASM), r1.Count(t, upgradeSSM))
	}
	flows("previous version")

	oldTable := fwdTable(d)
	oldRoutes := routeSet(oldTable)
	if len(oldRoutes) != 2 {
		t.Fatalf("previous version: %d routes, want the 2 static ones:\n%s", len(oldRoutes), strings.Join(oldRoutes, "\n"))
	}
	oldPins := pinnedIDs(t, d.PinPath)
	oldVRRP := vrrpMaps(t, d.PinPath)
	wantVRRP := []string{
		fmt.Sprintf("vip ifindex %d fe80::9 vrid 9", lan1.Index),
		fmt.Sprintf("vip ifindex %d 2001:db8:9::9 vrid 9", lan1.Index),
		fmt.Sprintf("vmac ifindex %d vrid 9", lan1.Index),
	}
	slices.Sort(wantVRRP)
	if !slices.Equal(oldVRRP, wantVRRP) {
		t.Fatalf("previous version as Master: vmacs and vips hold\n%s\nwant\n%s", strings.Join(oldVRRP, "\n"), strings.Join(wantVRRP, "\n"))
	}
	for _, p := range []string{"maps/routes", "maps/vmacs", "maps/vips", "links/xdp/up0", "links/xdp/lan1", "links/tc/lan1", "links/tci/lan1"} {
		if _, ok := oldPins[p]; !ok {
			t.Fatalf("previous version pinned no %s; pins: %v", p, slices.Sorted(maps.Keys(oldPins)))
		}
	}

	// A crash: the pins stay and the fast path forwards on its own.
	d.Kill()
	if got := pinnedIDs(t, d.PinPath); !sameIDs(oldPins, got) {
		t.Fatalf("pins changed when the daemon was killed: %v, were %v", got, oldPins)
	}
	flows("no daemon running")

	// The upgrade: the current version on the same pins and configuration.
	mark := len(d.Log())
	d.SetBinary(hotcastd)
	d.Start()
	if oldLog := d.Log()[:mark]; !strings.Contains(oldLog, "adopted=false") {
		t.Errorf("previous version's log has no adopted=false (its first start):\n%s", oldLog)
	}
	newLog := d.Log()[mark:]
	if !strings.Contains(newLog, "adopted=true") {
		t.Fatalf("current version did not adopt the pinned dataplane (no adopted=true):\n%s", newLog)
	}
	for _, bad := range []string{"forgot interfaces that are gone", "dropped routes", "pinned links dropped", "lost interfaces"} {
		if strings.Contains(newLog, bad) {
			t.Errorf("adoption dropped state (%q) though every interface is still there:\n%s", bad, newLog)
		}
	}
	flows("current version, adopted")
	waitMaster(t, d, "current version")

	// The routes, from the kernel's map: the same, their counters carried
	// on from the previous version's.
	newTable := fwdTable(d)
	if got := routeSet(newTable); !slices.Equal(got, oldRoutes) {
		t.Errorf("routes after the upgrade:\n%s\nbefore:\n%s", strings.Join(got, "\n"), strings.Join(oldRoutes, "\n"))
	}
	for _, o := range oldTable.Routes {
		n := labtest.FindRoute(newTable, o.Source, netip.MustParseAddr(o.Group))
		if n == nil {
			continue // reported above
		}
		if n.Packets <= o.Packets {
			t.Errorf("route (%s, %s): %d packets after the upgrade, %d before: the counter was not carried over", o.Source, o.Group, n.Packets, o.Packets)
		}
	}
	if g := newTable.Gates["lan1"]; g != "forward" {
		t.Errorf("gate of lan1 (tracking the Master group) is %q, want forward; gates %v", g, newTable.Gates)
	}

	// The same kernel objects: every map and link the previous version
	// pinned, adopted (not made again); the VRRP6 Master state kept.
	newPins := pinnedIDs(t, d.PinPath)
	for p, id := range oldPins {
		if strings.HasPrefix(p, "progs/") {
			continue // replaced by this version's programs
		}
		if p == "maps/reasons" && newPins[p] != id {
			// This version counts more reasons: the map is grown (a
			// new one, the counters copied into it).
			for r, n := range oldTable.Reasons {
				if newTable.Reasons[r] < n {
					t.Errorf("reason %s: %d after the upgrade, %d before: the grown reasons map lost the counters", r, newTable.Reasons[r], n)
				}
			}
			continue
		}
		if newPins[p] != id {
			t.Errorf("pin %s: id %d after the upgrade, %d before: not adopted", p, newPins[p], id)
		}
	}
	if got := vrrpMaps(t, d.PinPath); !slices.Equal(got, wantVRRP) {
		t.Errorf("after the upgrade vmacs and vips hold\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(wantVRRP, "\n"))
	}
	// Logged, not asserted (speed is for the benchmarks): lan0 forwards
	// through the upgrade; lan1 is muted while the new VRRP6 instance
	// waits out Master_Down_Interval before it is Master again.
	for _, g := range []struct {
		name string
		m    *labtest.GapMeter
	}{{"h0", gaps0}, {"h1", gaps1}} {
		rep := g.m.Report(upgradeSSM)
		t.Logf("%s (%s): %d frames, longest gap %s (ended %s), %d duplicates", g.name, upgradeSSM, rep.Received, rep.MaxGap, rep.MaxGapAt.Format("15:04:05.000"), rep.Duplicates)
	}
	if n := r1.Count(t, upgradeASM); n != 0 {
		t.Errorf("h1 received %d frames of %s, routed to lan0 only", n, upgradeASM)
	}

	// A stop leaves the pins; --cleanup removes everything.
	d.Stop()
	if _, err := os.Stat(d.PinPath); err != nil {
		t.Fatalf("pins gone after SIGTERM: %v", err)
	}
	cleanup(t, d, hotcastd, rtr, newPins, r0)
}

// cleanup runs hotcastd --cleanup and checks that the pins, the programs
// on the router's interfaces, and the kernel maps and links are gone, and
// that forwarding stopped.
func cleanup(t *testing.T, d *labtest.Daemon, hotcastd string, rtr *netnstest.NS, pins map[string]uint32, r0 *labtest.Receiver) {
	t.Helper()
	var want []string
	for p := range pins {
		if !strings.HasPrefix(p, "progs/") {
			want = append(want, p)
		}
	}
	if got := alive(pins); len(got) != len(want) {
		t.Fatalf("before --cleanup only %v of the pinned maps and links exist, want %v", got, want)
	}
	out, err := rtr.Command(context.Background(), hotcastd, "--config", d.Config, "--cleanup").CombinedOutput()
	if err != nil {
		t.Fatalf("hotcastd --cleanup: %v\n%s", err, out)
	}
	if _, err := os.Stat(d.PinPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pin path %s after --cleanup: %v", d.PinPath, err)
	}
	h := rtr.Handle(t)
	for _, name := range []string{"up0", "lan0", "lan1"} {
		l, err := h.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		if x := l.Attrs().Xdp; x != nil && x.Attached {
			t.Errorf("%s: XDP program %d still attached after --cleanup", name, x.ProgId)
		}
	}
	labtest.Eventually(t, 5*time.Second, "the kernel to free the maps and links --cleanup released", func() bool {
		return len(alive(pins)) == 0
	})
	time.Sleep(100 * time.Millisecond) // frames in flight
	before := r0.Count(t, upgradeSSM)
	time.Sleep(300 * time.Millisecond)
	if n := r0.Count(t, upgradeSSM) - before; n != 0 {
		t.Errorf("h0 received %d frames after --cleanup", n)
	}
}

// alive returns the pins (other than programs) whose map or link still
// exists in the kernel.
func alive(pins map[string]uint32) []string {
	var out []string
	for p, id := range pins {
		var err error
		switch {
		case strings.HasPrefix(p, "maps/"):
			var m *ebpf.Map
			if m, err = ebpf.NewMapFromID(ebpf.MapID(id)); err == nil {
				m.Close()
			}
		case strings.HasPrefix(p, "links/"):
			var l link.Link
			if l, err = link.NewFromID(link.ID(id)); err == nil {
				l.Close()
			}
		default:
			continue
		}
		if err == nil || !errors.Is(err, os.ErrNotExist) {
			out = append(out, p)
		}
	}
	return out
}

type buildResult struct {
	path string
	err  error
}

// buildPrevious checks out previousVersion into a temporary worktree
// (removed when the test ends) and builds its hotcastd in the background.
func buildPrevious(t *testing.T) <-chan buildResult {
	t.Helper()
	git := func(args ...string) ([]byte, error) {
		return exec.Command("git", args...).CombinedOutput()
	}
	out, err := git("rev-parse", "--show-toplevel")
	if err != nil {
		t.Fatalf("TestAdoptPreviousVersion builds hotcastd %s from the git history, and this is not a git checkout (git rev-parse: %v: %s): run it from a clone", previousVersion[:7], err, trimOut(out))
	}
	top := strings.TrimSpace(string(out))
	if _, err := git("-C", top, "cat-file", "-e", previousVersion+"^{commit}"); err != nil {
		why := "the repository does not hold it"
		if s, _ := git("-C", top, "rev-parse", "--is-shallow-repository"); strings.TrimSpace(string(s)) == "true" {
			why = "this is a shallow clone (git fetch --unshallow brings it)"
		}
		t.Skipf("commit %s, the previous version to adopt from, is not in the history: %s", previousVersion[:7], why)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	t.Cleanup(func() {
		if out, err := git("-C", top, "worktree", "remove", "--force", src); err != nil {
			t.Errorf("git worktree remove %s: %v: %s", src, err, trimOut(out))
			_ = os.RemoveAll(src)
			_, _ = git("-C", top, "worktree", "prune")
		}
	})
	if out, err := git("-C", top, "worktree", "add", "--detach", src, previousVersion); err != nil {
		t.Fatalf("git worktree add %s: %v: %s", previousVersion[:7], err, trimOut(out))
	}
	ch := make(chan buildResult, 1)
	go func() {
		bin := filepath.Join(dir, "hotcastd")
		cmd := exec.Command("go", "build", "-o", bin, "./cmd/hotcastd")
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-buildvcs=false")
		if out, err := cmd.CombinedOutput(); err != nil {
			ch <- buildResult{err: fmt.Errorf("%w: %s", err, out)}
			return
		}
		ch <- buildResult{path: bin}
	}()
	return ch
}

func trimOut(b []byte) string { return strings.TrimSpace(string(b)) }

// waitMaster waits until the daemon's VRRP6 group 9 on lan1 is Master.
func waitMaster(t *testing.T, d *labtest.Daemon, who string) {
	t.Helper()
	labtest.Eventually(t, 5*time.Second, who+": lan1 vrid 9 Master", func() bool {
		var vs []api.VRRP6
		d.CtlJSON(&vs, "display", "vrrp6")
		for _, v := range vs {
			if v.Interface == "lan1" && v.VRID == 9 && v.State == "Master" {
				return true
			}
		}
		return false
	})
}

// routeSet formats a table's routes without their counters, sorted.
func routeSet(ft api.ForwardingTable) []string {
	out := make([]string, 0, len(ft.Routes))
	for _, r := range ft.Routes {
		oifs := slices.Sorted(slices.Values(r.Outgoing))
		out = append(out, fmt.Sprintf("(%s, %s) %s -> %s %v", r.Source, r.Group, r.Incoming, strings.Join(oifs, ","), r.Flags))
	}
	slices.Sort(out)
	return out
}

// pinnedIDs returns the kernel id of every map, program and link pinned
// under pinPath, by pin path relative to it.
func pinnedIDs(t *testing.T, pinPath string) map[string]uint32 {
	t.Helper()
	ids := map[string]uint32{}
	err := filepath.WalkDir(pinPath, func(p string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(pinPath, p)
		var id uint32
		switch strings.SplitN(rel, "/", 2)[0] {
		case "maps":
			m, err := ebpf.LoadPinnedMap(p, nil)
			if err != nil {
				return err
			}
			defer m.Close()
			info, err := m.Info()
			if err != nil {
				return err
			}
			mid, _ := info.ID()
			id = uint32(mid)
		case "progs":
			pr, err := ebpf.LoadPinnedProgram(p, nil)
			if err != nil {
				return err
			}
			defer pr.Close()
			info, err := pr.Info()
			if err != nil {
				return err
			}
			pid, _ := info.ID()
			id = uint32(pid)
		case "links":
			l, err := link.LoadPinnedLink(p, nil)
			if err != nil {
				return err
			}
			defer l.Close()
			info, err := l.Info()
			if err != nil {
				return err
			}
			id = uint32(info.ID)
		default:
			return fmt.Errorf("unexpected pin %s", rel)
		}
		if id == 0 {
			return fmt.Errorf("pin %s: the kernel gave no id", rel)
		}
		ids[rel] = id
		return nil
	})
	if err != nil {
		t.Fatalf("read pins under %s: %v", pinPath, err)
	}
	return ids
}

func sameIDs(a, b map[string]uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// vrrpMaps returns the entries of the pinned vmacs and vips maps, read from
// the kernel, formatted, sorted. The layouts are struct hc_vmac_key -> u32
// and struct hc_vip_key -> struct hc_vip (bpf/include/hotcast.h).
func vrrpMaps(t *testing.T, pinPath string) []string {
	t.Helper()
	var out []string
	open := func(name string) *ebpf.Map {
		m, err := ebpf.LoadPinnedMap(filepath.Join(pinPath, "maps", name), nil)
		if err != nil {
			t.Fatalf("open pinned %s: %v", name, err)
		}
		return m
	}
	// Closed before returning: an fd held would keep the map alive
	// past --cleanup.
	vmacs, vips := open("vmacs"), open("vips")
	defer vmacs.Close()
	defer vips.Close()
	var mk struct{ Ifindex, Vrid uint32 }
	var mv uint32
	it := vmacs.Iterate()
	for it.Next(&mk, &mv) {
		out = append(out, fmt.Sprintf("vmac ifindex %d vrid %d", mk.Ifindex, mk.Vrid))
	}
	if err := it.Err(); err != nil {
		t.Fatalf("read vmacs: %v", err)
	}
	var vk struct {
		Ifindex uint32
		Addr    [16]byte
	}
	var vv struct{ Vrid, Flags uint32 }
	vit := vips.Iterate()
	for vit.Next(&vk, &vv) {
		out = append(out, fmt.Sprintf("vip ifindex %d %s vrid %d", vk.Ifindex, netip.AddrFrom16(vk.Addr), vv.Vrid))
	}
	if err := vit.Err(); err != nil {
		t.Fatalf("read vips: %v", err)
	}
	slices.Sort(out)
	return out
}
