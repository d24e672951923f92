package hugeheap

import (
	"errors"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// anonMapping maps size bytes of fresh anonymous memory for the test.
func anonMapping(t *testing.T, size int) ([]byte, Mapping) {
	t.Helper()
	b, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Munmap(b) })
	start := uintptr(unsafe.Pointer(&b[0]))
	return b, Mapping{Start: start, End: start + uintptr(size), Perms: "rw-p"}
}

// resident is how many 4 KiB pages of b are resident (mincore).
func resident(t *testing.T, b []byte) int {
	t.Helper()
	vec := make([]byte, (len(b)+4095)/4096)
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Fatalf("mincore: %v", e)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
}

func TestPopulate(t *testing.T) {
	const size = 8 << 20
	b, m := anonMapping(t, size)
	b[size-1] = 7 // a page in use keeps its content
	if got := resident(t, b); got != 1 {
		t.Fatalf("%d pages resident before, want 1", got)
	}
	p := Populate([]Mapping{m}, 3<<20)
	if errors.Is(p.Err, unix.EINVAL) {
		t.Skipf("no MADV_POPULATE_WRITE (Linux 5.14): %v", p.Err)
	}
	if p.Err != nil {
		t.Fatal(p.Err)
	}
	if p.From != m.Start || p.Bytes() != 3<<20 {
		t.Fatalf("covered %#x+%d, want %#x+%d", p.From, p.Bytes(), m.Start, 3<<20)
	}
	if got := resident(t, b[:3<<20]); got != 768 {
		t.Fatalf("%d of 768 pages resident in the prefaulted range", got)
	}
	if got := resident(t, b[3<<20:]); got != 1 {
		t.Fatalf("%d pages resident past the range, want the 1 in use", got)
	}
	for i := 0; i < 3<<20; i += 4096 {
		if b[i] != 0 {
			t.Fatalf("byte %d is %d after the prefault, want 0", i, b[i])
		}
	}
	// Past the end: the mappings' size is the bound, not an error.
	p = Populate([]Mapping{m}, 64<<20)
	if p.Err != nil || p.Bytes() != size || p.Faults < 0 {
		t.Fatalf("beyond the mapping: %v", p)
	}
	if b[size-1] != 7 || resident(t, b) != size/4096 {
		t.Fatalf("content %d, resident %d", b[size-1], resident(t, b))
	}
	t.Log(p)
}

func TestPopulateUnmapped(t *testing.T) {
	_, m := anonMapping(t, 4<<20)
	if _, _, e := unix.Syscall(unix.SYS_MUNMAP, m.Start+2<<20, 2<<20, 0); e != 0 {
		t.Fatalf("munmap: %v", e)
	}
	p := Populate([]Mapping{m}, 4<<20)
	if errors.Is(p.Err, unix.EINVAL) {
		t.Skipf("no MADV_POPULATE_WRITE: %v", p.Err)
	}
	if p.Err == nil || !errors.Is(p.Err, unix.ENOMEM) || p.Bytes() != 2<<20 {
		t.Fatalf("populate over an unmapped half: %v, want ENOMEM after 2 MiB", p)
	}
}

func TestPrefaulter(t *testing.T) {
	if got := BatchBytes(MinPrefaultEntries - 1); got != 0 {
		t.Fatalf("BatchBytes of a small batch = %d", got)
	}
	if got := BatchBytes(100000); got != 100000*EntryBytes {
		t.Fatalf("BatchBytes(100000) = %d", got)
	}
	var nilp *Prefaulter
	if err := nilp.Start(1<<20, nil); err != nil {
		t.Fatalf("nil prefaulter: %v", err)
	}
	if (Result{}).Prefaulter() != nil {
		t.Fatal("a Result that marked nothing has a prefaulter")
	}
	const size = 16 << 20
	b, m := anonMapping(t, size)
	// 2 MiB are in use already: the prefault covers 4 MiB beyond them.
	pf := NewPrefaulter([]Mapping{m}, func() uint64 { return 2 << 20 })
	release := make(chan struct{})
	done := make(chan Populated, 1)
	if err := pf.Start(4<<20, func(p Populated) { <-release; done <- p }); err != nil {
		t.Fatal(err)
	}
	if err := pf.Start(4<<20, nil); !errors.Is(err, ErrBusy) {
		t.Fatalf("a second Start while one runs: %v, want ErrBusy", err)
	}
	close(release)
	var p Populated
	select {
	case p = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("prefault did not end")
	}
	if errors.Is(p.Err, unix.EINVAL) {
		t.Skipf("no MADV_POPULATE_WRITE: %v", p.Err)
	}
	if p.Err != nil || p.Bytes() != 6<<20 {
		t.Fatalf("prefault %v, want 6 MiB", p)
	}
	if got := resident(t, b[:6<<20]); got != 6<<8 {
		t.Fatalf("%d pages resident, want %d", got, 6<<8)
	}
	if got := resident(t, b[6<<20:]); got != 0 {
		t.Fatalf("%d pages resident past the prefault", got)
	}
	// Free again: the next Start runs (waited for: its goroutine must not
	// outlive the mapping).
	again := make(chan Populated, 1)
	deadline := time.Now().Add(5 * time.Second)
	for pf.Start(1<<20, func(p Populated) { again <- p }) != nil {
		if time.Now().After(deadline) {
			t.Fatal("still busy after the prefault ended")
		}
		time.Sleep(time.Millisecond)
	}
	if p := <-again; p.Err != nil || p.Bytes() != 3<<20 {
		t.Fatalf("second prefault %v, want 3 MiB", p)
	}
}
