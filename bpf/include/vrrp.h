/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The VRRP6 virtual MAC in XDP (no macvlan): frames to the virtual MAC of a
 * group this router is Master of are accepted (destination rewritten to the
 * interface's own MAC before the stack sees them); Neighbor Solicitations
 * for a virtual IP are answered here with a Neighbor Advertisement carrying
 * the virtual MAC (RFC 9568 6.4.2, RFC 4861 7.2.4), so the kernel never
 * answers with the interface MAC.
 */
#ifndef HOTCAST_VRRP_H
#define HOTCAST_VRRP_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "hotcast.h"
#include "maps.h"

#define HC_ICMPV6_NS 135
#define HC_ICMPV6_NA 136
#define HC_NA_ROUTER 0x80
#define HC_NA_SOLICITED 0x40
#define HC_NA_OVERRIDE 0x20
#define HC_NA_LEN (14 + 40 + 32) /* Ethernet, IPv6, NA with TLLA option */

/* Returns 0 to go on, or an XDP verdict (already counted). */
static __always_inline int vmac_accept(struct xdp_md *ctx, struct ethhdr *eth)
{
	struct hc_vmac_key key = {};
	struct hc_iface *ifc;

	if (!is_vmac(eth->h_dest))
		return 0;
	key.ifindex = ctx->ingress_ifindex;
	key.vrid = eth->h_dest[5];
	if (!bpf_map_lookup_elem(&vmacs, &key)) {
		count_reason(HC_R_DROP_VMAC_BACKUP);
		return XDP_DROP;
	}
	ifc = bpf_map_lookup_elem(&ifaces, &key.ifindex);
	if (!ifc) {
		count_reason(HC_R_DROP_VMAC_BACKUP);
		return XDP_DROP;
	}
	__builtin_memcpy(eth->h_dest, ifc->mac, ETH_ALEN);
	return 0;
}

static __always_inline __u32 csum_add16(__u32 sum, const __u8 *p, int n)
{
	int i;

#pragma unroll
	for (i = 0; i < n; i += 2)
		sum += ((__u32)p[i] << 8) | p[i + 1];
	return sum;
}

/* Sends the frame (an NA built in place) back out of the interface it came
 * in on. Not with XDP_TX: on a veth, an XDP_TX'd frame reaches the peer only
 * when the peer runs an XDP program of its own; the kernel (veth_xdp_flush)
 * does not wake a peer that has only GRO on, or neither, and the NA waits in
 * its ring until other traffic happens to wake it (a host on a bridge, a
 * container). So the frame goes up with HC_META_TX_MAGIC in its metadata and
 * hc_tc_ingress redirects it to the interface's egress, through the stack,
 * which every driver delivers. Where the driver has no room for metadata,
 * XDP_TX. */
static __always_inline int tx_via_tc(struct xdp_md *ctx)
{
	struct hc_meta *meta;
	void *data;

	if (bpf_xdp_adjust_meta(ctx, -(int)sizeof(*meta)))
		return XDP_TX;
	meta = (void *)(long)ctx->data_meta;
	data = (void *)(long)ctx->data;
	if ((void *)(meta + 1) > data)
		return XDP_TX;
	meta->magic = HC_META_TX_MAGIC;
	meta->set_id = 0;
	return XDP_PASS;
}

/* Answers an NS for a virtual IP (untagged frames, hop limit 255, code 0,
 * target one of our Master groups' virtual IPs). Returns 0 when the frame is
 * not such an NS, else the verdict that sends the NA (tx_via_tc, counted),
 * or XDP_DROP when the frame could not be resized. The frame is rewritten
 * in place into the NA. */
static __always_inline int ns_answer(struct xdp_md *ctx, struct ipv6hdr *ip6h,
				     void *data_end)
{
	struct hc_vip_key key = {};
	__u8 peer_mac[ETH_ALEN], vmac[ETH_ALEN];
	struct in6_addr peer_ip;
	struct ethhdr *eth;
	struct hc_vip *vip;
	void *data;
	__u8 *icmp = (void *)(ip6h + 1);
	int solicited;
	__u32 sum;
	__u8 *na;

	if (ip6h->nexthdr != 58 || ip6h->hop_limit != 255)
		return 0;
	if ((void *)(icmp + 24) > data_end)
		return 0;
	if (icmp[0] != HC_ICMPV6_NS || icmp[1] != 0)
		return 0;
	key.ifindex = ctx->ingress_ifindex;
	__builtin_memcpy(key.addr, icmp + 8, 16);
	vip = bpf_map_lookup_elem(&vips, &key);
	if (!vip)
		return 0;

	eth = (void *)(long)ctx->data;
	if ((void *)(eth + 1) > data_end)
		return 0;
	__builtin_memcpy(peer_mac, eth->h_source, ETH_ALEN);
	__builtin_memcpy(&peer_ip, &ip6h->saddr, sizeof(peer_ip));
	vmac_of(vmac, vip->vrid);
	/* RFC 4861 7.2.4: from the unspecified address (DAD), answer to all
	 * nodes with Solicited clear. */
	solicited = peer_ip.s6_addr32[0] | peer_ip.s6_addr32[1] |
		    peer_ip.s6_addr32[2] | peer_ip.s6_addr32[3];

	if (bpf_xdp_adjust_tail(ctx, HC_NA_LEN - (int)(data_end - (void *)eth))) {
		/* Nothing changed yet, but the verifier has forgotten the
		 * caller's packet pointers: end here. */
		count_reason(HC_R_DROP_MALFORMED);
		return XDP_DROP;
	}
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (data + HC_NA_LEN > data_end) {
		count_reason(HC_R_DROP_MALFORMED);
		return XDP_DROP;
	}
	eth = data;
	ip6h = (void *)(eth + 1);
	na = (void *)(ip6h + 1);

	if (solicited) {
		__builtin_memcpy(eth->h_dest, peer_mac, ETH_ALEN);
		__builtin_memcpy(&ip6h->daddr, &peer_ip, sizeof(peer_ip));
	} else {
		static const __u8 allnodes_mac[ETH_ALEN] = { 0x33, 0x33, 0, 0, 0, 1 };

		__builtin_memcpy(eth->h_dest, allnodes_mac, ETH_ALEN);
		__builtin_memset(&ip6h->daddr, 0, sizeof(ip6h->daddr));
		ip6h->daddr.s6_addr[0] = 0xff;
		ip6h->daddr.s6_addr[1] = 0x02;
		ip6h->daddr.s6_addr[15] = 0x01;
	}
	__builtin_memcpy(eth->h_source, vmac, ETH_ALEN);
	eth->h_proto = bpf_htons(ETH_P_IPV6);
	*(__be32 *)ip6h = bpf_htonl(0x60000000);
	ip6h->payload_len = bpf_htons(32);
	ip6h->nexthdr = 58;
	ip6h->hop_limit = 255;
	__builtin_memcpy(&ip6h->saddr, key.addr, 16);

	na[0] = HC_ICMPV6_NA;
	na[1] = 0;
	na[2] = 0;
	na[3] = 0;
	na[4] = HC_NA_ROUTER | HC_NA_OVERRIDE | (solicited ? HC_NA_SOLICITED : 0);
	na[5] = 0;
	na[6] = 0;
	na[7] = 0;
	__builtin_memcpy(na + 8, key.addr, 16);
	na[24] = 2; /* target link-layer address */
	na[25] = 1;
	__builtin_memcpy(na + 26, vmac, ETH_ALEN);

	/* Checksum over the pseudo-header (RFC 8200 8.1) and the message. */
	sum = csum_add16(0, (__u8 *)&ip6h->saddr, 32);
	sum += 32 + 58;
	sum = csum_add16(sum, na, 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	*(__be16 *)(na + 2) = bpf_htons(~sum & 0xffff);

	count_reason(HC_R_TX_NA);
	return tx_via_tc(ctx);
}

#endif /* HOTCAST_VRRP_H */
