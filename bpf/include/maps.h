/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Every map of the dataplane, in one place. Each program object includes
 * this header; the Go loader creates the maps once (or adopts the pinned
 * ones) and hands the same maps to every object (MapReplacements), so the
 * objects share them. The Go package bpf/ is the only writer.
 */
#ifndef HOTCAST_MAPS_H
#define HOTCAST_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "hotcast.h"

/* (S,G) / (*,G) -> iif, outgoing set, counters slot. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct hc_route_key);
	__type(value, struct hc_route);
	__uint(max_entries, HC_MAX_ROUTES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} routes SEC(".maps");

/* One DEVMAP_HASH per distinct outgoing-interface set, keyed by ifindex,
 * value the kernel's struct bpf_devmap_val (ifindex + the egress program's
 * fd). Routes with the same set share it. Sizes rather than types: clang
 * emits a type reached only through a map definition as a forward
 * declaration, which loaders cannot size. */
struct hc_oif_set {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(struct bpf_devmap_val));
	__uint(max_entries, HC_MAX_SET_OIFS);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__type(key, __u32);
	__uint(max_entries, HC_MAX_OIF_SETS);
	__array(values, struct hc_oif_set);
} oif_sets SEC(".maps");

/* Members of each outgoing set, for clone-mode replication in TC. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct hc_oif_list);
	__uint(max_entries, HC_MAX_OIF_SETS);
} set_members SEC(".maps");

/* Per-route packet/byte counters, indexed by hc_route.stats_idx. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct hc_counter);
	__uint(max_entries, HC_MAX_ROUTES);
} route_stats SEC(".maps");

/* ifindex -> gate and source MAC of copies leaving that interface. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct hc_iface);
	__uint(max_entries, HC_MAX_IFACES);
} ifaces SEC(".maps");

/* VRRP groups this router is Master of, by (ifindex, vrid). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct hc_vmac_key);
	__type(value, __u32);
	__uint(max_entries, 1024);
} vmacs SEC(".maps");

/* Virtual IPs of those groups, by (ifindex, address). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct hc_vip_key);
	__type(value, struct hc_vip);
	__uint(max_entries, 4096);
} vips SEC(".maps");

/* enum hc_reason -> frames (per-CPU). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, enum hc_reason);
	__type(value, __u64);
	__uint(max_entries, HC_R_MAX);
} reasons SEC(".maps");

static __always_inline int is_vmac(const __u8 *mac)
{
	return mac[0] == 0x00 && mac[1] == 0x00 && mac[2] == 0x5e &&
	       mac[3] == 0x00 && mac[4] == 0x02;
}

static __always_inline void vmac_of(__u8 *mac, __u32 vrid)
{
	mac[0] = 0x00;
	mac[1] = 0x00;
	mac[2] = 0x5e;
	mac[3] = 0x00;
	mac[4] = 0x02;
	mac[5] = vrid & 0xff;
}

static __always_inline void count_reason(enum hc_reason reason)
{
	__u64 *v = bpf_map_lookup_elem(&reasons, &reason);

	if (v)
		*v += 1;
}

#endif /* HOTCAST_MAPS_H */
