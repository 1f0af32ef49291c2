#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Blocking sends of 16 MiB interrupted by signals, natively and under rsys: the peer gets exactly what the calls report.

. "$(dirname "$0")/lib.sh"

SENDINTR=$RSYS_O/selftests/sendintr
rsys_require
[ -x "$SENDINTR" ] || ksft_skip "sendintr not built (make -C selftests)"
rsys_topology_up
rsys_delegate_start

tap_plan 3
export SENDINTR_IP=$RSYS_SERVICE_IP
SENDINTR_RSYS=0 rsys_native timeout 300 "$SENDINTR" >"$RSYS_TMP/native" 2>&1
tap_report "sendintr natively" $? "$RSYS_TMP/native"
SENDINTR_RSYS=1 RSYS_RUN_TIMEOUT=300 rsys_run "$SENDINTR" >"$RSYS_TMP/rsys" 2>&1
tap_report "sendintr under rsys (peer bytes == reported bytes, nothing twice)" $? "$RSYS_TMP/rsys"

# With SA_RESTART the kernel restarts the interrupted call: rsys must then
# answer exactly as Linux does (the count sent, which the peer got). Without
# it rsys may fail the call with EINTR first (BUGS in rsys-load.8): not compared.
grep '^# shape: .*, SA_RESTART:' "$RSYS_TMP/native" >"$RSYS_TMP/shape.native"
grep '^# shape: .*, SA_RESTART:' "$RSYS_TMP/rsys" >"$RSYS_TMP/shape.rsys"
if [ -s "$RSYS_TMP/shape.native" ] &&
   diff -u "$RSYS_TMP/shape.native" "$RSYS_TMP/shape.rsys" >"$RSYS_TMP/shape.diff"; then
	tap_ok "SA_RESTART cases: same results as natively"
else
	tap_diag_file "$RSYS_TMP/shape.diff"
	tap_not_ok "SA_RESTART cases: same results as natively"
fi
tap_finish
