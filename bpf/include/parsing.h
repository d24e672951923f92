/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Header parsing for XDP, after xdp-tools' parsing_helpers.h: a cursor and
 * one parse_*() per header returning the next protocol or a negative error.
 * Every read is preceded by a bounds check against data_end.
 */
#ifndef HOTCAST_PARSING_H
#define HOTCAST_PARSING_H

#include <linux/types.h>
#include <linux/if_ether.h>
#include <linux/ipv6.h>
#include <linux/in6.h>
#include <bpf/bpf_endian.h>
#include "hotcast.h"

#define HC_ETH_P_8021Q 0x8100
#define HC_ETH_P_8021AD 0x88A8

#define HC_NEXTHDR_HOP 0
#define HC_NEXTHDR_ROUTING 43
#define HC_NEXTHDR_FRAGMENT 44
#define HC_NEXTHDR_AUTH 51
#define HC_NEXTHDR_NONE 59
#define HC_NEXTHDR_DEST 60
#define HC_NEXTHDR_ICMP 58
#define HC_NEXTHDR_PIM 103
#define HC_NEXTHDR_VRRP 112

#define HC_IPV6_OPT_PAD1 0
#define HC_IPV6_OPT_ROUTER_ALERT 5

/* Parse errors (negative so they never collide with a protocol number). */
#define HC_ERR_TRUNCATED (-1)
#define HC_ERR_MALFORMED (-2)

struct hdr_cursor {
	void *pos;
};

struct vlan_hdr {
	__be16 tci;
	__be16 encap_proto;
};

struct ipv6_ext {
	__u8 nexthdr;
	__u8 hdrlen;
};

struct ipv6_frag {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off; /* offset << 3 | res | M */
	__be32 identification;
};

/* Ethernet plus at most one 802.1Q/802.1ad tag. Returns the EtherType in
 * host order, or a negative error; *vlan_len is 0 or 4. */
static __always_inline int parse_ethhdr(struct hdr_cursor *nh, void *data_end,
					struct ethhdr **ethhdr, int *vlan_len)
{
	struct ethhdr *eth = nh->pos;
	struct vlan_hdr *vlh;
	__u16 proto;

	if ((void *)(eth + 1) > data_end)
		return HC_ERR_TRUNCATED;
	*ethhdr = eth;
	*vlan_len = 0;
	nh->pos = eth + 1;
	proto = bpf_ntohs(eth->h_proto);
	if (proto != HC_ETH_P_8021Q && proto != HC_ETH_P_8021AD)
		return proto;

	vlh = nh->pos;
	if ((void *)(vlh + 1) > data_end)
		return HC_ERR_TRUNCATED;
	nh->pos = vlh + 1;
	*vlan_len = sizeof(*vlh);
	return bpf_ntohs(vlh->encap_proto);
}

static __always_inline int parse_ip6hdr(struct hdr_cursor *nh, void *data_end,
					struct ipv6hdr **ip6hdr)
{
	struct ipv6hdr *ip6h = nh->pos;

	if ((void *)(ip6h + 1) > data_end)
		return HC_ERR_TRUNCATED;
	if (ip6h->version != 6)
		return HC_ERR_MALFORMED;
	/* The payload must fit in the frame (Ethernet padding may follow it).
	 * A zero payload length means a jumbogram, which never rides Ethernet. */
	if (ip6h->payload_len == 0 ||
	    (void *)(ip6h + 1) + bpf_ntohs(ip6h->payload_len) > data_end)
		return HC_ERR_MALFORMED;
	nh->pos = ip6h + 1;
	*ip6hdr = ip6h;
	return ip6h->nexthdr;
}

/* Scans a Hop-by-Hop header's options for Router Alert. Returns 1 when
 * present, 0 when not, or a negative error. The scan is bounded to
 * HC_MAX_HBH_OPTS options: a header padded beyond that is treated as
 * carrying no Router Alert (it still goes through the rest of the checks). */
static __always_inline int hbh_has_router_alert(void *hbh, __u32 len,
						void *data_end)
{
	__u32 off = 2;
	int i;

	for (i = 0; i < HC_MAX_HBH_OPTS; i++) {
		__u8 *opt;

		if (off >= len)
			return 0;
		/* Bound the offset so the verifier knows opt stays within
		 * the largest header (2048 bytes). */
		off &= 0x7ff;
		opt = hbh + off;
		if ((void *)(opt + 1) > data_end)
			return HC_ERR_TRUNCATED;
		if (opt[0] == HC_IPV6_OPT_PAD1) {
			off += 1;
			continue;
		}
		if ((void *)(opt + 2) > data_end)
			return HC_ERR_TRUNCATED;
		if (opt[0] == HC_IPV6_OPT_ROUTER_ALERT)
			return 1;
		off += 2 + opt[1];
	}
	return 0;
}

