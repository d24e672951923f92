package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// fakeAttacher is a dataplane's attachment list.
type fakeAttacher struct {
	attached []string
	failOn   string
}

func (f *fakeAttacher) Attached() []string { return slices.Clone(f.attached) }

func (f *fakeAttacher) Detach(name string) error {
	if name == f.failOn {
		return errors.New("detach failed")
	}
	f.attached = slices.DeleteFunc(f.attached, func(n string) bool { return n == name })
	return nil
}

// A failed start over an adopted dataplane detaches exactly what it
// attached, and goes on past a detach that fails.
func TestUndoAttach(t *testing.T) {
	f := &fakeAttacher{attached: []string{"ge1", "ge2", "ge3", "ge4"}, failOn: "ge3"}
	undoAttach(f, []string{"ge1", "ge2"}, slog.New(slog.DiscardHandler))
	if want := []string{"ge1", "ge2", "ge3"}; !slices.Equal(f.attached, want) {
		t.Fatalf("attached after undo %v, want %v (ge3's detach failed, ge4 detached)", f.attached, want)
	}
	f = &fakeAttacher{attached: []string{"ge1"}}
	undoAttach(f, []string{"ge1", "gone"}, slog.New(slog.DiscardHandler))
	if !slices.Equal(f.attached, []string{"ge1"}) {
		t.Fatalf("undo touched what was there before: %v", f.attached)
	}
}

// StartError names the phase, the interface (found through any wrapping)
// and the errno, and unwraps to the cause.
func TestStartError(t *testing.T) {
	cause := fmt.Errorf("mld socket ge2: bind: %w", unix.ENODEV)
	err := startError("mld", fmt.Errorf("outer: %w", onIface("ge2", cause)))
	var se *StartError
	if !errors.As(err, &se) {
		t.Fatalf("%T is not a StartError", err)
	}
	if se.Phase != "mld" || se.Interface != "ge2" || se.Errno() != "ENODEV" {
		t.Fatalf("%+v errno %q", se, se.Errno())
	}
	if !errors.Is(err, unix.ENODEV) {
		t.Fatal("StartError does not unwrap to its cause")
	}
	if got, want := err.Error(), "start: mld: outer: mld socket ge2: bind: no such device"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
	plain := startError("api", errors.New("listen: bad path")).(*StartError)
	if plain.Interface != "" || plain.Errno() != "" {
		t.Fatalf("phase-wide error %+v errno %q", plain, plain.Errno())
	}
	if onIface("ge1", nil) != nil {
		t.Fatal("onIface(nil) is not nil")
	}
}
