package vrpimport

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
)

// ifKey is a VRP interface name in canonical form: lower case, no spaces,
// abbreviations expanded ("GE 0/1/2" and "GigabitEthernet0/1/2" are both
// "gigabitethernet0/1/2").
type ifKey string

// ifAliases expands the abbreviations VRP prints or accepts for interface
// types to the full type name. Longer prefixes first.
var ifAliases = []struct{ short, long string }{
	{"xge", "xgigabitethernet"},
	{"ge", "gigabitethernet"},
	{"eth", "ethernet"},
}

// geName is the default mapping: GigabitEthernetX/Y/Z[.S] -> geZ[.S].
var geName = regexp.MustCompile(`^gigabitethernet[0-9]+/[0-9]+/([0-9]+)(\.[0-9]+)?$`)

// ifNameRE is what a VRP interface name looks like once spaces are removed:
// a type (letters, digits and '-', e.g. "100ge", "eth-trunk") followed by a
// number ("0/1/2", "1", "0/1/2.100").
var ifNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*?[a-z-][0-9]+(/[0-9]+)*(\.[0-9]+)?$`)

// parseIfName canonicalizes a VRP interface name given as one or more words
// ("GigabitEthernet0/1/2", "gigabitethernet 0/1/2").
func parseIfName(words ...string) (ifKey, error) {
	s := strings.ToLower(strings.Join(words, ""))
	s = strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s)
	if !ifNameRE.MatchString(s) {
		return "", fmt.Errorf("%w: %q is not a VRP interface name (e.g. GigabitEthernet0/1/2)", ErrSyntax, strings.Join(words, " "))
	}
	for _, a := range ifAliases {
		if rest, ok := strings.CutPrefix(s, a.short); ok && rest != "" && rest[0] >= '0' && rest[0] <= '9' {
			s = a.long + rest
			break
		}
	}
	return ifKey(s), nil
}

// defaultLinuxName returns the Linux name of k without --map, and whether
// there is one.
func defaultLinuxName(k ifKey) (string, bool) {
	m := geName.FindStringSubmatch(string(k))
	if m == nil {
		return "", false
	}
	return "ge" + m[1] + m[2], true
}

// isNull reports whether k is the VRP null interface (a discard sink).
func isNull(k ifKey) bool { return strings.HasPrefix(string(k), "null") }
