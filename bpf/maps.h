/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The maps both tiers define alike, with the types of include/rsys/fdtable.h:
 * the fd table, the trusted tasks and the call counters. Host tier
 * (rsys.bpf.c): keyed by tgid. KVM tier (kvm_rsys.bpf.c): keyed by the guest
 * process's CR3 tag.
 */
#ifndef RSYS_BPF_MAPS_H
#define RSYS_BPF_MAPS_H

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RSYS_MAX_FDS);
	__type(key, struct rsys_fd_key);
	__type(value, struct rsys_fd_val);
} fdtable SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RSYS_MAX_TRUSTED);
	__type(key, __u32);
	__type(value, struct rsys_trusted);
} trusted SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RSYS_CLASS_MAX);
	__uint(map_flags, BPF_F_MMAPABLE);	/* the monitor adds its counts atomically */
	__type(key, __u32);
	__type(value, __u64);
} class_count SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RSYS_MAX_SYSCALL);
	__type(key, __u32);
	__type(value, __u64);
} sys_count SEC(".maps");

static __always_inline void count(void *map, __u32 idx)
{
	__u64 *c = bpf_map_lookup_elem(map, &idx);

	if (c)
		__sync_fetch_and_add(c, 1);
}

#endif
