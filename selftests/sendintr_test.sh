#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Signals interrupting blocking sends of 16 MiB, a recv, a select and a stopped recv, natively and under rsys: Linux's results.

. "$(dirname "$0")/lib.sh"

SENDINTR=$RSYS_O/selftests/sendintr
rsys_require
[ -x "$SENDINTR" ] || ksft_skip "sendintr not built (make -C selftests)"
# The monitor learns which thread a signal is for from a tp_btf program (rsys_signal_generate).
[ -e /sys/kernel/btf/vmlinux ] || ksft_skip "no kernel BTF: rsys cannot end held calls on signals as Linux"
rsys_topology_up
rsys_delegate_start

tap_plan 4
export SENDINTR_IP=$RSYS_SERVICE_IP
# Without the BPF objects a signal ends a thread's wait for a held splice and the kernel
# restarts it at once: the restart must take the first run's count, and a splice loop's
# next call must still run (before rsys_attach_once). The kernel may also restart a call
# whose answer it had just taken (rsys-load(8) BUGS): that count is lost to the program,
# but no byte may go twice (SENDINTR_COUNT_MAY_DROP).
if [ -e /sys/fs/bpf/rsys/fdtable ]; then
	tap_skip "splice signal storm under rsys without the BPF objects: rsys is attached on this machine"
else
	KTAP_ONLY=splice_signal_storm SENDINTR_COUNT_MAY_DROP=1 RSYS_RUN_TIMEOUT=120 \
		rsys_run "$SENDINTR" >"$RSYS_TMP/splice" 2>&1
	tap_report "splice signal storm under rsys without the BPF objects (restarts send nothing twice)" \
		$? "$RSYS_TMP/splice"
fi
rsys_attach_once || echo "# rsys-load attach failed: held calls end as the kernel's seccomp code decides"
rsys_native timeout 300 "$SENDINTR" >"$RSYS_TMP/native" 2>&1
tap_report "sendintr natively" $? "$RSYS_TMP/native"
RSYS_RUN_TIMEOUT=300 rsys_run "$SENDINTR" >"$RSYS_TMP/rsys" 2>&1
tap_report "sendintr under rsys (peer bytes == reported bytes, EINTR only when nothing went out)" $? "$RSYS_TMP/rsys"

# Each case's result, as Linux allows it to be (a send's count varies from run to run), must be native's.
grep '^# shape: ' "$RSYS_TMP/native" >"$RSYS_TMP/shape.native"
grep '^# shape: ' "$RSYS_TMP/rsys" >"$RSYS_TMP/shape.rsys"
if [ -s "$RSYS_TMP/shape.native" ] &&
   diff -u "$RSYS_TMP/shape.native" "$RSYS_TMP/shape.rsys" >"$RSYS_TMP/shape.diff"; then
	tap_ok "every case: same results as natively"
else
	tap_diag_file "$RSYS_TMP/shape.diff"
	tap_not_ok "every case: same results as natively"
fi
tap_finish
