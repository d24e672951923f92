// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//go:build ignore

/*
 * hc_tc_egress: TC egress (tcx) on VRRP interfaces. Packets the local stack
 * sends from a virtual IP of a group this router is Master of leave with
 * the virtual MAC as Ethernet source (RFC 9568 7.3 / 8.2).
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "include/hotcast.h"
#include "include/maps.h"

#define HC_L4_OFF (sizeof(struct ethhdr) + sizeof(struct ipv6hdr))

/* ND messages the stack sends from a virtual IP (its NS to resolve a host,
 * NA, RA) carry the interface MAC in their link-layer address options; a
 * host would learn it and bypass the virtual MAC. Rewrite the first
 * source/target link-layer option to the virtual MAC and fix the ICMPv6
 * checksum. Bounded to the options right after the fixed part of NS/NA
 * (24 bytes) and RS/RA/Redirect are left alone but for NS/NA. */
static __always_inline void nd_options_vmac(struct __sk_buff *skb, const __u8 *vmac)
{
	__u8 hdr[2], old[8], new[8];
	__u32 off;
	__s64 diff;
	__u8 type;
	int i;

	if (bpf_skb_load_bytes(skb, HC_L4_OFF, &type, 1))
		return;
	if (type != 135 && type != 136)
		return;
	off = HC_L4_OFF + 24;
#pragma unroll
	for (i = 0; i < 3; i++) {
		if (bpf_skb_load_bytes(skb, off, hdr, 2))
			return;
		if (hdr[1] == 0)
			return;
		if ((hdr[0] == 1 || hdr[0] == 2) && hdr[1] == 1) {
			if (bpf_skb_load_bytes(skb, off, old, 8))
				return;
			new[0] = old[0];
			new[1] = old[1];
			__builtin_memcpy(new + 2, vmac, ETH_ALEN);
			diff = bpf_csum_diff((__be32 *)old, 8, (__be32 *)new, 8, 0);
			if (diff < 0)
				return;
			bpf_skb_store_bytes(skb, off, new, 8, 0);
			bpf_l4_csum_replace(skb, HC_L4_OFF + 2, 0, diff, 0);
			return;
		}
		off += hdr[1] * 8;
	}
}

SEC("tc")
int hc_tc_egress(struct __sk_buff *skb)
{
	struct hc_vip_key key = {};
	__u8 vmac[ETH_ALEN];
	struct ethhdr *eth;
	struct ipv6hdr *ip6h;
	struct hc_vip *vip;
	void *data, *data_end;
	int icmp;

	/* Frames from the stack may be non-linear: pull the headers in. */
	if (bpf_skb_pull_data(skb, sizeof(*eth) + sizeof(*ip6h)))
		return TC_ACT_OK;
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	eth = data;
	ip6h = (void *)(eth + 1);
	if ((void *)(ip6h + 1) > data_end)
		return TC_ACT_OK;
	if (eth->h_proto != bpf_htons(ETH_P_IPV6))
		return TC_ACT_OK;
	key.ifindex = skb->ifindex;
	__builtin_memcpy(key.addr, &ip6h->saddr, 16);
	vip = bpf_map_lookup_elem(&vips, &key);
	if (!vip)
		return TC_ACT_OK;
	vmac_of(vmac, vip->vrid);
	icmp = ip6h->nexthdr == 58;
	/* Packet pointers are invalid after this store. */
	bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_source), vmac, ETH_ALEN, 0);
	if (icmp)
		nd_options_vmac(skb, vmac);
	return TC_ACT_OK;
}

char __license[] SEC("license") = "Dual BSD/GPL";
