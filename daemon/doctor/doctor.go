// Package doctor ties the kernel report of bpf/probe to a hotcastd
// configuration, for `hotcastctl doctor` and `hotcastd --check`.
package doctor

import (
	"github.com/hotcast/hotcast/bpf/probe"
	"github.com/hotcast/hotcast/daemon/config"
)

// Want is what cfg needs of the kernel; a nil cfg is the zero Want (check
// for everything, every interface of the namespace).
func Want(cfg *config.Config) probe.Want {
	if cfg == nil {
		return probe.Want{}
	}
	w := probe.Want{Config: true, PinPath: cfg.BPF.PinPath, XDPMode: string(cfg.BPF.XDPMode)}
	if w.XDPMode == "" {
		w.XDPMode = string(config.DefaultXDPMode)
	}
	w.Sockets = cfg.Multicast.Upstream.Mode == config.UpstreamMLDProxy
	for _, ic := range cfg.Interfaces {
		w.Interfaces = append(w.Interfaces, probe.WantIface{
			Name:  ic.Name,
			XDP:   cfg.Multicast.RoutingEnable || len(ic.VRRP6) > 0,
			Clone: ic.Egress == config.EgressClone,
		})
		if ic.MLD.Enable || len(ic.VRRP6) > 0 || ic.PIM != nil {
			w.Sockets = true
		}
	}
	return w
}

// Probe checks the running kernel, from the calling thread's network
// namespace, against cfg (nil: no configuration).
func Probe(cfg *config.Config) *probe.Report {
	return probe.Evaluate(probe.System{}, Want(cfg))
}
