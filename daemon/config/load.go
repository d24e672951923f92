package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
)

// Load reads the YAML file at path and returns the validated configuration
// with defaults applied. On any problem it returns a nil Config and an error
// listing every problem found (see [FieldErrors]). The file is read once, so
// a file replaced while it is read yields either the old or the new
// contents, never a mix.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	c, err := LoadBytes(b)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Parse is [Load] for a configuration read from r.
func Parse(r io.Reader) (*Config, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return LoadBytes(b)
}

// LoadBytes is [Load] for a configuration already in memory (tests, hot
// reload of a file read by the caller). It runs the three steps of the
// package comment: [parse] (strict decode into the raw structure), convert
// (typed values, defaults) and validate.
func LoadBytes(b []byte) (*Config, error) {
	raw, errs, err := parse(b)
	if err != nil {
		return nil, err
	}
	c := raw.convert(&errs)
	var verrs errList
	c.validate(&verrs)
	decoded := errList{errs: slices.Clone(errs.errs)} // decode and convert errors only
	sysnameBad := false
	for _, e := range verrs.errs {
		sysnameBad = sysnameBad || e.Path == "sysname"
	}
	for _, e := range verrs.errs {
		// Paths derived from a bad sysname would only echo its error.
		derived := (e.Path == "api.socket" && raw.API.Socket == nil) ||
			(e.Path == "bpf.pin-path" && raw.BPF.PinPath == nil)
		if !decoded.covered(e.Path) && !(derived && sysnameBad) {
			errs.errs = append(errs.errs, e)
		}
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	return c, nil
}

// parse reads the YAML document b with viper and decodes it once, strictly,
// into the raw structure: an unknown key anywhere is an error at its path,
// and so is a value of the wrong type. The returned error is a syntax error
// (nothing could be decoded); problems with keys and values are in the list.
//
// The one decode reads the document as viper's decoder left it, not viper's
// settings: viper.UnmarshalExact decodes AllSettings, which leaves out every
// key whose value is null or an empty map (they hold no setting), so a
// misspelt "upstreem: {}" or "pin_path:" would pass unnoticed and a second,
// schema-walking pass over the YAML would be needed to find them. See
// [document].
func parse(b []byte) (*rawConfig, errList, error) {
	var errs errList
	doc := &document{}
	v := viper.NewWithOptions(viper.WithDecoderRegistry(doc))
	v.SetConfigType("yaml")
	if err := v.ReadConfig(bytes.NewReader(b)); err != nil {
		return nil, errs, fmt.Errorf("parse yaml: %w", err)
	}
	var raw rawConfig
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		// No weak typing: "true" is not a bool and 1 is not a string. No
		// duration or address hooks: convert parses those and reports
		// errors by path; the one hook refuses to truncate 1.5 to 1.
		WeaklyTypedInput: false,
		DecodeHook:       rejectFractions,
		ErrorUnused:      true,
		Result:           &raw,
	})
	if err != nil {
		return nil, errs, fmt.Errorf("config decoder: %w", err)
	}
	decodeErrors(&errs, dec.Decode(doc.tree))
	return &raw, errs, nil
}

// document is the YAML decoder viper reads the file with (its
// DecoderRegistry for "yaml"). It decodes as viper's own YAML codec does,
// yaml.v3 into the map viper hands it, and keeps that map: the whole
// document, null values and empty maps included, with its keys lower-cased
// in place by viper (keys match case-insensitively). Viper stays the reader
// (config type, input, key folding); the decode into the raw structure
// reads document.tree instead of viper's flattened settings.
type document struct {
	tree map[string]any
}

// Decoder implements viper.DecoderRegistry.
func (d *document) Decoder(format string) (viper.Decoder, error) {
	if format != "yaml" {
		return nil, fmt.Errorf("config type %q: only yaml is read", format)
	}
	return d, nil
}

// Decode implements viper.Decoder.
func (d *document) Decode(b []byte, m map[string]any) error {
	if err := yaml.Unmarshal(b, &m); err != nil {
		return err
	}
	d.tree = m
	return nil
}

