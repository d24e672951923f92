// Package labtest has the pieces of the privileged end-to-end tests: the
// hotcast binaries, a daemon running in a namespace, receivers counting
// with the sink program, and paced multicast streams.
package labtest

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotcast/hotcast/bpf/bpftest"
	"github.com/hotcast/hotcast/internal/inet"
	"github.com/hotcast/hotcast/internal/netnstest"
	"github.com/mdlayher/packet"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// Binaries returns the paths of hotcastd and hotcastctl, built into the
// test's temporary directory from the module being tested; with the race
// detector when the tests run with it (go test -race), and a daemon that
// reports a data race then fails its test.
func Binaries(t testing.TB) (hotcastd, hotcastctl string) {
	t.Helper()
	dir := t.TempDir()
	root := moduleRoot(t)
	for _, name := range []string{"hotcastd", "hotcastctl"} {
		args := []string{"build", "-o", filepath.Join(dir, name)}
		// Under -race the daemon is built with it. hotcastctl is not: a
		// race-built program sleeps 1 s at exit (GORACE atexit_sleep_ms),
		// and the tests read the daemon through hotcastctl, so every
		// timing they take would grow by a second per call.
		if raceBuild && name == "hotcastd" {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, "./cmd/"+name)...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", name, err, out)
		}
	}
	return filepath.Join(dir, "hotcastd"), filepath.Join(dir, "hotcastctl")
}

func moduleRoot(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

// Daemon is a hotcastd process in a namespace.
type Daemon struct {
	t       testing.TB
	NS      *netnstest.NS
	bin     string
	ctl     string
	Config  string // path of the YAML
	Socket  string
	PinPath string
	cmd     *exec.Cmd
	log     *SyncBuffer
	done    chan error
}

// StartDaemon writes yaml (with %SOCKET% and %PIN% replaced by unique
// paths) and runs hotcastd in ns until the test ends; then it is stopped
// and --cleanup removes its pins, also when the test failed.
func StartDaemon(t testing.TB, ns *netnstest.NS, hotcastd, hotcastctl, yaml string) *Daemon {
	t.Helper()
	dir := t.TempDir()
	id := netnstest.UniqueName("t")
	d := &Daemon{
		t: t, NS: ns, bin: hotcastd, ctl: hotcastctl,
		Config:  filepath.Join(dir, "hotcast.yaml"),
		Socket:  filepath.Join(dir, "api.sock"),
		PinPath: "/sys/fs/bpf/hotcast/" + id,
	}
	yaml = strings.NewReplacer("%SOCKET%", d.Socket, "%PIN%", d.PinPath).Replace(yaml)
	if err := os.WriteFile(d.Config, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.Stop()
		out, err := ns.Command(context.Background(), d.bin, "--config", d.Config, "--cleanup").CombinedOutput()
		if err != nil {
			t.Errorf("hotcastd --cleanup: %v\n%s", err, out)
		}
		if strings.Contains(d.log.String(), "WARNING: DATA RACE") {
			t.Errorf("hotcastd reported a data race")
		}
		if t.Failed() {
			t.Logf("hotcastd log:\n%s", d.log.String())
		}
	})
	d.Start()
	return d
}

