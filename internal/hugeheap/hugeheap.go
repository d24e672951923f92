// Package hugeheap backs the Go heap with transparent huge pages where the
// kernel gives them only to memory that asks (THP "madvise" mode).
//
// Why: a standby's first RBS batch maps ~130 MiB of fresh heap (its ~70 MB
// of state and the batch's transients). On the Firecracker VMs hotcast is
// measured on, a 4 KiB page costs ~13 µs the first time it is mapped and
// touched (half of it in user time, after the fault: the hypervisor's own
// page tables), ~32 000 of them in that batch; with 2 MiB pages that cost
// goes (bench/rbs.md). The Go runtime (1.26) does not madvise its heap
// MADV_HUGEPAGE, and an madvise marks only the mappings that exist when it
// is made: a heap arena the runtime maps later is a new mapping without
// the flag. So Setup grows the heap once, at start, by a reserve
// (DefaultReserve), allocating a buffer it drops at once (fresh memory the
// runtime need not zero: no page of it is touched), marks the heap's
// read-write mappings MADV_HUGEPAGE, and gives the reserve back (a GC and
// debug.FreeOSMemory). The heap then grows into marked address space up to
// the reserve; beyond it, as before, 4 KiB pages.
//
// Nothing of the runtime changes but the flag on its own heap mappings:
// no runtime memory is unmapped, remapped or locked, and the scavenger
// still returns free pages (MADV_DONTNEED splits a huge page it cuts into).
// The costs: resident memory rounded up to 2 MiB where the heap is sparse
// (khugepaged may also collapse a 2 MiB range again after the scavenger
// freed part of it, max_ptes_none), and a fault that maps 2 MiB at once
// (bench/rbs.md measures both).
//
// Setup does nothing when THP is "always" (the heap gets huge pages
// unasked) or "never", when the process has THP disabled (prctl
// PR_SET_THP_DISABLE), when GODEBUG=disablethp=1, or when HOTCAST_NO_THP
// is set to anything but "" or "0". It never fails the caller: it returns
// what it did, and why not.
package hugeheap

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	// DisableEnv turns Setup off: HOTCAST_NO_THP=1.
	DisableEnv = "HOTCAST_NO_THP"
	// DefaultReserve is the heap Setup marks: the standby's heap with
	// the routes map full (131 072 entries, ~170 MiB of RSS in
	// bench/rbs.md) and the batch's transients. Address space only: no
	// page of it is resident until the heap uses it.
	DefaultReserve = 256 << 20
	// SysDir is where the kernel shows its THP settings.
	SysDir = "/sys/kernel/mm/transparent_hugepage"

	hugePage = 2 << 20
)

// Mode is a THP setting: the selected word of an "enabled" file.
type Mode string

const (
	Always  Mode = "always"
	Madvise Mode = "madvise"
	Never   Mode = "never"
	Inherit Mode = "inherit" // a per-size setting (hugepages-<size>kB): the top-level one
)

// ParseMode returns the selected mode of a THP "enabled" file, the word in
// brackets: "always [madvise] never" is Madvise.
func ParseMode(s string) (Mode, error) {
	for f := range strings.FieldsSeq(s) {
		if w, ok := strings.CutPrefix(f, "["); ok {
			if w, ok = strings.CutSuffix(w, "]"); ok && w != "" {
				return Mode(w), nil
			}
		}
	}
	return "", fmt.Errorf("no selected THP mode in %q", strings.TrimSpace(s))
}

// ReadMode is the mode of PMD-sized anonymous huge pages under dir
// (SysDir): dir/enabled, unless dir/hugepages-<PMD size>kB/enabled
// (Linux 6.8+) selects another than inherit.
func ReadMode(dir string) (Mode, error) {
	b, err := os.ReadFile(filepath.Join(dir, "enabled"))
	if err != nil {
		return "", err
	}
	top, err := ParseMode(string(b))
	if err != nil {
		return "", err
	}
	b, err = os.ReadFile(filepath.Join(dir, "hpage_pmd_size"))
	if err != nil {
		return top, nil // an older kernel: no per-size settings
	}
	pmd, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || pmd == 0 {
		return top, nil
	}
	b, err = os.ReadFile(filepath.Join(dir, fmt.Sprintf("hugepages-%dkB", pmd>>10), "enabled"))
	if err != nil {
		return top, nil
	}
	m, err := ParseMode(string(b))
	if err != nil || m == Inherit {
		return top, nil
	}
	return m, nil
}

