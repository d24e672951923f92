// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//go:build ignore

/*
 * hc_egress: the devmap egress program (BPF_XDP_DEVMAP) run once per copy of
 * a replicated frame, on the way out of each outgoing interface.
 */
#include "include/egress.h"

SEC("xdp/devmap")
int hc_egress(struct xdp_md *ctx)
{
	return hc_egress_copy(ctx, ctx->egress_ifindex);
}

char __license[] SEC("license") = "Dual BSD/GPL";
