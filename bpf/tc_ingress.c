// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//go:build ignore

/*
 * hc_tc_ingress: TC ingress (tcx) on every hotcast interface. hc_ingress
 * rewrites frames to a Master group's virtual MAC to the interface MAC, but on
 * drivers that run XDP on an skb (veth, generic XDP) the skb was already
 * classified PACKET_OTHERHOST from the original destination and the stack
 * would drop it. Frames now addressed to the interface MAC are made
 * PACKET_HOST again. On native-XDP NICs the skb is built after XDP and this
 * is a no-op.
 *
 * It also replicates clone-mode routes: hc_ingress passes such frames up
 * with the set id in the metadata, and each copy leaves through
 * bpf_clone_redirect (the gate and source MAC of each egress applied as in
 * the devmap program); the original is then consumed.
 *
 * And it sends out the Neighbor Advertisements hc_ingress answers for
 * virtual IPs (see tx_via_tc in include/vrrp.h).
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <stddef.h>
#include <bpf/bpf_helpers.h>
#include "include/hotcast.h"
#include "include/maps.h"

static __always_inline int clone_out(struct __sk_buff *skb, __u32 set_id)
{
	struct hc_oif_list *l = bpf_map_lookup_elem(&set_members, &set_id);
	__u32 in = skb->ifindex;
	int i;

	if (!l) {
		count_reason(HC_R_DROP_CLONE);
		return TC_ACT_SHOT;
	}
	for (i = 0; i < HC_MAX_SET_OIFS; i++) {
		__u32 oif;
		struct hc_iface *ifc;

		if (i >= l->count)
			break;
		oif = l->ifindex[i];
		if (oif == in)
			continue;
		ifc = bpf_map_lookup_elem(&ifaces, &oif);
		if (!ifc) {
			count_reason(HC_R_EGRESS_UNKNOWN);
			continue;
		}
		if (ifc->gate != HC_GATE_FORWARD) {
			count_reason(HC_R_EGRESS_MUTED);
			continue;
		}
		if (bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_source), ifc->src_mac, ETH_ALEN, 0) ||
		    bpf_clone_redirect(skb, oif, 0)) {
			count_reason(HC_R_DROP_CLONE);
			continue;
		}
		count_reason(HC_R_EGRESS_SENT);
	}
	return TC_ACT_SHOT;
}

SEC("tc")
int hc_tc_ingress(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct hc_meta *meta = (void *)(long)skb->data_meta;
	struct ethhdr *eth = data;
	struct hc_iface *ifc;
	__u32 ifindex = skb->ifindex;

	if ((void *)(meta + 1) <= data) {
		if (meta->magic == HC_META_MAGIC)
			return clone_out(skb, meta->set_id);
		/* An NA hc_ingress built from an NS (vrrp.h tx_via_tc): out
		 * of this interface, where the tc egress program sees it as
		 * any frame from a virtual IP. */
		if (meta->magic == HC_META_TX_MAGIC)
			return bpf_redirect(ifindex, 0);
	}

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