// Decide says whether Setup marks the heap, and why (or why not): only in
// madvise mode, unless turned off (DisableEnv, GODEBUG=disablethp=1, or
// the process's THP disabled by prctl: processDisabled).
func Decide(mode Mode, processDisabled bool, getenv func(string) string) (bool, string) {
	if v := getenv(DisableEnv); v != "" && v != "0" {
		return false, DisableEnv + "=" + v
	}
	if godebug(getenv("GODEBUG"), "disablethp") == "1" {
		return false, "GODEBUG=disablethp=1"
	}
	if processDisabled {
		return false, "transparent huge pages are disabled for the process (prctl PR_SET_THP_DISABLE)"
	}
	switch mode {
	case Madvise:
		return true, "transparent huge pages are madvise: the heap asks for them"
	case Always:
		return false, "transparent huge pages are always: the heap gets them unasked"
	case Never:
		return false, "transparent huge pages are never"
	}
	return false, fmt.Sprintf("transparent huge page mode %q not known", mode)
}

// godebug is the value of key in a GODEBUG list (the last one wins, as in
// the runtime).
func godebug(list, key string) string {
	v := ""
	for kv := range strings.SplitSeq(list, ",") {
		if k, val, ok := strings.Cut(strings.TrimSpace(kv), "="); ok && k == key {
			v = val
		}
	}
	return v
}

// Options vary Setup; the zero value is what hotcastd uses.
type Options struct {
	Reserve uint64              // bytes of heap to mark; 0: DefaultReserve
	Dir     string              // THP settings; "": SysDir
	Getenv  func(string) string // "": os.Getenv
}

// Result is what Setup did.
type Result struct {
	Mode    Mode
	Applied bool   // the heap's mappings are marked MADV_HUGEPAGE
	Reason  string // why (or why not)
	Reserve uint64 // the heap was grown by this much
	Marked  []Mapping
	// MarkedBytes is the size of Marked; EligibleBytes the part of it
	// /proc/self/smaps shows THPeligible 1 and the hg flag for, after.
	MarkedBytes, EligibleBytes uint64
	Took                       time.Duration
	Faults                     int64 // minor page faults during Setup (the growth touches no page)
	Err                        error // a step failed: nothing or only part is marked
}

// String is the result for a log line.
func (r Result) String() string {
	if !r.Applied {
		s := "heap not marked for huge pages: " + r.Reason
		if r.Err != nil {
			s += ": " + r.Err.Error()
		}
		return s
	}
	s := fmt.Sprintf("heap marked for transparent huge pages: %d MiB in %d mappings (%d MiB eligible), reserve %d MiB, %s, %d page faults",
		r.MarkedBytes>>20, len(r.Marked), r.EligibleBytes>>20, r.Reserve>>20, r.Took.Round(time.Microsecond), r.Faults)
	if r.Err != nil {
		s += "; " + r.Reason + ": " + r.Err.Error()
	}
	return s
}

