package main

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is a child process the harness started and must stop.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  bytes.Buffer
	done chan error
}

func startProc(name string, cmd *exec.Cmd) (*proc, error) {
	p := &proc{name: name, cmd: cmd, done: make(chan error, 1)}
	cmd.Stdout = &p.out
	cmd.Stderr = &p.out
	// Own process group: a Ctrl-C on the terminal reaches the harness,
	// which stops its children itself, in order. (No Pdeathsig: it fires
	// when the forking OS thread exits, and the harness's namespace
	// threads exit by design.)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() { p.done <- cmd.Wait() }()
	return p, nil
}

// exited reports whether the process is gone, with its error.
func (p *proc) exited() (bool, error) {
	select {
	case err := <-p.done:
		p.done <- err
		return true, err
	default:
		return false, nil
	}
}

// stop sends sig to the process group (trafgen forks its workers), waits
// up to grace, then kills the group. It returns the output.
func (p *proc) stop(sig syscall.Signal, grace time.Duration) string {
	if done, _ := p.exited(); !done {
		_ = syscall.Kill(-p.cmd.Process.Pid, sig)
		select {
		case err := <-p.done:
			p.done <- err
		case <-time.After(grace):
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			err := <-p.done
			p.done <- err
		}
	}
	// Stragglers in the group (a worker whose parent already exited).
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	return p.out.String()
}

// startTrafgen runs trafgen in ns, pinned to cpu (-1: not pinned), sending
// the configured frame out of dev as fast as it can.
func startTrafgen(ns *namedNS, dev, conf string, cpu int, extra []string) (*proc, error) {
	args := []string{"--dev", dev, "--conf", conf, "--no-sock-mem", "-Q", "-q", "-P", "1", "-C"}
	args = append(args, extra...)
	var cmd *exec.Cmd
	if cpu >= 0 {
		cmd = ns.command("taskset", append([]string{"-c", strconv.Itoa(cpu), "trafgen"}, args...)...)
	} else {
		cmd = ns.command("trafgen", args...)
	}
	return startProc("trafgen", cmd)
}

// smcroute is an smcrouted instance driving the router namespace's ip6mr
// (it sets mc_forwarding by opening the multicast routing socket).
type smcroute struct {
	p    *proc
	sock string
}

// startSmcroute runs smcrouted in ns with a configuration that enables only
// the listed interfaces and installs the one (S,G) route, then waits until
// the kernel holds it.
func startSmcroute(ns *namedNS, dir, ident string, iif string, oifs []string, src, grp string) (*smcroute, error) {
	var conf strings.Builder
	for _, i := range append([]string{iif}, oifs...) {
		fmt.Fprintf(&conf, "phyint %s enable\n", i)
	}
	fmt.Fprintf(&conf, "mroute from %s source %s group %s to %s\n", iif, src, grp, strings.Join(oifs, " "))
	cf := filepath.Join(dir, ident+".conf")
	if err := os.WriteFile(cf, []byte(conf.String()), 0o600); err != nil {
		return nil, fmt.Errorf("write smcroute config: %w", err)
	}
	s := &smcroute{sock: filepath.Join(dir, ident+".sock")}
	p, err := startProc("smcrouted", ns.command("smcrouted", "-n", "-N", "-i", ident, "-u", s.sock,
		"-f", cf, "-P", filepath.Join(dir, ident+".pid"), "-l", "notice"))
	if err != nil {
		return nil, err
	}
	s.p = p
	// Wait for the (S,G) entry in the kernel's cache.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var have bool
		err := ns.run(func() error {
			b, err := os.ReadFile("/proc/thread-self/net/ip6_mr_cache")
			if err != nil {
				return err
			}
			have = bytes.Contains(b, []byte(compact6(grp)))
			return nil
		})
		if err == nil && have {
			return s, nil
		}
		if done, werr := p.exited(); done {
			return nil, fmt.Errorf("smcrouted exited (%v): %s", werr, p.out.String())
		}
		if time.Now().After(deadline) {
			out := s.stop()
			return nil, errors.Join(fmt.Errorf("smcrouted did not install the route in 10s: %s", out), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *smcroute) stop() string { return s.p.stop(syscall.SIGTERM, 3*time.Second) }

// compact6 renders an IPv6 address as /proc/net/ip6_mr_cache does (%pI6:
// eight groups of four hex digits).
func compact6(a string) string {
	ip, err := parseAddr(a)
	if err != nil {
		return a
	}
	b := ip.As16()
	var parts []string
	for i := 0; i < 16; i += 2 {
		parts = append(parts, fmt.Sprintf("%02x%02x", b[i], b[i+1]))
	}
	return strings.Join(parts, ":")
}

func lookPath(name string) (string, error) { return exec.LookPath(name) }

// execOut runs a command in the harness's own namespace.
func execOut(name string, args ...string) ([]byte, error) {
	return exec.Command(name, args...).CombinedOutput()
}

func parseAddr(s string) (netip.Addr, error) { return netip.ParseAddr(s) }
