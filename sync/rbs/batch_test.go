package rbs

import (
	"bytes"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestBatchBeyondQueueBound: a batch is encoded as the connection takes
// it, so one much larger than MaxQueueBytes goes through (it used to
// overflow the queue and close the session for good: every retry was the
// same batch), while the bound still holds for what piles up behind it.
func TestBatchBeyondQueueBound(t *testing.T) {
	const n = 3000 // about 300 KB encoded, 10x the bound
	pr := newPair(t, func(_ string, c *Config) { c.MaxQueueBytes = 32 << 10 })
	for i := range n {
		pr.ta.set(entryN(i, 100))
	}
	pr.pa.SetRole(RoleMaster)
	pr.pb.SetRole(RoleBackup)
	pr.run()
	pr.settle("batch", pr.converged)
	if pr.tb.len() != n {
		t.Fatalf("B holds %d entries, want %d", pr.tb.len(), n)
	}
	if st := pr.a.Status(); st.Stats.Errors["queue-overflow"] != 0 || st.Stats.Disconnects != 0 {
		t.Fatalf("sender: %+v", st.Stats)
	}
	if st := pr.pa.Status(); st.BatchesSent != 1 {
		t.Fatalf("%d batches sent, want 1", st.BatchesSent)
	}
	// Deltas after the batch, in order, with the real-time path.
	e := entryN(n+1, 5)
	pr.ta.set(e)
	if err := pr.pa.Publish(OpUpsert, e); err != nil {
		t.Fatal(err)
	}
	pr.settle("delta", pr.converged)
}

// TestLastWins: a batch's entries become one per group, the last one, in
// the order of their first occurrence; a sorted batch without duplicates
// is taken as it is.
func TestLastWins(t *testing.T) {
	g := func(i int) netip.Addr { return groupN(i) }
	e := func(i int, timer uint32) MLDEntry {
		return MLDEntry{Group: g(i), FilterMode: FilterExclude, Compat: 2, GroupTimerMs: timer}
	}
	sorted := []MLDEntry{e(1, 1), e(2, 1), e(3, 1)}
	if got := lastWins(sorted); &got[0] != &sorted[0] || len(got) != 3 {
		t.Fatalf("a sorted batch was copied: %+v", got)
	}
	got := lastWins([]MLDEntry{e(3, 1), e(1, 1), e(3, 2), e(2, 1), e(1, 9)})
	want := []MLDEntry{e(3, 2), e(1, 9), e(2, 1)}
	if !slices.EqualFunc(got, want, MLDEntry.Equal) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	got = lastWins([]MLDEntry{e(1, 1), e(1, 2)}) // sorted, with a duplicate
	if !slices.EqualFunc(got, []MLDEntry{e(1, 2)}, MLDEntry.Equal) {
		t.Fatalf("got %+v", got)
	}
	if got := lastWins(nil); len(got) != 0 {
		t.Fatalf("got %+v", got)
	}
}

// TestReaderReusesEntries: with reuseEntry, entries come in one *Entry
// (the session copies what it keeps), other messages as usual, and the
// decoded values are those sent.
func TestReaderReusesEntries(t *testing.T) {
	var stream []byte
	var err error
	want := []Message{
		&Entry{BackupID: 1, Seq: 1, Op: OpUpsert, MLD: entryN(1, 10)},
		&Keepalive{},
		&Entry{BackupID: 1, Seq: 2, Op: OpDelete, MLD: MLDEntry{Group: groupN(2), FilterMode: FilterInclude, Compat: 2}},
	}
	for _, m := range want {
		if stream, err = AppendMarshal(stream, m); err != nil {
			t.Fatal(err)
		}
	}
	r := NewReader(bytes.NewReader(stream))
	r.reuseEntry = true
	var first *Entry
	for i, w := range want {
		m, _, err := r.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if e, ok := m.(*Entry); ok {
			if first == nil {
				first = e
			} else if e != first {
				t.Errorf("message %d: a new *Entry", i)
			}
			we := w.(*Entry)
			if e.Seq != we.Seq || e.Op != we.Op || !e.MLD.Equal(we.MLD) {
				t.Errorf("message %d: %+v, want %+v", i, e, we)
			}
		} else if m.Type() != w.Type() {
			t.Errorf("message %d: %s, want %s", i, m.Type(), w.Type())
		}
	}
}

// TestLongApplyKeepsSession: while the receiver applies a batch for longer
// than the hold time (a million entries take seconds), under the service
// lock, its keepalives still go out and the session stays up; the time
// spent applying does not count as the sender's silence either. Real
// clock (the fake one runs timers one after another, and the receiver's
// hold timer waits for the lock) and TCP (a net.Pipe has no buffer: the
// sender's writes would block on the busy reader until their deadline).
// 4.5 s.
func TestLongApplyKeepsSession(t *testing.T) {
	if testing.Short() {
		t.Skip("4.5 s of real time")
	}
	pr := newTCPPair(t, func(_ string, c *Config) { c.HoldTime, c.Clock = MinHoldTime, realClock{} })
	for i := range 10 {
		pr.ta.set(entryN(i, 100))
	}
	var once sync.Once
	pr.tb.replaceHook = func() {
		once.Do(func() { time.Sleep(MinHoldTime + 1500*time.Millisecond) })
	}
	pr.pa.SetRole(RoleMaster)
	pr.pb.SetRole(RoleBackup)
	pr.run()
	eventually(t, "batch applied", pr.converged)
	for _, s := range []*Service{pr.a, pr.b} {
		if st := s.Status(); st.Stats.Established != 1 || st.Stats.HoldExpired != 0 {
			t.Fatalf("%s: established %d, hold expired %d (%q): the session dropped during the apply", st.PeerSysName, st.Stats.Established, st.Stats.HoldExpired, st.LastDownReason)
		}
	}
}
