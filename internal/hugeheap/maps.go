package hugeheap

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Mapping is one line of /proc/<pid>/maps: [Start, End) with its
// permissions ("rw-p"), offset, inode and path ("" for anonymous memory,
// "[anon: name]" for a named one).
type Mapping struct {
	Start, End uintptr
	Perms      string
	Offset     uint64
	Inode      uint64
	Path       string
}

// ParseMaps parses the text of /proc/<pid>/maps.
func ParseMaps(text string) ([]Mapping, error) {
	var ms []Mapping
	for line := range strings.Lines(text) {
		line = strings.TrimRight(line, "\n")
		if line == "" {
			continue
		}
		m, err := parseMapping(line)
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
	}
	return ms, nil
}

// parseMapping parses "start-end perms offset dev inode [path]"; the path
// may hold spaces.
func parseMapping(line string) (Mapping, error) {
	var m Mapping
	rest := line
	field := func() string {
		rest = strings.TrimLeft(rest, " ")
		f, r, _ := strings.Cut(rest, " ")
		rest = r
		return f
	}
	rng, perms, off, dev, inode := field(), field(), field(), field(), field()
	lo, hi, ok := strings.Cut(rng, "-")
	if !ok || len(perms) != 4 || dev == "" || inode == "" {
		return m, fmt.Errorf("maps line %q: not start-end perms offset dev inode", line)
	}
	start, err1 := strconv.ParseUint(lo, 16, 64)
	end, err2 := strconv.ParseUint(hi, 16, 64)
	offset, err3 := strconv.ParseUint(off, 16, 64)
	ino, err4 := strconv.ParseUint(inode, 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil || end < start {
		return m, fmt.Errorf("maps line %q: bad number", line)
	}
	m.Start, m.End, m.Perms, m.Offset, m.Inode = uintptr(start), uintptr(end), perms, offset, ino
	m.Path = strings.TrimSpace(rest)
	return m, nil
}

// Anonymous is private memory of no file: the kind the Go heap is.
func (m Mapping) Anonymous() bool {
	return m.Inode == 0 && m.Perms[3] == 'p' && (m.Path == "" || strings.HasPrefix(m.Path, "[anon:"))
}

// HeapMappings are the mappings of ms that hold the Go heap: the
// read-write anonymous ones containing one of the heap addresses addrs,
// and those the runtime named " Go: heap" (Go 1.25+, where the kernel has
// CONFIG_ANON_VMA_NAME). Sorted, each once.
func HeapMappings(ms []Mapping, addrs []uintptr) []Mapping {
	var out []Mapping
	for _, m := range ms {
		if !m.Anonymous() || m.Perms[:2] != "rw" {
			continue
		}
		in := m.Path == "[anon: Go: heap]"
		for _, a := range addrs {
			in = in || (m.Start <= a && a < m.End)
		}
		if in {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b Mapping) int { return cmpUintptr(a.Start, b.Start) })
	return slices.CompactFunc(out, func(a, b Mapping) bool { return a.Start == b.Start })
}

func cmpUintptr(a, b uintptr) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Smap is one mapping of /proc/<pid>/smaps with the fields hugeheap reads.
type Smap struct {
	Mapping
	Rss, AnonHugePages uint64 // bytes
	THPeligible        bool   // "THPeligible: 1"
	VmFlags            []string
}

// Eligible: the kernel may back the mapping with huge pages, and it was
// asked to (hg: MADV_HUGEPAGE).
func (s Smap) Eligible() bool { return s.THPeligible && slices.Contains(s.VmFlags, "hg") }

// ParseSmaps parses the text of /proc/<pid>/smaps.
func ParseSmaps(text string) ([]Smap, error) {
	var out []Smap
	for line := range strings.Lines(text) {
		line = strings.TrimRight(line, "\n")
		if line == "" {
			continue
		}
		key, val, ok := strings.Cut(line, ":")
		// A field is "Key: value"; a mapping's line starts with its range
		// (hex, a '-'), which has no ':' before its first space.
		if ok && !strings.Contains(key, " ") && !strings.Contains(key, "-") {
			if len(out) == 0 {
				return nil, fmt.Errorf("smaps: field %q before any mapping", line)
			}
			s := &out[len(out)-1]
			val = strings.TrimSpace(val)
			switch key {
			case "Rss":
				s.Rss = kB(val)
			case "AnonHugePages":
				s.AnonHugePages = kB(val)
			case "THPeligible":
				s.THPeligible = val == "1"
			case "VmFlags":
				s.VmFlags = strings.Fields(val)
			}
			continue
		}
		m, err := parseMapping(line)
		if err != nil {
			return nil, err
		}
		out = append(out, Smap{Mapping: m})
	}
	return out, nil
}

func kB(v string) uint64 {
	n, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(v, "kB")), 10, 64)
	return n << 10
}