// Setup marks the Go heap MADV_HUGEPAGE when the kernel's THP mode is
// madvise (see the package comment). It is meant for start-up, before the
// heap holds much: it allocates and drops opts.Reserve bytes (untouched)
// and runs a GC. Its failure leaves the heap as the runtime made it.
func Setup(opts Options) (r Result) {
	start, f0 := time.Now(), minorFaults()
	defer func() { r.Took, r.Faults = time.Since(start), minorFaults()-f0 }()
	if opts.Dir == "" {
		opts.Dir = SysDir
	}
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	if opts.Reserve == 0 {
		opts.Reserve = DefaultReserve
	}
	mode, err := ReadMode(opts.Dir)
	r.Mode = mode
	if err != nil {
		r.Reason, r.Err = "cannot read the THP mode", err
		return r
	}
	disabled, err := unix.PrctlRetInt(unix.PR_GET_THP_DISABLE, 0, 0, 0, 0)
	if err != nil {
		disabled = 0 // not known: madvise tells
	}
	ok, why := Decide(mode, disabled == 1, opts.Getenv)
	r.Reason = why
	if !ok {
		return r
	}
	reserve := opts.Reserve
	if lim := debug.SetMemoryLimit(-1); lim != math.MaxInt64 && uint64(lim)/2 < reserve {
		reserve = uint64(lim) / 2 // a GOMEMLIMIT: stay well under it
	}
	reserve &^= hugePage - 1
	if reserve == 0 {
		r.Reason = "GOMEMLIMIT leaves no reserve"
		return r
	}
	r.Reserve = reserve
	marked, err := growAndMark(reserve)
	r.Marked = marked
	for _, m := range marked {
		r.MarkedBytes += uint64(m.End - m.Start)
	}
	if err != nil {
		r.Reason, r.Err = "marking the heap failed", err
	}
	r.Applied = len(marked) > 0
	if r.Applied {
		r.EligibleBytes, err = eligible(marked)
		if err != nil && r.Err == nil {
			r.Reason, r.Err = "marked, not checked", fmt.Errorf("read /proc/self/smaps: %w", err)
		}
	}
	return r
}

func minorFaults() int64 { return faults(unix.RUSAGE_SELF) }

// faults is the minor page faults of the process (RUSAGE_SELF) or the
// calling thread (RUSAGE_THREAD) so far.
func faults(who int) int64 {
	var ru unix.Rusage
	if unix.Getrusage(who, &ru) != nil {
		return 0
	}
	return ru.Minflt
}

// heapObject returns a small object on the heap (it escapes through the
// result of a function that is not inlined): growAndMark finds the
// heap's mapping from its address.
//
//go:noinline
func heapObject() *[64]byte { return new([64]byte) }

// growAndMark grows the heap by reserve bytes, marks every read-write
// anonymous mapping holding the heap MADV_HUGEPAGE, and frees the
// reserve again. It returns what it marked.
func growAndMark(reserve uint64) ([]Mapping, error) {
	anchor := heapObject() // the heap as it was, before the growth
	// A large object of fresh pages: the runtime does not zero them (the
	// kernel did), so the growth touches no page of it.
	buf := make([]byte, reserve)
	addrs := []uintptr{
		uintptr(unsafe.Pointer(anchor)),
		uintptr(unsafe.Pointer(&buf[0])),
		uintptr(unsafe.Pointer(&buf[len(buf)-1])),
	}
	defer func() {
		runtime.KeepAlive(anchor)
		runtime.KeepAlive(buf)
		buf = nil
		// The reserve back to the free heap, and its pages (never
		// touched) returned, so the runtime's retained memory is what
		// it was; the flag stays on the mappings.
		debug.FreeOSMemory()
	}()
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return nil, err
	}
	maps, err := ParseMaps(string(b))
	if err != nil {
		return nil, err
	}
	heap := HeapMappings(maps, addrs)
	if len(heap) == 0 {
		return nil, errors.New("no heap mapping in /proc/self/maps")
	}
	var marked []Mapping
	for _, m := range heap {
		if _, _, e := unix.Syscall(unix.SYS_MADVISE, m.Start, m.End-m.Start, unix.MADV_HUGEPAGE); e != 0 {
			return marked, fmt.Errorf("madvise %#x-%#x MADV_HUGEPAGE: %w", m.Start, m.End, e)
		}
		marked = append(marked, m)
	}
	return marked, nil
}

// eligible is how much of ms /proc/self/smaps shows hugepage-eligible and
// flagged hg.
func eligible(ms []Mapping) (uint64, error) {
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return 0, err
	}
	sm, err := ParseSmaps(string(b))
	if err != nil {
		return 0, err
	}
	var n uint64
	for _, s := range sm {
		if !s.Eligible() {
			continue
		}
		for _, m := range ms {
			lo, hi := max(s.Start, m.Start), min(s.End, m.End)
			if lo < hi {
				n += uint64(hi - lo)
			}
		}
	}
	return n, nil
}