// rejectFractions stops mapstructure from truncating a YAML float such as
// 1.5 into an integer field; an integral float (2.0) is accepted.
func rejectFractions(_ reflect.Type, to reflect.Type, data any) (any, error) {
	f, ok := data.(float64)
	if !ok {
		return data, nil
	}
	for to.Kind() == reflect.Pointer {
		to = to.Elem()
	}
	if to.Kind() == reflect.Int && (f != math.Trunc(f) || math.IsInf(f, 0) || math.Abs(f) > 1<<53) {
		return nil, fmt.Errorf("%w: expected an integer, got %v", ErrType, f)
	}
	return data, nil
}

// decodeErrors turns mapstructure's joined errors into FieldErrors with
// paths in this package's syntax.
func decodeErrors(l *errList, err error) {
	if err == nil {
		return
	}
	var de *mapstructure.DecodeError
	if errors.As(err, &de) && err == error(de) {
		inner := de.Unwrap()
		msg := inner.Error()
		if keys, ok := strings.CutPrefix(msg, "has invalid keys: "); ok {
			for _, k := range strings.Split(keys, ", ") {
				l.add(joinPath(de.Name(), k), ErrUnknownKey)
			}
			return
		}
		if errors.Is(inner, ErrType) { // from rejectFractions
			l.add(de.Name(), inner)
			return
		}
		var ute *mapstructure.UnconvertibleTypeError
		if errors.As(inner, &ute) {
			l.add(de.Name(), fmt.Errorf("%w: expected %s, got %s", ErrType,
				describeType(ute.Expected.Type()), describeValue(ute.Value)))
			return
		}
		var pe *mapstructure.ParseError
		if errors.As(inner, &pe) {
			l.add(de.Name(), fmt.Errorf("%w: expected %s, got %s", ErrType,
				describeType(pe.Expected.Type()), describeValue(pe.Value)))
			return
		}
		switch {
		case strings.HasPrefix(msg, "source data must be an array or slice, got "):
			l.addf(de.Name(), "%w: expected a list, got %s", ErrType, strings.TrimPrefix(msg, "source data must be an array or slice, got "))
		case strings.HasPrefix(msg, "expected a map or struct, got "):
			l.addf(de.Name(), "%w: expected a map, got %s", ErrType, strings.Trim(strings.TrimPrefix(msg, "expected a map or struct, got "), `"`))
		default:
			l.addf(de.Name(), "%w: %s", ErrType, msg)
		}
		return
	}
	switch u := err.(type) {
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			decodeErrors(l, e)
		}
	case interface{ Unwrap() error }:
		decodeErrors(l, u.Unwrap())
	default:
		l.add("", err)
	}
}

func joinPath(base, key string) string {
	if base == "" {
		return key
	}
	return base + "." + key
}

func describeType(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t {
	case reflect.TypeFor[rawDuration]():
		return `a duration string such as "10s"`
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64, reflect.Uint, reflect.Uint64:
		return "an integer"
	case reflect.String:
		return "a string"
	case reflect.Slice:
		return "a list"
	case reflect.Struct, reflect.Map:
		return "a map"
	}
	return t.String()
}

func describeValue(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case string:
		return strconv.Quote(v)
	case bool, int, int64, uint64, float64:
		return fmt.Sprintf("%v", v)
	case []any:
		return "a list"
	case map[string]any, map[any]any:
		return "a map"
	}
	return fmt.Sprintf("%T", v)
}

// Raw, strictly decoded form of the file. Pointers mark keys whose absence
// selects a default; strings hold values that convert parses.

type rawDuration string

type rawConfig struct {
	Sysname    *string        `mapstructure:"sysname"`
	API        rawAPI         `mapstructure:"api"`
	BPF        rawBPF         `mapstructure:"bpf"`
	Multicast  rawMulticast   `mapstructure:"multicast"`
	Services   []rawRBS       `mapstructure:"remote-backup-services"`
	Profiles   []rawRBP       `mapstructure:"remote-backup-profiles"`
	Interfaces []rawInterface `mapstructure:"interfaces"`
	BFD        *rawBFD        `mapstructure:"bfd"`
	Loopback   *rawLoopback   `mapstructure:"loopback"`
	PIM        *rawPIM        `mapstructure:"pim"`
}

type rawLoopback struct {
	Interface *string  `mapstructure:"interface"`
	Addresses []string `mapstructure:"addresses"`
}

type rawPIM struct {
	StaticRP              []rawStaticRP `mapstructure:"static-rp"`
	SSMRange              *string       `mapstructure:"ssm-range"`
	SPTSwitch             *string       `mapstructure:"spt-switch"`
	AcceptRegister        []string      `mapstructure:"accept-register"`
	AcceptRegisterSources []string      `mapstructure:"accept-register-sources"`
	JoinPruneInterval     *rawDuration  `mapstructure:"join-prune-interval"`
	JoinPruneHoldtime     *rawDuration  `mapstructure:"join-prune-holdtime"`
}

