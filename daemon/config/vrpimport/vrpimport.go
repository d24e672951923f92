// Package vrpimport converts a Huawei VRP configuration (the text of
// "display current-configuration") into a hotcastd configuration file.
//
// It understands the commands of the reference "MLD dual-device hot backup in
// a VRRP6 scenario": sysname, multicast ipv6 routing-enable,
// remote-backup-service (RBS), remote-backup-profile (RBP), the pim-ipv6
// view (static-rp, spt-switch-threshold infinity, timer and holdtime
// join-prune, ssm-policy), interface LoopBack0 (the loopback section), and
// in interface views ipv6 address, vrrp6 vrid (RFC 9568), mld (RFC 3810),
// pim ipv6 sm and its options (RFC 7761), multicast ipv6 track vrrp6 and
// remote-backup-profile. When an interface runs PIM the result runs PIM
// and has no multicast.upstream; --upstream (Options.Upstream) converts
// as an MLD edge router instead. Every other command (IS-IS, layer-2
// switching, link state, ACLs, ...) is reported as a [Warning] carrying its
// line number: nothing is dropped silently. Input hotcast cannot represent
// faithfully (an IPv4 RBS channel, peer-backup cold, a VRRP6 group without a
// link-local virtual address, ...) is an error carrying its line number.
//
// The result is checked with [config.LoadBytes] before it is returned, so a
// successful [Convert] always yields a file hotcastd accepts.
// docs/import-vrp.md documents the conversion rules.
package vrpimport

import (
	"errors"
	"fmt"
	"strings"

	"github.com/hotcast/hotcast/daemon/config"
	"github.com/hotcast/hotcast/internal/errtree"
)

// Sentinel errors wrapped by [LineError] (and by the errors [Convert]
// returns) so callers can classify problems with [errors.Is].
var (
	// ErrSyntax reports a command whose arguments cannot be parsed.
	ErrSyntax = errors.New("syntax error")
	// ErrRange reports a number outside the range VRP and hotcast accept.
	ErrRange = errors.New("out of range")
	// ErrUnsupported reports a command VRP accepts but hotcast cannot
	// represent (IPv4 RBS, peer-backup cold, service-type igmp, ...).
	ErrUnsupported = errors.New("not supported")
	// ErrInterfaceName reports an interface without a Linux name (no default
	// mapping and no --map) that a converted command needs, or two VRP
	// interfaces mapped to the same Linux name.
	ErrInterfaceName = errors.New("interface name")
	// ErrUpstream reports that multicast.upstream.interface cannot be
	// inferred and was not given.
	ErrUpstream = errors.New("upstream interface")
	// ErrEmpty reports an input without a single VRP command.
	ErrEmpty = errors.New("no VRP configuration")
	// ErrInvalid reports that the converted configuration does not pass
	// config.LoadBytes; it wraps the config package's field errors.
	ErrInvalid = errors.New("converted configuration is invalid")
)

// Options tunes a conversion.
type Options struct {
	// Map maps VRP interface names to Linux interface names, overriding the
	// default GigabitEthernetX/Y/Z -> geZ. Keys are matched
	// case-insensitively and ignoring spaces ("gigabitethernet 0/1/2" is
	// GigabitEthernet0/1/2); "GE0/1/2" is accepted for GigabitEthernet0/1/2.
	Map map[string]string
	// Upstream names multicast.upstream.interface (a VRP or Linux interface
	// name) when it cannot be inferred; it overrides the inference. Given,
	// PIM is not converted (its lines are warned about): hotcast becomes
	// an MLD edge router pulling traffic from Upstream, as before it ran
	// PIM. Without it a file whose interfaces run pim ipv6 sm converts to
	// PIM, which needs no upstream (RPF finds it).
	Upstream string
	// Source names the input in the header comment of the YAML ("" omits it).
	Source string
}

// Warning is a VRP line that was not converted, or a decision the converter
// took that the operator should check.
type Warning struct {
	Line   int    // 1-based line in the input; 0 for the file as a whole
	Text   string // the VRP line, trimmed
	Reason string
}

// String formats the warning as "line N: TEXT: REASON".
func (w Warning) String() string {
	switch {
	case w.Line == 0:
		return w.Reason
	case w.Text == "":
		return fmt.Sprintf("line %d: %s", w.Line, w.Reason)
	}
	return fmt.Sprintf("line %d: %s: %s", w.Line, w.Text, w.Reason)
}

// LineError is a problem with one line of the VRP input.
type LineError struct {
	Line int    // 1-based; 0 when no single line is to blame
	Text string // the VRP line, trimmed
	Err  error
}

// Error formats the error as "line N: TEXT: ERR".
func (e *LineError) Error() string {
	var b strings.Builder
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Text != "" {
		b.WriteString(e.Text)
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns the underlying error.
func (e *LineError) Unwrap() error { return e.Err }

// LineErrors returns every [LineError] contained in err, in line order.
func LineErrors(err error) []*LineError { return errtree.All[*LineError](err) }

// Result is a successful conversion.
type Result struct {
	// YAML is the hotcastd configuration file, with a comment on each key
	// naming the VRP line it came from.
	YAML []byte
	// Config is YAML loaded by config.LoadBytes (defaults applied).
	Config *config.Config
	// Warnings lists, in line order, every VRP line that was not converted
	// and every inference the operator should check.
	Warnings []Warning
}

// Convert converts the VRP configuration src. On error the result is nil and
// the error lists every problem found, one [LineError] per line (see
// [LineErrors]); warnings are only returned with a result.
func Convert(src []byte, opts Options) (*Result, error) {
	p, err := newParser(opts)
	if err != nil {
		return nil, err
	}
	p.parse(src)
	if p.commands == 0 && len(p.errs) == 0 {
		return nil, fmt.Errorf("%w: the input has no commands (expected the output of display current-configuration)", ErrEmpty)
	}
	p.finish()
	if err := p.err(); err != nil {
		return nil, err
	}
	doc, lines, err := p.emit(opts.Source)
	if err != nil {
		return nil, err
	}
	cfg, err := config.LoadBytes(doc)
	if err != nil {
		return nil, p.explain(err, lines)
	}
	return &Result{YAML: doc, Config: cfg, Warnings: p.sortedWarnings()}, nil
}
