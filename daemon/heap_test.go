package daemon

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/hotcast/hotcast/internal/hugeheap"
	"golang.org/x/sys/unix"
)

// logBuf is a log destination the test reads while the daemon writes.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestRBSBatchBeginPrefaults: the daemon's RBS services tell it of a
// batch (rbs.Config.BatchBegin), and a batch big enough prefaults the
// heap it will take, BatchBytes of it past what is in use, on the
// prefaulter prepareHeap stored; a small batch, or no prefaulter (heap not
// marked), starts nothing.
func TestRBSBatchBeginPrefaults(t *testing.T) {
	const size = 16 << 20
	mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Munmap(mem) }) // after the prefault: it has logged
	start := uintptr(unsafe.Pointer(&mem[0]))
	var logs logBuf
	d := &Daemon{sys: newFakeMachine(t, newFakeNet(), 1), log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	y := fakeRouterYAML(t.TempDir(), "A", 120, "2001:db8:10::1", "2001:db8:10::2")
	cfg := loadYAML(t, y)
	c, err := d.rbsConfig(&cfg.Services[0], "A")
	if err != nil {
		t.Fatal(err)
	}
	if c.BatchBegin == nil {
		t.Fatal("the service's config has no BatchBegin hook")
	}

	c.BatchBegin(10, 100000) // no prefaulter yet: nothing, and no panic
	pf := hugeheap.NewPrefaulter([]hugeheap.Mapping{{Start: start, End: start + size, Perms: "rw-p"}}, nil)
	d.prefault.Store(pf)
	c.BatchBegin(10, hugeheap.MinPrefaultEntries-1) // too small: nothing
	c.BatchBegin(10, 10000)                         // 10000 KiB: 9 MiB and a part
	wait := func(what string) string {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			if s := logs.String(); strings.Contains(s, what) {
				return s
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %q in the log:\n%s", what, logs.String())
			}
			time.Sleep(time.Millisecond)
		}
	}
	s := wait("heap prefault")
	if strings.Contains(s, "stopped") && strings.Contains(s, "invalid argument") {
		t.Skipf("no MADV_POPULATE_WRITE (Linux 5.14): %s", s)
	}
	if n := strings.Count(s, "heap prefault"); n != 1 || !strings.Contains(s, `msg="heap prefaulted for a batch"`) ||
		!strings.Contains(s, "backup_id=10") || !strings.Contains(s, "entries=10000") || !strings.Contains(s, "prefaulted_mib=9 ") {
		t.Fatalf("want one prefault of 9 MiB for the 10000-entry batch, logged %d:\n%s", n, s)
	}
	// Every page of the batch's 10000 KiB is resident now, and none a
	// huge page (512 pages, where THP is "always") or more past it.
	vec := make([]byte, size/4096)
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, start, size, uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Fatalf("mincore: %v", e)
	}
	want := int(hugeheap.BatchBytes(10000) / 4096)
	for i, v := range vec {
		if in := v&1 == 1; (i < want && !in) || (i >= want+512 && in) {
			t.Fatalf("page %d resident %v, want the first %d pages", i, in, want)
		}
	}
}
