package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hotcast/hotcast/daemon/config"
)

const deviceA = "../../daemon/config/vrpimport/testdata/deviceA.vrp"

func TestImportVRPStdout(t *testing.T) {
	var out, errb bytes.Buffer
	// Flags after FILE are parsed too; the map key uses VRP's spaced form.
	if err := importVRP([]string{deviceA, "--map", "gigabitethernet 0/1/2=lan0"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	c, err := config.LoadBytes(out.Bytes())
	if err != nil {
		t.Fatalf("stdout does not load: %v", err)
	}
	if c.Profiles[0].VRRP6.Interface != "lan0" || c.Interface("lan0") == nil {
		t.Errorf("--map not applied: %+v", c.Profiles[0].VRRP6)
	}
	// DeviceA runs PIM: no upstream to name.
	if lan := c.Interface("lan0"); lan == nil || lan.PIM == nil || !lan.PIM.IgnoreDRState || c.PIM == nil || c.Multicast.Upstream.Interface != "" {
		t.Errorf("pim not converted: %+v, upstream %q", c.PIM, c.Multicast.Upstream.Interface)
	}
	warn := errb.String()
	for _, want := range []string{"deviceA.vrp: warning: line 15: isis 1: not modelled", "line 50: interface NULL0: not modelled"} {
		if !strings.Contains(warn, want) {
			t.Errorf("stderr lacks %q:\n%s", want, warn)
		}
	}
}

func TestImportVRPOut(t *testing.T) {
	dst := filepath.Join(t.TempDir(), "hotcast.yaml")
	var out, errb bytes.Buffer
	if err := importVRP([]string{"--out", dst, "--upstream", "GigabitEthernet0/1/3", deviceA}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if out.Len() != 0 {
		t.Errorf("stdout not empty with --out: %q", out.String())
	}
	c, err := config.Load(dst)
	if err != nil {
		t.Fatal(err)
	}
	if c.Sysname != "DeviceA" || c.Multicast.Upstream.Interface != "ge3" || c.PIMEnabled() {
		t.Errorf("got %s upstream %s pim %v", c.Sysname, c.Multicast.Upstream.Interface, c.PIMEnabled())
	}
	// --upstream converts the MLD edge: the PIM lines are warned about.
	if want := "line 53: static-rp 2001:DB8:22::22: not converted: --upstream"; !strings.Contains(errb.String(), want) {
		t.Errorf("stderr lacks %q:\n%s", want, errb.String())
	}
	if fi, _ := os.Stat(dst); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", fi.Mode().Perm())
	}
}

func TestImportVRPErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.vrp")
	src, err := os.ReadFile(deviceA)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, bytes.Replace(src, []byte("vrrp6 vrid 1 priority 200"), []byte("vrrp6 vrid 0 priority 200"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{bad}, "line 34: vrrp6 vrid 0 priority 200: out of range"},
		{[]string{}, "want exactly one FILE"},
		{[]string{deviceA, deviceA}, "want exactly one FILE"},
		{[]string{"--map", "ge2", deviceA}, "want VRPIF=LINUXIF"},
		{[]string{filepath.Join(t.TempDir(), "missing")}, "no such file"},
	}
	for _, tt := range tests {
		var out, errb bytes.Buffer
		err := importVRP(tt.args, &out, &errb)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("importVRP(%q) = %v, want an error containing %q", tt.args, err, tt.want)
		}
		if out.Len() != 0 {
			t.Errorf("importVRP(%q) wrote to stdout on error", tt.args)
		}
	}
}

func TestRunDispatchesImportVRP(t *testing.T) {
	var out bytes.Buffer
	if err := run([]string{"import-vrp", deviceA}, &out); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out.Bytes(), []byte("sysname: DeviceA")) {
		t.Errorf("output:\n%s", out.String())
	}
}
