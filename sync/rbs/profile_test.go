package rbs

import (
	"errors"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const bid = 10

var (
	peerBackup = ProfileInfo{BackupID: bid, Role: RoleBackup, Services: ServiceMLD}
	peerMaster = ProfileInfo{BackupID: bid, Role: RoleMaster, Services: ServiceMLD}
)

// masterDUT runs the service as master of profile 10 with n entries and a
// raw peer as backup; it consumes the Hello and the initial batch.
func masterDUT(t *testing.T, n int, mod func(*Config)) (*harness, *Profile, *table, *rawPeer) {
	t.Helper()
	h := startService(t, true, mod)
	src := newTable()
	for i := range n {
		src.set(entryN(i, 1000))
	}
	prof := h.svc.AddProfile(ProfileConfig{Name: "profile1", BackupID: bid}, src, newTable())
	prof.SetRole(RoleMaster)
	h.run()
	p := h.peer(helloFor(peerBackup))
	expect[*Hello](p)
	bb := expect[*BatchBegin](p)
	if bb.Epoch != 1 || bb.Count != uint32(n) {
		t.Fatalf("batch begin %+v", bb)
	}
	for i := range n {
		e := expect[*Entry](p)
		if e.Seq != uint64(i+1) || e.Op != OpUpsert || !e.MLD.Equal(entryN(i, 1000)) {
			t.Fatalf("batch entry %d: %+v", i, e)
		}
	}
	if be := expect[*BatchEnd](p); *be != (BatchEnd{BackupID: bid, Epoch: 1, Seq: uint64(n)}) {
		t.Fatalf("batch end %+v", be)
	}
	return h, prof, src, p
}

func TestSenderBatchDeltasAndLag(t *testing.T) {
	h, prof, src, p := masterDUT(t, 3, nil)
	if st := prof.Status(); st.Sync != SyncSending || st.BatchesSent != 1 || st.EntriesSent != 3 || st.Unacked != 3 {
		t.Fatalf("status after batch %+v", st)
	}
	h.clk.Advance(500 * time.Millisecond)
	p.send(&Ack{BackupID: bid, Epoch: 1, Seq: 3})
	eventually(t, "batch acked", func() bool { return prof.Status().AckedSeq == 3 })
	if st := prof.Status(); st.SyncLag != 500*time.Millisecond || st.Sync != SyncSenderInSync {
		t.Fatalf("status after batch ack %+v", st)
	}

	e := entryN(7, 2000)
	src.set(e)
	if err := prof.Publish(OpUpsert, e); err != nil {
		t.Fatal(err)
	}
	src.del(groupN(0))
	if err := prof.Publish(OpDelete, entryN(0, 0)); err != nil {
		t.Fatal(err)
	}
	if m := expect[*Entry](p); m.Seq != 4 || m.Op != OpUpsert || !m.MLD.Equal(e) {
		t.Fatalf("delta %+v", m)
	}
	if m := expect[*Entry](p); m.Seq != 5 || m.Op != OpDelete || m.MLD.Group != groupN(0) {
		t.Fatalf("delta %+v", m)
	}
	h.clk.Advance(2 * time.Second)
	p.send(&Ack{BackupID: bid, Epoch: 1, Seq: 4})
	eventually(t, "delta acked", func() bool { return prof.Status().AckedSeq == 4 })
	st := prof.Status()
	if st.SyncLag != 2*time.Second || st.Unacked != 1 || st.LastSeq != 5 || st.Published != 2 {
		t.Fatalf("status %+v", st)
	}
	// Stale-epoch ack and invalid entry.
	p.send(&Ack{BackupID: bid, Epoch: 9, Seq: 5})
	eventually(t, "stale ack ignored", func() bool { return prof.Status().Ignored == 1 })
	if err := prof.Publish(OpUpsert, MLDEntry{}); !errors.Is(err, ErrInvalidField) {
		t.Fatalf("publish invalid: %v", err)
	}
}

func TestSenderResyncRequest(t *testing.T) {
	_, prof, _, p := masterDUT(t, 2, nil)
	p.send(&ResyncRequest{BackupID: bid, Epoch: 1, Reason: ResyncGap})
	if bb := expect[*BatchBegin](p); bb.Epoch != 2 || bb.Count != 2 {
		t.Fatalf("batch begin %+v", bb)
	}
	expect[*Entry](p)
	expect[*Entry](p)
	expect[*BatchEnd](p)
	// A request for an old epoch is ignored; the next message is a delta.
	p.send(&ResyncRequest{BackupID: bid, Epoch: 1, Reason: ResyncGap})
	eventually(t, "stale resync processed", func() bool { return prof.s.Status().Stats.MsgsIn >= 3 })
	prof.Publish(OpUpsert, entryN(5, 1))
	if e := expect[*Entry](p); e.Seq != 3 {
		t.Fatalf("entry %+v", e)
	}
	if st := prof.Status(); st.ResyncsServed != 1 || st.BatchesSent != 2 || st.Epoch != 2 {
		t.Fatalf("status %+v", st)
	}
}

func TestSenderWindowOverflow(t *testing.T) {
	_, prof, _, p := masterDUT(t, 1, func(c *Config) { c.MaxUnacked = 4 })
	p.send(&Ack{BackupID: bid, Epoch: 1, Seq: 1})
	eventually(t, "batch acked", func() bool { return prof.Status().AckedSeq == 1 })
	for i := range 5 {
		prof.Publish(OpUpsert, entryN(100+i, 1))
	}
	for i := range 4 {
		if e := expect[*Entry](p); e.Seq != uint64(i+2) {
			t.Fatalf("delta %+v", e)
		}
	}
	if bb := expect[*BatchBegin](p); bb.Epoch != 2 {
		t.Fatalf("batch begin %+v", bb)
	}
	st := prof.Status()
	if st.WindowOverflows != 1 || st.Unacked != 1 || st.Epoch != 2 {
		t.Fatalf("status %+v", st)
	}
}

// backupDUT runs the service as backup (listener side) with a raw master.
func backupDUT(t *testing.T, mod func(*Config)) (*harness, *Profile, *table, *rawPeer) {
	t.Helper()
	h := startService(t, false, mod)
	sink := newTable()
	prof := h.svc.AddProfile(ProfileConfig{Name: "profile1", BackupID: bid}, newTable(), sink)
	prof.SetRole(RoleBackup)
	h.run()
	p := h.peer(helloFor(peerMaster))
	expect[*Hello](p)
	h.waitState(StateConnected)
	return h, prof, sink, p
}

func batch(epoch uint64, entries ...MLDEntry) []Message {
	ms := []Message{&BatchBegin{BackupID: bid, Epoch: epoch, Count: uint32(len(entries))}}
	for i, e := range entries {
		ms = append(ms, &Entry{BackupID: bid, Seq: uint64(i + 1), Op: OpUpsert, MLD: e})
	}
	return append(ms, &BatchEnd{BackupID: bid, Epoch: epoch, Seq: uint64(len(entries))})
}

func TestReceiverBatchReplacesAll(t *testing.T) {
	_, prof, sink, p := backupDUT(t, nil)
	sink.set(entryN(50, 1)) // stale entry, absent from the batch
	p.send(batch(1, entryN(1, 1), entryN(2, 1), entryN(1, 9))...)
	if a := expect[*Ack](p); *a != (Ack{BackupID: bid, Epoch: 1, Seq: 3}) {
		t.Fatalf("ack %+v", a)
	}
	if r, _, _ := sink.counts(); r != 1 || sink.len() != 2 {
		t.Fatalf("replaces %d, len %d", r, sink.len())
	}
	if got := sink.Snapshot(0)[0]; got.GroupTimerMs != 9 {
		t.Fatalf("duplicate group: last occurrence must win, got %+v", got)
	}
	st := prof.Status()
	if st.Sync != SyncReceiverInSync || st.BatchesReceived != 1 || st.EntriesReceived != 3 || st.LastSeq != 3 {
		t.Fatalf("status %+v", st)
	}
}

// TestReceiverBatchBeginHook: Config.BatchBegin hears of a batch with its
// announced count before any of its entries is applied, and not of one
// refused for its size.
func TestReceiverBatchBeginHook(t *testing.T) {
	type call struct {
		id       uint32
		count    int
		replaces int
	}
	calls := make(chan call, 4)
	var sink atomic.Pointer[table] // the profile's, once made
	h, _, sink0, p := backupDUT(t, func(c *Config) {
		c.MaxBatchEntries = 3
		c.BatchBegin = func(id uint32, count int) {
			r, _, _ := sink.Load().counts()
			calls <- call{id, count, r}
		}
	})
	sink.Store(sink0)
	p.send(batch(1, entryN(1, 1), entryN(2, 1), entryN(3, 1))...)
	expect[*Ack](p)
	select {
	case c := <-calls:
		if c != (call{bid, 3, 0}) {
			t.Fatalf("BatchBegin %+v, want backup-id %d, 3 entries, before the replace", c, bid)
		}
	default:
		t.Fatal("BatchBegin not called")
	}
	// Over MaxBatchEntries: a protocol error, no hook.
	p.send(&BatchBegin{BackupID: bid, Epoch: 2, Count: 4})
	eventually(t, "protocol error counted", func() bool { return h.svc.Status().Stats.Errors["protocol"] == 1 })
	select {
	case c := <-calls:
		t.Fatalf("BatchBegin called for a refused batch: %+v", c)
	default:
	}
}

func TestReceiverGapTriggersResync(t *testing.T) {
	_, prof, sink, p := backupDUT(t, nil)
	p.send(batch(1, entryN(1, 1), entryN(2, 1))...)
	expect[*Ack](p)
	p.send(&Entry{BackupID: bid, Seq: 3, Op: OpUpsert, MLD: entryN(3, 1)})
	// seq 4 is "dropped".
	p.send(&Entry{BackupID: bid, Seq: 5, Op: OpUpsert, MLD: entryN(5, 1)})
	if r := expect[*ResyncRequest](p); *r != (ResyncRequest{BackupID: bid, Epoch: 1, Reason: ResyncGap}) {
		t.Fatalf("resync %+v", r)
	}
	p.send(&Entry{BackupID: bid, Seq: 6, Op: OpDelete, MLD: entryN(1, 1)}) // ignored until the next batch
	p.send(&BatchEnd{BackupID: bid, Epoch: 1, Seq: 6})                     // ignored too
	p.send(batch(2, entryN(9, 1))...)
	if a := expect[*Ack](p); *a != (Ack{BackupID: bid, Epoch: 2, Seq: 1}) {
		t.Fatalf("ack %+v", a)
	}
	if r, u, d := sink.counts(); r != 2 || u != 1 || d != 0 || sink.len() != 1 {
		t.Fatalf("sink counts %d %d %d len %d", r, u, d, sink.len())
	}
	if st := prof.Status(); st.ResyncsRequested != 1 || st.Ignored != 2 {
		t.Fatalf("status %+v", st)
	}
}

func TestReceiverErrors(t *testing.T) {
	tests := []struct {
		name   string
		before func(*table)
		send   []Message
		want   ResyncRequest
	}{
		{"entry-without-batch", nil, []Message{&Entry{BackupID: bid, Seq: 1, Op: OpUpsert, MLD: entryN(1, 1)}},
			ResyncRequest{BackupID: bid, Epoch: 0, Reason: ResyncOutsideBatch}},
		{"batch-end-count-mismatch", nil, []Message{&BatchBegin{BackupID: bid, Epoch: 4, Count: 2},
			&Entry{BackupID: bid, Seq: 1, Op: OpUpsert, MLD: entryN(1, 1)}, &BatchEnd{BackupID: bid, Epoch: 4, Seq: 1}},
			ResyncRequest{BackupID: bid, Epoch: 4, Reason: ResyncBadBatch}},
		{"delete-inside-batch", nil, []Message{&BatchBegin{BackupID: bid, Epoch: 4, Count: 2},
			&Entry{BackupID: bid, Seq: 1, Op: OpDelete, MLD: entryN(1, 1)}},
			ResyncRequest{BackupID: bid, Epoch: 4, Reason: ResyncBadBatch}},
		{"gap-inside-batch", nil, []Message{&BatchBegin{BackupID: bid, Epoch: 4, Count: 2},
			&Entry{BackupID: bid, Seq: 2, Op: OpUpsert, MLD: entryN(1, 1)}},
			ResyncRequest{BackupID: bid, Epoch: 4, Reason: ResyncGap}},
		{"apply-error", func(s *table) { s.failNext = errors.New("table full") }, batch(3, entryN(1, 1)),
			ResyncRequest{BackupID: bid, Epoch: 3, Reason: ResyncApplyError}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, prof, sink, p := backupDUT(t, nil)
			if tc.before != nil {
				tc.before(sink)
			}
			p.send(tc.send...)
			if r := expect[*ResyncRequest](p); *r != tc.want {
				t.Fatalf("resync %+v, want %+v", r, tc.want)
			}
			if st := prof.Status(); st.Sync != SyncResyncPending || st.ResyncsRequested != 1 {
				t.Fatalf("status %+v", st)
			}
			if r, _, _ := sink.counts(); r != 0 {
				t.Fatalf("sink replaced %d times", r)
			}
		})
	}
}

