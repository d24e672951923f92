// Command hotcastctl is the operator CLI of hotcastd, in the spirit of VRP
// display commands:
//
//	hotcastctl [--socket PATH] display multicast forwarding-table [--json]
//	hotcastctl display mld group [interface NAME] [--json]
//	hotcastctl display mld interface [NAME] [--json]
//	hotcastctl display vrrp6 [interface NAME] [vrid N] [--json]
//	hotcastctl display remote-backup-service [NAME] [--json]
//	hotcastctl display remote-backup-profile [NAME] [--json]
//	hotcastctl display bfd session [NAME] [verbose] [--json]
//	hotcastctl display pim neighbor [INTERFACE] [verbose] [--json]
//	hotcastctl display pim interface [INTERFACE] [verbose] [--json]
//	hotcastctl display pim routing-table [GROUP | statistics] [--json]
//	hotcastctl doctor [--config FILE] [--json]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/hotcast/hotcast/daemon/api"
	"github.com/hotcast/hotcast/daemon/doctor"
)

const usage = `usage: hotcastctl [--socket PATH] COMMAND [--json]

commands:
  display multicast forwarding-table
  display mld group [interface NAME]
  display mld interface [NAME]
  display vrrp6 [interface NAME] [vrid N]
  display remote-backup-service [NAME]
  display remote-backup-profile [NAME]
  display bfd session [NAME] [verbose]
  display pim neighbor [INTERFACE] [verbose]
  display pim interface [INTERFACE] [verbose]
  display pim routing-table [GROUP | statistics]
  import-vrp [--map VRPIF=IF ...] [--upstream IF] [--out FILE] FILE
  doctor [--config FILE]
`

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "hotcastctl: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string, w io.Writer) error {
	fs := flag.NewFlagSet("hotcastctl", flag.ContinueOnError)
	socket := fs.String("socket", defaultSocket(), "hotcastd API socket")
	fs.Usage = func() { fmt.Fprint(fs.Output(), usage) }
	if err := fs.Parse(args); err != nil {
		return err
	}
	words, asJSON := splitJSON(fs.Args())
	c := api.NewClient(*socket)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	switch {
	case match(words, "import-vrp"):
		return importVRP(words[1:], w, os.Stderr)
	case match(words, "doctor"):
		return runDoctor(words[1:], asJSON, w, os.Stderr, doctor.Probe)
	case match(words, "display", "multicast", "forwarding-table"):
		return show(ctx, c, w, api.PathForwardingTable, nil, asJSON, printForwarding)
	case match(words, "display", "mld", "group"):
		q, err := optArg(words[3:], "interface")
		if err != nil {
			return err
		}
		return show(ctx, c, w, api.PathMLDGroups, q, asJSON, printMLDGroups)
	case match(words, "display", "mld", "interface"):
		q := url.Values{}
		if len(words) == 4 {
			q.Set("interface", words[3])
		}
		return show(ctx, c, w, api.PathMLDInterfaces, q, asJSON, printMLDInterfaces)
	case match(words, "display", "vrrp6"):
		q := url.Values{}
		rest := words[2:]
		for len(rest) >= 2 && (rest[0] == "interface" || rest[0] == "vrid") {
			q.Set(rest[0], rest[1])
			rest = rest[2:]
		}
		if len(rest) != 0 {
			return fmt.Errorf("expected [interface NAME] [vrid N], got %q", strings.Join(rest, " "))
		}
		return show(ctx, c, w, api.PathVRRP6, q, asJSON, printVRRP6)
	case match(words, "display", "remote-backup-service"), match(words, "display", "remote-backup-profile"):
		q := url.Values{}
		switch len(words) {
		case 2:
		case 3:
			q.Set("name", words[2])
		default:
			return fmt.Errorf("expected [NAME], got %q", strings.Join(words[2:], " "))
		}
		if words[1] == "remote-backup-service" {
			return show(ctx, c, w, api.PathRBS, q, asJSON, printRBS)
		}
		return show(ctx, c, w, api.PathRBP, q, asJSON, printRBP)
	case match(words, "display", "bfd", "session"):
		q := url.Values{}
		rest := words[3:]
		verbose := len(rest) > 0 && rest[len(rest)-1] == "verbose"
		if verbose {
			rest = rest[:len(rest)-1]
		}
		switch len(rest) {
		case 0:
		case 1:
			q.Set("name", rest[0])
		default:
			return fmt.Errorf("expected [NAME] [verbose], got %q", strings.Join(words[3:], " "))
		}
		if verbose {
			return show(ctx, c, w, api.PathBFD, q, asJSON, printBFDVerbose)
		}
		return show(ctx, c, w, api.PathBFD, q, asJSON, printBFD)
	case match(words, "display", "pim"):
		return displayPIM(ctx, c, w, words[2:], asJSON)
	default:
		fs.Usage()
		return errors.New("unknown command")
	}
}

