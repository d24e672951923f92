// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//go:build ignore

/*
 * hc_tc_ingress: TC ingress (tcx) on VRRP interfaces. hc_ingress rewrites
 * frames to a Master group's virtual MAC to the interface MAC, but on
 * drivers that run XDP on an skb (veth, generic XDP) the skb was already
 * classified PACKET_OTHERHOST from the original destination and the stack
 * would drop it. Frames now addressed to the interface MAC are made
 * PACKET_HOST again. On native-XDP NICs the skb is built after XDP and this
 * is a no-op.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <bpf/bpf_helpers.h>
#include "include/hotcast.h"
#include "include/maps.h"

SEC("tc")
int hc_tc_ingress(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct hc_iface *ifc;
	__u32 ifindex = skb->ifindex;

	if (skb->pkt_type != PACKET_OTHERHOST)
		return TC_ACT_OK;
	if ((void *)(eth + 1) > data_end)
		return TC_ACT_OK;
	ifc = bpf_map_lookup_elem(&ifaces, &ifindex);
	if (!ifc)
		return TC_ACT_OK;
	/* No memcmp in BPF: compare as 4 + 2 bytes. */
	if (*(__u32 *)eth->h_dest != *(__u32 *)ifc->mac ||
	    *(__u16 *)(eth->h_dest + 4) != *(__u16 *)(ifc->mac + 4))
		return TC_ACT_OK;
	bpf_skb_change_type(skb, PACKET_HOST);
	return TC_ACT_OK;
}

char __license[] SEC("license") = "Dual BSD/GPL";