func TestReceiverAcks(t *testing.T) {
	h, prof, sink, p := backupDUT(t, func(c *Config) { c.AckEvery = 3 })
	p.send(batch(1)...)
	if a := expect[*Ack](p); a.Seq != 0 {
		t.Fatalf("empty batch ack %+v", a)
	}
	for i := range 3 {
		p.send(&Entry{BackupID: bid, Seq: uint64(i + 1), Op: OpUpsert, MLD: entryN(i, 1)})
	}
	if a := expect[*Ack](p); a.Seq != 3 {
		t.Fatalf("ack %+v", a)
	}
	p.send(&Entry{BackupID: bid, Seq: 4, Op: OpDelete, MLD: entryN(0, 1)})
	eventually(t, "entry applied", func() bool { return prof.Status().LastSeq == 4 })
	h.clk.Advance(DefaultAckInterval)
	if a := expect[*Ack](p); a.Seq != 4 {
		t.Fatalf("interval ack %+v", a)
	}
	if _, u, d := sink.counts(); u != 3 || d != 1 || sink.len() != 2 {
		t.Fatalf("sink upserts %d deletes %d len %d", u, d, sink.len())
	}
}

func TestKillPeerMidBatch(t *testing.T) {
	h, prof, sink, p := backupDUT(t, nil)
	p.send(batch(1, entryN(1, 1))...)
	expect[*Ack](p)
	// Second batch dies after one of three entries.
	p.send(&BatchBegin{BackupID: bid, Epoch: 2, Count: 3}, &Entry{BackupID: bid, Seq: 1, Op: OpUpsert, MLD: entryN(7, 1)})
	eventually(t, "partial batch received", func() bool { return prof.Status().Sync == SyncReceivingBatch })
	p.conn.Close()
	eventually(t, "session down", func() bool { return h.state() != StateConnected })
	if r, _, _ := sink.counts(); r != 1 {
		t.Fatalf("partial batch applied: %d replaces", r)
	}
	if got := sink.Snapshot(0); len(got) != 1 || got[0].Group != groupN(1) {
		t.Fatalf("sink after cut %+v", got)
	}
	if st := prof.Status(); st.Sync != SyncDown {
		t.Fatalf("status %+v", st)
	}
	// After reconnecting, the new batch is complete and applied.
	p2 := h.peer(helloFor(peerMaster))
	expect[*Hello](p2)
	p2.send(batch(1, entryN(7, 1), entryN(8, 1))...)
	expect[*Ack](p2)
	if got := sink.Snapshot(0); len(got) != 2 || got[0].Group != groupN(7) {
		t.Fatalf("sink after resync %+v", got)
	}
}

