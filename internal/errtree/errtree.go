// Package errtree finds errors of one type in an error tree.
package errtree

// All returns every error of type E in err's tree (errors.Join and %w
// wrapping, depth first, in order), without looking inside an E.
func All[E error](err error) []E {
	var out []E
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if e, ok := err.(E); ok {
			out = append(out, e)
			return
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	return out
}