// displayPIM runs "display pim [ipv6] neighbor|interface|routing-table ...";
// VRP's "ipv6" keyword is accepted and changes nothing.
func displayPIM(ctx context.Context, c *api.Client, w io.Writer, words []string, asJSON bool) error {
	if len(words) > 0 && words[0] == "ipv6" {
		words = words[1:]
	}
	if len(words) == 0 {
		return errors.New("expected neighbor, interface or routing-table")
	}
	what, rest := words[0], words[1:]
	verbose := len(rest) > 0 && rest[len(rest)-1] == "verbose"
	if verbose && what != "routing-table" {
		rest = rest[:len(rest)-1]
	}
	var err error
	switch what {
	case "neighbor", "interface":
		q := url.Values{}
		switch len(rest) {
		case 0:
		case 1:
			q.Set("interface", rest[0])
		default:
			return fmt.Errorf("expected [INTERFACE] [verbose], got %q", strings.Join(words[1:], " "))
		}
		switch {
		case what == "neighbor" && verbose:
			err = show(ctx, c, w, api.PathPIMNeighbors, q, asJSON, printPIMNeighborsVerbose)
		case what == "neighbor":
			err = show(ctx, c, w, api.PathPIMNeighbors, q, asJSON, printPIMNeighbors)
		case verbose:
			err = show(ctx, c, w, api.PathPIMInterfaces, q, asJSON, printPIMInterfacesVerbose)
		default:
			err = show(ctx, c, w, api.PathPIMInterfaces, q, asJSON, printPIMInterfaces)
		}
	case "routing-table":
		q := url.Values{}
		switch {
		case len(rest) == 0:
			err = show(ctx, c, w, api.PathPIMRoutes, q, asJSON, printPIMRoutes)
		case len(rest) == 1 && rest[0] == "statistics":
			err = show(ctx, c, w, api.PathPIMRoutes, q, asJSON, printPIMStatistics)
		case len(rest) == 1:
			q.Set("group", rest[0])
			err = show(ctx, c, w, api.PathPIMRoutes, q, asJSON, printPIMRoutes)
		default:
			return fmt.Errorf("expected [GROUP | statistics], got %q", strings.Join(rest, " "))
		}
	default:
		return fmt.Errorf("display pim %s: expected neighbor, interface or routing-table", what)
	}
	// The daemon's answer while PIM is off is the whole message.
	var se *api.StatusError
	if errors.As(err, &se) && se.Message == api.PIMNotRunning {
		return errors.New(api.PIMNotRunning)
	}
	return err
}

func defaultSocket() string {
	if s := os.Getenv("HOTCAST_SOCKET"); s != "" {
		return s
	}
	return "/run/hotcast/hotcast.sock"
}

func splitJSON(args []string) ([]string, bool) {
	var out []string
	j := false
	for _, a := range args {
		if a == "--json" || a == "-json" {
			j = true
			continue
		}
		out = append(out, a)
	}
	return out, j
}

func match(words []string, prefix ...string) bool {
	return len(words) >= len(prefix) && slices.Equal(words[:len(prefix)], prefix)
}

func optArg(rest []string, key string) (url.Values, error) {
	q := url.Values{}
	switch {
	case len(rest) == 0:
	case len(rest) == 2 && rest[0] == key:
		q.Set(key, rest[1])
	default:
		return nil, fmt.Errorf("expected [%s NAME], got %q", key, strings.Join(rest, " "))
	}
	return q, nil
}

func show[T any](ctx context.Context, c *api.Client, w io.Writer, path string, q url.Values, asJSON bool, pr func(io.Writer, T)) error {
	if asJSON {
		raw, err := c.GetRaw(ctx, path, q)
		if err != nil {
			return err
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return err
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	var v T
	if err := c.Get(ctx, path, q, &v); err != nil {
		return err
	}
	pr(w, v)
	return nil
}
