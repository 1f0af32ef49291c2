#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# "rsys-load trace" shows every decision (rules, denials, passports, bytes, losses) and
# "rsys-load learn" writes policies under which curl, python3's urllib and nc pass again.

. "$(dirname "$0")/lib.sh"

HTTP_PORT=8080
ECHO_PORT=7
FLOOD=100000
FLOOD_BIN=$RSYS_O/selftests/trace_flood

rsys_require curl nc
rsys_have_bins || ksft_skip "$RSYS_MISSING"
[ -x "$FLOOD_BIN" ] || ksft_skip "$FLOOD_BIN not built (make -C selftests)"
rsys_topology_up

# The test's own trace socket: readers and producers of other runs on this machine are not ours.
export RSYS_TRACE_SOCK=$RSYS_SOCKDIR/trace.sock
RSYS_POLICY=$RSYS_TMP/test.policy
rsys_write_policy "$RSYS_POLICY"
RULE_LINE=$(grep -n '^allow tcp 198.18.0.0/24' "$RSYS_POLICY" | cut -d: -f1)

# A delegate that logs (-v) and traces (--trace) its decisions.
rsys_bg "$RSYS_NS_SERVICE" "$RSYS_DELEGATE_BIN" -v --trace --listen "$RSYS_DELEGATE" \
	--policy "$RSYS_POLICY" 2>"$RSYS_TMP/delegate.log"
rsys_wait_file "$RSYS_SOCKDIR/delegate.sock" || ksft_skip "rsys-delegate did not start"

WWW=$RSYS_TMP/www
mkdir -p "$WWW"
echo "<html><body>rsys trace page $$</body></html>" >"$WWW/index.html"
rsys_http_server "$WWW" "$HTTP_PORT" || ksft_skip "HTTP server in the world netns did not start"
URL=http://$RSYS_WORLD_IP:$HTTP_PORT/

FETCH_PY='
import sys, urllib.request
sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())
'

# Parse event lines (text "key=value ..." or JSON, optionally after "PROG: ") and
# print those matching every KEY=VALUE (VALUE a regex) given; exit 1 if none.
events() {
	"$PYTHON3" - "$@" <<'PY'
import json, re, shlex, sys
mode, path, conds = sys.argv[1], sys.argv[2], sys.argv[3:]
found = 0
for line in open(path, errors="replace"):
    line = line.rstrip("\n")
    if mode == "json":
        ev = json.loads(line)
    else:
        line = re.sub(r"^rsys-[a-z]+: ", "", line)
        if not line.startswith("time="):
            continue
        ev = dict(w.split("=", 1) for w in shlex.split(line))
    if all(re.fullmatch(v, str(ev.get(k, ""))) for k, v in (c.split("=", 1) for c in conds)):
        print(line)
        found += 1
sys.exit(0 if found else 1)
PY
}

READER=
# trace_start [OPTIONS]: a reader writing to $RSYS_TMP/trace.out.
trace_start() {
	rm -f "$RSYS_TRACE_SOCK"
	"$RSYS_LOAD" trace "$@" >"$RSYS_TMP/trace.out" 2>"$RSYS_TMP/trace.err" &
	READER=$!
	RSYS_PIDS+=("$READER")
	rsys_wait_file "$RSYS_TRACE_SOCK"
}

trace_stop() {
	kill -INT "$READER" 2>/dev/null
	wait "$READER" 2>/dev/null
}

tap_plan 31

if trace_start; then
	tap_ok "trace listens on \$RSYS_TRACE_SOCK"
else
	tap_diag_file "$RSYS_TMP/trace.err"
	tap_not_ok "trace listens on \$RSYS_TRACE_SOCK"
fi

rsys_run curl -s -o /dev/null "$URL" >"$RSYS_TMP/curl.err" 2>&1
curl_rc=$?
# The delegate keeps its connection to the reader: its events follow within the run.
rsys_run curl -s -o /dev/null --connect-timeout 5 "http://198.19.0.1/" >/dev/null 2>&1
sleep 0.5
cp "$RSYS_TMP/trace.out" "$RSYS_TMP/trace1.out"
if [ $curl_rc -eq 0 ] && events text "$RSYS_TMP/trace1.out" src=monitor call=connect prog='.*/curl' \
	sha256='[0-9a-f]{64}' addr="$RSYS_WORLD_IP:$HTTP_PORT" verdict=allowed \
	rule="$RSYS_POLICY:$RULE_LINE" ret='0|-115' pid='[0-9]+' >"$RSYS_TMP/m"; then
	tap_diag_file "$RSYS_TMP/m"
	tap_ok "curl's connect: allowed by rule $RSYS_POLICY:$RULE_LINE, with pid, program and sha256"