type rawStaticRP struct {
	Address    *string `mapstructure:"address"`
	GroupRange *string `mapstructure:"group-range"`
}

type rawInterfacePIM struct {
	Mode              *string      `mapstructure:"mode"`
	HelloInterval     *rawDuration `mapstructure:"hello-interval"`
	DRPriority        *int         `mapstructure:"dr-priority"`
	IgnoreDRState     *bool        `mapstructure:"ignore-dr-state"`
	IgnoreAssertState *bool        `mapstructure:"ignore-assert-state"`
}

type rawBFD struct {
	RealtimePriority *int            `mapstructure:"realtime-priority"`
	Sessions         []rawBFDSession `mapstructure:"sessions"`
}

type rawBFDSession struct {
	Name       *string      `mapstructure:"name"`
	Interface  *string      `mapstructure:"interface"`
	Peer       *string      `mapstructure:"peer"`
	Source     *string      `mapstructure:"source"`
	MinTx      *rawDuration `mapstructure:"min-tx"`
	MinRx      *rawDuration `mapstructure:"min-rx"`
	Multiplier *int         `mapstructure:"multiplier"`
	Passive    *bool        `mapstructure:"passive"`
}

type rawTrackBFD struct {
	Session *string `mapstructure:"session"`
	Mode    *string `mapstructure:"mode"`
	Reduced *int    `mapstructure:"reduced"`
}

type rawAPI struct {
	Socket        *string `mapstructure:"socket"`
	MetricsListen *string `mapstructure:"metrics-listen"`
}

type rawBPF struct {
	PinPath *string `mapstructure:"pin-path"`
	XDPMode *string `mapstructure:"xdp-mode"`
}

type rawMulticast struct {
	RoutingEnable *bool            `mapstructure:"routing-enable"`
	Upstream      rawUpstream      `mapstructure:"upstream"`
	StaticRoutes  []rawStaticRoute `mapstructure:"static-routes"`
}

type rawUpstream struct {
	Interface *string `mapstructure:"interface"`
	Mode      *string `mapstructure:"mode"`
}

type rawStaticRoute struct {
	Group      *string  `mapstructure:"group"`
	Source     *string  `mapstructure:"source"`
	Incoming   *string  `mapstructure:"incoming"`
	Interfaces []string `mapstructure:"interfaces"`
}

type rawRBS struct {
	Name       *string      `mapstructure:"name"`
	PeerIPv6   *string      `mapstructure:"peer-ipv6"`
	SourceIPv6 *string      `mapstructure:"source-ipv6"`
	Port       *int         `mapstructure:"port"`
	HoldTime   *rawDuration `mapstructure:"hold-time"`
	TLS        *rawTLS      `mapstructure:"tls"`
	TrackBFD   *string      `mapstructure:"track-bfd"`
}

type rawTLS struct {
	Cert *string `mapstructure:"cert"`
	Key  *string `mapstructure:"key"`
	CA   *string `mapstructure:"ca"`
}

type rawRBP struct {
	Name        *string      `mapstructure:"name"`
	ServiceType []string     `mapstructure:"service-type"`
	BackupID    *int         `mapstructure:"backup-id"`
	Service     *string      `mapstructure:"remote-backup-service"`
	PeerBackup  *string      `mapstructure:"peer-backup"`
	VRRP6       *rawVRRP6Ref `mapstructure:"vrrp6"`
}

type rawVRRP6Ref struct {
	VRID      *int    `mapstructure:"vrid"`
	Interface *string `mapstructure:"interface"`
}

type rawInterface struct {
	Name                *string    `mapstructure:"name"`
	MLD                 rawMLD     `mapstructure:"mld"`
	VRRP6               []rawVRRP6 `mapstructure:"vrrp6"`
	MulticastTrackVRRP6 *int       `mapstructure:"multicast-track-vrrp6"`
	RemoteBackupProfile *string    `mapstructure:"remote-backup-profile"`
	Addresses           []string   `mapstructure:"addresses"`
	Egress              *string    `mapstructure:"egress"`
	// PIM is a pointer so that "pim: {}" is present (and lacks its
	// mode), as "bfd: {}" is a bfd section.
	PIM *rawInterfacePIM `mapstructure:"pim"`
}

