/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#ifndef HOTCAST_EGRESS_H
#define HOTCAST_EGRESS_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include "hotcast.h"
#include "maps.h"

/* Per-copy work for a frame leaving through ifindex: the gate, then the
 * source MAC (own MAC, or the VRRP virtual MAC while Master). Shared by the
 * devmap program and its test shim (BPF_PROG_TEST_RUN refuses devmap
 * programs, and only they may read egress_ifindex). */
static __always_inline int hc_egress_copy(struct xdp_md *ctx, __u32 ifindex)
{
	void *data_end = (void *)(long)ctx->data_end;
	void *data = (void *)(long)ctx->data;
	struct ethhdr *eth = data;
	struct hc_iface *ifc;

	ifc = bpf_map_lookup_elem(&ifaces, &ifindex);
	if (!ifc) {
		count_reason(HC_R_EGRESS_UNKNOWN);
		return XDP_DROP;
	}
	if (ifc->gate != HC_GATE_FORWARD) {
		count_reason(HC_R_EGRESS_MUTED);
		return XDP_DROP;
	}
	if ((void *)(eth + 1) > data_end) {
		count_reason(HC_R_EGRESS_MALFORMED);
		return XDP_DROP;
	}
	__builtin_memcpy(eth->h_source, ifc->src_mac, ETH_ALEN);
	count_reason(HC_R_EGRESS_SENT);
	return XDP_PASS;
}

#endif /* HOTCAST_EGRESS_H */