else
	tap_diag_file "$RSYS_TMP/curl.err"
	tap_diag_file "$RSYS_TMP/trace1.out"
	tap_not_ok "curl's connect (exit $curl_rc) with its rule"
fi
if events text "$RSYS_TMP/trace1.out" src=delegate call=connect addr="$RSYS_WORLD_IP:$HTTP_PORT" \
	verdict=allowed rule="$RSYS_POLICY:$RULE_LINE" session='[0-9]+' >"$RSYS_TMP/m"; then
	tap_ok "rsys-delegate --trace: its own event for the connect, with the rule"
else
	tap_not_ok "rsys-delegate --trace: no event for the connect"
fi
if events text "$RSYS_TMP/trace1.out" src=monitor call=close addr="$RSYS_WORLD_IP:$HTTP_PORT" \
	proto=tcp bytes_in='[1-9][0-9]*' bytes_out='[1-9][0-9]*' >"$RSYS_TMP/m"; then
	tap_diag_file "$RSYS_TMP/m"
	tap_ok "the socket's close: bytes received and sent"
else
	tap_not_ok "no close event with the bytes moved"
fi
if events text "$RSYS_TMP/trace1.out" src=monitor call=connect addr=198.19.0.1:80 verdict=denied \
	errno=EPERM >"$RSYS_TMP/m"; then
	tap_diag_file "$RSYS_TMP/m"
	tap_ok "a denied connect: denied, with the address"
else
	tap_not_ok "no denied connect to 198.19.0.1:80"
fi
if events text "$RSYS_TMP/delegate.log" call=connect addr=198.19.0.1:80 verdict=denied >"$RSYS_TMP/m"; then
	tap_ok "rsys-delegate -v logs the denial in the trace's format"
else
	tap_diag_file "$RSYS_TMP/delegate.log"
	tap_not_ok "rsys-delegate -v: no denial line in the trace's format"
fi

printf 'trusted /bin/true\ndelegate %s\n' "$RSYS_DELEGATE" >"$RSYS_TMP/true.policy"
RSYS_POLICY=$RSYS_TMP/true.policy rsys_run curl -s -o /dev/null "$URL" >/dev/null 2>&1
sleep 0.3
if events text "$RSYS_TMP/trace.out" call=execve verdict=untrusted prog='.*/curl' \
	sha256='[0-9a-f]{64}' >"$RSYS_TMP/m"; then
	tap_ok "an untrusted program shows up (execve untrusted)"
else
	tap_not_ok "no untrusted execve event"
fi
# The exec guard (BPF) kills an exec the passport judged with a loader variable in its
# environment: the kill is an event too.
printf 'trusted /usr/bin/env\ntrusted /usr/bin/true\ndelegate %s\n' "$RSYS_DELEGATE" >"$RSYS_TMP/env.policy"
RSYS_POLICY=$RSYS_TMP/env.policy rsys_run /usr/bin/env LD_PRELOAD=/nonexistent.so /usr/bin/true \
	>/dev/null 2>"$RSYS_TMP/killed.err"
sleep 0.3
if events text "$RSYS_TMP/trace.out" call=execve verdict=killed prog=true >"$RSYS_TMP/m"; then
	tap_diag_file "$RSYS_TMP/m"
	tap_ok "an exec the guard kills shows up (execve killed)"
elif grep -q "exec guard (BPF) is not loaded" "$RSYS_TMP/killed.err"; then
	tap_skip "the exec guard cannot be loaded here: $(head -n1 "$RSYS_TMP/killed.err")"
else
	tap_diag_file "$RSYS_TMP/killed.err"
	tap_not_ok "no killed execve event"
fi
trace_stop

trace_start -j
rsys_run curl -s -o /dev/null "$URL" >/dev/null 2>&1
sleep 0.3
trace_stop
if [ -s "$RSYS_TMP/trace.out" ] && events json "$RSYS_TMP/trace.out" call=connect verdict=allowed \
	rule="$RSYS_POLICY:$RULE_LINE" >/dev/null; then
	tap_ok "trace -j: every line is a JSON object"
else
	tap_diag_file "$RSYS_TMP/trace.out"
	tap_not_ok "trace -j: lines that are no JSON, or no connect"
fi

trace_start --denied
rsys_run curl -s -o /dev/null "$URL" >/dev/null 2>&1
rsys_run curl -s -o /dev/null --connect-timeout 5 "http://198.19.0.1/" >/dev/null 2>&1
sleep 0.3
trace_stop
if events text "$RSYS_TMP/trace.out" verdict=denied addr=198.19.0.1:80 >/dev/null &&
   ! events text "$RSYS_TMP/trace.out" verdict='(?!denied|untrusted|error).*' >"$RSYS_TMP/m"; then
	tap_ok "trace --denied: the refusals only"