type rawMLD struct {
	Enable                    *bool        `mapstructure:"enable"`
	Version                   *int         `mapstructure:"version"`
	QueryInterval             *rawDuration `mapstructure:"query-interval"`
	Robustness                *int         `mapstructure:"robustness"`
	MaxResponseTime           *rawDuration `mapstructure:"max-response-time"`
	LastListenerQueryInterval *rawDuration `mapstructure:"last-listener-query-interval"`
	RequireRouterAlert        *bool        `mapstructure:"require-router-alert"`
	MaxGroups                 *int         `mapstructure:"max-groups"`
	IgnoreReportsWhileBackup  *bool        `mapstructure:"ignore-reports-while-backup"`
}

type rawVRRP6 struct {
	VRID              *int          `mapstructure:"vrid"`
	VirtualIP         []string      `mapstructure:"virtual-ip"`
	Priority          *int          `mapstructure:"priority"`
	Preempt           *bool         `mapstructure:"preempt"`
	PreemptDelay      *rawDuration  `mapstructure:"preempt-delay"`
	AdvertiseInterval *rawDuration  `mapstructure:"advertise-interval"`
	AcceptMode        *bool         `mapstructure:"accept-mode"`
	TrackInterface    []rawTrack    `mapstructure:"track-interface"`
	TrackBFD          []rawTrackBFD `mapstructure:"track-bfd"`
}

type rawTrack struct {
	Name    *string `mapstructure:"name"`
	Reduced *int    `mapstructure:"reduced"`
}

// converter turns raw values into typed ones, recording parse errors and
// falling back to the default so Validate does not report follow-on errors.
type converter struct {
	errs *errList
}

func str(p *string, def string) string {
	if p == nil {
		return def
	}
	return *p
}

func boolean(p *bool, def bool) bool {
	if p == nil {
		return def
	}
	return *p
}

func (cv converter) duration(path string, p *rawDuration, def time.Duration) time.Duration {
	if p == nil {
		return def
	}
	d, err := time.ParseDuration(string(*p))
	if err != nil {
		cv.errs.addf(path, "invalid duration %q (use e.g. \"10s\", \"100ms\")", string(*p))
		return def
	}
	if d < 0 {
		cv.errs.addf(path, "negative duration %s", d)
		return def
	}
	return d
}

// integer range-checks *p into [lo, hi] (hi bounded by the Go field type);
// Validate repeats semantic checks on the typed value.
func (cv converter) integer(path string, p *int, def, lo, hi int) int {
	if p == nil {
		return def
	}
	if *p < lo || *p > hi {
		cv.errs.add(path, errRange(lo, hi, *p))
		return def
	}
	return *p
}

func (cv converter) addr(path string, p *string) netip.Addr {
	if p == nil {
		return netip.Addr{}
	}
	a, err := parseIPv6(*p)
	if err != nil {
		cv.errs.add(path, err)
		return netip.Addr{}
	}
	return a
}

// prefix parses the IPv6 prefix *p (the zero Prefix when absent).
func (cv converter) prefix(path string, p *string) netip.Prefix {
	if p == nil {
		return netip.Prefix{}
	}
	pfx, err := parsePrefix6(*p)
	if err != nil {
		cv.errs.add(path, err)
		return netip.Prefix{}
	}
	return pfx
}

// prefixes parses a list of IPv6 prefixes; an element that does not parse
// is reported at path[j] and left out.
func (cv converter) prefixes(path string, l []string) []netip.Prefix {
	var out []netip.Prefix
	for j, s := range l {
		pfx, err := parsePrefix6(s)
		if err != nil {
			cv.errs.add(fmt.Sprintf("%s[%d]", path, j), err)
			continue
		}
		out = append(out, pfx)
	}
	return out
}

func parsePrefix6(s string) (netip.Prefix, error) {
	pfx, err := netip.ParsePrefix(s)
	switch {
	case err != nil:
		return netip.Prefix{}, fmt.Errorf("invalid IPv6 prefix %q (want address/length, e.g. 2001:db8::1/64)", s)
	case !pfx.Addr().Is6() || pfx.Addr().Is4In6():
		return netip.Prefix{}, fmt.Errorf("%q is not an IPv6 prefix", s)
	}
	return pfx, nil
}

