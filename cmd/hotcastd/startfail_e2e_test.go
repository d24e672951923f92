package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/hotcast/hotcast/internal/labtest"
	"github.com/hotcast/hotcast/internal/netnstest"
	"github.com/vishvananda/netlink"
)

// TestStartFailuresExitAndCleanUp makes each start-up step fail for real
// and checks what an operator and systemd see: hotcastd exits 1 (it does
// not hang), logs one "start failed" line naming the phase, the interface
// and the errno, and leaves nothing behind: no pins, no XDP or tcx program
// on any interface, no API socket.
func TestStartFailuresExitAndCleanUp(t *testing.T) {
	netnstest.RequireRoot(t)
	bin, _ := labtest.Binaries(t)
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, ns *netnstest.NS, dir string) // breaks the step
		yaml  string
		want  []string // in the "start failed" line
	}{{
		name: "address",
		setup: func(t *testing.T, ns *netnstest.NS, _ string) {
			ns.Sysctl(t, "net/ipv6/conf/ge2/disable_ipv6", "1")
		},
		yaml: "  - {name: ge1}\n  - {name: ge2, addresses: [2001:db8:50::1/64]}\n",
		want: []string{"phase=addresses", "interface=ge2", "errno=EACCES"},
	}, {
		name: "attach",
		setup: func(t *testing.T, ns *netnstest.NS, _ string) {
			h := ns.Handle(t)
			// A bridge device has no native XDP: the attach fails after
			// ge1 (maybe) got its programs, which must come off again.
			if err := h.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "ge2"}}); err != nil {
				t.Fatal(err)
			}
			l, err := h.LinkByName("ge2")
			if err != nil {
				t.Fatal(err)
			}
			if err := h.LinkSetUp(l); err != nil {
				t.Fatal(err)
			}
		},
		yaml: "  - {name: ge1}\n  - {name: ge2}\n",
		want: []string{"phase=dataplane", "interface=ge2", "errno=ENOTSUP"},
	}, {
		name: "pin",
		yaml: "  - {name: ge1}\n",
		want: []string{"phase=dataplane", "errno=ENOTDIR"},
	}, {
		name: "mld socket",
		setup: func(t *testing.T, ns *netnstest.NS, _ string) {
			// No link-local address: MLD has no source to send from.
			ns.Sysctl(t, "net/ipv6/conf/ge2/addr_gen_mode", "1")
			h := ns.Handle(t)
			l, err := h.LinkByName("ge2")
			if err != nil {
				t.Fatal(err)
			}
			addrs, _ := h.AddrList(l, netlink.FAMILY_V6)
			for _, a := range addrs {
				_ = h.AddrDel(l, &a)
			}
		},
		yaml: "  - {name: ge1}\n  - {name: ge2, mld: {enable: true}}\n",
		want: []string{"phase=mld", "interface=ge2", "no usable link-local address"},
	}, {
		name: "api listen",
		setup: func(t *testing.T, _ *netnstest.NS, dir string) {
			if err := os.WriteFile(filepath.Join(dir, "notadir"), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		},
		yaml: "  - {name: ge1}\n  - {name: ge2, mld: {enable: true}}\n",
		want: []string{"phase=api", "errno=ENOTDIR"},
	}, {
		name: "metrics listen",
		yaml: "  - {name: ge1}\n",
		want: []string{"phase=metrics", "errno=EADDRNOTAVAIL"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			ns := netnstest.New(t, "sf")
			peer := netnstest.New(t, "sfp")
			netnstest.Veth(t, ns, "ge1", peer, "p1")
			if tc.name != "attach" {
				netnstest.Veth(t, ns, "ge2", peer, "p2")
			}
			dir := t.TempDir()
			if tc.setup != nil {
				tc.setup(t, ns, dir)
			}
			pin := "/sys/fs/bpf/hotcast/" + netnstest.UniqueName("sf")
			sock := filepath.Join(dir, "api.sock")
			metrics := ""
			switch tc.name {
			case "pin":
				// The pin path's parent is a pinned map, not a directory.
				m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1})
				if err != nil {
					t.Fatal(err)
				}
				defer m.Close()
				if err := os.MkdirAll(filepath.Dir(pin), 0o700); err != nil {
					t.Fatal(err)
				}
				mapPin := pin
				if err := m.Pin(mapPin); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() {
					if err := os.Remove(mapPin); err != nil {
						t.Errorf("remove the test's pinned map: %v", err)
					}
				})
				pin = filepath.Join(mapPin, "x")
			case "api listen":
				sock = filepath.Join(dir, "notadir", "api.sock")
			case "metrics listen":
				metrics = ", metrics-listen: \"[2001:db8:ff::1]:9100\"" // not an address of the box
			}
			t.Cleanup(func() { _ = os.RemoveAll(pin) })
			yaml := "sysname: SF\napi: {socket: " + sock + metrics + "}\nbpf: {pin-path: " + pin + "}\n" +
				"multicast:\n  routing-enable: true\n  upstream: {interface: ge1, mode: static}\ninterfaces:\n" + tc.yaml
			cfg := filepath.Join(dir, "hotcast.yaml")
			if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
				t.Fatal(err)
			}

			// A hang is the bug this test is for: give it far more than
			// it needs (the link-local wait is 3 s), then call it a hang.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			out, err := ns.Command(ctx, bin, "--config", cfg).CombinedOutput()
			if ctx.Err() != nil {
				t.Fatalf("hotcastd still running after 30 s: it hangs\n%s", out)
			}
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 {
				t.Fatalf("exit %v, want status 1\n%s", err, out)
			}
			var failed []string
			for _, l := range strings.Split(string(out), "\n") {
				if strings.Contains(l, `msg="start failed"`) {
					failed = append(failed, l)
				}
			}
			if len(failed) != 1 {
				t.Fatalf("want one start failed line, got %d\n%s", len(failed), out)
			}
			for _, w := range tc.want {
				if !strings.Contains(failed[0], w) {
					t.Errorf("start failed line lacks %q: %s", w, failed[0])
				}
			}
			if strings.Contains(string(out), "panic") {
				t.Errorf("a panic on the way:\n%s", out)
			}

			// Nothing left: pins, programs, socket.
			if _, err := os.Stat(pin); !errors.Is(err, os.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
				t.Errorf("pin path %s left behind: %v", pin, err)
			}
			if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
				t.Errorf("API socket left behind: %v", err)
			}
			links, err := ns.Handle(t).LinkList()
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range links {
				if x := l.Attrs().Xdp; x != nil && x.Attached {
					t.Errorf("%s: XDP program %d left attached", l.Attrs().Name, x.ProgId)
				}
			}
			if out, err := ns.Command(context.Background(), "bpftool", "net", "show").CombinedOutput(); err != nil {
				t.Errorf("bpftool net show: %v\n%s", err, out)
			} else if strings.Contains(string(out), "hc_") {
				t.Errorf("hotcast programs left attached:\n%s", out)
			}
		})
	}
}
