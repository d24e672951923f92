package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/hotcast/hotcast/bpf/probe"
	"github.com/hotcast/hotcast/daemon/config"
)

const doctorUsage = `usage: hotcastctl doctor [--config FILE] [--json]

Reports what the running kernel offers hotcast and what hotcast will use:
bpffs, the BPF program and map types of the fast path, tcx, devmap
broadcast and devmap programs, native or generic XDP per interface, ip6mr,
AF_PACKET and raw IPv6 sockets. Each check is ok, missing-optional or
missing-required; the exit status is 1 when something required is missing.

Run it as root in the network namespace hotcastd runs in. With --config
the interfaces and bpf.xdp-mode of FILE are checked; without it every
Ethernet interface of the namespace is listed.
`

// errDoctor reports a failed doctor after the report is written.
var errDoctor = errors.New("doctor: a required feature is missing")

// runDoctor implements "hotcastctl doctor". probeFn is doctor.Probe
// outside tests.
func runDoctor(args []string, asJSON bool, w, stderr io.Writer, probeFn func(*config.Config) *probe.Report) error {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(fs.Output(), doctorUsage) }
	cfgPath := fs.String("config", "", "hotcastd configuration to check against")
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return nil
	} else if err != nil {
		return fmt.Errorf("doctor: %w", err)
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return fmt.Errorf("doctor: unexpected argument %q", fs.Arg(0))
	}
	var cfg *config.Config
	if *cfgPath != "" {
		c, err := config.Load(*cfgPath)
		if err != nil {
			return fmt.Errorf("doctor: %s: %w", *cfgPath, err)
		}
		cfg = c
	}
	rep := probeFn(cfg)
	var err error
	if asJSON {
		err = rep.WriteJSON(w)
	} else {
		err = rep.WriteText(w)
	}
	if err != nil {
		return fmt.Errorf("doctor: write report: %w", err)
	}
	if rep.ExitCode() != 0 {
		return errDoctor
	}
	return nil
}
