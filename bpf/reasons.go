package bpf

import "fmt"

// Reason says what happened to a frame; the programs count every verdict
// under one. Generated from enum hc_reason.
type Reason = ingressHcReason

// Reason values, from enum hc_reason in include/hotcast.h.
const (
	ReasonForwarded       = ingressHcReasonHC_R_FORWARDED
	ReasonPassNotIPv6     = ingressHcReasonHC_R_PASS_NOT_IPV6
	ReasonPassUnicast     = ingressHcReasonHC_R_PASS_UNICAST
	ReasonPassLocalScope  = ingressHcReasonHC_R_PASS_LOCAL_SCOPE
	ReasonPassRouterAlert = ingressHcReasonHC_R_PASS_ROUTER_ALERT
	ReasonPassMLD         = ingressHcReasonHC_R_PASS_MLD
	ReasonPassPIM         = ingressHcReasonHC_R_PASS_PIM
	ReasonPassVRRP        = ingressHcReasonHC_R_PASS_VRRP
	ReasonPassMiss        = ingressHcReasonHC_R_PASS_MISS
	ReasonPassHopLimit    = ingressHcReasonHC_R_PASS_HOP_LIMIT
	ReasonDropMalformed   = ingressHcReasonHC_R_DROP_MALFORMED
	ReasonDropRPF         = ingressHcReasonHC_R_DROP_RPF
	ReasonDropNoOIF       = ingressHcReasonHC_R_DROP_NO_OIF
	ReasonDropRedirect    = ingressHcReasonHC_R_DROP_REDIRECT
	ReasonDropVMACBackup  = ingressHcReasonHC_R_DROP_VMAC_BACKUP
	ReasonTxNA            = ingressHcReasonHC_R_TX_NA
	ReasonForwardedClone  = ingressHcReasonHC_R_FORWARDED_CLONE
	ReasonDropClone       = ingressHcReasonHC_R_DROP_CLONE
	ReasonEgressSent      = ingressHcReasonHC_R_EGRESS_SENT
	ReasonEgressMuted     = ingressHcReasonHC_R_EGRESS_MUTED
	ReasonEgressUnknown   = ingressHcReasonHC_R_EGRESS_UNKNOWN
	ReasonEgressMalformed = ingressHcReasonHC_R_EGRESS_MALFORMED
	ReasonPassPunt        = ingressHcReasonHC_R_PASS_PUNT
	numReasons            = ingressHcReasonHC_R_MAX
)

// reasonNames are the stable names used by display, JSON and metrics.
var reasonNames = [...]string{
	ReasonForwarded:       "forwarded",
	ReasonPassNotIPv6:     "pass_not_ipv6",
	ReasonPassUnicast:     "pass_unicast",
	ReasonPassLocalScope:  "pass_local_scope",
	ReasonPassRouterAlert: "pass_router_alert",
	ReasonPassMLD:         "pass_mld",
	ReasonPassPIM:         "pass_pim",
	ReasonPassVRRP:        "pass_vrrp",
	ReasonPassMiss:        "pass_miss",
	ReasonPassHopLimit:    "pass_hop_limit",
	ReasonDropMalformed:   "drop_malformed",
	ReasonDropRPF:         "drop_rpf",
	ReasonDropNoOIF:       "drop_no_oif",
	ReasonDropRedirect:    "drop_redirect",
	ReasonDropVMACBackup:  "drop_vmac_backup",
	ReasonTxNA:            "tx_na",
	ReasonForwardedClone:  "forwarded_clone",
	ReasonDropClone:       "drop_clone",
	ReasonEgressSent:      "egress_sent",
	ReasonEgressMuted:     "egress_muted",
	ReasonEgressUnknown:   "egress_unknown",
	ReasonEgressMalformed: "egress_malformed",
	ReasonPassPunt:        "pass_punt",
}

// ReasonName returns the stable name of r.
func ReasonName(r Reason) string {
	if int(r) < len(reasonNames) && reasonNames[r] != "" {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason_%d", uint32(r))
}

// AllReasons lists every reason in order.
func AllReasons() []Reason {
	out := make([]Reason, 0, numReasons)
	for r := Reason(0); r < numReasons; r++ {
		out = append(out, r)
	}
	return out
}

// Reasons returns the frame counts by reason, summed over CPUs.
func (d *Dataplane) Reasons() (map[Reason]uint64, error) {
	out := make(map[Reason]uint64, numReasons)
	var per []uint64
	for r := Reason(0); r < numReasons; r++ {
		if err := d.maps.Reasons.Lookup(r, &per); err != nil {
			return nil, fmt.Errorf("read reason %s: %w", ReasonName(r), err)
		}
		var sum uint64
		for _, v := range per {
			sum += v
		}
		out[r] = sum
	}
	return out, nil
}
