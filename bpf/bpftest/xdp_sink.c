// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//go:build ignore

/*
 * hc_sink: a receiver-side helper for tests, the lab and benchmarks. It
 * counts IPv6 frames per destination group and then drops them (a sink that
 * stands for the wire) or passes them to the stack. Attaching any XDP
 * program to a veth end is also what lets it receive XDP-redirected frames.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "../include/parsing.h"

/* Set through spec.Variables before loading. */
volatile const __u8 sink_drop = 0;

struct sink_key {
	__u8 grp[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__type(key, struct sink_key);
	__type(value, __u64);
	__uint(max_entries, 1024);
} sink_counts SEC(".maps");

SEC("xdp")
int hc_sink(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	void *data = (void *)(long)ctx->data;
	struct hdr_cursor nh = { .pos = data };
	struct sink_key key = {};
	struct ipv6hdr *ip6h;
	struct ethhdr *eth;
	__u64 one = 1, *v;
	int vlan_len;

	if (parse_ethhdr(&nh, data_end, &eth, &vlan_len) != ETH_P_IPV6)
		return XDP_PASS;
	ip6h = nh.pos;
	if ((void *)(ip6h + 1) > data_end)
		return XDP_PASS;
	if (ip6h->daddr.s6_addr[0] != 0xff || mc_scope(&ip6h->daddr) <= 2)
		return XDP_PASS;
	__builtin_memcpy(key.grp, &ip6h->daddr, sizeof(key.grp));
	v = bpf_map_lookup_elem(&sink_counts, &key);
	if (v)
		*v += 1;
	else
		bpf_map_update_elem(&sink_counts, &key, &one, BPF_NOEXIST);
	return sink_drop ? XDP_DROP : XDP_PASS;
}

char __license[] SEC("license") = "Dual BSD/GPL";
