package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hotcast/hotcast/daemon/config"
	"github.com/hotcast/hotcast/internal/netnstest"
	"golang.org/x/sys/unix"
)

// The start-up fault tests run the daemon in a child process inside a
// test namespace (a daemon's sockets and netlink calls belong to the
// namespace of the thread that makes them, so the whole process must be
// in it). The parent builds the namespace and reads the child's verdict;
// the child is this test binary, re-run with childEnv naming the case
// (TestMain).
const childEnv = "HOTCAST_DAEMON_START_CHILD"

// startChild runs this binary in ns as the child of the given case and
// configuration, and returns its output and error.
func startChild(t *testing.T, ns *netnstest.NS, fault, yaml string) (string, error) {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "hotcast.yaml")
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := ns.Command(ctx, os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"="+fault+":"+cfg)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("child %s still running after 60 s: start-up hangs\n%s", fault, out)
	}
	return string(out), err
}

// TestMain runs the child's part when childEnv is set, the tests
// otherwise.
func TestMain(m *testing.M) {
	if v := os.Getenv(childEnv); v != "" {
		fault, cfg, _ := strings.Cut(v, ":")
		if err := startChildCase(fault, cfg); err != nil {
			fmt.Println("CHILD FAILED:", err)
			os.Exit(1)
		}
		fmt.Println("CHILD OK")
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func startYAML(pin, sock string) string {
	return "sysname: ST\napi: {socket: " + sock + "}\nbpf: {pin-path: " + pin + "}\n" +
		"multicast:\n  routing-enable: true\n  upstream: {interface: ge1, mode: static}\n" +
		"interfaces:\n  - {name: ge1}\n  - {name: ge2, mld: {enable: true}}\n"
}

func startNS(t *testing.T) *netnstest.NS {
	ns := netnstest.New(t, "st")
	peer := netnstest.New(t, "stp")
	netnstest.Veth(t, ns, "ge1", peer, "p1")
	netnstest.Veth(t, ns, "ge2", peer, "p2")
	return ns
}

func xdpAttached(t *testing.T, ns *netnstest.NS) []string {
	t.Helper()
	links, err := ns.Handle(t).LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range links {
		if x := l.Attrs().Xdp; x != nil && x.Attached {
			out = append(out, l.Attrs().Name)
		}
	}
	return out
}

// TestStartMLDSocketFailure injects the MLD socket error a kernel without
// multicast routing used to give (ENOPROTOOPT) behind the socket seam:
// Run returns a StartError naming phase, interface and errno, and
// removes the dataplane this start created. Started again over a
// dataplane a previous run pinned, the same failure leaves that dataplane
// attached and pinned: an adopted fast path keeps forwarding.
func TestStartMLDSocketFailure(t *testing.T) {
	netnstest.RequireRoot(t)
	ns := startNS(t)
	pin := "/sys/fs/bpf/hotcast/" + netnstest.UniqueName("st")
	t.Cleanup(func() { _ = os.RemoveAll(pin) })
	yaml := startYAML(pin, filepath.Join(t.TempDir(), "api.sock"))

	out, err := startChild(t, ns, "enoprotoopt", yaml)
	if err != nil || !strings.Contains(out, "CHILD OK") {
		t.Fatalf("fresh start: %v\n%s", err, out)
	}
	if _, err := os.Stat(pin); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("fresh start failed but left its pins: %v", err)
	}
	if got := xdpAttached(t, ns); len(got) != 0 {
		t.Errorf("fresh start failed but left XDP on %v", got)
	}

	// A run that comes up and stops leaves the dataplane pinned.
	out, err = startChild(t, ns, "none", yaml)
	if err != nil || !strings.Contains(out, "CHILD OK") {
		t.Fatalf("good start: %v\n%s", err, out)
	}
	out, err = startChild(t, ns, "enoprotoopt-adopted", yaml)
	if err != nil || !strings.Contains(out, "CHILD OK") {
		t.Fatalf("failed restart: %v\n%s", err, out)
	}
	if _, err := os.Stat(pin); err != nil {
		t.Errorf("failed restart removed the adopted dataplane: %v", err)
	}
	if got := xdpAttached(t, ns); len(got) != 2 {
		t.Errorf("after a failed restart XDP is on %v, want ge1 and ge2", got)
	}
}

// TestStartPanicExits: a panic in start-up is not swallowed and does not
// hang the daemon on a lock: the process dies with the panic and a stack.
func TestStartPanicExits(t *testing.T) {
	netnstest.RequireRoot(t)
	ns := startNS(t)
	pin := "/sys/fs/bpf/hotcast/" + netnstest.UniqueName("st")
	t.Cleanup(func() { _ = os.RemoveAll(pin) })
	out, err := startChild(t, ns, "panic", startYAML(pin, filepath.Join(t.TempDir(), "api.sock")))
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 {
		t.Fatalf("child exit %v, want a failure\n%s", err, out)
	}
	for _, want := range []string{"panic: injected mld socket panic", "goroutine ", "(*Daemon).bringUp"} {
		if !strings.Contains(out, want) {
			t.Errorf("child output lacks %q\n%s", want, out)
		}
	}
}

// startChildCase is the child of the tests above: it runs the daemon
// with the given fault and checks what Run returns.
func startChildCase(fault, path string) error {
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	sys := mldFault{}
	switch fault {
	case "enoprotoopt", "enoprotoopt-adopted":
		sys.listen = func(ifname string) (MLDConn, error) {
			return nil, fmt.Errorf("mld socket %s: MRT6_INIT: %w", ifname, unix.ENOPROTOOPT)
		}
	case "panic":
		sys.listen = func(string) (MLDConn, error) { panic("injected mld socket panic") }
	}
	d, err := NewOn(sys, cfg, slog.New(slog.NewTextHandler(os.Stderr, nil)))
	if err != nil {
		return err
	}
	switch fault {
	case "enoprotoopt", "enoprotoopt-adopted", "panic":
	case "none":
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- d.Run(ctx) }()
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if _, err := os.Stat(cfg.API.Socket); err == nil {
				break
			}
			if time.Now().After(deadline) {
				return errors.New("API socket never appeared")
			}
		}
		cancel()
		return <-done
	default:
		return fmt.Errorf("unknown case %q", fault)
	}
	err = d.Run(context.Background())
	var se *StartError
	if !errors.As(err, &se) {
		return fmt.Errorf("Run = %v, want a StartError", err)
	}
	if se.Phase != "mld" || se.Interface != "ge2" || se.Errno() != "ENOPROTOOPT" {
		return fmt.Errorf("StartError %+v errno %q", se, se.Errno())
	}
	if _, err := os.Stat(cfg.API.Socket); !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("API socket: %v", err)
	}
	return nil
}

// mldFault is the kernel with the MLD socket replaced (when listen is set).
type mldFault struct {
	Kernel
	listen func(ifname string) (MLDConn, error)
}

func (f mldFault) ListenMLD(ifname string, ll netip.Addr, log *slog.Logger) (MLDConn, error) {
	if f.listen != nil {
		return f.listen(ifname)
	}
	return f.Kernel.ListenMLD(ifname, ll, log)
}