func parseIPv6(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("invalid IPv6 address %q", s)
	}
	if a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("invalid IPv6 address %q: zones are not allowed (the interface is implied)", s)
	}
	if !a.Is6() || a.Is4In6() {
		return netip.Addr{}, fmt.Errorf("%q is not an IPv6 address", s)
	}
	return a, nil
}

// convert builds the typed Config with defaults applied. Values whose raw
// form cannot be parsed are reported and replaced by their default.
func (r *rawConfig) convert(errs *errList) *Config {
	cv := converter{errs: errs}
	c := &Config{Sysname: str(r.Sysname, "")}

	c.API = API{
		Socket:        str(r.API.Socket, DefaultSocketDir+"/"+c.Sysname+".sock"),
		MetricsListen: str(r.API.MetricsListen, ""),
	}
	c.BPF = BPF{
		PinPath: str(r.BPF.PinPath, DefaultPinDir+"/"+c.Sysname),
		XDPMode: XDPMode(str(r.BPF.XDPMode, string(DefaultXDPMode))),
	}

	m := &r.Multicast
	c.Multicast = Multicast{
		RoutingEnable: boolean(m.RoutingEnable, false),
		Upstream: Upstream{
			Interface: str(m.Upstream.Interface, ""),
			Mode:      UpstreamMode(str(m.Upstream.Mode, string(DefaultUpstreamMode))),
		},
	}
	for i, rs := range m.StaticRoutes {
		p := fmt.Sprintf("multicast.static-routes[%d]", i)
		s := StaticRoute{
			Group:      cv.addr(p+".group", rs.Group),
			Source:     cv.addr(p+".source", rs.Source),
			Incoming:   str(rs.Incoming, c.Multicast.Upstream.Interface),
			Interfaces: rs.Interfaces,
		}
		c.Multicast.StaticRoutes = append(c.Multicast.StaticRoutes, s)
	}

	for i, rs := range r.Services {
		p := fmt.Sprintf("remote-backup-services[%d]", i)
		s := RBS{
			Name:       str(rs.Name, ""),
			PeerIPv6:   cv.addr(p+".peer-ipv6", rs.PeerIPv6),
			SourceIPv6: cv.addr(p+".source-ipv6", rs.SourceIPv6),
			Port:       uint16(cv.integer(p+".port", rs.Port, DefaultRBSPort, 1, 65535)),
			HoldTime:   cv.duration(p+".hold-time", rs.HoldTime, 0),
			TrackBFD:   str(rs.TrackBFD, ""),
		}
		// A map without keys, or with null values only, is as absent as
		// null: "tls: {}" is plain TCP, as documented.
		if rs.TLS != nil && *rs.TLS != (rawTLS{}) {
			s.TLS = &TLS{Cert: str(rs.TLS.Cert, ""), Key: str(rs.TLS.Key, ""), CA: str(rs.TLS.CA, "")}
		}
		c.Services = append(c.Services, s)
	}

	for i, rp := range r.Profiles {
		p := fmt.Sprintf("remote-backup-profiles[%d]", i)
		prof := RBP{
			Name:       str(rp.Name, ""),
			Service:    str(rp.Service, ""),
			PeerBackup: BackupMode(str(rp.PeerBackup, string(DefaultPeerBackup))),
		}
		for _, st := range rp.ServiceType {
			prof.ServiceTypes = append(prof.ServiceTypes, ServiceType(st))
		}
		if rp.BackupID == nil {
			errs.add(p+".backup-id", ErrRequired)
		} else {
			prof.BackupID = uint16(cv.integer(p+".backup-id", rp.BackupID, 0, 1, 65535))
		}
		if rp.VRRP6 == nil || *rp.VRRP6 == (rawVRRP6Ref{}) { // "vrrp6: {}" too
			errs.add(p+".vrrp6", ErrRequired)
		} else {
			if rp.VRRP6.VRID == nil {
				errs.add(p+".vrrp6.vrid", ErrRequired)
			} else {
				prof.VRRP6.VRID = uint8(cv.integer(p+".vrrp6.vrid", rp.VRRP6.VRID, 0, 1, 255))
			}
			prof.VRRP6.Interface = str(rp.VRRP6.Interface, "")
		}
		c.Profiles = append(c.Profiles, prof)
	}

	for i := range r.Interfaces {
		c.Interfaces = append(c.Interfaces, r.Interfaces[i].convert(cv, fmt.Sprintf("interfaces[%d]", i)))
	}
	if r.BFD != nil {
		c.BFD = r.BFD.convert(cv)
	}
	c.Loopback = Loopback{Interface: DefaultLoopbackInterface}
	if l := r.Loopback; l != nil {
		c.Loopback.Interface = str(l.Interface, DefaultLoopbackInterface)
		c.Loopback.Addresses = cv.prefixes("loopback.addresses", l.Addresses)
	}
	if r.PIM != nil {
		c.PIM = r.PIM.convert(cv)
	}
	return c
}