struct ext_result {
	int proto;        /* upper-layer protocol, or HC_NEXTHDR_NONE */
	int router_alert; /* a Hop-by-Hop Router Alert was seen */
	void *l4;         /* start of the upper-layer header */
};

/* Walks at most HC_MAX_EXT_HDRS extension headers. A non-first fragment has
 * no upper-layer header: proto becomes HC_NEXTHDR_NONE. Headers are checked
 * against the frame; the caller checks that they also fit in the IPv6
 * payload length. Returns 0 or a negative error (truncated header,
 * Hop-by-Hop not first, chain too long).
 *
 * Shaped for the verifier: the cursor is a scalar offset from data, masked
 * to 14 bits at the top of each iteration, so every branch (8-octet units,
 * AH's 4-octet units, fragments) leaves the same register state and the
 * verifier prunes instead of exploring each combination of header kinds. */
static __always_inline int walk_ext_hdrs(struct hdr_cursor *nh, void *data,
					 void *data_end, int nexthdr,
					 struct ext_result *res)
{
	__u32 off = nh->pos - data;
	int i;

	res->router_alert = 0;
	/* Hop-by-Hop can only come first (RFC 8200 4.1): handle it outside
	 * the loop, so its options scan is verified once. */
	if (nexthdr == HC_NEXTHDR_HOP) {
		struct ipv6_ext *hbh = nh->pos;
		__u32 len;
		int ra;

		if ((void *)(hbh + 1) > data_end)
			return HC_ERR_TRUNCATED;
		len = ((__u32)hbh->hdrlen + 1) * 8;
		if ((void *)hbh + len > data_end)
			return HC_ERR_TRUNCATED;
		ra = hbh_has_router_alert(hbh, len, data_end);
		if (ra < 0)
			return ra;
		res->router_alert = ra;
		nexthdr = hbh->nexthdr;
		off += len;
	}
	for (i = 0; i < HC_MAX_EXT_HDRS; i++) {
		struct ipv6_ext *ext;
		__u32 len;

		off &= 0x3fff;
		ext = data + off;
		switch (nexthdr) {
		case HC_NEXTHDR_ROUTING:
		case HC_NEXTHDR_DEST:
		case HC_NEXTHDR_AUTH:
		case HC_NEXTHDR_FRAGMENT:
			break;
		case HC_NEXTHDR_HOP:
			return HC_ERR_MALFORMED;
		default:
			res->proto = nexthdr;
			res->l4 = ext;
			return 0;
		}
		/* Every extension header is at least 8 bytes. */
		if ((void *)ext + 8 > data_end)
			return HC_ERR_TRUNCATED;
		if (nexthdr == HC_NEXTHDR_FRAGMENT) {
			struct ipv6_frag *frag = (void *)ext;

			if (bpf_ntohs(frag->frag_off) & 0xfff8) {
				/* Non-first fragment: no upper-layer header. */
				res->proto = HC_NEXTHDR_NONE;
				res->l4 = frag + 1;
				return 0;
			}
			len = 8;
		} else if (nexthdr == HC_NEXTHDR_AUTH) {
			len = ((__u32)ext->hdrlen + 2) * 4;
		} else {
			len = ((__u32)ext->hdrlen + 1) * 8;
		}
		nexthdr = ext->nexthdr;
		off += len;
	}
	off &= 0x3fff;
	/* Still an extension header after the bound: refuse to guess. */
	switch (nexthdr) {
	case HC_NEXTHDR_HOP:
	case HC_NEXTHDR_ROUTING:
	case HC_NEXTHDR_DEST:
	case HC_NEXTHDR_AUTH:
	case HC_NEXTHDR_FRAGMENT:
		return HC_ERR_MALFORMED;
	}
	res->proto = nexthdr;
	res->l4 = data + off;
	return 0;
}

/* Multicast scope of ff0X::/16 per RFC 4291 2.7 (the low nibble of byte 1). */
static __always_inline int mc_scope(const struct in6_addr *a)
{
	return a->s6_addr[1] & 0x0f;
}

#endif /* HOTCAST_PARSING_H */
