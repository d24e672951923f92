package hugeheap

import (
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Prefaulting: a standby told that a batch of n entries begins (RBS
// BatchBegin) makes the heap it is about to grow into resident at once,
// on a goroutine of its own, while the entries are still on the wire and
// the import runs on the other CPU. On the VMs hotcast is measured on,
// memory the guest has not touched for a few seconds costs ~2 ms per MiB
// the first time (the host backs it again: bench/rbs.md), ~0.2 s for a
// 100 000-entry batch's heap, which the batch otherwise pays inline.
//
// MADV_POPULATE_WRITE (Linux 5.14) faults pages in writable without
// writing them: a page the runtime uses is left as it is, a free one stays
// zero, which is what the runtime assumes of memory it has released. What
// the runtime never grows into stays resident while the runtime counts it
// released; BatchBytes bounds that to the batch's own size.

const (
	// EntryBytes is the heap a standby grows by per entry of a batch:
	// ~1.15 KiB in bench/rbs.md (state ~0.7 KiB and the batch's
	// transients), taken a little low so that the prefault does not run
	// far past what the batch uses.
	EntryBytes = 1 << 10
	// MinPrefaultEntries is the smallest batch worth a prefault: below, the
	// batch's fresh memory costs less than ~20 ms.
	MinPrefaultEntries = 8192
)

// BatchBytes is how much heap to prefault for a batch of n entries: 0 for
// a small one.
func BatchBytes(n int) uint64 {
	if n < MinPrefaultEntries {
		return 0
	}
	return uint64(n) * EntryBytes
}

// Populated is what a prefault did.
type Populated struct {
	From, To uintptr // the range covered (within the marked mappings)
	Took     time.Duration
	Faults   int64 // the thread's minor faults: 2 MiB or 4 KiB pages mapped
	Err      error
}

// Bytes is the size of the range covered.
func (p Populated) Bytes() uint64 { return uint64(p.To - p.From) }

func (p Populated) String() string {
	s := fmt.Sprintf("%d MiB of heap prefaulted in %s (%d page faults)", p.Bytes()>>20, p.Took.Round(time.Microsecond), p.Faults)
	if p.Err != nil {
		s += ": " + p.Err.Error()
	}
	return s
}

// Populate makes the first bytes of the mappings ms resident, in their
// order, 2 MiB per call (MADV_POPULATE_WRITE). It stops at the first
// error (EINVAL before Linux 5.14, ENOMEM where nothing is mapped).
func Populate(ms []Mapping, bytes uint64) (p Populated) {
	runtime.LockOSThread() // the thread's faults are the prefault's
	defer runtime.UnlockOSThread()
	start, f0 := time.Now(), faults(unix.RUSAGE_THREAD)
	defer func() { p.Took, p.Faults = time.Since(start), faults(unix.RUSAGE_THREAD)-f0 }()
	left := uintptr(min(bytes, uint64(^uintptr(0)>>1)))
	for _, m := range ms {
		for a := m.Start; a < m.End && left > 0; {
			n := min(hugePage-a%hugePage, m.End-a, left) // aligned steps: one huge page each
			if _, _, e := unix.Syscall(unix.SYS_MADVISE, a, n, unix.MADV_POPULATE_WRITE); e != 0 {
				p.Err = fmt.Errorf("madvise %#x+%d MADV_POPULATE_WRITE: %w", a, n, e)
				return p
			}
			if p.From == 0 {
				p.From = a
			}
			a += n
			p.To = a
			left -= n
		}
	}
	return p
}

// Prefaulter runs one prefault at a time in the background over the
// marked heap (Result.Prefaulter).
type Prefaulter struct {
	marked []Mapping
	// inUse is the heap in use now (HeapInuse), which the batch's
	// bytes come on top of.
	inUse func() uint64
	busy  atomic.Bool
}

// ErrBusy is what Start answers while a prefault runs.
var ErrBusy = errors.New("hugeheap: a prefault runs")

// Prefaulter returns the prefaulter of the heap r marked, or nil when r
// marked nothing (a nil Prefaulter starts nothing).
func (r Result) Prefaulter() *Prefaulter {
	if !r.Applied || len(r.Marked) == 0 {
		return nil
	}
	return NewPrefaulter(r.Marked, heapInUse)
}

// NewPrefaulter returns a prefaulter of ms, the heap's marked mappings;
// inUse tells how much of them is resident already (nil: nothing).
func NewPrefaulter(ms []Mapping, inUse func() uint64) *Prefaulter {
	if inUse == nil {
		inUse = func() uint64 { return 0 }
	}
	return &Prefaulter{marked: ms, inUse: inUse}
}

// heapInUse is the runtime's heap in spans in use. Not the retained heap
// (HeapSys - HeapReleased): its free part is what the batch takes first,
// and counting it would prefault that much too far.
func heapInUse() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// Start prefaults, on a goroutine of its own, the marked heap up to bytes
// beyond what the heap has in use now, from the lowest address (the runtime's
// page allocator takes the lowest free pages first). done, if not nil, is
// called with what it did. Start does not wait: it returns ErrBusy while
// an earlier prefault runs, nil for bytes 0 or a nil p.
func (p *Prefaulter) Start(bytes uint64, done func(Populated)) error {
	if p == nil || bytes == 0 {
		return nil
	}
	if !p.busy.CompareAndSwap(false, true) {
		return ErrBusy
	}
	go func() {
		defer p.busy.Store(false)
		r := Populate(p.marked, p.inUse()+bytes)
		if done != nil {
			done(r)
		}
	}()
	return nil
}
