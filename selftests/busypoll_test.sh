#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# rsys-load run --busy-poll: in remote mode the monitor's event thread polls for the delegate's
# next reply before it sleeps; with 0 (the control) every reply wakes it.
#
# A program under rsys makes 50 echo round trips 1 ms apart with the world. The test counts the
# sleeps (voluntary context switches) of rsys-load's event thread (named rsys-event) over them:
# with --busy-poll 10000 it stays awake between replies, with --busy-poll 0 it sleeps for each,
# and so it does on one CPU (taskset -c 0), where it does not poll.

. "$(dirname "$0")/lib.sh"

rsys_have_bins || ksft_skip "$RSYS_MISSING"
rsys_topology_up
rsys_delegate_start

tap_plan 4
cpus=$(nproc)

# The program: connect, say "ready", wait for a line, 50 round trips, say "done", wait for a line.
cat >"$RSYS_TMP/echo50.py" <<'EOF'
import socket, sys, time
s = socket.create_connection((sys.argv[1], 7), timeout=10)
print("ready", flush=True)
sys.stdin.readline()
for _ in range(50):
    s.sendall(b"x")
    if s.recv(1) != b"x":
        sys.exit(1)
    time.sleep(0.001)
print("done", flush=True)
sys.stdin.readline()
EOF

# event_sleeps PID: voluntary_ctxt_switches of PID's thread named rsys-event, or nothing.
event_sleeps()
{
	local t

	for t in /proc/"$1"/task/*; do
		if [ "$(cat "$t/comm" 2>/dev/null)" = rsys-event ]; then
			awk '/^voluntary_ctxt_switches:/ { print $2 }' "$t/status"
			return
		fi
	done
}

# sleeps_over US [PREFIX...]: the event thread's sleeps over the 50 round trips with
# --busy-poll US, rsys-load run started by PREFIX (taskset).
sleeps_over()
{
	local us=$1 pid before after line

	shift
	coproc RUN { exec "$@" "$RSYS_LOAD" run --mode remote --busy-poll "$us" --policy "$RSYS_POLICY" \
		--delegate "$RSYS_DELEGATE" -- "$PYTHON3" "$RSYS_TMP/echo50.py" "$RSYS_WORLD_IP" \
		2>"$RSYS_TMP/busy-$us.log"; }
	pid=$RUN_PID
	if read -r -t 30 line <&"${RUN[0]}" && [ "$line" = ready ]; then
		before=$(event_sleeps "$pid")
		echo go >&"${RUN[1]}"
		if read -r -t 30 line <&"${RUN[0]}" && [ "$line" = done ]; then
			after=$(event_sleeps "$pid")
			echo end >&"${RUN[1]}"
		fi
	fi
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	[ -n "$before" ] && [ -n "$after" ] && echo $((after - before))
}

if [ "$cpus" -lt 2 ]; then
	tap_skip "busy polling needs two CPUs; this test may use $cpus"
	tap_skip "busy polling needs two CPUs; this test may use $cpus"
else
polled=$(sleeps_over 10000)
slept=$(sleeps_over 0)
if [ -n "$polled" ] && [ -n "$slept" ] && [ "$polled" -lt 10 ] && [ "$slept" -ge 40 ]; then
	tap_ok "--busy-poll 10000: the event thread slept $polled times over 50 round trips 1 ms apart; --busy-poll 0 (control): $slept"
else
	tap_diag_file "$RSYS_TMP/busy-10000.log"
	tap_diag_file "$RSYS_TMP/busy-0.log"
	tap_not_ok "--busy-poll 10000: ${polled:-no count} sleeps (want < 10); --busy-poll 0: ${slept:-no count} (want 40 or more)"
fi
pinned=$(sleeps_over 10000 taskset -c "$(taskset -cp $$ | sed 's/.*: //; s/[-,].*//')")
if [ -n "$pinned" ] && [ "$pinned" -ge 40 ]; then
	tap_ok "on one CPU (taskset) rsys-load does not poll: the event thread slept $pinned times"
else
	tap_diag_file "$RSYS_TMP/busy-10000.log"
	tap_not_ok "on one CPU (taskset): ${pinned:-no count} sleeps (want 40 or more: no polling)"
fi
fi

# Bad windows are refused before anything runs.
for bad in 10001 1x; do
	out=$("$RSYS_LOAD" run --busy-poll "$bad" --policy "$RSYS_POLICY" -- true 2>&1)
	rc=$?
	if [ "$rc" -eq 1 ] && [[ $out == *"--busy-poll $bad: not a number of microseconds (0 to 10000)"* ]]; then
		tap_ok "rsys-load run --busy-poll $bad: refused (exit 1)"
	else
		tap_diag "$out"
		tap_not_ok "rsys-load run --busy-poll $bad: exit $rc"
	fi
done
tap_finish
