package errtree

import (
	"errors"
	"fmt"
	"testing"
)

type lineErr struct{ n int }

func (e *lineErr) Error() string { return fmt.Sprint("line ", e.n) }

func TestAll(t *testing.T) {
	a, b, c := &lineErr{1}, &lineErr{2}, &lineErr{3}
	err := errors.Join(
		fmt.Errorf("ctx: %w", a),
		errors.New("other"),
		errors.Join(b, fmt.Errorf("x: %w", fmt.Errorf("y: %w", c))),
	)
	got := All[*lineErr](err)
	if len(got) != 3 || got[0] != a || got[1] != b || got[2] != c {
		t.Fatalf("All = %v", got)
	}
	if got := All[*lineErr](nil); got != nil {
		t.Fatalf("All(nil) = %v", got)
	}
	if got := All[*lineErr](errors.New("plain")); got != nil {
		t.Fatalf("All(plain) = %v", got)
	}
}
