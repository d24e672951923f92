// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//go:build ignore

/*
 * hc_ingress: the XDP program on every hotcast interface.
 *
 * IPv6 multicast with a route is replicated here to the route's outgoing
 * interfaces through a DEVMAP_HASH broadcast; everything else is either
 * handed to the kernel untouched (control traffic, unicast, misses) or
 * dropped (malformed, RPF failure). Each verdict is counted by reason.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "include/hotcast.h"
#include "include/maps.h"
#include "include/parsing.h"
#include "include/vrrp.h"

#define HC_ICMPV6_MLD_QUERY 130
#define HC_ICMPV6_MLD_REPORT 131
#define HC_ICMPV6_MLD_DONE 132
#define HC_ICMPV6_MLD2_REPORT 143

static __always_inline int pass(enum hc_reason reason)
{
	count_reason(reason);
	return XDP_PASS;
}

static __always_inline int drop(enum hc_reason reason)
{
	count_reason(reason);
	return XDP_DROP;
}

/* Removes the 802.1Q tag: copies leave untagged (hotcast interfaces are
 * routed ports; a VLAN is a separate Linux interface). */
static __always_inline int strip_vlan(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr eth_copy;
	struct ethhdr *eth = data;

	if ((void *)eth + sizeof(*eth) + sizeof(struct vlan_hdr) > data_end)
		return -1;
	__builtin_memcpy(&eth_copy, eth, sizeof(eth_copy));
	/* The inner EtherType becomes the outer one. */
	eth_copy.h_proto = ((struct vlan_hdr *)(eth + 1))->encap_proto;
	if (bpf_xdp_adjust_head(ctx, (int)sizeof(struct vlan_hdr)))
		return -1;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	if ((void *)(eth + 1) > data_end)
		return -1;
	__builtin_memcpy(eth, &eth_copy, sizeof(*eth));
	return 0;
}

/* Clone mode: hand the frame to hc_tc_ingress with the set id in the
 * metadata area; TC copies it with bpf_clone_redirect, whose clones share
 * one buffer (a broadcast redirect copies each frame into a page of its
 * own, which skb-bound receivers such as container veths pay for). */
static __always_inline int to_tc(struct xdp_md *ctx, __u32 set_id)
{
	struct hc_meta *meta;
	void *data;

	if (bpf_xdp_adjust_meta(ctx, -(int)sizeof(*meta)))
		return drop(HC_R_DROP_CLONE);
	meta = (void *)(long)ctx->data_meta;
	data = (void *)(long)ctx->data;
	if ((void *)(meta + 1) > data)
		return drop(HC_R_DROP_CLONE);
	meta->magic = HC_META_MAGIC;
	meta->set_id = set_id;
	count_reason(HC_R_FORWARDED_CLONE);
	return XDP_PASS;
}