func TestBackupIDMismatch(t *testing.T) {
	h := startService(t, false, nil)
	prof := h.svc.AddProfile(ProfileConfig{Name: "profile1", BackupID: bid}, newTable(), newTable())
	h.run()
	p := h.peer(helloFor(ProfileInfo{BackupID: 11, Role: RoleMaster, Services: ServiceMLD}))
	expect[*Hello](p)
	h.waitState(StateConnected)
	st := prof.Status()
	if st.Sync != SyncMismatch || st.Mismatch != "backup-id 10 is not configured on the peer" {
		t.Fatalf("status %+v", st)
	}
	if got := h.svc.Status().UnknownPeerBackupIDs; !reflect.DeepEqual(got, []uint32{11}) {
		t.Fatalf("unknown peer ids %v", got)
	}
	// Data for the inactive profile is dropped and counted.
	p.send(batch(1, entryN(1, 1))...)
	eventually(t, "inactive drops", func() bool { return h.svc.Status().Stats.Errors["inactive-backup-id"] == 3 })
	// Wrong service type.
	p.send(&ProfileState{ProfileInfo{BackupID: bid, Role: RoleMaster, Services: 0x80}})
	eventually(t, "service mismatch", func() bool { return strings.Contains(prof.Status().Mismatch, "service types differ") })
	// The peer configures the right profile: it comes up.
	p.send(&ProfileState{peerMaster})
	eventually(t, "profile up", func() bool { return prof.Status().Sync == SyncWaitingBatch })
	prof.SetRole(RoleBackup)
	if ps := expect[*ProfileState](p); ps.ProfileInfo != peerBackup {
		t.Fatalf("profile state %+v", ps)
	}
	if st := prof.Status(); st.Sync != SyncWaitingBatch || st.Mismatch != "" {
		t.Fatalf("status %+v", st)
	}
}

