#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# 16 threads in blocking remote receives with signals, timeouts and shutdowns (selftests/stress_recv): no data lost, none twice, no hang.
#
# Environment: RSYS_STRESS_SECONDS (default 8); RSYS_TSAN=1 when rsys-load and rsys-delegate
# in $RSYS_O are built with -fsanitize=thread ("make check-tsan"): then only the run under
# rsys is made and a ThreadSanitizer report of either is a failure.

. "$(dirname "$0")/lib.sh"

STRESS=$RSYS_O/selftests/stress_recv
SECONDS_RUN=${RSYS_STRESS_SECONDS:-8}
TSAN=${RSYS_TSAN:-0}
rsys_require
rsys_have_bins || ksft_skip "$RSYS_MISSING"
[ -x "$STRESS" ] || ksft_skip "stress_recv not built (make -C selftests)"
rsys_topology_up
if [ "$TSAN" = 1 ]; then
	# Reports go to files, one per process, whatever the processes' stderr. intercept_send=0:
	# TSAN marks what send() read as read when the call has returned, by which time the
	# delegate may have answered the request and the monitor freed the buffer (lib/frame.c
	# frame_send() of a large payload): an order TSAN cannot see through the other process.
	export TSAN_OPTIONS="log_path=$RSYS_TMP/tsan halt_on_error=0 second_deadlock_stack=1 intercept_send=0 ${TSAN_OPTIONS:-}"
fi
rsys_delegate_start
# Attached, held calls are killable and the monitor decides how a signal ends them (sv.killable);
# after rsys_delegate_start, which writes the policy attach reads.
rsys_attach_once || echo "# rsys-load attach failed: held calls end as the kernel's seccomp code decides"

export STRESS_IP=$RSYS_SERVICE_IP STRESS_SECONDS=$SECONDS_RUN
# The program waits up to 60 s for a hung receiver; the delegate may be slow under TSAN.
limit=$((SECONDS_RUN * 3 + 120))

# Two results: natively and under rsys; under TSAN, under rsys and TSAN's verdict.
tap_plan 2
if [ "$TSAN" != 1 ]; then
	rsys_native timeout "$limit" "$STRESS" >"$RSYS_TMP/native" 2>&1
	tap_report "stress_recv natively" $? "$RSYS_TMP/native"
fi

RSYS_RUN_TIMEOUT=$limit rsys_run "$STRESS" >"$RSYS_TMP/rsys" 2>&1
tap_report "stress_recv under rsys ($SECONDS_RUN s: every byte once, no hang)" $? "$RSYS_TMP/rsys"

if [ "$TSAN" = 1 ]; then
	# Stop the delegate now: what TSAN finds at exit is reported then.
	kill "$RSYS_DELEGATE_PID" 2>/dev/null
	wait "$RSYS_DELEGATE_PID" 2>/dev/null
	if ls "$RSYS_TMP"/tsan.* >/dev/null 2>&1; then
		for f in "$RSYS_TMP"/tsan.*; do
			tap_diag_file "$f"
		done
		tap_not_ok "no ThreadSanitizer report from rsys-load or rsys-delegate"
	else
		tap_ok "no ThreadSanitizer report from rsys-load or rsys-delegate"
	fi
fi
tap_finish
