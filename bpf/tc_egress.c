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

SEC("tc")
int hc_tc_egress(struct __sk_buff *skb)
{
	struct hc_vip_key key = {};
	__u8 vmac[ETH_ALEN];
	struct ethhdr *eth;
	struct ipv6hdr *ip6h;
	struct hc_vip *vip;
	void *data, *data_end;

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
	bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_source), vmac, ETH_ALEN, 0);
	return TC_ACT_OK;
}

char __license[] SEC("license") = "Dual BSD/GPL";
