package bpf

import (
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/hotcast/hotcast/internal/netnstest"
)

// TestMapsListed: sharedMaps.all names every map of the generated
// ingressMaps, and every program object uses only those maps (anything
// else would be private to the object instead of shared); programs.all
// names every program of the objects.
func TestMapsListed(t *testing.T) {
	listed := map[string]bool{}
	var m sharedMaps
	for _, nm := range m.all() {
		listed[nm.name] = true
	}
	typ := reflect.TypeOf(ingressMaps{})
	for i := range typ.NumField() {
		if name := typ.Field(i).Tag.Get("ebpf"); !listed[name] {
			t.Errorf("map %s of ingressMaps not in sharedMaps.all", name)
		}
	}
	if len(listed) != typ.NumField() {
		t.Errorf("sharedMaps.all lists %d maps, ingressMaps has %d", len(listed), typ.NumField())
	}
	var p programs
	progs := map[string]bool{}
	for _, np := range p.all() {
		progs[np.name] = true
	}
	for name, load := range map[string]func() (*ebpf.CollectionSpec, error){
		"ingress": loadIngress, "devmap": loadDevmap, "tcegress": loadTcegress, "tcingress": loadTcingress,
	} {
		spec, err := load()
		if err != nil {
			t.Fatal(err)
		}
		for m := range spec.Maps {
			if !strings.HasPrefix(m, ".") && !listed[m] {
				t.Errorf("object %s: map %s is not shared", name, m)
			}
		}
		for pn := range spec.Programs {
			if !progs[pn] {
				t.Errorf("object %s: program %s not in programs.all", name, pn)
			}
		}
	}
}

// TestPinLayout holds the pins to the layout earlier versions made, which
// is what lets a new hotcastd adopt the dataplane an older one pinned: the
// names below are that layout, written out, not taken from the code.
func TestPinLayout(t *testing.T) {
	pin := filepath.Join("/sys/fs/bpf/hotcast", netnstest.UniqueName("test"))
	t.Cleanup(func() { _ = Cleanup(pin) })
	ns := netnstest.New(t, "pin")
	l := netnstest.Dummy(t, ns, "dum.1") // a dot, as in VLAN devices
	ns.Enter(t)
	d, err := Open(Options{PinPath: pin})
	if err != nil {
		t.Fatalf("%+v", err)
	}
	if err := d.Attach(l.Name, l.Index); err != nil {
		t.Fatal(err)
	}
	if err := d.AttachTC(l.Name, l.Index); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"links/tc/dum:1", "links/tci/dum:1", "links/xdp/dum:1",
		"maps/ifaces", "maps/oif_sets", "maps/reasons", "maps/route_stats", "maps/routes", "maps/set_members", "maps/vips", "maps/vmacs",
		"progs/hc_egress", "progs/hc_ingress", "progs/hc_tc_egress", "progs/hc_tc_ingress",
	}
	if got := pinned(t, pin); !slices.Equal(got, want) {
		t.Errorf("pins\n%v\nwant\n%v", got, want)
	}
	d.Close()

	d2, err := Open(Options{PinPath: pin})
	if err != nil {
		t.Fatalf("%+v", err)
	}
	defer d2.Close()
	if !d2.Adopted() || !slices.Equal(d2.Attached(), []string{"dum.1"}) {
		t.Errorf("re-opened: adopted %v, attached %v", d2.Adopted(), d2.Attached())
	}
	if got := pinned(t, pin); !slices.Equal(got, want) {
		t.Errorf("pins after adoption\n%v\nwant\n%v", got, want)
	}
}

func pinned(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		out = append(out, rel)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// TestAdoptGrowsReasons: a dataplane pinned by a release with fewer
// reasons (a smaller reasons map) is adopted: its counters move into a
// map of this build's size, pinned in its place, and the programs count
// into that one.
func TestAdoptGrowsReasons(t *testing.T) {
	pin := filepath.Join("/sys/fs/bpf/hotcast", netnstest.UniqueName("test"))
	t.Cleanup(func() { _ = Cleanup(pin) })
	ns := netnstest.New(t, "grow")
	ns.Enter(t)
	d, err := Open(Options{PinPath: pin})
	if err != nil {
		t.Fatalf("%+v", err)
	}
	d.Close()
	// The earlier release's map: two entries fewer, a count in reason 1.
	mp := filepath.Join(pin, pinMaps, ingressMapReasons)
	spec, err := loadIngress()
	if err != nil {
		t.Fatal(err)
	}
	small := spec.Maps[ingressMapReasons].Copy()
	small.MaxEntries -= 2
	small.Pinning = ebpf.PinNone
	old, err := ebpf.NewMap(small)
	if err != nil {
		t.Fatal(err)
	}
	per := make([]uint64, ebpf.MustPossibleCPU())
	per[0] = 41
	if err := old.Put(uint32(ReasonPassUnicast), per); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(mp); err != nil {
		t.Fatal(err)
	}
	if err := old.Pin(mp); err != nil {
		t.Fatal(err)
	}
	old.Close()

	d2, err := Open(Options{PinPath: pin})
	if err != nil {
		t.Fatalf("adopt with a smaller reasons map: %+v", err)
	}
	defer d2.Close()
	rs, err := d2.Reasons()
	if err != nil {
		t.Fatal(err)
	}
	if rs[ReasonPassUnicast] != 41 {
		t.Errorf("counter carried over: %d, want 41", rs[ReasonPassUnicast])
	}
	m, err := ebpf.LoadPinnedMap(mp, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.MaxEntries() != uint32(numReasons) {
		t.Errorf("pinned reasons map has %d entries, want %d", m.MaxEntries(), numReasons)
	}
	if got := pinned(t, pin); slices.Contains(got, "maps/reasons_grown") {
		t.Errorf("temporary pin left: %v", got)
	}
}