else
	tap_diag_file "$RSYS_TMP/trace.out"
	tap_not_ok "trace --denied: other events, or not the denial"
fi

# A reader that sleeps (stopped) under a flood: what it misses is counted.
trace_start
kill -STOP "$READER"
"$FLOOD_BIN" "$FLOOD" "$RSYS_TMP/flood.go" >"$RSYS_TMP/flood.out" 2>&1 &
flood=$!
for ((i = 0; i < 600; i++)); do
	grep -q emitted "$RSYS_TMP/flood.out" && break
	sleep 0.1
done
kill -CONT "$READER"
touch "$RSYS_TMP/flood.go"
wait "$flood"
sleep 0.5
trace_stop
got=$(grep -c '^time=.* src=test ' "$RSYS_TMP/trace.out")
lost=$(sed -n 's/^lost \([0-9]*\) events (src=test .*/\1/p' "$RSYS_TMP/trace.out" | awk '{ s += $1 } END { if (NR) print s }')
echo "# flood of $FLOOD: ${got:-0} delivered, ${lost:-0} counted as lost"
if [ -n "$lost" ] && [ "$lost" -gt 0 ] && [ $((got + lost)) -eq $FLOOD ]; then
	tap_ok "a flood of $FLOOD events to a sleeping reader: every lost event is counted"
else
	tap_diag_file "$RSYS_TMP/flood.out"
	tap_not_ok "flood: delivered + lost != $FLOOD"
fi

# learn NAME RULE OK_CMD... -- DENIED_CMD...: learn from OK_CMD through a delegate without a
# policy (it allows exactly "allow RULE"), then under a delegate enforcing what was
# learned OK_CMD passes and DENIED_CMD (another destination) is refused.
learn_check() {
	local name=$1 dest=$2 pol=$RSYS_TMP/$1.policy ok=() bad=() lsock=unix:$RSYS_SOCKDIR/learn.sock
	local esock=unix:$RSYS_SOCKDIR/enforce.sock pid rc

	shift 2
	while [ "$1" != -- ]; do ok+=("$1"); shift; done
	shift
	bad=("$@")
	rm -f "$RSYS_SOCKDIR/learn.sock" "$RSYS_SOCKDIR/enforce.sock"
	ip netns exec "$RSYS_NS_SERVICE" "$RSYS_DELEGATE_BIN" --listen "$lsock" 2>"$RSYS_TMP/$name.ldlg" &
	pid=$!
	RSYS_PIDS+=("$pid")
	rsys_wait_file "$RSYS_SOCKDIR/learn.sock"
	timeout 60 "$RSYS_LOAD" learn --policy "$pol" --delegate "$lsock" -- "${ok[@]}" \
		<"$RSYS_TMP/stdin" >"$RSYS_TMP/$name.learn" 2>"$RSYS_TMP/$name.learn.err"
	rc=$?
	kill "$pid"; wait "$pid" 2>/dev/null
	if [ $rc -eq 0 ] && grep -q "^trusted /.* sha256 [0-9a-f]\{64\}$" "$pol" &&
	   [ "$(grep '^allow ' "$pol")" = "allow $dest" ]; then
		tap_diag_file "$pol"
		tap_ok "learn $name: its passport and exactly allow $dest"
	else
		tap_diag_file "$RSYS_TMP/$name.learn.err"
		[ -f "$pol" ] && tap_diag_file "$pol"
		tap_not_ok "learn $name (exit $rc)"
	fi
	ip netns exec "$RSYS_NS_SERVICE" "$RSYS_DELEGATE_BIN" -v --listen "$esock" --policy "$pol" \
		2>"$RSYS_TMP/$name.edlg" &
	pid=$!
	RSYS_PIDS+=("$pid")
	rsys_wait_file "$RSYS_SOCKDIR/enforce.sock"
	timeout 60 "$RSYS_LOAD" run $RSYS_MODE_OPT --policy "$pol" --delegate "$esock" -- "${ok[@]}" \
		<"$RSYS_TMP/stdin" >"$RSYS_TMP/$name.again" 2>"$RSYS_TMP/$name.again.err"
	rc=$?
	if [ $rc -eq 0 ] && cmp -s "$RSYS_TMP/$name.learn" "$RSYS_TMP/$name.again"; then
		tap_ok "$name passes again under the learned policy"
	else
		tap_diag_file "$RSYS_TMP/$name.again.err"
		tap_not_ok "$name under the learned policy: exit $rc or other output"
	fi
	timeout 60 "$RSYS_LOAD" run $RSYS_MODE_OPT --policy "$pol" --delegate "$esock" -- "${bad[@]}" \
		<"$RSYS_TMP/stdin" >/dev/null 2>"$RSYS_TMP/$name.bad.err"
	rc=$?
	if [ $rc -ne 0 ] && events text "$RSYS_TMP/$name.edlg" verdict=denied >"$RSYS_TMP/m"; then
		tap_diag_file "$RSYS_TMP/m"
		tap_ok "$name to a destination not learned is refused"
	else
		tap_diag_file "$RSYS_TMP/$name.edlg"
		tap_not_ok "$name to another destination: exit $rc, no denial"
	fi
	kill "$pid"; wait "$pid" 2>/dev/null
}

