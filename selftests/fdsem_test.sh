#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Runs every fdsem scenario natively and under "rsys-load run" and diffs the transcripts (TAP per scenario).
#
# Usage: selftests/fdsem_test.sh [SCENARIO...]   (default: all of "fdsem --list")

. "$(dirname "$0")/lib.sh"

FDSEM=$RSYS_O/selftests/fdsem
rsys_require
[ -x "$FDSEM" ] || ksft_skip "$FDSEM not built (make -C selftests)"
rsys_topology_up
if rsys_have_bins; then
	rsys_delegate_start
fi

scenarios=${*:-$("$FDSEM" --list)}
tap_plan "$(echo $scenarios | wc -w)"
for sc in $scenarios; do
	n=$RSYS_TMP/$sc.native
	r=$RSYS_TMP/$sc.rsys
	rsys_native timeout 40 "$FDSEM" "$sc" >"$n" 2>"$n.err"
	nrc=$?
	if [ $nrc -ne 0 ]; then
		# The scenario itself is wrong (or the machine is): say why.
		tap_diag_file "$n"
		tap_diag_file "$n.err"
		tap_not_ok "$sc: native run exit $nrc"
		continue
	fi
	if [ -n "$RSYS_MISSING" ]; then
		tap_skip "$sc: native transcript ok; $RSYS_MISSING"
		continue
	fi
	RSYS_RUN_TIMEOUT=40 rsys_run "$FDSEM" "$sc" >"$r" 2>"$r.err"
	rrc=$?
	if diff -u "$n" "$r" >"$r.diff" && [ $rrc -eq 0 ]; then
		tap_ok "$sc"
	else
		tap_diag_file "$r.diff"
		tap_diag_file "$r.err"
		tap_not_ok "$sc: rsys run exit $rrc, transcript differs from native"
	fi
done
tap_finish
