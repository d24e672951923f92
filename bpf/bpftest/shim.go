package bpftest

import (
	"fmt"

	"github.com/cilium/ebpf"
)

// LoadEgressShim loads hc_egress_shim, a plain XDP program running the
// dataplane's egress function (hc_egress_copy) with the egress ifindex
// taken from ingress_ifindex: BPF_PROG_TEST_RUN refuses devmap programs.
// maps are the dataplane's maps by name, so the shim reads the same
// ifaces and counts in the same reasons. The caller closes the program.
func LoadEgressShim(maps map[string]*ebpf.Map) (*ebpf.Program, error) {
	var p testshimPrograms
	if err := loadTestshimObjects(&p, &ebpf.CollectionOptions{MapReplacements: maps}); err != nil {
		return nil, fmt.Errorf("load egress shim: %w", err)
	}
	return p.HcEgressShim, nil
}
