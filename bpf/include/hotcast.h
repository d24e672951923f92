/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Types shared between the BPF programs and the Go control plane. Go sees
 * them only through `bpf2go -type`, never through hand-written copies.
 */
#ifndef HOTCAST_H
#define HOTCAST_H

#include <linux/types.h>

/* Limits. Changing one changes a map's shape: a pinned dataplane built with
 * other limits is refused at adoption (the daemon says so), see docs/. */
#define HC_MAX_ROUTES 131072   /* (S,G) and (*,G) entries */
#define HC_MAX_OIF_SETS 16384  /* distinct outgoing-interface sets */
#define HC_MAX_SET_OIFS 32     /* interfaces per set: the kernel walks every
                                * bucket of a DEVMAP_HASH per broadcast, so
                                * keep it small */
#define HC_MAX_IFACES 256      /* interfaces hotcast knows */
#define HC_MAX_EXT_HDRS 8      /* IPv6 extension headers walked */
#define HC_MAX_HBH_OPTS 8      /* Hop-by-Hop options scanned for Router Alert */

/* The forwarding gate of an egress interface (multicast track vrrp6). */
enum hc_gate {
	HC_GATE_MUTED = 0,
	HC_GATE_FORWARD = 1,
};

/* What happened to a frame. Every verdict the programs take is counted
 * under exactly one reason per program (ingress, then egress per copy). */
enum hc_reason {
	HC_R_FORWARDED = 0,       /* ingress: replicated to a route's set */
	HC_R_PASS_NOT_IPV6,       /* ingress: not IPv6: to the stack */
	HC_R_PASS_UNICAST,        /* ingress: IPv6 unicast: to the stack */
	HC_R_PASS_LOCAL_SCOPE,    /* ingress: ff00::/16, ff01::/16, ff02::/16 */
	HC_R_PASS_ROUTER_ALERT,   /* ingress: Hop-by-Hop Router Alert */
	HC_R_PASS_MLD,            /* ingress: ICMPv6 130/131/132/143 */
	HC_R_PASS_PIM,            /* ingress: next header 103 */
	HC_R_PASS_VRRP,           /* ingress: next header 112 */
	HC_R_PASS_MISS,           /* ingress: no (S,G) nor (*,G) route, or the
				   * interface does not route */
	HC_R_PASS_HOP_LIMIT,      /* ingress: hop limit <= 1, not forwarded */
	HC_R_DROP_MALFORMED,      /* ingress: truncated/malformed headers */
	HC_R_DROP_RPF,            /* ingress: arrived on the wrong interface */
	HC_R_DROP_NO_OIF,         /* ingress: route with an empty set */
	HC_R_DROP_REDIRECT,       /* ingress: the redirect helper failed */
	HC_R_DROP_VMAC_BACKUP,    /* ingress: to a VRRP virtual MAC we are not Master of */
	HC_R_TX_NA,               /* ingress: NS for a virtual IP answered */
	HC_R_FORWARDED_CLONE,     /* ingress: handed to TC for clone replication */
	HC_R_DROP_CLONE,          /* tc: clone replication failed (no metadata room, set gone) */
	HC_R_EGRESS_SENT,         /* egress: a copy left */
	HC_R_EGRESS_MUTED,        /* egress: gate muted, copy dropped */
	HC_R_EGRESS_UNKNOWN,      /* egress: interface not configured */
	HC_R_EGRESS_MALFORMED,    /* egress: copy shorter than Ethernet */
	HC_R_PASS_PUNT,           /* ingress: a punt route with no outgoing
				   * interface: to the stack, where the control
				   * plane's packet socket reads it */
	HC_R_MAX,
};

/* Key of the routes map. src all-zero means (*,G). */
struct hc_route_key {
	__u8 src[16];
	__u8 grp[16];
};

/* Value of the routes map. */
struct hc_route {
	__u32 iif;       /* RPF: the only interface the route accepts */
	__u32 set_id;    /* index into oif_sets; 0 = empty set */
	__u32 stats_idx; /* index into route_stats */
	__u32 flags;     /* HC_ROUTE_F_* */
};

#define HC_ROUTE_F_STATIC (1U << 0) /* from the configuration */
#define HC_ROUTE_F_SYNCED (1U << 1) /* learned through RBS */
#define HC_ROUTE_F_CLONE (1U << 2)  /* replicate in TC (bpf_clone_redirect):
				     * the set has a clone-mode interface */
#define HC_ROUTE_F_PUNT (1U << 3)   /* the control plane reads this route's
				     * packets (PIM: a (*,G) whose new sources
				     * start the SPT switch, an (S,G) the DR
				     * registers): replicated in TC, after the
				     * packet sockets saw the frame; with no
				     * outgoing interface, passed to the stack */

/* hc_iface.flags */
#define HC_IFACE_F_CLONE (1U << 0)    /* egress: clone-mode (skb-bound) port */
#define HC_IFACE_F_NO_ROUTE (1U << 1) /* ingress: the interface does not
				       * route (VRRP6 without
				       * multicast.routing-enable): its
				       * multicast goes to the stack, counted
				       * as HC_R_PASS_MISS */

/* The members of an outgoing set, for replication in TC. */
struct hc_oif_list {
	__u32 count;
	__u32 ifindex[HC_MAX_SET_OIFS];
};

/* XDP -> TC metadata: a frame replicated in TC (clone mode, with its set
 * id), or a frame hc_tc_ingress sends back out of the interface it came in
 * on (a Neighbor Advertisement built in XDP, see vrrp.h). */
#define HC_META_MAGIC 0x68634d31    /* "hcM1" */
#define HC_META_TX_MAGIC 0x68634e31 /* "hcN1" */
struct hc_meta {
	__u32 magic;
	__u32 set_id;
};

/* Per-route counters (per-CPU). */
struct hc_counter {
	__u64 packets;
	__u64 bytes;
};

/* Value of the ifaces map. Gate and source MAC sit in one value so that a
 * VRRP switchover (gate + virtual MAC) is a single map write. */
struct hc_iface {
	__u8 src_mac[6];   /* source MAC of copies: own MAC or VRRP virtual MAC */
	__u8 mac[6];       /* the interface's own MAC */
	__u8 flags;
	__u8 pad[3];
	enum hc_gate gate;
};

/* A VRRP group this router is Master of on an interface: frames to its
 * virtual MAC 00:00:5e:00:02:{vrid} are accepted there. */
struct hc_vmac_key {
	__u32 ifindex;
	__u32 vrid;
};

/* A virtual IP of a VRRP group this router is Master of: Neighbor
 * Solicitations for it are answered from XDP with the virtual MAC, and
 * packets sourced from it leave with the virtual MAC (TC egress). */
struct hc_vip_key {
	__u32 ifindex;
	__u8 addr[16];
};

struct hc_vip {
	__u32 vrid;
	__u32 flags;
};

#endif /* HOTCAST_H */