SEC("xdp")
int hc_ingress(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	void *data = (void *)(long)ctx->data;
	struct hdr_cursor nh = { .pos = data };
	struct hc_route_key key = {};
	struct ext_result ext = {};
	struct ipv6hdr *ip6h;
	struct ethhdr *eth;
	struct hc_route *rt;
	struct hc_counter *ctr;
	struct hc_iface *ifc;
	__u32 ifx;
	void *set;
	int vlan_len;
	int proto;
	long ret;

	proto = parse_ethhdr(&nh, data_end, &eth, &vlan_len);
	if (proto == HC_ERR_TRUNCATED)
		return drop(HC_R_DROP_MALFORMED);
	ret = vmac_accept(ctx, eth);
	if (ret)
		return ret;
	if (proto != ETH_P_IPV6)
		return pass(HC_R_PASS_NOT_IPV6);

	proto = parse_ip6hdr(&nh, data_end, &ip6h);
	if (proto < 0)
		return drop(HC_R_DROP_MALFORMED);
	if (!vlan_len) {
		ret = ns_answer(ctx, ip6h, data_end);
		if (ret)
			return ret;
	}
	if (ip6h->daddr.s6_addr[0] != 0xff)
		return pass(HC_R_PASS_UNICAST);
	/* Reserved (0), interface-local (1) and link-local (2) scopes: MLD,
	 * ND, VRRP and friends live here; never routed (RFC 4291 2.7). */
	if (mc_scope(&ip6h->daddr) <= 2)
		return pass(HC_R_PASS_LOCAL_SCOPE);

	if (walk_ext_hdrs(&nh, data, data_end, proto, &ext) < 0)
		return drop(HC_R_DROP_MALFORMED);
	/* The extension headers must fit in the frame and in the IPv6
	 * payload (the walk checked each header's start only). */
	if (ext.l4 > data_end ||
	    ext.l4 - (void *)(ip6h + 1) > bpf_ntohs(ip6h->payload_len))
		return drop(HC_R_DROP_MALFORMED);
	if (ext.router_alert)
		return pass(HC_R_PASS_ROUTER_ALERT);
	switch (ext.proto) {
	case HC_NEXTHDR_ICMP: {
		__u8 *type = ext.l4;

		if ((void *)(type + 1) > data_end)
			return drop(HC_R_DROP_MALFORMED);
		if (*type == HC_ICMPV6_MLD_QUERY || *type == HC_ICMPV6_MLD_REPORT ||
		    *type == HC_ICMPV6_MLD_DONE || *type == HC_ICMPV6_MLD2_REPORT)
			return pass(HC_R_PASS_MLD);
		break;
	}
	case HC_NEXTHDR_PIM:
		return pass(HC_R_PASS_PIM);
	case HC_NEXTHDR_VRRP:
		return pass(HC_R_PASS_VRRP);
	}

	/* (S,G) first, then (*,G). */
	__builtin_memcpy(key.src, &ip6h->saddr, sizeof(key.src));
	__builtin_memcpy(key.grp, &ip6h->daddr, sizeof(key.grp));
	rt = bpf_map_lookup_elem(&routes, &key);
	if (!rt) {
		__builtin_memset(key.src, 0, sizeof(key.src));
		rt = bpf_map_lookup_elem(&routes, &key);
		if (!rt)
			return pass(HC_R_PASS_MISS);
	}
	/* An interface that does not route (VRRP6 alone) hands its multicast
	 * to the stack as if no route matched: looked up only for frames
	 * that have a route. */
	ifx = ctx->ingress_ifindex;
	ifc = bpf_map_lookup_elem(&ifaces, &ifx);
	if (ifc && (ifc->flags & HC_IFACE_F_NO_ROUTE))
		return pass(HC_R_PASS_MISS);
	if (rt->iif != ctx->ingress_ifindex)
		return drop(HC_R_DROP_RPF);
	if (ip6h->hop_limit <= 1)
		return pass(HC_R_PASS_HOP_LIMIT);
	if (rt->set_id == 0 && !(rt->flags & HC_ROUTE_F_PUNT))
		return drop(HC_R_DROP_NO_OIF);
	set = bpf_map_lookup_elem(&oif_sets, &rt->set_id);
	if (!set && !(rt->flags & HC_ROUTE_F_PUNT))
		return drop(HC_R_DROP_NO_OIF);

	ctr = bpf_map_lookup_elem(&route_stats, &rt->stats_idx);
	if (ctr) {
		ctr->packets += 1;
		ctr->bytes += data_end - data;
	}
	/* A punt route with nothing to replicate to: the stack gets the
	 * frame as it came (the control plane's packet socket reads it). */
	if (!set)
		return pass(HC_R_PASS_PUNT);

	/* One decrement serves every copy: the broadcast clones this frame. */
	ip6h->hop_limit--;
	if (vlan_len && strip_vlan(ctx) < 0)
		return drop(HC_R_DROP_MALFORMED);

	/* Clone mode, and punt routes: packet sockets see the frame on its
	 * way to TC, which replicates it. */
	if (rt->flags & (HC_ROUTE_F_CLONE | HC_ROUTE_F_PUNT))
		return to_tc(ctx, rt->set_id);

	ret = bpf_redirect_map(set, 0, BPF_F_BROADCAST | BPF_F_EXCLUDE_INGRESS);
	if (ret != XDP_REDIRECT)
		return drop(HC_R_DROP_REDIRECT);
	count_reason(HC_R_FORWARDED);
	return XDP_REDIRECT;
}

char __license[] SEC("license") = "Dual BSD/GPL";
