package e2evrrp

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hotcast/hotcast/internal/labtest"
	"github.com/hotcast/hotcast/internal/netnstest"
)

// keepalivedConf is one VRRPv3 IPv6 instance on eth0 with the same
// virtual-address list as the hotcast routers, link-local first (RFC 9568
// §5.2.9; keepalived flaps against peers with another list). A notify
// script appends "STATE unix-nanoseconds" to a file on every change.
// Parameters: router id, VRID, priority, advert interval, extra lines,
// notify script, the two virtual addresses.
const keepalivedConf = `
global_defs {
  router_id %s
  vrrp_version 3
  script_user root
}
vrrp_instance VI_1 {
  state BACKUP
  interface eth0
  virtual_router_id %d
  priority %d
  advert_int %s
  native_ipv6
%s
  notify %s
  virtual_ipaddress {
    %s/64
    %s/64
  }
}
`

// keepalived is a keepalived process (VRRP subsystem only, not forking)
// inside a namespace.
type keepalived struct {
	t                      *testing.T
	ns                     *netnstest.NS
	conf, pid, vpid, notif string
	cmd                    *exec.Cmd
	log                    *labtest.SyncBuffer
	done                   chan struct{}
}

// kaState is one line of the notify file.
type kaState struct {
	State string
	At    time.Time
}

// startKeepalived writes the configuration and runs
// "keepalived -P -n -l -D -G -R -f CONF -p PID -r VRRP_PID" in ns until the
// test ends: VRID 1 with the lab's virtual addresses. extra is added to the
// instance block.
func startKeepalived(t *testing.T, ns *netnstest.NS, prio int, advInt, extra string) *keepalived {
	t.Helper()
	return startKeepalivedGroup(t, ns, 1, prio, advInt, extra, vipLL, vipGlobal)
}

// startKeepalivedGroup is startKeepalived for group vrid with the virtual
// addresses ll (link-local) and global.
func startKeepalivedGroup(t *testing.T, ns *netnstest.NS, vrid, prio int, advInt, extra, ll, global string) *keepalived {
	t.Helper()
	if _, err := exec.LookPath("keepalived"); err != nil {
		t.Skip("keepalived not installed (make deps-test)")
	}
	dir := t.TempDir()
	k := &keepalived{
		t: t, ns: ns, log: &labtest.SyncBuffer{}, done: make(chan struct{}),
		conf:  filepath.Join(dir, "keepalived.conf"),
		pid:   filepath.Join(dir, "keepalived.pid"),
		vpid:  filepath.Join(dir, "vrrp.pid"),
		notif: filepath.Join(dir, "states"),
	}
	script := filepath.Join(dir, "notify.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"$3 $(date +%s%N)\" >> "+k.notif+"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(keepalivedConf, netnstest.UniqueName("ka"), vrid, prio, advInt, extra, script, ll, global)
	if err := os.WriteFile(k.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	// -R: a killed VRRP child is not respawned (the parent exits).
	k.cmd = ns.Command(context.Background(), "keepalived", "-P", "-n", "-l", "-D", "-G", "-R",
		"-f", k.conf, "-p", k.pid, "-r", k.vpid)
	k.cmd.Stdout, k.cmd.Stderr = k.log, k.log
	if err := k.cmd.Start(); err != nil {
		t.Fatalf("start keepalived: %v", err)
	}
	go func() {
		_ = k.cmd.Wait()
		close(k.done)
	}()
	t.Cleanup(func() {
		k.stop()
		if t.Failed() || os.Getenv("HC_KA_LOG") != "" {
			t.Logf("keepalived log:\n%s", k.log.String())
		}
	})
	labtest.Eventually(t, 10*time.Second, "keepalived VRRP child up", func() bool {
		return k.childPID() > 0 && len(k.states()) > 0
	})
	return k
}

// childPID returns the VRRP child's pid when it is a live keepalived
// process, else 0.
func (k *keepalived) childPID() int {
	b, err := os.ReadFile(k.vpid)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0
	}
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil || strings.TrimSpace(string(comm)) != "keepalived" {
		return 0
	}
	return pid
}

// killVRRP SIGKILLs the VRRP child (a crash: no priority 0 advert) and
// returns the time just before.
func (k *keepalived) killVRRP() time.Time {
	k.t.Helper()
	pid := k.childPID()
	if pid == 0 {
		k.t.Fatal("keepalived VRRP child not running")
	}
	at := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		k.t.Fatalf("kill keepalived vrrp child %d: %v", pid, err)
	}
	return at
}

// stop ends keepalived: SIGTERM to the parent we started, then SIGKILL to
// it and to its VRRP child if they linger.
func (k *keepalived) stop() {
	child := k.childPID()
	select {
	case <-k.done:
	default:
		_ = k.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-k.done:
		case <-time.After(5 * time.Second):
			_ = k.cmd.Process.Kill()
			<-k.done
		}
	}
	if child != 0 && k.childPID() == child {
		_ = syscall.Kill(child, syscall.SIGKILL)
		for i := 0; i < 100 && k.childPID() == child; i++ {
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// states returns the notify file's lines.
func (k *keepalived) states() []kaState {
	b, err := os.ReadFile(k.notif)
	if err != nil {
		return nil
	}
	var out []kaState
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		ns, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		out = append(out, kaState{State: f[0], At: time.Unix(0, ns)})
	}
	return out
}

// state returns keepalived's current state (MASTER, BACKUP, FAULT, STOP).
func (k *keepalived) state() string {
	s := k.states()
	if len(s) == 0 {
		return ""
	}
	return s[len(s)-1].State
}

// lastTo returns when keepalived last entered state.
func (k *keepalived) lastTo(state string) (time.Time, bool) {
	s := k.states()
	for i := len(s) - 1; i >= 0; i-- {
		if s[i].State == state {
			return s[i].At, true
		}
	}
	return time.Time{}, false
}

// countTo returns how often keepalived entered state.
func (k *keepalived) countTo(state string) int {
	n := 0
	for _, s := range k.states() {
		if s.State == state {
			n++
		}
	}
	return n
}

// waitKA polls keepalived's notify file until it reports want.
func waitKA(t *testing.T, k *keepalived, want string, timeout time.Duration) {
	t.Helper()
	labtest.Eventually(t, timeout, "keepalived "+want, func() bool { return k.state() == want })
}

// kaMasterDown is keepalived's Master_Down_Interval for priority prio and
// advert interval adv (RFC 9568 §6.1; keepalived computes the skew in
// microseconds, not centiseconds).
func kaMasterDown(prio int, adv time.Duration) time.Duration {
	return 3*adv + time.Duration(256-prio)*adv/256
}

// wantLogClean fails when keepalived logged a complaint about a received
// advert (checksum, TTL/hop limit, address list, version, ...).
func (k *keepalived) wantLogClean(t *testing.T) {
	t.Helper()
	for _, line := range strings.Split(k.log.String(), "\n") {
		low := strings.ToLower(line)
		for _, bad := range []string{"invalid", "mismatch", "not present", "checksum", "wrong", "ttl", "hop limit", "error"} {
			if strings.Contains(low, bad) {
				t.Errorf("keepalived: %s", line)
				break
			}
		}
	}
}
