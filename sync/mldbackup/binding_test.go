package mldbackup

import (
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/hotcast/hotcast/ctrl/mld"
	"github.com/hotcast/hotcast/sync/rbs"
)

type fakeRouter struct {
	groups   []mld.GroupState
	imported []mld.GroupState
	upserts  []mld.GroupState
	deleted  []netip.Addr
	upErr    error
	calls    []string
}

func (r *fakeRouter) Groups() []mld.GroupState { return r.groups }
func (r *fakeRouter) Import(gs []mld.GroupState) error {
	r.imported = gs
	return nil
}
func (r *fakeRouter) Upsert(g mld.GroupState) error {
	r.upserts = append(r.upserts, g)
	return r.upErr
}
func (r *fakeRouter) Delete(g netip.Addr) bool {
	r.deleted = append(r.deleted, g)
	return true
}
func (r *fakeRouter) DisownAll() { r.calls = append(r.calls, "disown") }

type published struct {
	op rbs.Op
	e  rbs.MLDEntry
}

type fakeProfile struct {
	master bool
	pubs   []published
	calls  *[]string
}

func (p *fakeProfile) Publish(op rbs.Op, e rbs.MLDEntry) error {
	p.pubs = append(p.pubs, published{op, e})
	return nil
}
func (p *fakeProfile) SetRole(r rbs.Role) { *p.calls = append(*p.calls, "role "+r.String()) }
func (p *fakeProfile) Master() bool       { return p.master }

var (
	g1   = netip.MustParseAddr("ff0e::1:1")
	g2   = netip.MustParseAddr("ff0e::1:2")
	link = netip.MustParseAddr("ff02::1:ff00:1")
	t0   = time.Unix(1000, 0)
)

func newBinding() (*Binding, *fakeRouter, *fakeProfile) {
	r := &fakeRouter{}
	p := &fakeProfile{calls: &r.calls}
	b := Bind(r, nil)
	b.now = func() time.Time { return t0 }
	b.SetProfile(p)
	return b, r, p
}

func TestPublishOnlyAsMaster(t *testing.T) {
	b, _, p := newBinding()
	us := []mld.Update{
		{Group: g1, State: mld.GroupState{Group: g1, Mode: mld.Exclude, Expires: t0.Add(260 * time.Second)}},
		{Group: link, State: mld.GroupState{Group: link, Mode: mld.Exclude}},
		{Group: g2, Deleted: true},
	}
	b.Publish(us)
	if len(p.pubs) != 0 {
		t.Fatalf("a backup published %+v", p.pubs)
	}
	p.master = true
	b.Publish(us)
	if len(p.pubs) != 2 {
		t.Fatalf("published %+v, want g1 upsert and g2 delete (link scope never)", p.pubs)
	}
	if p.pubs[0].op != rbs.OpUpsert || p.pubs[0].e.Group != g1 || p.pubs[0].e.FilterMode != rbs.FilterExclude || p.pubs[0].e.GroupTimerMs != 260000 {
		t.Errorf("upsert %+v", p.pubs[0])
	}
	if p.pubs[1].op != rbs.OpDelete || p.pubs[1].e.Group != g2 {
		t.Errorf("delete %+v", p.pubs[1])
	}
}

func TestSetRole(t *testing.T) {
	b, r, _ := newBinding()
	b.SetRole(true)
	b.SetRole(false)
	want := []string{"role " + rbs.RoleMaster.String(), "disown", "role " + rbs.RoleBackup.String()}
	if !slices.Equal(r.calls, want) {
		t.Fatalf("calls %q, want %q", r.calls, want)
	}
}

func TestSnapshotAndSink(t *testing.T) {
	b, r, _ := newBinding()
	r.groups = []mld.GroupState{
		{Group: g1, Mode: mld.Exclude, Compat: 2, Expires: t0.Add(time.Minute)},
		{Group: link, Mode: mld.Exclude},
		{Group: g2, Mode: mld.Include, Compat: 2, Sources: []mld.SourceState{{Addr: netip.MustParseAddr("2001:db8:40::2"), Expires: t0.Add(time.Second)}}},
	}
	snap := b.Snapshot(10)
	if len(snap) != 2 || snap[0].Group != g1 || snap[1].Group != g2 {
		t.Fatalf("snapshot %+v", snap)
	}
	// The peer's side: the batch becomes synced state with the same timers.
	if err := b.ReplaceAll(10, snap); err != nil {
		t.Fatal(err)
	}
	if len(r.imported) != 2 || !r.imported[0].Synced || !r.imported[0].Expires.Equal(t0.Add(time.Minute)) ||
		len(r.imported[1].Sources) != 1 || !r.imported[1].Sources[0].Expires.Equal(t0.Add(time.Second)) {
		t.Fatalf("imported %+v", r.imported)
	}
	if err := b.Delete(10, g1); err != nil || !slices.Equal(r.deleted, []netip.Addr{g1}) {
		t.Fatalf("delete: %v %v", err, r.deleted)
	}
}

func TestUpsertLocalEntryIsNoError(t *testing.T) {
	b, r, _ := newBinding()
	e := ToEntry(mld.GroupState{Group: g1, Mode: mld.Exclude, Expires: t0.Add(time.Minute)}, t0)
	r.upErr = mld.ErrLocalEntry
	if err := b.Upsert(10, e); err != nil {
		t.Fatalf("local entry: %v", err)
	}
	r.upErr = errors.New("full")
	if err := b.Upsert(10, e); err == nil {
		t.Fatal("an upsert error was swallowed")
	}
	if len(r.upserts) != 2 || !r.upserts[0].Synced {
		t.Fatalf("upserts %+v", r.upserts)
	}
}
