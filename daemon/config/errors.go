package config

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/hotcast/hotcast/internal/errtree"
)

// Sentinel errors wrapped by [FieldError] so callers can classify problems
// with [errors.Is].
var (
	// ErrUnknownKey reports a key the schema does not define (often a typo).
	ErrUnknownKey = errors.New("unknown key")
	// ErrRequired reports a missing mandatory key.
	ErrRequired = errors.New("required")
	// ErrDuplicate reports a name or identifier used twice where it must be
	// unique.
	ErrDuplicate = errors.New("duplicate")
	// ErrUndefined reports a reference to an interface, service, profile or
	// VRRP6 group that is not configured.
	ErrUndefined = errors.New("undefined reference")
	// ErrUnsupported reports a value that VRP accepts but hotcast does not
	// implement (peer-backup cold, service-type igmp, ...).
	ErrUnsupported = errors.New("not supported")
	// ErrType reports a YAML value of the wrong type (a list where a map is
	// expected, a number where a duration string is expected, ...).
	ErrType = errors.New("wrong type")
)

// FieldError is one problem in a configuration, located by the key path of
// the offending value, e.g. "interfaces[0].vrrp6[1].priority". List indices
// are 0-based positions in the file.
type FieldError struct {
	Path string
	Err  error
}

// Error implements error as "path: message".
func (e *FieldError) Error() string {
	if e.Path == "" {
		return e.Err.Error()
	}
	return e.Path + ": " + e.Err.Error()
}

// Unwrap returns the underlying error (often one of the sentinels above).
func (e *FieldError) Unwrap() error { return e.Err }

// FieldErrors returns every [FieldError] contained in err (as returned by
// [Load], [LoadBytes], [Parse] or [Config.Validate]), in path order.
func FieldErrors(err error) []*FieldError { return errtree.All[*FieldError](err) }

// errList collects problems; it is never shared between goroutines.
type errList struct {
	errs []*FieldError
}

func (l *errList) add(path string, err error) {
	l.errs = append(l.errs, &FieldError{Path: path, Err: err})
}

func (l *errList) addf(path, format string, args ...any) {
	l.add(path, fmt.Errorf(format, args...))
}

// covered reports whether path is, contains or lies within a path that
// already has an error: the decoder could not read that value completely, so
// Validate's opinion of it would only repeat or confuse the first report.
func (l *errList) covered(path string) bool {
	for _, e := range l.errs {
		if pathWithin(path, e.Path) || pathWithin(e.Path, path) {
			return true
		}
	}
	return false
}

// pathWithin reports whether path equals base or names something inside it.
func pathWithin(path, base string) bool {
	if base == "" {
		return false
	}
	if !strings.HasPrefix(path, base) {
		return false
	}
	rest := path[len(base):]
	return rest == "" || rest[0] == '.' || rest[0] == '['
}

// err returns the collected errors sorted by path (list indices in numeric
// order), joined with errors.Join, or nil.
func (l *errList) err() error {
	if len(l.errs) == 0 {
		return nil
	}
	sorted := slices.Clone(l.errs)
	slices.SortStableFunc(sorted, func(a, b *FieldError) int { return comparePaths(a.Path, b.Path) })
	errs := make([]error, len(sorted))
	for i, e := range sorted {
		errs[i] = e
	}
	return errors.Join(errs...)
}

// comparePaths orders key paths segment by segment, comparing list indices
// numerically so "interfaces[2]" sorts before "interfaces[10]".
func comparePaths(a, b string) int {
	ta, tb := pathTokens(a), pathTokens(b)
	for i := 0; i < len(ta) && i < len(tb); i++ {
		x, y := ta[i], tb[i]
		xn, xerr := strconv.Atoi(x)
		yn, yerr := strconv.Atoi(y)
		switch {
		case xerr == nil && yerr == nil:
			if xn != yn {
				if xn < yn {
					return -1
				}
				return 1
			}
		case x != y:
			return strings.Compare(x, y)
		}
	}
	return len(ta) - len(tb)
}

func pathTokens(p string) []string {
	return strings.FieldsFunc(p, func(r rune) bool { return r == '.' || r == '[' || r == ']' })
}

// Helpers building the common messages.

func errRange(lo, hi, got any) error {
	return fmt.Errorf("must be in %v..%v, got %v", lo, hi, got)
}

func errDup(value any, first string) error {
	return fmt.Errorf("%w %v (first used at %s)", ErrDuplicate, value, first)
}

func errUndef(what string, name any) error {
	return fmt.Errorf("%w: no %s %v", ErrUndefined, what, name)
}
