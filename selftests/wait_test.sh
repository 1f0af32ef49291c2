#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Split select/poll/epoll selftests: wait_select, wait_epoll, ctl_restart natively and under rsys; wait_leak, asyncio under rsys.

. "$(dirname "$0")/lib.sh"

SELECT=$RSYS_O/selftests/wait_select
EPOLL=$RSYS_O/selftests/wait_epoll
LEAK=$RSYS_O/selftests/wait_leak
RESTART=$RSYS_O/selftests/ctl_restart
rsys_require
[ -x "$SELECT" ] && [ -x "$EPOLL" ] && [ -x "$LEAK" ] && [ -x "$RESTART" ] ||
	ksft_skip "wait_select/wait_epoll/wait_leak/ctl_restart not built (make -C selftests)"
rsys_topology_up
rsys_delegate_start

tap_plan 8
export WAIT_IP=$RSYS_SERVICE_IP WAIT_ECHO=$RSYS_WORLD_IP
# Without the BPF objects a signal ends a thread's wait for an answer and the kernel restarts
# the call: epoll_ctl and bind must still take effect once (before rsys_attach_once).
rsys_native timeout 120 "$RESTART" >"$RSYS_TMP/restart.native" 2>&1
tap_report "ctl_restart natively" $? "$RSYS_TMP/restart.native"
if [ -e /sys/fs/bpf/rsys/fdtable ]; then
	tap_skip "ctl_restart under rsys without the BPF objects: rsys is attached on this machine"
else
	RSYS_RUN_TIMEOUT=120 rsys_run "$RESTART" >"$RSYS_TMP/restart.rsys" 2>&1
	tap_report "ctl_restart under rsys without the BPF objects (SA_RESTART signal storm)" $? \
		"$RSYS_TMP/restart.rsys"
fi
# wait_select, wait_epoll, wait_leak and asyncio test the split waits of remote mode (WAIT_RSYS=1
# expects its answers where they differ from Linux's): remote mode in every pass.
# BPF tells the monitor which handlers had SA_RESTART (rsys_signal_deliver)
rsys_attach_once || echo "# rsys-load attach failed: SA_RESTART cases will differ"

WAIT_RSYS=0 rsys_native timeout 120 "$SELECT" >"$RSYS_TMP/native" 2>&1
tap_report "wait_select natively" $? "$RSYS_TMP/native"
WAIT_RSYS=1 timeout 120 "$RSYS_LOAD" run --mode remote --policy "$RSYS_POLICY" --delegate "$RSYS_DELEGATE" -- \
	"$SELECT" >"$RSYS_TMP/rsys" 2>&1
tap_report "wait_select under rsys" $? "$RSYS_TMP/rsys"
rsys_native timeout 120 "$EPOLL" >"$RSYS_TMP/ep.native" 2>&1
tap_report "wait_epoll natively" $? "$RSYS_TMP/ep.native"
timeout 120 "$RSYS_LOAD" run --mode remote --policy "$RSYS_POLICY" --delegate "$RSYS_DELEGATE" -- \
	"$EPOLL" >"$RSYS_TMP/ep.rsys" 2>&1
tap_report "wait_epoll under rsys" $? "$RSYS_TMP/ep.rsys"
# threads DELEGATE_PID: how many threads the delegate has now
threads()
{
	awk '/^Threads:/ { print $2 }' "/proc/$1/status"
}

dpid=$(pgrep -f -n -- "--listen $RSYS_DELEGATE")
before=$(threads "$dpid")
# wait_leak reads the delegate's counters and /proc itself, which the sandbox
# forbids (attack_sandbox_test.sh): this observation runs without it.
WAIT_DELEGATE=$RSYS_DELEGATE WAIT_DELEGATE_PID=$dpid \
	timeout 120 "$RSYS_LOAD" run --mode remote --no-sandbox --policy "$RSYS_POLICY" --delegate "$RSYS_DELEGATE" -- \
	"$LEAK" >"$RSYS_TMP/leak" 2>&1
rc=$?
# once the session is over, every delegate thread it had must be gone (bounded wait)
for ((i = 0; i < 50; i++)); do
	[ "$(threads "$dpid")" -le "$before" ] && break
	sleep 0.1
done
after=$(threads "$dpid")
echo "# delegate threads before the run: $before, after it: $after" >>"$RSYS_TMP/leak"
[ "$rc" -eq 0 ] && [ "$after" -gt "$before" ] && rc=1
tap_report "wait_leak under rsys (and no delegate thread left after it)" $rc "$RSYS_TMP/leak"

# Python's asyncio and selectors (epoll) on remote sockets: same transcript as natively.
AIO=$RSYS_SRC/selftests/wait_asyncio.py
rsys_native timeout 60 "$PYTHON3" "$AIO" "$RSYS_WORLD_IP" >"$RSYS_TMP/aio.native" 2>&1
timeout 60 "$RSYS_LOAD" run --mode remote --policy "$RSYS_POLICY" --delegate "$RSYS_DELEGATE" -- \
	"$PYTHON3" "$AIO" "$RSYS_WORLD_IP" >"$RSYS_TMP/aio.rsys" 2>&1
if diff -u "$RSYS_TMP/aio.native" "$RSYS_TMP/aio.rsys" >"$RSYS_TMP/aio.diff" &&
   grep -q "^writable" "$RSYS_TMP/aio.rsys"; then
	sed 's/^/    # /' "$RSYS_TMP/aio.rsys"
	tap_ok "asyncio and selectors on remote sockets, as natively"
else
	tap_diag_file "$RSYS_TMP/aio.native"
	tap_diag_file "$RSYS_TMP/aio.diff"
	tap_not_ok "asyncio and selectors on remote sockets"
fi
tap_finish
