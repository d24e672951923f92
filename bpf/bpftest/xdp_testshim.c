// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//go:build ignore

/*
 * Test shim for hc_egress_copy: BPF_PROG_TEST_RUN refuses BPF_XDP_DEVMAP
 * programs, so tests run the same function from a plain XDP program that
 * takes the egress ifindex from ingress_ifindex. Loaded by tests only.
 */
#include "../include/egress.h"

SEC("xdp")
int hc_egress_shim(struct xdp_md *ctx)
{
	return hc_egress_copy(ctx, ctx->ingress_ifindex);
}

char __license[] SEC("license") = "Dual BSD/GPL";
