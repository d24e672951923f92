package mld

import (
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Membership is the listening state of one multicast address (RFC 3810
// §4): the union of the downstream memberships for an MLD proxy.
type Membership struct {
	Mode    FilterMode
	Sources []netip.Addr
}

// HostConfig configures the host side of an MLD proxy on its upstream
// interface (RFC 4605 §4.1).
type HostConfig struct {
	Name                      string
	Address                   netip.Addr    // link-local source of the reports (checksum)
	Robustness                int           // RFC 3810 §9.1, default 2
	UnsolicitedReportInterval time.Duration // §9.11, default 1 s
	Clock                     Clock
	Sender                    Sender
	Logger                    *slog.Logger
	// Rand returns a uniformly random duration in [0, n); default
	// math/rand/v2. Tests inject a deterministic one.
	Rand func(n time.Duration) time.Duration
}

// Host sends MLDv2 reports for the proxy's upstream interface (RFC 3810 §6,
// RFC 4605 §4.1). It runs MLDv2 only. Concurrency as for Interface: an
// internal mutex, Sender called without it.
type Host struct {
	cfg HostConfig
	log *slog.Logger

	mu      sync.Mutex
	state   map[netip.Addr]Membership // sources sorted
	pending map[netip.Addr]*hostChange
	retx    slot

	general slot // pending response to a general query (§6.2 interface timer)
	answers map[netip.Addr]*hostAnswer

	outbox   [][]byte
	draining bool
}

// hostChange is the retransmission state of a pending state-change report
// (§6.1).
type hostChange struct {
	modeLeft int                // filter-mode-change retransmissions left
	allow    map[netip.Addr]int // source-list-change retransmissions left
	block    map[netip.Addr]int
}

// hostAnswer is a pending response to a multicast-address(-and-source)-
// specific query (§6.2).
type hostAnswer struct {
	t       slot
	sources map[netip.Addr]bool // nil: answer for the whole address
}

// NewHost returns the proxy host side of one upstream interface.
func NewHost(cfg HostConfig) (*Host, error) {
	if !cfg.Address.IsValid() || !cfg.Address.Is6() {
		return nil, fmt.Errorf("mld host %q: address %v: must be an IPv6 address", cfg.Name, cfg.Address)
	}
	if cfg.Robustness <= 0 {
		cfg.Robustness = 2
	}
	if cfg.UnsolicitedReportInterval <= 0 {
		cfg.UnsolicitedReportInterval = time.Second
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Rand == nil {
		cfg.Rand = func(n time.Duration) time.Duration {
			if n <= 0 {
				return 0
			}
			return rand.N(n)
		}
	}
	return &Host{
		cfg:     cfg,
		log:     cfg.Logger.With(slog.String("iface", cfg.Name)),
		state:   make(map[netip.Addr]Membership),
		pending: make(map[netip.Addr]*hostChange),
		answers: make(map[netip.Addr]*hostAnswer),
	}, nil
}

func (h *Host) unlock() {
	if h.draining {
		h.mu.Unlock()
		return
	}
	h.draining = true
	for {
		out := h.outbox
		h.outbox = nil
		if len(out) == 0 {
			h.draining = false
			h.mu.Unlock()
			return
		}
		h.mu.Unlock()
		for _, b := range out {
			if h.cfg.Sender == nil {
				continue
			}
			if err := h.cfg.Sender.SendMLD(AllMLDv2Route, b); err != nil {
				h.log.Warn("mld report send failed", slog.Any("error", err))
			}
		}
		h.mu.Lock()
	}
}

func (h *Host) arm(s *slot, d time.Duration, f func()) {
	s.stop()
	gen := s.gen
	s.when = h.cfg.Clock.Now().Add(d)
	s.t = h.cfg.Clock.AfterFunc(d, func() {
		h.mu.Lock()
		if s.gen != gen {
			h.mu.Unlock()
			return
		}
		s.t = nil
		f()
		h.unlock()
	})
}

// Memberships returns the current state.
func (h *Host) Memberships() map[netip.Addr]Membership {
	h.mu.Lock()
	defer h.mu.Unlock()
	return maps.Clone(h.state)
}

// SetMemberships replaces the reported state with m (the union of the
// downstream memberships, RFC 4605 §4.1) and sends a state-change report
// for every difference at once, then [Robustness]-1 retransmissions at
// random intervals up to [Unsolicited Report Interval] (RFC 3810 §6.1).
// An address missing from m is left: BLOCK(A) from INCLUDE(A), TO_IN({})
// from EXCLUDE.
func (h *Host) SetMemberships(m map[netip.Addr]Membership) {
	h.mu.Lock()
	defer h.unlock()
	next := make(map[netip.Addr]Membership, len(m))
	for g, ms := range m {
		if ms, ok := normalMembership(g, ms); ok {
			next[g] = ms
		}
	}
	changed := false
	for _, g := range sortedKeys(h.state, next) {
		changed = h.change(g, h.state[g], next[g]) || changed
	}
	h.state = next
	if changed {
		h.sendChanges()
	}
}

// UpdateMemberships is SetMemberships for the given groups only (a nil
// membership leaves the group); the others keep their state. Its cost
// follows len(m), not the number of groups reported.
func (h *Host) UpdateMemberships(m map[netip.Addr]*Membership) {
	h.mu.Lock()
	defer h.unlock()
	changed := false
	for _, g := range slices.SortedFunc(maps.Keys(m), netip.Addr.Compare) {
		var nw Membership
		ok := false
		if m[g] != nil {
			nw, ok = normalMembership(g, *m[g])
		}
		changed = h.change(g, h.state[g], nw) || changed
		if ok {
			h.state[g] = nw
		} else {
			delete(h.state, g)
		}
	}
	if changed {
		h.sendChanges()
	}
}

// normalMembership deduplicates the sources; ok is false for what is not
// reported (a bad group, INCLUDE {}).
func normalMembership(g netip.Addr, ms Membership) (Membership, bool) {
	if _, bad := groupDropReason(g); bad {
		return Membership{}, false
	}
	ms.Sources = dedup(ms.Sources)
	if ms.Mode == Include && len(ms.Sources) == 0 {
		return Membership{}, false
	}
	return ms, true
}

// change records the state-change records one group's change from old to
// nw needs; it reports whether there is any.
func (h *Host) change(g netip.Addr, old, nw Membership) bool {
	if old.Mode == nw.Mode && slices.Equal(old.Sources, nw.Sources) {
		return false
	}
	p := h.pending[g]
	if p == nil {
		p = &hostChange{allow: map[netip.Addr]int{}, block: map[netip.Addr]int{}}
		h.pending[g] = p
	}
	if old.Mode != nw.Mode {
		p.modeLeft = h.cfg.Robustness
		clear(p.allow)
		clear(p.block)
		return true
	}
	added, removed := diff(nw.Sources, old.Sources), diff(old.Sources, nw.Sources)
	allow, block := added, removed // INCLUDE: ALLOW(B-A), BLOCK(A-B)
	if nw.Mode == Exclude {
		allow, block = removed, added // EXCLUDE: ALLOW(A-B), BLOCK(B-A)
	}
	for _, s := range allow {
		p.allow[s] = h.cfg.Robustness
		delete(p.block, s)
	}
	for _, s := range block {
		p.block[s] = h.cfg.Robustness
		delete(p.allow, s)
	}
	return true
}

// sendChanges sends one round of pending state-change records.
func (h *Host) sendChanges() {
	var recs []Record
	for _, g := range slices.SortedFunc(maps.Keys(h.pending), netip.Addr.Compare) {
		p := h.pending[g]
		cur := h.state[g]
		if p.modeLeft > 0 {
			p.modeLeft--
			t := ChangeToInclude
			if cur.Mode == Exclude {
				t = ChangeToExclude
			}
			recs = append(recs, Record{Type: t, Group: g, Sources: cur.Sources})
		} else {
			if a := takeRound(p.allow); len(a) > 0 {
				recs = append(recs, Record{Type: AllowNewSources, Group: g, Sources: a})
			}
			if b := takeRound(p.block); len(b) > 0 {
				recs = append(recs, Record{Type: BlockOldSources, Group: g, Sources: b})
			}
		}
		if p.modeLeft == 0 && len(p.allow) == 0 && len(p.block) == 0 {
			delete(h.pending, g)
		}
	}
	h.queueReport(recs)
	if len(h.pending) > 0 {
		uri := h.cfg.UnsolicitedReportInterval
		h.arm(&h.retx, uri-h.cfg.Rand(uri), h.sendChanges) // in (0, URI]
	} else {
		h.retx.stop()
	}
}

func takeRound(m map[netip.Addr]int) []netip.Addr {
	var out []netip.Addr
	for s, n := range m {
		out = append(out, s)
		if n <= 1 {
			delete(m, s)
		} else {
			m[s] = n - 1
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// maxReportLen keeps reports within the IPv6 minimum MTU (1280 - 40 - 8).
const maxReportLen = 1232

// queueReport packs records into as few reports as fit the minimum MTU.
func (h *Host) queueReport(recs []Record) {
	var cur []Record
	size := v2ReportHeaderLen
	flush := func() {
		if len(cur) == 0 {
			return
		}
		b, err := Marshal(&V2Report{Records: cur}, h.cfg.Address, AllMLDv2Route)
		if err != nil {
			h.log.Error("mld report marshal failed", slog.Any("error", err))
		} else {
			h.outbox = append(h.outbox, b)
		}
		cur, size = nil, v2ReportHeaderLen
	}
	for _, r := range recs {
		maxSrc := (maxReportLen - v2ReportHeaderLen - recordHeaderLen) / 16
		for len(r.Sources) > maxSrc { // split huge source lists (§5.2.15)
			head := r
			head.Sources = r.Sources[:maxSrc]
			flush()
			cur = []Record{head}
			flush()
			r.Sources = r.Sources[maxSrc:]
		}
		n := recordHeaderLen + 16*len(r.Sources)
		if size+n > maxReportLen {
			flush()
		}
		cur = append(cur, r)
		size += n
	}
	flush()
}

// HandlePacket processes a query received on the upstream interface and
// schedules the current-state report that answers it (RFC 3810 §6.2).
// Other messages are ignored.
func (h *Host) HandlePacket(p Packet) {
	h.mu.Lock()
	defer h.unlock()
	if p.HopLimit != 1 || !p.Src.IsLinkLocalUnicast() || len(p.Payload) < 4 {
		return
	}
	if p.Dst.IsValid() && Verify(p.Src.WithZone(""), p.Dst.WithZone(""), p.Payload) != nil {
		return
	}
	m, err := Parse(p.Payload)
	if err != nil {
		return
	}
	q, ok := m.(*Query)
	if !ok {
		return
	}
	now := h.cfg.Clock.Now()
	delay := h.cfg.Rand(q.MaxResponseDelay())
	at := now.Add(delay)
	// §6.2 rule 1: a pending general response that comes first covers it.
	if h.general.running() && !h.general.when.After(at) {
		return
	}
	if q.IsGeneral() {
		h.arm(&h.general, delay, h.answerGeneral)
		return
	}
	if _, ok := h.state[q.Group]; !ok {
		return
	}
	a := h.answers[q.Group]
	if a == nil {
		a = &hostAnswer{}
		if len(q.Sources) > 0 {
			a.sources = map[netip.Addr]bool{}
		}
		h.answers[q.Group] = a
	} else if len(q.Sources) == 0 || a.sources == nil {
		a.sources = nil // rule 4: answer for the whole address
	}
	if a.sources != nil {
		for _, s := range q.Sources {
			a.sources[s] = true
		}
	}
	if a.t.running() && a.t.when.Before(at) {
		return
	}
	g := q.Group
	h.arm(&a.t, delay, func() { h.answerSpecific(g) })
}

func (h *Host) answerGeneral() {
	var recs []Record
	for _, g := range slices.SortedFunc(maps.Keys(h.state), netip.Addr.Compare) {
		recs = append(recs, currentRecord(g, h.state[g]))
	}
	h.queueReport(recs)
}

func (h *Host) answerSpecific(g netip.Addr) {
	a := h.answers[g]
	delete(h.answers, g)
	st, ok := h.state[g]
	if a == nil || !ok {
		return
	}
	if a.sources == nil {
		h.queueReport([]Record{currentRecord(g, st)})
		return
	}
	// §6.3: INCLUDE(A): IS_IN(A*Q); EXCLUDE(A): IS_IN(Q-A).
	var srcs []netip.Addr
	for s := range a.sources {
		if slices.Contains(st.Sources, s) == (st.Mode == Include) {
			srcs = append(srcs, s)
		}
	}
	if len(srcs) == 0 {
		return
	}
	slices.SortFunc(srcs, netip.Addr.Compare)
	h.queueReport([]Record{{Type: ModeIsInclude, Group: g, Sources: srcs}})
}

func currentRecord(g netip.Addr, m Membership) Record {
	t := ModeIsInclude
	if m.Mode == Exclude {
		t = ModeIsExclude
	}
	return Record{Type: t, Group: g, Sources: m.Sources}
}

// diff returns the elements of a (sorted) not in b.
func diff(a, b []netip.Addr) []netip.Addr {
	var out []netip.Addr
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

func sortedKeys(a, b map[netip.Addr]Membership) []netip.Addr {
	keys := slices.Collect(maps.Keys(a))
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, netip.Addr.Compare)
	return keys
}
