# SPDX-License-Identifier: GPL-2.0
# Shell helpers of the rsys selftests: TAP output, prerequisites, the netns topology, delegate and runs.
#
# Source it from a test script. Topology (names unique per test: suffix $$):
#   world   netns, 198.18.0.1/24: the servers ($RSYS_O/selftests/world_server, HTTP)
#   service netns, 198.18.0.2/24, veth to world: rsys-delegate on unix:$RSYS_SOCKDIR/delegate.sock;
#           also where native comparison runs happen ($RSYS_NS_NATIVE), so that local
#           addresses seen natively and through the delegate are the same
#   compute netns (lo only): created by "rsys-load run" itself for every run
# Everything is torn down on EXIT.

RSYS_SRC=${RSYS_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
RSYS_O=${RSYS_O:-$RSYS_SRC/.output}
RSYS_LOAD=$RSYS_O/rsys-load
RSYS_DELEGATE_BIN=$RSYS_O/rsys-delegate
PYTHON3=${PYTHON3:-/usr/bin/python3}

RSYS_WORLD_IP=198.18.0.1
RSYS_SERVICE_IP=198.18.0.2
RSYS_NS_WORLD=rsys-world-$$
RSYS_NS_SERVICE=rsys-svc-$$
RSYS_NS_NATIVE=$RSYS_NS_SERVICE
RSYS_TMP=
RSYS_DELEGATE=
RSYS_SOCKDIR=
RSYS_POLICY=
RSYS_PIDS=()
RSYS_NETNS=()

tap_n=0
tap_failed=0
tap_skipped=0

tap_plan()
{
	echo "TAP version 13"
	echo "1..$1"
}

tap_ok()
{
	tap_n=$((tap_n + 1))
	echo "ok $tap_n $*"
}

tap_not_ok()
{
	tap_n=$((tap_n + 1))
	tap_failed=$((tap_failed + 1))
	echo "not ok $tap_n $*"
}

tap_skip()
{
	tap_n=$((tap_n + 1))
	tap_skipped=$((tap_skipped + 1))
	echo "ok $tap_n # SKIP $*"
}

# tap_report NAME RC LOG: one top-level result for a program's run (exit RC, TAP in LOG),
# with the program's own TAP lines indented below it as subtests.
tap_report()
{
	sed 's/^/    /' "$3"
	if [ "$2" -eq 0 ]; then
		tap_ok "$1"
	elif [ "$2" -eq 4 ]; then
		tap_skip "$1: $(grep -m1 SKIP "$3")"
	else
		tap_not_ok "$1 (exit $2)"
	fi
}

# Print totals and exit with the kselftest status.
tap_finish()
{
	echo "# totals: pass:$((tap_n - tap_failed - tap_skipped)) fail:$tap_failed skip:$tap_skipped"
	[ "$tap_failed" -gt 0 ] && exit 1
	[ "$tap_n" -gt 0 ] && [ "$tap_skipped" -eq "$tap_n" ] && exit 4
	exit 0
}

# Skip the whole test with a reason.
ksft_skip()
{
	echo "1..0 # SKIP $*"
	exit 4
}

# Indent a file's contents as TAP diagnostics. Each line ends with a newline, the last one
# too (a killed program's output often has none): a TAP line printed next starts a line.
tap_diag_file()
{
	awk '{ print "# " $0 }' "$1"
}

# Skip unless we are root and have ip netns, python3 and the given commands.
rsys_require()
{
	local cmd

	[ "$(id -u)" -eq 0 ] || ksft_skip "needs root (network namespaces, seccomp supervisor)"
	ip netns list >/dev/null 2>&1 || ksft_skip "'ip netns' does not work (install iproute2)"
	[ -x "$PYTHON3" ] || ksft_skip "$PYTHON3 not found (make deps)"
	for cmd in timeout "$@"; do
		command -v "$cmd" >/dev/null || ksft_skip "$cmd not found (make deps)"
	done
}

# True if rsys-load and rsys-delegate are built; else says which is missing in $RSYS_MISSING.
rsys_have_bins()
{
	RSYS_MISSING=
	[ -x "$RSYS_LOAD" ] || RSYS_MISSING="$RSYS_LOAD not built (make)"
	[ -x "$RSYS_DELEGATE_BIN" ] || RSYS_MISSING="$RSYS_DELEGATE_BIN not built (make)"
	[ -z "$RSYS_MISSING" ]
}

# rsys_alive PID: PID runs (a zombie does not).
rsys_alive()
{
	[ -n "$1" ] && [ -r "/proc/$1/status" ] && ! grep -q '^State:.Z' "/proc/$1/status" 2>/dev/null
}

rsys_cleanup()
{
	local pid ns i alive

	for pid in "${RSYS_PIDS[@]}"; do
		kill "$pid" 2>/dev/null
	done
	# A second for SIGTERM (a delegate removes its egress guard's cgroup), then SIGKILL.
	for ((i = 0; i < 20; i++)); do
		alive=
		for pid in "${RSYS_PIDS[@]}"; do
			rsys_alive "$pid" && alive=1
		done
		[ -z "$alive" ] && break
		sleep 0.05
	done
	for ns in "${RSYS_NETNS[@]}"; do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do
			kill -9 "$pid" 2>/dev/null
		done
		ip netns del "$ns" 2>/dev/null
	done
	[ -n "$RSYS_TMP" ] && rm -rf "$RSYS_TMP"
	[ -n "$RSYS_ATTACHED" ] && "$RSYS_LOAD" detach >/dev/null 2>&1
	return 0
}

# rsys_attach_once: attach the test policy's BPF objects unless rsys is attached
# already (then they are left as found); detached on exit.
rsys_attach_once()
{
	[ -e /sys/fs/bpf/rsys/fdtable ] && return 0
	"$RSYS_LOAD" attach "$RSYS_POLICY" >"$RSYS_TMP/attach.log" 2>&1 || {
		tap_diag_file "$RSYS_TMP/attach.log"
		return 1
	}
	RSYS_ATTACHED=1
}

# rsys_netns_add NAME: a netns with lo up, deleted on exit.
rsys_netns_add()
{
	ip netns add "$1" || return 1
	RSYS_NETNS+=("$1")
	ip -n "$1" link set lo up
}

# rsys_bg NS CMD...: start CMD in the background in netns NS; killed on exit.
rsys_bg()
{
	local ns=$1

	shift
	ip netns exec "$ns" "$@" &
	RSYS_PIDS+=($!)
}

# rsys_wait_file FILE [TENTHS]: wait (bounded, default 10 s) until FILE exists.
rsys_wait_file()
{
	local i

	for ((i = 0; i < ${2:-100}; i++)); do
		[ -e "$1" ] && return 0
		sleep 0.1
	done
	return 1
}

# rsys_tmp_up PREFIX: a fresh $RSYS_TMP (/tmp/PREFIX.XXXXXX), its $RSYS_SOCKDIR and $RSYS_DELEGATE.
rsys_tmp_up()
{
	RSYS_TMP=$(mktemp -d "/tmp/$1.XXXXXX") || return 1
	# Programs under rsys-load run write here as the sandbox's unprivileged uid (rsys-load(8)).
	chmod 1777 "$RSYS_TMP"
	# ... but rsys-delegate listens only in a directory nobody else may write (rsys-delegate(8));
	# others may pass through it: attack_delegate_test connects as uid 65534.
	RSYS_SOCKDIR=$RSYS_TMP/sock
	mkdir -m 0711 "$RSYS_SOCKDIR"
	RSYS_DELEGATE=unix:$RSYS_SOCKDIR/delegate.sock
}

# Build world + service netns and start the world's servers. Dies with a skip on failure.
rsys_topology_up()
{
	local a=rsw$$ b=rss$$ world=$RSYS_O/selftests/world_server

	[ -x "$world" ] || ksft_skip "$world not built (make -C selftests)"
	trap rsys_cleanup EXIT
	trap 'exit 143' TERM INT HUP
	rsys_tmp_up rsys-test

	rsys_netns_add "$RSYS_NS_WORLD" && rsys_netns_add "$RSYS_NS_SERVICE" &&
	ip link add "$a" type veth peer name "$b" &&
	ip link set "$a" netns "$RSYS_NS_WORLD" &&
	ip link set "$b" netns "$RSYS_NS_SERVICE" &&
	ip -n "$RSYS_NS_WORLD" addr add "$RSYS_WORLD_IP/24" dev "$a" &&
	ip -n "$RSYS_NS_SERVICE" addr add "$RSYS_SERVICE_IP/24" dev "$b" &&
	ip -n "$RSYS_NS_WORLD" link set "$a" up &&
	ip -n "$RSYS_NS_SERVICE" link set "$b" up ||
		ksft_skip "cannot create the test network namespaces"

	rsys_bg "$RSYS_NS_WORLD" "$world" "$RSYS_WORLD_IP" "$RSYS_TMP/world.ready"
	rsys_wait_file "$RSYS_TMP/world.ready" || ksft_skip "world servers did not start"
	# The veth may need a moment before the first packet passes (DAD, carrier).
	rsys_wait_tcp "$RSYS_NS_SERVICE" "$RSYS_WORLD_IP" 7 || ksft_skip "world unreachable from service netns"
}

# rsys_wait_tcp NS ADDR PORT: wait (bounded, 10 s) until a TCP connect from NS succeeds.
rsys_wait_tcp()
{
	ip netns exec "$1" "$PYTHON3" - "$2" "$3" <<'EOF'
import socket, sys, time
for _ in range(100):
    try:
        socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit(1)
EOF
}

# rsys_http_server DIR PORT: serve DIR over HTTP at world:PORT.
rsys_http_server()
{
	rsys_bg "$RSYS_NS_WORLD" "$PYTHON3" -m http.server "$2" --bind "$RSYS_WORLD_IP" \
		--directory "$1" >/dev/null 2>&1
	rsys_wait_tcp "$RSYS_NS_SERVICE" "$RSYS_WORLD_IP" "$2"
}

# rsys_write_policy FILE: a test policy trusting every program, remote inet/inet6,
# egress to the world netns and binding in the service netns; lines in
# $RSYS_POLICY_EXTRA are added at the end.
rsys_write_policy()
{
	cat >"$1" <<EOF
# rsys selftest policy (generated by selftests/lib.sh)
trusted *
remote inet inet6
delegate $RSYS_DELEGATE
allow tcp 198.18.0.0/24 *
allow udp 198.18.0.0/24 *
allow udp ::1/128 *
allow bind tcp 0.0.0.0/0 *
allow bind udp 0.0.0.0/0 *
allow bind udp ::1/128 *
limit fds 1024
limit inflight 64
${RSYS_POLICY_EXTRA:-}
EOF
}

# rsys_delegate_start: write $RSYS_TMP/test.policy and run rsys-delegate in the service netns.
rsys_delegate_start()
{
	RSYS_POLICY=$RSYS_TMP/test.policy
	rsys_write_policy "$RSYS_POLICY"
	rm -f "$RSYS_SOCKDIR/delegate.sock"
	rsys_bg "$RSYS_NS_SERVICE" "$RSYS_DELEGATE_BIN" --listen "$RSYS_DELEGATE" \
		--policy "$RSYS_POLICY" 2>"$RSYS_TMP/delegate.log"
	RSYS_DELEGATE_PID=$!
	rsys_wait_file "$RSYS_SOCKDIR/delegate.sock" || {
		tap_diag_file "$RSYS_TMP/delegate.log"
		echo "1..0 # SKIP rsys-delegate did not start listening on $RSYS_DELEGATE"
		exit 4
	}
}

# rsys_run CMD...: run CMD as a trusted program in a fresh compute domain, killed after
# $RSYS_RUN_TIMEOUT seconds (default 120; SIGKILL 5 s later). RSYS_POLICY and RSYS_DELEGATE
# may be overridden; RSYS_RUN_OPTS adds options of "rsys-load run" (e.g. --no-sandbox).
# RSYS_MODE=direct|remote runs the suite in that mode (--mode; default remote, the mode
# whose every call the monitor sees: run_all.sh runs the suites that compare with Linux
# once more in direct mode, rsys-load run's default with a unix: delegate); scripts that
# start "rsys-load run" themselves pass $RSYS_MODE_OPT too.
RSYS_MODE_OPT="--mode ${RSYS_MODE:-remote}"
rsys_run()
{
	# shellcheck disable=SC2086 # RSYS_RUN_OPTS is a list of options
	timeout --kill-after=5 "${RSYS_RUN_TIMEOUT:-120}" "$RSYS_LOAD" run $RSYS_MODE_OPT $RSYS_RUN_OPTS \
		--policy "$RSYS_POLICY" --delegate "$RSYS_DELEGATE" -- "$@"
}

# rsys_native CMD...: run CMD natively where the network is real (the service netns).
rsys_native()
{
	ip netns exec "$RSYS_NS_NATIVE" "$@"
}
