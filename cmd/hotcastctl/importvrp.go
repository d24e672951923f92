package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/hotcast/hotcast/daemon/config/vrpimport"
)

const importUsage = `usage: hotcastctl import-vrp [--map VRPIF=LINUXIF ...] [--upstream IF] [--out FILE] FILE

Converts a Huawei VRP configuration (display current-configuration) into a
hotcastd configuration, validated before it is written. FILE "-" is stdin.
Lines that are not converted are listed on stderr with their line numbers.

  --map VRPIF=LINUXIF  Linux name of a VRP interface (repeatable); the default
                       maps GigabitEthernetX/Y/Z to geZ. VRPIF is matched
                       case-insensitively, spaces ignored:
                       --map "gigabitethernet 0/1/2=eth1"
  --upstream IF        convert as an MLD edge router pulling traffic from IF
                       (multicast.upstream.interface, VRP or Linux name)
                       instead of running PIM: the PIM lines are warned
                       about. Without it, interfaces with "pim ipv6 sm" run
                       PIM (no upstream needed); a file without PIM gets
                       its upstream inferred, or needs --upstream
  --out FILE           write the YAML to FILE instead of stdout
`

// mapFlag collects repeated --map VRPIF=LINUXIF.
type mapFlag map[string]string

func (m mapFlag) String() string { return "" }

func (m mapFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || strings.TrimSpace(k) == "" || val == "" {
		return fmt.Errorf("want VRPIF=LINUXIF, got %q", v)
	}
	if old, dup := m[k]; dup && old != val {
		return fmt.Errorf("%s is already mapped to %s", k, old)
	}
	m[k] = val
	return nil
}

// importVRP implements "hotcastctl import-vrp". Flags may come before or
// after FILE.
func importVRP(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("import-vrp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(fs.Output(), importUsage) }
	maps := mapFlag{}
	fs.Var(maps, "map", "VRPIF=LINUXIF (repeatable)")
	out := fs.String("out", "", "output file (default stdout)")
	upstream := fs.String("upstream", "", "multicast.upstream.interface")
	var files []string
	for {
		if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
			return nil
		} else if err != nil {
			return fmt.Errorf("import-vrp: %w", err)
		}
		if fs.NArg() == 0 {
			break
		}
		files = append(files, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(files) != 1 {
		fs.Usage()
		return errors.New("import-vrp: want exactly one FILE")
	}
	in := files[0]

	var src []byte
	var err error
	if in == "-" {
		src, err = io.ReadAll(os.Stdin)
	} else {
		src, err = os.ReadFile(in)
	}
	if err != nil {
		return fmt.Errorf("import-vrp: read: %w", err)
	}
	name := in
	if in == "-" {
		name = "stdin"
	}
	res, err := vrpimport.Convert(src, vrpimport.Options{Map: maps, Upstream: *upstream, Source: filepath.Base(name)})
	if err != nil {
		return fmt.Errorf("import-vrp %s:\n%w", name, err)
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(stderr, "import-vrp %s: warning: %s\n", name, w)
	}
	if *out == "" {
		_, err := stdout.Write(res.YAML)
		return err
	}
	if err := writeFileAtomic(*out, res.YAML); err != nil {
		return fmt.Errorf("import-vrp: %w", err)
	}
	return nil
}

// writeFileAtomic writes b to path through a temporary file in the same
// directory, so a reader (hotcastd) never sees a half-written file.
func writeFileAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	_, werr := f.Write(b)
	cerr := f.Close()
	if err := errors.Join(werr, cerr, os.Chmod(tmp, 0o644)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