func (rp *rawPIM) convert(cv converter) *PIM {
	d := DefaultPIM()
	pim := &PIM{
		SSMRange:              d.SSMRange,
		SPTSwitch:             SPTSwitch(str(rp.SPTSwitch, string(d.SPTSwitch))),
		AcceptRegister:        cv.prefixes("pim.accept-register", rp.AcceptRegister),
		AcceptRegisterSources: cv.prefixes("pim.accept-register-sources", rp.AcceptRegisterSources),
		JoinPruneInterval:     cv.duration("pim.join-prune-interval", rp.JoinPruneInterval, d.JoinPruneInterval),
		JoinPruneHoldtime:     cv.duration("pim.join-prune-holdtime", rp.JoinPruneHoldtime, d.JoinPruneHoldtime),
	}
	if rp.SSMRange != nil {
		if pfx := cv.prefix("pim.ssm-range", rp.SSMRange); pfx.IsValid() {
			pim.SSMRange = pfx
		}
	}
	for i, rs := range rp.StaticRP {
		p := fmt.Sprintf("pim.static-rp[%d]", i)
		s := StaticRP{Address: cv.addr(p+".address", rs.Address), GroupRange: AllGroups()}
		if rs.GroupRange != nil {
			// A range that does not parse is reported and left zero,
			// whose own error Validate's would only repeat.
			s.GroupRange = cv.prefix(p+".group-range", rs.GroupRange)
		}
		pim.StaticRPs = append(pim.StaticRPs, s)
	}
	return pim
}

func (rp *rawInterfacePIM) convert(cv converter, p string) *InterfacePIM {
	ip := &InterfacePIM{
		HelloInterval:     cv.duration(p+".hello-interval", rp.HelloInterval, DefaultPIMHelloInterval),
		DRPriority:        DefaultPIMDRPriority,
		IgnoreDRState:     boolean(rp.IgnoreDRState, false),
		IgnoreAssertState: boolean(rp.IgnoreAssertState, false),
	}
	if rp.Mode == nil {
		cv.errs.addf(p+".mode", "%w: pim on an interface needs mode: %s", ErrRequired, PIMModeSM)
	} else {
		ip.Mode = PIMMode(*rp.Mode)
	}
	if n := rp.DRPriority; n != nil {
		// 0..2^32-1 (RFC 7761 §4.9.2, a 32-bit option); compared as
		// int64 so the bound holds where int is 32 bits.
		if *n < 0 || int64(*n) > math.MaxUint32 {
			cv.errs.add(p+".dr-priority", errRange(0, uint64(math.MaxUint32), *n))
		} else {
			ip.DRPriority = uint32(*n)
		}
	}
	return ip
}

func (rb *rawBFD) convert(cv converter) *BFD {
	b := &BFD{RealtimePriority: cv.integer("bfd.realtime-priority", rb.RealtimePriority, DefaultBFDRealtimePriority, 0, 99)}
	for i, rs := range rb.Sessions {
		p := fmt.Sprintf("bfd.sessions[%d]", i)
		s := BFDSession{
			Name:      str(rs.Name, ""),
			Interface: str(rs.Interface, ""),
			Peer:      cv.addr(p+".peer", rs.Peer),
			Source:    cv.addr(p+".source", rs.Source),
			MinTx:     cv.duration(p+".min-tx", rs.MinTx, DefaultBFDMinTx),
			MinRx:     cv.duration(p+".min-rx", rs.MinRx, DefaultBFDMinRx),
			Passive:   boolean(rs.Passive, false),
		}
		s.Multiplier = uint8(cv.integer(p+".multiplier", rs.Multiplier, DefaultBFDMultiplier, 1, 255))
		b.Sessions = append(b.Sessions, s)
	}
	return b
}

