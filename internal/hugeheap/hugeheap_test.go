package hugeheap

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"unsafe"
)

func TestParseMode(t *testing.T) {
	for in, want := range map[string]Mode{
		"always [madvise] never\n":                   Madvise,
		"[always] madvise never":                     Always,
		"always madvise [never]\n":                   Never,
		"always [inherit] madvise never\n":           Inherit,
		"always defer defer+madvise [madvise] never": Madvise,
	} {
		got, err := ParseMode(in)
		if err != nil || got != want {
			t.Errorf("ParseMode(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "always madvise never", "[] x"} {
		if m, err := ParseMode(in); err == nil {
			t.Errorf("ParseMode(%q) = %q, want an error", in, m)
		}
	}
}

// thpDir writes a THP settings directory: enabled, and when perSize is
// not "", hpage_pmd_size and hugepages-2048kB/enabled.
func thpDir(t *testing.T, enabled, perSize string) string {
	dir := t.TempDir()
	write := func(name, s string) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if enabled != "" {
		write("enabled", enabled)
	}
	if perSize != "" {
		write("hpage_pmd_size", "2097152")
		write("hugepages-2048kB/enabled", perSize)
	}
	return dir
}

func TestReadMode(t *testing.T) {
	for _, c := range []struct {
		enabled, perSize string
		want             Mode
	}{
		{"always [madvise] never", "", Madvise},                               // before Linux 6.8
		{"always [madvise] never", "always [inherit] madvise never", Madvise}, // this box
		{"always [madvise] never", "always inherit madvise [never]", Never},
		{"always madvise [never]", "always inherit [madvise] never", Madvise},
		{"[always] madvise never", "always [inherit] madvise never", Always},
	} {
		got, err := ReadMode(thpDir(t, c.enabled, c.perSize))
		if err != nil || got != c.want {
			t.Errorf("enabled %q, 2048kB %q: %q, %v; want %q", c.enabled, c.perSize, got, err, c.want)
		}
	}
	if _, err := ReadMode(thpDir(t, "", "")); err == nil {
		t.Error("no enabled file: want an error")
	}
}

func TestDecide(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	for _, c := range []struct {
		mode     Mode
		disabled bool
		env      func(string) string
		want     bool
		why      string
	}{
		{Madvise, false, env(), true, "madvise"},
		{Always, false, env(), false, "always"},
		{Never, false, env(), false, "never"},
		{"", false, env(), false, "not known"},
		{Madvise, false, env(DisableEnv, "1"), false, DisableEnv + "=1"},
		{Madvise, false, env(DisableEnv, "yes"), false, DisableEnv},
		{Madvise, false, env(DisableEnv, "0"), true, "madvise"},
		{Madvise, false, env("GODEBUG", "madvdontneed=1,disablethp=1"), false, "disablethp"},
		{Madvise, false, env("GODEBUG", "disablethp=1,disablethp=0"), true, "madvise"},
		{Madvise, true, env(), false, "PR_SET_THP_DISABLE"},
	} {
		got, why := Decide(c.mode, c.disabled, c.env)
		if got != c.want || !strings.Contains(why, c.why) {
			t.Errorf("Decide(%q, %v, %s=%q GODEBUG=%q) = %v %q; want %v, %q", c.mode, c.disabled, DisableEnv, c.env(DisableEnv), c.env("GODEBUG"), got, why, c.want, c.why)
		}
	}
}

const mapsText = `00400000-004ac000 r-xp 00000000 fe:00 10019698                           /tmp/go-build1981731580/b001/exe/p
00590000-0059b000 rw-p 00190000 fe:00 10019698                           /tmp/go build/exe/p with spaces
0059b000-005d1000 rw-p 00000000 00:00 0 
c2e24000000-c2e26400000 ---p 00000000 00:00 0 
c2e26400000-c2e36800000 rw-p 00000000 00:00 0 
c2e36800000-c2e38000000 ---p 00000000 00:00 0 
c4000000000-c4000400000 rw-p 00000000 00:00 0                            [anon: Go: heap]
7fbf22260000-7fbf22400000 rw-p 00000000 00:00 0                          [anon: Go: page summary]
7fbf68ea3000-7fbf68ea7000 r--p 00000000 00:00 0                          [vvar]
7ffece7f7000-7ffece818000 rw-p 00000000 00:00 0                          [stack]
`

func TestParseMaps(t *testing.T) {
	ms, err := ParseMaps(mapsText)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 10 {
		t.Fatalf("%d mappings, want 10", len(ms))
	}
	if m := ms[1]; m.Start != 0x590000 || m.End != 0x59b000 || m.Perms != "rw-p" || m.Offset != 0x190000 || m.Inode != 10019698 || m.Path != "/tmp/go build/exe/p with spaces" || m.Anonymous() {
		t.Errorf("file mapping: %+v", m)
	}
	if m := ms[4]; m.Start != 0xc2e26400000 || m.End != 0xc2e36800000 || m.Path != "" || !m.Anonymous() {
		t.Errorf("heap mapping: %+v", m)
	}
	if !ms[6].Anonymous() || ms[6].Path != "[anon: Go: heap]" || ms[9].Anonymous() {
		t.Errorf("named: %+v %+v", ms[6], ms[9])
	}
	for _, bad := range []string{"c2e24000000 ---p 00000000 00:00 0", "x-y rw-p 0 00:00 0", "1000-2000 rw-p 0", "2000-1000 rw-p 0 00:00 0"} {
		if _, err := ParseMaps(bad); err == nil {
			t.Errorf("ParseMaps(%q): want an error", bad)
		}
	}
}

func TestHeapMappings(t *testing.T) {
	ms, err := ParseMaps(mapsText)
	if err != nil {
		t.Fatal(err)
	}
	got := HeapMappings(ms, []uintptr{
		0xc2e26400000, 0xc2e367fffff, // two addresses in one mapping: once
		0xc2e24000010,  // in the reservation (PROT_NONE): not a heap mapping
		0x595000,       // a file's data
		0x7ffece800000, // the stack
	})
	if len(got) != 2 || got[0].Start != 0xc2e26400000 || got[1].Start != 0xc4000000000 {
		t.Fatalf("heap mappings: %+v", got)
	}
}

const smapsText = `c2e26400000-c2e36800000 rw-p 00000000 00:00 0 
Size:             266240 kB
Rss:                6144 kB
AnonHugePages:      4096 kB
THPeligible:           1
VmFlags: rd wr mr mw me ac sd hg 
7fbf22260000-7fbf22400000 rw-p 00000000 00:00 0                          [anon: Go: page summary]
Size:               1664 kB
Rss:                  12 kB
AnonHugePages:         0 kB
THPeligible:           0
VmFlags: rd wr mr mw me ac sd nh 
`

func TestParseSmaps(t *testing.T) {
	ss, err := ParseSmaps(smapsText)
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 2 {
		t.Fatalf("%d mappings", len(ss))
	}
	if s := ss[0]; s.Start != 0xc2e26400000 || s.Rss != 6144<<10 || s.AnonHugePages != 4096<<10 || !s.Eligible() {
		t.Errorf("heap: %+v", s)
	}
	if s := ss[1]; s.Path != "[anon: Go: page summary]" || s.Eligible() || s.VmFlags[len(s.VmFlags)-1] != "nh" {
		t.Errorf("summary: %+v", s)
	}
	if _, err := ParseSmaps("Rss: 4 kB\n"); err == nil {
		t.Error("a field before any mapping: want an error")
	}
}

// smapOf is the smaps entry of the mapping holding addr.
func smapOf(t *testing.T, addr uintptr) Smap {
	t.Helper()
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	ss, err := ParseSmaps(string(b))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range ss {
		if s.Start <= addr && addr < s.End {
			return s
		}
	}
	t.Fatalf("no mapping holds %#x", addr)
	return Smap{}
}

var keep []byte

// TestSetup runs Setup on this process: where THP is madvise, the heap's
// mappings must show the hg flag and THPeligible 1 afterwards, and so
// must a later allocation's.
func TestSetup(t *testing.T) {
	mode, err := ReadMode(SysDir)
	if err != nil {
		t.Skipf("no THP here: %v", err)
	}
	r := Setup(Options{Reserve: 128 << 20, Getenv: func(string) string { return "" }})
	t.Log(r)
	if mode != Madvise {
		if r.Applied {
			t.Fatalf("mode %s: applied", mode)
		}
		t.Skipf("THP is %s here: nothing to mark", mode)
	}
	if !r.Applied || r.Err != nil {
		t.Fatalf("not applied: %v", r)
	}
	if r.MarkedBytes < r.Reserve || r.EligibleBytes != r.MarkedBytes {
		t.Errorf("marked %d B, eligible %d B, reserve %d B", r.MarkedBytes, r.EligibleBytes, r.Reserve)
	}
	// The heap now grows into marked mappings: a 32 MiB object.
	var ru0, ru1 syscall.Rusage
	keep = make([]byte, 32<<20)
	s := smapOf(t, uintptr(unsafe.Pointer(&keep[0])))
	if !s.Eligible() {
		t.Fatalf("the mapping of a later allocation is not marked: %+v", s)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	_ = syscall.Getrusage(syscall.RUSAGE_THREAD, &ru0)
	for i := 0; i < len(keep); i += 4096 {
		keep[i] = 1
	}
	_ = syscall.Getrusage(syscall.RUSAGE_THREAD, &ru1)
	s = smapOf(t, uintptr(unsafe.Pointer(&keep[0])))
	// Not asserted: a fragmented machine may have no free 2 MiB page.
	t.Logf("touching 32 MiB (8192 pages of 4 KiB): %d page faults, mapping's AnonHugePages %d MiB", ru1.Minflt-ru0.Minflt, s.AnonHugePages>>20)
	keep = nil
}

func TestSetupDisabled(t *testing.T) {
	r := Setup(Options{Getenv: func(k string) string {
		if k == DisableEnv {
			return "1"
		}
		return ""
	}})
	if r.Applied || r.Reserve != 0 || !strings.Contains(r.String(), DisableEnv+"=1") {
		t.Errorf("%s=1: %+v", DisableEnv, r)
	}
}