func TestRoleChanges(t *testing.T) {
	_, prof, _, p := masterDUT(t, 1, nil)
	// Master → Backup: announces, stops sending, accepts the peer's batch.
	prof.SetRole(RoleBackup)
	if ps := expect[*ProfileState](p); ps.Role != RoleBackup {
		t.Fatalf("profile state %+v", ps)
	}
	prof.Publish(OpUpsert, entryN(9, 1)) // not sent
	p.send(&ProfileState{peerMaster})
	p.send(batch(1, entryN(3, 1), entryN(4, 1))...)
	if a := expect[*Ack](p); a.Seq != 2 {
		t.Fatalf("ack %+v", a)
	}
	sink := prof.sink.(*table)
	if sink.len() != 2 {
		t.Fatalf("sink len %d", sink.len())
	}
	// Backup → Master while the peer is still master: dual master, no batch.
	prof.SetRole(RoleMaster)
	if ps := expect[*ProfileState](p); ps.Role != RoleMaster {
		t.Fatalf("profile state %+v", ps)
	}
	if st := prof.Status(); st.Sync != SyncDualMaster {
		t.Fatalf("status %+v", st)
	}
	// A master ignores data.
	p.send(&Entry{BackupID: bid, Seq: 3, Op: OpUpsert, MLD: entryN(5, 1)})
	// The peer steps down: we send a batch of our source.
	p.send(&ProfileState{peerBackup})
	bb := expect[*BatchBegin](p)
	if bb.Epoch != 2 || bb.Count != 1 {
		t.Fatalf("batch begin %+v", bb)
	}
	if st := prof.Status(); st.Ignored != 1 || sink.len() != 2 {
		t.Fatalf("status %+v sink %d", st, sink.len())
	}
}

// Publish is called by the daemon from inside its MLD state machine, which
// may hold the lock its Source takes: it must not wait for the service lock.
func TestPublishDoesNotTakeServiceLock(t *testing.T) {
	h, prof, _, p := masterDUT(t, 0, nil)
	h.svc.mu.Lock()
	done := make(chan error)
	go func() { done <- prof.Publish(OpUpsert, entryN(1, 1)) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Publish blocked on the service lock")
	}
	h.svc.mu.Unlock()
	if e := expect[*Entry](p); e.Seq != 1 || e.MLD.Group != groupN(1) {
		t.Fatalf("entry %+v", e)
	}
}