echo "hello from nc $$" >"$RSYS_TMP/stdin"
learn_check curl "tcp $RSYS_WORLD_IP/32 $HTTP_PORT" curl -s "$URL" -- curl -s --connect-timeout 5 "http://$RSYS_WORLD_IP:$ECHO_PORT/"
learn_check python3 "tcp $RSYS_WORLD_IP/32 $HTTP_PORT" "$PYTHON3" -c "$FETCH_PY" "$URL" -- "$PYTHON3" -c "$FETCH_PY" \
	"http://$RSYS_WORLD_IP:$ECHO_PORT/"
learn_check nc "tcp $RSYS_WORLD_IP/32 $ECHO_PORT" nc -N -w 5 "$RSYS_WORLD_IP" "$ECHO_PORT" -- nc -N -w 5 "$RSYS_WORLD_IP" "$HTTP_PORT"
# A program that executes another: both are learned (the passport is checked at every execve).
learn_check sh-curl "tcp $RSYS_WORLD_IP/32 $HTTP_PORT" sh -c "curl -s $URL" -- \
	sh -c "curl -s --connect-timeout 5 http://$RSYS_WORLD_IP:$ECHO_PORT/"
if [ "$(grep -c '^trusted /' "$RSYS_TMP/sh-curl.policy")" = 2 ] &&
   grep -q "^trusted $(readlink -f "$(command -v curl)") sha256 $(sha256sum <"$(command -v curl)" | cut -d' ' -f1)$" \
	"$RSYS_TMP/sh-curl.policy" ||
   grep -q "^trusted $(command -v curl) sha256 $(sha256sum <"$(command -v curl)" | cut -d' ' -f1)$" \
	"$RSYS_TMP/sh-curl.policy"; then
	tap_ok "learn sh-curl: the shell and the curl it executes, each with its sha256"
else
	tap_not_ok "learn sh-curl: want two trusted lines, sh and curl with its sha256"
fi
# A ping socket's echo: its destination port is not the program's, so it is learned as
# "allow icmp ADDR/32" (policy/README.md); an echo to another address is then refused.
PINGER=$RSYS_O/selftests/direct_attack
if ! ip netns exec "$RSYS_NS_SERVICE" sysctl -qw net.ipv4.ping_group_range="0 0"; then
	for t in "learn ping" "ping passes again" "ping elsewhere refused"; do
		tap_skip "$t: cannot allow ping sockets in the service netns"
	done
else
	learn_check ping "icmp $RSYS_WORLD_IP/32" "$PINGER" icmp-sendto "$RSYS_WORLD_IP" 0 -- \
		"$PINGER" icmp-sendto "$RSYS_SERVICE_IP" 0
fi
# A UDP-Lite datagram is learned as UDP-Lite (the protocol socket() named), not as UDP.
PROBE=$RSYS_O/selftests/egress_probe
learn_check udplite "udplite $RSYS_WORLD_IP/32 9" "$PROBE" "udplite:$RSYS_WORLD_IP:9" -- \
	"$PROBE" "udplite:$RSYS_WORLD_IP:10"
# learn always runs in remote mode (direct mode's untrapped datagrams would go unlearned).
timeout 30 "$RSYS_LOAD" learn --mode direct --policy "$RSYS_TMP/direct.policy" \
	--delegate "$RSYS_DELEGATE" -- true 2>"$RSYS_TMP/learn-direct.err"
rc=$?
if [ $rc -eq 1 ] && grep -q "learn runs the program in remote mode" "$RSYS_TMP/learn-direct.err" &&
   [ ! -e "$RSYS_TMP/direct.policy" ]; then
	tap_ok "learn --mode direct: refused (exit 1), learn runs in remote mode; no policy written"
else
	tap_diag_file "$RSYS_TMP/learn-direct.err"
	tap_not_ok "learn --mode direct: exit $rc, want 1 with a message and no policy"
fi
tap_finish
