#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# epoll_pwait2 and signal-cancelled remote recv (wait_pwait2) natively and under rsys; rsys-load run's stop signals.

. "$(dirname "$0")/lib.sh"
shopt -s extglob

PWAIT2=$RSYS_O/selftests/wait_pwait2
rsys_require pgrep
[ -x "$PWAIT2" ] || ksft_skip "wait_pwait2 not built (make -C selftests)"
rsys_have_bins || ksft_skip "$RSYS_MISSING"
rsys_topology_up
rsys_delegate_start

tap_plan 4

# wait_pwait2: same transcript natively and under rsys, except the delegate-only last case.
export WAIT_IP=$RSYS_SERVICE_IP
rsys_native timeout 60 "$PWAIT2" >"$RSYS_TMP/pw.native" 2>&1
nrc=$?
# The program reads the delegate's counters itself, which the sandbox forbids
# (attack_sandbox_test.sh): this observation runs without it.
WAIT_DELEGATE=$RSYS_DELEGATE RSYS_RUN_OPTS=--no-sandbox rsys_run "$PWAIT2" >"$RSYS_TMP/pw.rsys" 2>&1
rrc=$?
sed 's/^/    # /' "$RSYS_TMP/pw.rsys"
if [ "$nrc" -eq 4 ] && [ "$rrc" -eq 4 ]; then
	tap_skip "wait_pwait2: $(grep -m1 SKIP "$RSYS_TMP/pw.native")"
elif [ "$nrc" -eq 0 ] && [ "$rrc" -eq 0 ] &&
     diff -u <(grep -vE 'inflight|totals' "$RSYS_TMP/pw.native") \
		<(grep -vE 'inflight|totals' "$RSYS_TMP/pw.rsys") \
	>"$RSYS_TMP/pw.diff"; then
	tap_ok "wait_pwait2: epoll_pwait2 and interrupted recv as natively, delegate request cancelled"
else
	tap_diag_file "$RSYS_TMP/pw.native"
	tap_diag_file "$RSYS_TMP/pw.diff"
	tap_not_ok "wait_pwait2 (native exit $nrc, rsys exit $rrc)"
fi

# Programs with names unique to this test, so that pgrep finds only ours.
STOP=$RSYS_TMP/rsys-stop-$$
ln -s "$(command -v sleep)" "$STOP-sleep"
cat >"$STOP-recv.py" <<PY
import signal, socket, sys
if sys.argv[1] == "ignore":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("$RSYS_SERVICE_IP", 0))
open(sys.argv[2], "w").close()
s.recv(16)
PY

# leftovers: whether any rsys-load or program of this test still runs (bounded wait)
leftovers()
{
	local i

	for ((i = 0; i < 30; i++)); do
		pgrep -f -- "$STOP" >/dev/null || return 1
		sleep 0.1
	done
	pgrep -a -f -- "$STOP" | sed 's/^/# left: /'
	return 0
}

# stop NAME MAXSECS STATUS CMD...: "timeout 1 rsys-load run -- CMD" ends with an exit status
# matching the pattern STATUS within MAXSECS, nothing left.
stop()
{
	local name=$1 max=$2 want=$3 t0 t rc
	shift 3

	t0=$(date +%s%N)
	timeout --kill-after=20 1 "$RSYS_LOAD" run $RSYS_MODE_OPT --policy "$RSYS_POLICY" --delegate "$RSYS_DELEGATE" \
		-- "$@" >"$RSYS_TMP/stop.log" 2>&1
	rc=$?
	t=$((($(date +%s%N) - t0) / 1000000))
	# a recv program must have reached its recv before it was stopped
	[[ $* != *recv.py* ]] || [ -e "$STOP.ready" ] || rc="$rc, recv not reached"
	rm -f "$STOP.ready"
	if [[ $rc == @($want) ]] && [ "$t" -le $((max * 1000)) ] && ! leftovers; then
		tap_ok "$name: status $rc after $t ms, nothing left"
	else
		tap_diag_file "$RSYS_TMP/stop.log"
		tap_not_ok "$name: status $rc after $t ms (want $want within ${max} s, nothing left)"
		for pid in $(pgrep -f -- "$STOP"); do
			kill -9 "$pid" 2>/dev/null
		done
	fi
}

stop "timeout 1 rsys-load run -- sleep 30" 3 124 "$STOP-sleep" 30
stop "timeout 1 rsys-load run -- a program blocked in a remote recv" 3 124 "$PYTHON3" "$STOP-recv.py" wait "$STOP.ready"
# PROG is SIGKILLed 3 s after SIGTERM and rsys-load dies of the same signal (rsys-load(8)):
# timeout reports that as 137 (coreutils 9.1) or 124.
stop "timeout 1 rsys-load run -- a program that ignores SIGTERM" 6 "124|137" "$PYTHON3" "$STOP-recv.py" ignore "$STOP.ready"

tap_finish
