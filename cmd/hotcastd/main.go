// Command hotcastd is the hotcast daemon: an eBPF-accelerated IPv6
// multicast edge router (MLD, VRRP6, RBS hot backup).
//
//	hotcastd --config /etc/hotcast/hotcast.yaml
//	hotcastd --config FILE --cleanup   # remove the pinned dataplane
//	hotcastd --config FILE --check     # validate the configuration, report the kernel
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/hotcast/hotcast/daemon"
	"github.com/hotcast/hotcast/daemon/config"
	"github.com/hotcast/hotcast/daemon/doctor"
)

func main() {
	os.Exit(run())
}

func run() int {
	var (
		cfgPath  = flag.String("config", "/etc/hotcast/hotcast.yaml", "configuration file")
		cleanup  = flag.Bool("cleanup", false, "detach and remove everything the configured daemon pinned, then exit")
		check    = flag.Bool("check", false, "validate the configuration, report what the kernel offers, and exit")
		logLevel = flag.String("log-level", "info", "debug, info, warn or error")
		logJSON  = flag.Bool("log-json", false, "log in JSON")
	)
	flag.Parse()

	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(os.Stderr, "hotcastd: --log-level: %v\n", err)
		return 2
	}
	hopts := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler = slog.NewTextHandler(os.Stderr, hopts)
	if *logJSON {
		h = slog.NewJSONHandler(os.Stderr, hopts)
	}

	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintf(os.Stderr, "hotcastd: %s: %v\n", *cfgPath, err)
		return 1
	}
	log := slog.New(h).With("sysname", cfg.Sysname)
	if *check {
		fmt.Printf("%s: ok\n", *cfgPath)
		// Validating a configuration needs no privilege; probing the
		// kernel loads BPF programs and does.
		if os.Geteuid() != 0 {
			fmt.Println("kernel report skipped: probing BPF needs root (run hotcastd --check or hotcastctl doctor as root)")
			return 0
		}
		// What the kernel offers; fails for the kernel only, since the
		// interfaces may live in another namespace (hotcastctl doctor).
		rep := doctor.Probe(cfg)
		if err := rep.WriteText(os.Stdout); err != nil {
			fmt.Fprintf(os.Stderr, "hotcastd: kernel report: %v\n", err)
			return 1
		}
		return rep.KernelExitCode()
	}
	if *cleanup {
		if err := daemon.Cleanup(cfg); err != nil {
			log.Error("cleanup", "err", err)
			return 1
		}
		log.Info("cleaned up", "pin_path", cfg.BPF.PinPath)
		return 0
	}

	d, err := daemon.New(cfg, log)
	if err != nil {
		log.Error("start failed", "phase", "interfaces", "err", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			next, err := config.Load(*cfgPath)
			if err != nil {
				log.Error("reload: configuration refused, keeping the running one", "err", err)
				continue
			}
			if err := d.Reload(next); err != nil {
				log.Error("reload", "err", err)
			}
		}
	}()
	if err := d.Run(ctx); err != nil {
		logRunError(log, err)
		return 1
	}
	return 0
}

// logRunError logs why Run failed in one line: for a start-up failure the
// phase, the interface and the errno as attributes.
func logRunError(log *slog.Logger, err error) {
	var se *daemon.StartError
	if !errors.As(err, &se) {
		log.Error("run", "err", err)
		return
	}
	attrs := []any{"phase", se.Phase}
	if se.Interface != "" {
		attrs = append(attrs, "interface", se.Interface)
	}
	if n := se.Errno(); n != "" {
		attrs = append(attrs, "errno", n)
	}
	log.Error("start failed", append(attrs, "err", se.Err)...)
}