// Start runs the daemon and waits until its API answers.
func (d *Daemon) Start() {
	d.t.Helper()
	if d.log == nil {
		d.log = &SyncBuffer{}
	}
	d.cmd = d.NS.Command(context.Background(), d.bin, "--config", d.Config, "--log-level", "debug")
	if raceBuild {
		// No 1 s sleep at exit: restart tests time the daemon's stop.
		d.cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0")
	}
	d.cmd.Stdout = d.log
	d.cmd.Stderr = d.log
	if err := d.cmd.Start(); err != nil {
		d.t.Fatalf("start hotcastd: %v", err)
	}
	d.done = make(chan error, 1)
	go func(c *exec.Cmd, ch chan error) { ch <- c.Wait() }(d.cmd, d.done)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := d.CtlErr("display", "multicast", "forwarding-table", "--json"); err == nil {
			return
		}
		select {
		case err := <-d.done:
			d.cmd = nil
			d.t.Fatalf("hotcastd exited at start: %v\n%s", err, d.log.String())
		default:
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("hotcastd API not up\n%s", d.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Reload rewrites the daemon's configuration (same placeholders as
// StartDaemon) and sends SIGHUP.
func (d *Daemon) Reload(yaml string) {
	d.t.Helper()
	yaml = strings.NewReplacer("%SOCKET%", d.Socket, "%PIN%", d.PinPath).Replace(yaml)
	if err := os.WriteFile(d.Config, []byte(yaml), 0o600); err != nil {
		d.t.Fatal(err)
	}
	if d.cmd == nil {
		d.t.Fatal("reload: hotcastd not running")
	}
	if err := d.cmd.Process.Signal(unix.SIGHUP); err != nil {
		d.t.Fatalf("reload: %v", err)
	}
}

// Stop sends SIGTERM and waits for the daemon to exit.
func (d *Daemon) Stop() {
	if d.cmd == nil {
		return
	}
	_ = d.cmd.Process.Signal(unix.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.done
		d.t.Errorf("hotcastd ignored SIGTERM for 10s")
	}
	d.cmd = nil
}

// Kill stops the daemon with SIGKILL (a crash).
func (d *Daemon) Kill() {
	if d.cmd == nil {
		return
	}
	_ = d.cmd.Process.Kill()
	<-d.done
	d.cmd = nil
}

// SetBinary makes the next Start, and the clean-up at the end of the test,
// run the hotcastd at path: an upgrade (or downgrade) on the same pins and
// configuration.
func (d *Daemon) SetBinary(hotcastd string) { d.bin = hotcastd }

// Log returns what the daemon logged so far.
func (d *Daemon) Log() string { return d.log.String() }

// SyncBuffer is a bytes.Buffer one goroutine writes (a daemon's output) while a
// test reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// CtlErr runs hotcastctl against the daemon.
func (d *Daemon) CtlErr(args ...string) ([]byte, error) {
	all := append([]string{"--socket", d.Socket}, args...)
	return exec.Command(d.ctl, all...).CombinedOutput()
}

// Ctl runs hotcastctl and fails the test on error.
func (d *Daemon) Ctl(args ...string) []byte {
	d.t.Helper()
	out, err := d.CtlErr(args...)
	if err != nil {
		d.t.Fatalf("hotcastctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// CtlJSON runs hotcastctl ... --json and decodes into v.
func (d *Daemon) CtlJSON(v any, args ...string) {
	d.t.Helper()
	out := d.Ctl(append(args, "--json")...)
	if err := json.Unmarshal(out, v); err != nil {
		d.t.Fatalf("decode %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// Receiver is a host end counting routed multicast with a pass-mode sink
// (which also lets the veth receive XDP-redirected frames).
type Receiver struct {
	Link *netnstest.Link
	Sink *bpftest.Sink
}

// NewReceiver attaches a sink to l in its namespace.
func NewReceiver(t testing.TB, l *netnstest.Link) *Receiver {
	t.Helper()
	r := &Receiver{Link: l}
	l.NS.Do(t, func() error {
		s, err := bpftest.AttachSink(l.Index, false)
		r.Sink = s
		return err
	})
	t.Cleanup(func() { r.Sink.Close() })
	return r
}

// Count returns the frames of group g seen so far.
func (r *Receiver) Count(t testing.TB, g netip.Addr) uint64 {
	t.Helper()
	m, err := r.Sink.Counts()
	if err != nil {
		t.Fatal(err)
	}
	return m[g]
}

// Stream sends UDP/IPv6 multicast frames from a link at a steady rate.
// Each payload carries a sequence number.
type Stream struct {
	sent atomic.Uint64
	stop chan struct{}
	done chan struct{}
}

// Frame builds an Ethernet/IPv6/UDP multicast frame with payload.
func Frame(srcMAC net.HardwareAddr, src, grp netip.Addr, hopLimit uint8, payload []byte) []byte {
	g := grp.As16()
	b := []byte{0x33, 0x33, g[12], g[13], g[14], g[15]}
	b = append(b, srcMAC...)
	b = append(b, 0x86, 0xdd, 0x60, 0, 0, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(8+len(payload)))
	b = append(b, 17, hopLimit)
	s := src.As16()
	b = append(b, s[:]...)
	b = append(b, g[:]...)
	b = binary.BigEndian.AppendUint16(b, 5000)
	b = binary.BigEndian.AppendUint16(b, 5001)
	b = binary.BigEndian.AppendUint16(b, uint16(8+len(payload)))
	b = append(b, 0, 0) // checksum filled below
	b = append(b, payload...)
	sum := inet.UDPChecksum(src, grp, b[54:])
	binary.BigEndian.PutUint16(b[54+6:], sum)
	return b
}

// StartStream sends pps frames per second per group from l until Stop.
func StartStream(t testing.TB, l *netnstest.Link, src netip.Addr, groups []netip.Addr, pps int) *Stream {
	t.Helper()
	var c *packet.Conn
	l.NS.Do(t, func() error {
		ifi, err := net.InterfaceByIndex(l.Index)
		if err != nil {
			return err
		}
		c, err = packet.Listen(ifi, packet.Raw, unix.ETH_P_ALL, nil)
		return err
	})
	s := &Stream{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer c.Close()
		// Send what is due by elapsed time (a ticker alone cannot keep
		// thousands of ticks per second: it drops them).
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		start := time.Now()
		var seq uint64
		for {
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
			due := uint64(time.Since(start).Seconds() * float64(pps))
			for seq < due {
				seq++
				payload := binary.BigEndian.AppendUint64(nil, seq)
				for _, g := range groups {
					f := Frame(l.MAC, src, g, 64, payload)
					_, _ = c.WriteTo(f, &packet.Addr{HardwareAddr: f[:6]})
				}
				s.sent.Add(1)
			}
		}
	}()
	t.Cleanup(func() { s.Stop() })
	return s
}

// Sent returns how many frames per group were sent so far.
func (s *Stream) Sent() uint64 { return s.sent.Load() }

// Stop ends the stream and returns how many frames it sent per group.
func (s *Stream) Stop() uint64 {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
	return s.sent.Load()
}

// Eventually polls cond until it holds or timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Sprintf is fmt.Sprintf, for building YAML in tests.
func Sprintf(format string, a ...any) string { return fmt.Sprintf(format, a...) }

// GapMeter records, per group, the arrival of each sequence number sent by
// a Stream, read from an AF_PACKET socket on a host link: the longest gap
// between consecutive arrivals, duplicates and totals.
type GapMeter struct {
	conn *packet.Conn
	done chan struct{}

	mu     sync.Mutex
	groups map[netip.Addr]*gapStats
	since  time.Time
}

type gapStats struct {
	last    time.Time
	lastSeq uint64
	maxGap  time.Duration
	gapAt   time.Time
	maxSeq  uint64 // highest sequence seen
	maxLoss uint64 // longest run of sequence numbers never seen
	lossAt  time.Time
	seen    map[uint64]bool
	dups    uint64
	got     uint64
}

// GapReport is what a GapMeter saw of one group.
type GapReport struct {
	Received   uint64
	Duplicates uint64
	// MaxGap is the longest time between two arrivals, as the reader saw
	// them: the router's outage, but also any pause of the sender or of
	// the reader (both run in the test process).
	MaxGap   time.Duration
	MaxGapAt time.Time // arrival that ended the longest gap
	// MaxLoss is the longest run of consecutive sequence numbers that
	// never arrived: frames the network lost, which is what a receiver
	// notices. A pause of the sender loses nothing (it catches up), a
	// pause of the reader neither (the socket buffers).
	MaxLoss   uint64
	MaxLossAt time.Time // arrival that ended the longest loss
}

// LossGap is MaxLoss as time at pps frames per second per group.
func (r GapReport) LossGap(pps int) time.Duration {
	return time.Duration(r.MaxLoss) * time.Second / time.Duration(pps)
}

// NewGapMeter starts reading on l until the test ends.
func NewGapMeter(t testing.TB, l *netnstest.Link) *GapMeter {
	t.Helper()
	m := &GapMeter{done: make(chan struct{}), groups: map[netip.Addr]*gapStats{}}
	l.NS.Do(t, func() error {
		ifi, err := net.InterfaceByIndex(l.Index)
		if err != nil {
			return err
		}
		m.conn, err = packet.Listen(ifi, packet.Raw, unix.ETH_P_IPV6, nil)
		return err
	})
	go m.run()
	t.Cleanup(func() {
		m.conn.Close()
		<-m.done
	})
	return m
}

func (m *GapMeter) run() {
	defer close(m.done)
	buf := make([]byte, 2048)
	for {
		n, _, err := m.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		now := time.Now()
		// Ethernet 14 + IPv6 40 + UDP 8 + sequence 8.
		if n < 70 || buf[20] != 17 || buf[38] != 0xff {
			continue
		}
		g := netip.AddrFrom16([16]byte(buf[38:54]))
		seq := binary.BigEndian.Uint64(buf[62:70])
		m.mu.Lock()
		st := m.groups[g]
		if st == nil {
			st = &gapStats{seen: map[uint64]bool{}}
			m.groups[g] = st
		}
		if st.seen[seq] {
			st.dups++
		} else {
			st.seen[seq] = true
			st.got++
			if !st.last.IsZero() {
				if gap := now.Sub(st.last); gap > st.maxGap {
					st.maxGap, st.gapAt = gap, now
				}
			}
			st.last, st.lastSeq = now, seq
			if seq > st.maxSeq {
				if st.maxSeq > 0 {
					if miss := seq - st.maxSeq - 1; miss > st.maxLoss {
						st.maxLoss, st.lossAt = miss, now
					}
				}
				st.maxSeq = seq
			}
		}
		m.mu.Unlock()
	}
}

// Report returns what was seen of group g.
func (m *GapMeter) Report(g netip.Addr) GapReport {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.groups[g]
	if st == nil {
		return GapReport{}
	}
	return GapReport{Received: st.got, Duplicates: st.dups, MaxGap: st.maxGap, MaxGapAt: st.gapAt, MaxLoss: st.maxLoss, MaxLossAt: st.lossAt}
}

// Settle waits until no frame has arrived for quiet (the last frames in
// flight are counted), at most timeout.
func (m *GapMeter) Settle(quiet, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		m.mu.Lock()
		var last time.Time
		for _, st := range m.groups {
			if st.last.After(last) {
				last = st.last
			}
		}
		m.mu.Unlock()
		if time.Since(last) >= quiet {
			return
		}
		time.Sleep(quiet / 4)
	}
}

// Reset forgets everything seen so far.
func (m *GapMeter) Reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.groups = map[netip.Addr]*gapStats{}
}

// Join makes the host of link l join group g (from source src, or any
// source when src is invalid) through its own kernel stack, which then
// sends the MLD reports itself. The membership lasts until the returned
// leave function is called or the test ends.
func Join(t testing.TB, l *netnstest.Link, g, src netip.Addr) (leave func()) {
	t.Helper()
	var c net.PacketConn
	l.NS.Do(t, func() error {
		var err error
		c, err = net.ListenPacket("udp6", "[::]:0")
		if err != nil {
			return err
		}
		pc := ipv6.NewPacketConn(c)
		ifi := &net.Interface{Index: l.Index, Name: l.Name}
		if src.IsValid() {
			return pc.JoinSourceSpecificGroup(ifi, &net.UDPAddr{IP: g.AsSlice()}, &net.UDPAddr{IP: src.AsSlice()})
		}
		return pc.JoinGroup(ifi, &net.UDPAddr{IP: g.AsSlice()})
	})
	var once sync.Once
	leave = func() { once.Do(func() { c.Close() }) }
	t.Cleanup(leave)
	return leave
}