func (ri *rawInterface) convert(cv converter, p string) Interface {
	ifc := Interface{
		Name:                str(ri.Name, ""),
		RemoteBackupProfile: str(ri.RemoteBackupProfile, ""),
		Egress:              EgressMode(str(ri.Egress, "")),
	}
	// 0 would mean "none" in Config, so it is rejected here where an
	// explicit 0 is still visible.
	ifc.MulticastTrackVRRP6 = uint8(cv.integer(p+".multicast-track-vrrp6", ri.MulticastTrackVRRP6, 0, 1, 255))
	ifc.Addresses = cv.prefixes(p+".addresses", ri.Addresses)
	if ri.PIM != nil {
		ifc.PIM = ri.PIM.convert(cv, p+".pim")
	}

	rm := &ri.MLD
	mp := p + ".mld"
	ifc.MLD = MLD{
		Enable:                    boolean(rm.Enable, false),
		Version:                   cv.integer(mp+".version", rm.Version, DefaultMLDVersion, 1, 2),
		QueryInterval:             cv.duration(mp+".query-interval", rm.QueryInterval, DefaultQueryInterval),
		Robustness:                uint8(cv.integer(mp+".robustness", rm.Robustness, DefaultRobustness, 1, 7)),
		MaxResponseTime:           cv.duration(mp+".max-response-time", rm.MaxResponseTime, DefaultMaxResponseTime),
		LastListenerQueryInterval: cv.duration(mp+".last-listener-query-interval", rm.LastListenerQueryInterval, DefaultLastListenerQueryInterval),
		RequireRouterAlert:        boolean(rm.RequireRouterAlert, DefaultRequireRouterAlert),
		MaxGroups:                 cv.integer(mp+".max-groups", rm.MaxGroups, DefaultMaxGroups, 1, maxMaxGroups),
		IgnoreReportsWhileBackup:  boolean(rm.IgnoreReportsWhileBackup, false),
	}

	for j, rv := range ri.VRRP6 {
		vp := fmt.Sprintf("%s.vrrp6[%d]", p, j)
		g := VRRP6{
			Preempt:           boolean(rv.Preempt, DefaultPreempt),
			PreemptDelay:      cv.duration(vp+".preempt-delay", rv.PreemptDelay, 0),
			AdvertiseInterval: cv.duration(vp+".advertise-interval", rv.AdvertiseInterval, DefaultAdvertiseInterval),
			AcceptMode:        boolean(rv.AcceptMode, false),
		}
		if rv.VRID == nil {
			cv.errs.add(vp+".vrid", ErrRequired)
		} else {
			g.VRID = uint8(cv.integer(vp+".vrid", rv.VRID, 0, 1, 255))
		}
		if rv.Priority != nil && *rv.Priority == 0 {
			g.Priority = 0 // Validate explains why 0 is reserved
		} else {
			g.Priority = uint8(cv.integer(vp+".priority", rv.Priority, DefaultPriority, 1, 255))
		}
		for k, s := range rv.VirtualIP {
			a, err := parseIPv6(s)
			if err != nil {
				cv.errs.add(fmt.Sprintf("%s.virtual-ip[%d]", vp, k), err)
				continue
			}
			g.VirtualIPs = append(g.VirtualIPs, a)
		}
		for k, rt := range rv.TrackBFD {
			tp := fmt.Sprintf("%s.track-bfd[%d]", vp, k)
			tr := TrackBFD{Session: str(rt.Session, ""), Mode: TrackBFDMode(str(rt.Mode, string(DefaultTrackBFDMode)))}
			if tr.Mode == TrackBFDReduce {
				tr.Reduced = uint8(cv.integer(tp+".reduced", rt.Reduced, DefaultTrackReduced, 1, 255))
			} else if rt.Reduced != nil {
				cv.errs.addf(tp+".reduced", "applies to mode %q only, not %q", TrackBFDReduce, tr.Mode)
			}
			g.TrackBFD = append(g.TrackBFD, tr)
		}
		for k, rt := range rv.TrackInterface {
			tp := fmt.Sprintf("%s.track-interface[%d]", vp, k)
			g.TrackInterfaces = append(g.TrackInterfaces, Track{
				Name:    str(rt.Name, ""),
				Reduced: uint8(cv.integer(tp+".reduced", rt.Reduced, DefaultTrackReduced, 1, 255)),
			})
		}
		ifc.VRRP6 = append(ifc.VRRP6, g)
	}
	return ifc
}
