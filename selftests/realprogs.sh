#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Real programs (curl, python3, nc) under "rsys-load run" compared with native runs, and failure modes.

. "$(dirname "$0")/lib.sh"

HTTP_PORT=8080
NC_PORT=7200
LIMIT=60

rsys_require curl nc
rsys_have_bins || ksft_skip "$RSYS_MISSING"
rsys_topology_up
rsys_delegate_start

WWW=$RSYS_TMP/www
mkdir -p "$WWW"
echo "<html><body>rsys test page $$</body></html>" >"$WWW/index.html"
for i in 0 1 2 3; do
	head -c $((100000 + i * 4099)) /dev/urandom >"$WWW/blob$i"
done
head -c $((8 << 20)) /dev/urandom >"$WWW/large"
rsys_http_server "$WWW" "$HTTP_PORT" || ksft_skip "HTTP server in the world netns did not start"
URL=http://$RSYS_WORLD_IP:$HTTP_PORT

FETCH_PY='
import sys, urllib.request
sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=20).read().decode())
'
THREADS_PY='
import hashlib, sys, threading, urllib.request
out = [None] * 4
def get(i):
    data = urllib.request.urlopen("%s/blob%d" % (sys.argv[1], i), timeout=20).read()
    out[i] = "%d %d %s" % (i, len(data), hashlib.sha256(data).hexdigest())
threads = [threading.Thread(target=get, args=(i,)) for i in range(4)]
for t in threads: t.start()
for t in threads: t.join()
print("\n".join(str(o) for o in out))
'
# An HTTP server answering one request, then exiting.
SERVE_ONE_PY='
import functools, http.server, sys
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[2])
handler.log_message = lambda *a: None
http.server.HTTPServer(("0.0.0.0", int(sys.argv[1])), handler).handle_request()
'
# Connect to the hold port, then block in recv until the delegate dies.
BLOCKED_PY='
import socket, sys
s = socket.create_connection((sys.argv[1], 7002))
s.sendall(b"delegate-killed\n")
print("connected", flush=True)
try:
    print("eof" if not s.recv(100) else "data", flush=True)
except OSError as e:
    print("error", e.errno, flush=True)
'
# Direct mode: the real socket outlives the delegate, as a native one would; the next
# trapped call (a new socket) fails.
BLOCKED_DIRECT_PY='
import socket, sys
s = socket.create_connection((sys.argv[1], 7002))
s.sendall(b"delegate-killed\n")
print("connected", flush=True)
s.settimeout(3)
try:
    print("eof" if not s.recv(100) else "data", flush=True)
except socket.timeout:
    print("alive", flush=True)
except OSError as e:
    print("lost", e.errno, flush=True)
try:
    socket.create_connection((sys.argv[1], 7002), timeout=5)
    print("reconnected", flush=True)
except OSError as e:
    print("error", e.errno, flush=True)
'
# After any wait, settimeout() makes the listener and the connection non-blocking (F_SETFL):
# accept() and recv() then poll them, and must see the client and its data.
SETTIMEOUT_PY='
import select, socket, sys, threading, time
select.select([], [], [], 0)
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((sys.argv[1], 7201))
srv.listen()
def client():
    time.sleep(0.2)
    c = socket.create_connection((sys.argv[1], 7201))
    time.sleep(0.2)
    c.sendall(b"hello")
    time.sleep(0.5)
    c.close()
threading.Thread(target=client).start()
srv.settimeout(5)
conn, _ = srv.accept()
conn.settimeout(5)
print("accepted", conn.recv(100).decode())
'

# compare NAME EXPECTED_FILE CMD...: CMD natively and under rsys both print EXPECTED_FILE.
compare()
{
	local name=$1 expect=$2 n=$RSYS_TMP/$1.native r=$RSYS_TMP/$1.rsys nrc rrc

	shift 2
	rsys_native timeout "$LIMIT" "$@" >"$n" 2>"$n.err"
	nrc=$?
	RSYS_RUN_TIMEOUT=$LIMIT rsys_run "$@" >"$r" 2>"$r.err"
	rrc=$?
	if [ $nrc -ne 0 ] || ! cmp -s "$n" "$expect"; then
		tap_diag_file "$n.err"
		tap_not_ok "$name: native run (exit $nrc) did not print the expected output"
	elif [ $rrc -eq 0 ] && cmp -s "$n" "$r"; then
		tap_ok "$name"
	else
		diff -u "$n" "$r" | head -20 | tap_diag_file /dev/stdin
		tap_diag_file "$r.err"
		tap_not_ok "$name: under rsys exit $rrc, output differs from native"
	fi
}

# nc -l NAME RUNNER...: nc listening in the service domain, a client in the world sends a line.
nc_listen()
{
	local name=$1 out=$RSYS_TMP/$1.out pid i

	shift
	"$@" timeout "$LIMIT" nc -4 -l "$NC_PORT" </dev/null >"$out" 2>"$out.err" &
	pid=$!
	for ((i = 0; i < 100; i++)); do
		echo "hello from the world" |
			ip netns exec "$RSYS_NS_WORLD" nc -N -w 5 "$RSYS_SERVICE_IP" "$NC_PORT" \
			>/dev/null 2>&1 && break
		sleep 0.2
	done
	wait "$pid"
	echo "exit $? $(cat "$out")"
}

EXPECT=$RSYS_TMP/expect
tap_plan 15

# The comparisons below mean something only if the program itself has no network.
ifaces=$(rsys_run cat /proc/net/dev 2>&1 | tail -n +3 | cut -d: -f1 | tr -d ' ' | tr '\n' ' ')
if [ "$ifaces" = "lo " ]; then
	tap_ok "compute domain has only lo"
else
	tap_not_ok "compute domain has only lo (got: $ifaces)"
fi

cp "$WWW/index.html" "$EXPECT.page"
compare curl "$EXPECT.page" curl -sS --max-time 20 "$URL/index.html"
sha256sum <"$WWW/large" >"$EXPECT.large"
compare curl-8MiB "$EXPECT.large" sh -c "curl -sS --max-time 30 $URL/large | sha256sum"
compare python3-urllib "$EXPECT.page" "$PYTHON3" -c "$FETCH_PY" "$URL/index.html"

for i in 0 1 2 3; do
	echo "$i $(stat -c %s "$WWW/blob$i") $(sha256sum <"$WWW/blob$i" | cut -d' ' -f1)"
done >"$EXPECT.threads"
compare python3-threads "$EXPECT.threads" "$PYTHON3" -c "$THREADS_PY" "$URL"

echo "accepted hello" >"$EXPECT.settimeout"
compare python3-settimeout-accept "$EXPECT.settimeout" "$PYTHON3" -c "$SETTIMEOUT_PY" "$RSYS_SERVICE_IP"

echo "a line through nc" >"$EXPECT.nc"
compare nc-client "$EXPECT.nc" sh -c "echo 'a line through nc' | nc -N -w 10 $RSYS_WORLD_IP 7"

native=$(nc_listen nc-listen-native rsys_native)
remote=$(nc_listen nc-listen-rsys rsys_run)
if [ "$native" = "exit 0 hello from the world" ] && [ "$remote" = "$native" ]; then
	tap_ok "nc -l: listening socket in the service domain accepts a world client"
else
	echo "# native: $native"
	echo "# rsys:   $remote"
	tap_diag_file "$RSYS_TMP/nc-listen-rsys.out.err"
	tap_not_ok "nc -l: listening socket in the service domain accepts a world client"
fi

# A trusted HTTP server: its listening socket is in the service domain, a world curl fetches.
RSYS_RUN_TIMEOUT=$LIMIT rsys_run "$PYTHON3" -c "$SERVE_ONE_PY" 7300 "$WWW" >"$RSYS_TMP/serve.out" 2>&1 &
server=$!
for ((i = 0; i < 100; i++)); do
	ip netns exec "$RSYS_NS_WORLD" curl -sS --max-time 10 "http://$RSYS_SERVICE_IP:7300/index.html" \
		>"$RSYS_TMP/served" 2>/dev/null && break
	sleep 0.2
done
wait "$server"
rc=$?
if [ $rc -eq 0 ] && cmp -s "$RSYS_TMP/served" "$WWW/index.html"; then
	tap_ok "python3 http.server under rsys serves a world curl"
else
	tap_diag_file "$RSYS_TMP/serve.out"
	tap_not_ok "python3 http.server under rsys serves a world curl (server exit $rc)"
fi

# Untrusted: the same curl in a compute-like netns (only lo) has no route out.
rsys_netns_add "rsys-lo-$$"
if ip netns exec "rsys-lo-$$" curl -sS --max-time 5 "$URL/index.html" >/dev/null 2>"$RSYS_TMP/untrusted.err"; then
	tap_not_ok "untrusted curl in a lo-only netns reached the world"
else
	echo "# $(cat "$RSYS_TMP/untrusted.err")"
	tap_ok "untrusted curl in a lo-only netns fails"
fi

# Egress outside the policy: the delegate refuses the connect with EPERM.
DENY=$RSYS_TMP/deny.policy
sed 's|^allow tcp .*|allow tcp 198.18.0.1/32 7|' "$RSYS_POLICY" >"$DENY"
rsys_bg "$RSYS_NS_SERVICE" "$RSYS_DELEGATE_BIN" --listen "unix:$RSYS_SOCKDIR/deny.sock" --policy "$DENY" \
	2>"$RSYS_TMP/deny.log"
rsys_wait_file "$RSYS_SOCKDIR/deny.sock"
denied=$(RSYS_POLICY=$DENY RSYS_DELEGATE=unix:$RSYS_SOCKDIR/deny.sock rsys_run "$PYTHON3" -c '
import errno, socket, sys
for port in (7, int(sys.argv[2])):
    try:
        socket.create_connection((sys.argv[1], port), timeout=10).close()
        print(port, "connected")
    except OSError as e:
        print(port, errno.errorcode.get(e.errno, e.errno))
' "$RSYS_WORLD_IP" "$HTTP_PORT" 2>&1 | tr '\n' ' ')
if [ "$denied" = "7 connected $HTTP_PORT EPERM " ]; then
	tap_ok "egress: allowed port connects, other port refused with EPERM by the delegate"
else
	tap_not_ok "egress: expected '7 connected $HTTP_PORT EPERM', got '$denied'"
fi

# The passport at every execve: a policy that trusts only python3 lets it exec itself,
# not another program (EACCES, and the monitor names the program).
ONLY=$RSYS_TMP/only-python.policy
{ echo "trusted $(readlink -f "$PYTHON3")"; grep -v '^trusted' "$RSYS_POLICY"; } >"$ONLY"
only=$(RSYS_POLICY=$ONLY rsys_run "$PYTHON3" -c '
import errno, os, sys
pid = os.fork()
if pid == 0:
    try:
        os.execv("/bin/true", ["true"])
    except OSError as e:
        print(errno.errorcode[e.errno])
    os._exit(0)
os.waitpid(pid, 0)
sys.stdout.flush()
os.execv(sys.executable, [sys.executable, "-c", "print(\"python again\")"])
' 2>"$RSYS_TMP/only.err" | tr '\n' ' ')
if [ "$only" = "EACCES python again " ] && grep -q "true is not trusted" "$RSYS_TMP/only.err"; then
	tap_ok "execve: a trusted program may exec a trusted one only; another gets EACCES"
else
	tap_diag_file "$RSYS_TMP/only.err"
	tap_not_ok "execve passport: expected 'EACCES python again', got '$only'"
fi

# splice from a pipe to a remote socket is routed (the delegate sends the bytes); splice from
# a remote socket and io_uring would bypass the monitor: EINVAL, and ENOSYS (as without
# io_uring), so programs fall back to routed calls.
bypass=$(rsys_run "$PYTHON3" -c '
import ctypes, errno, os, socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
r, w = os.pipe()
os.write(w, b"x")
try:
    os.splice(r, s.fileno(), 1)
    print("splice ok")
except OSError as e:
    print("splice", errno.errorcode[e.errno])
try:
    os.splice(s.fileno(), w, 1, flags=os.SPLICE_F_NONBLOCK)
    print("splice-in ok")
except OSError as e:
    print("splice-in", errno.errorcode[e.errno])
libc = ctypes.CDLL(None, use_errno=True)
params = ctypes.create_string_buffer(120)
ret = libc.syscall(425, 8, params)
print("io_uring_setup", "ok" if ret >= 0 else errno.errorcode[ctypes.get_errno()])
' "$RSYS_WORLD_IP" "$HTTP_PORT" 2>&1 | tr '\n' ' ')
# In direct mode the socket is real: splice moves the data as natively (nothing to read yet).
want="splice ok splice-in EINVAL io_uring_setup ENOSYS "
[ "${RSYS_MODE:-remote}" = direct ] && want="splice ok splice-in EAGAIN io_uring_setup ENOSYS "
if [ "$bypass" = "$want" ]; then
	tap_ok "splice to and from a remote socket: ${want% io_uring*}; io_uring_setup: ENOSYS"
else
	tap_not_ok "splice/io_uring: expected '$want', got '$bypass'"
fi

# Delegate unreachable: rsys-load run says where it tried and exits 1.
NOWHERE=unix:$RSYS_TMP/nowhere.sock
RSYS_DELEGATE=$NOWHERE rsys_run /bin/true >/dev/null 2>"$RSYS_TMP/nowhere.err"
rc=$?
tap_diag_file "$RSYS_TMP/nowhere.err"
if [ $rc -eq 1 ] && grep -qF "$RSYS_TMP/nowhere.sock" "$RSYS_TMP/nowhere.err"; then
	tap_ok "delegate unreachable: exit 1 with a message naming the address"
else
	tap_not_ok "delegate unreachable: exit $rc, message must name $NOWHERE"
fi

# Delegate killed while the program is blocked in a remote recv: an error, not a hang.
victim=$RSYS_DELEGATE_PID
out=$RSYS_TMP/killed.out
blocked=$BLOCKED_PY
[ "${RSYS_MODE:-remote}" = direct ] && blocked=$BLOCKED_DIRECT_PY
RSYS_RUN_TIMEOUT=30 rsys_run "$PYTHON3" -c "$blocked" "$RSYS_WORLD_IP" >"$out" 2>"$out.err" &
runner=$!
for ((i = 0; i < 100; i++)); do
	grep -q connected "$out" && break
	sleep 0.1
done
sleep 0.5
{ kill -9 "$victim" && wait "$victim"; } 2>/dev/null
wait "$runner"
rc=$?
echo "# program said: $(tr '\n' ' ' <"$out"); rsys-load run exit $rc"
tap_diag_file "$out.err"
if ! grep -q connected "$out"; then
	tap_not_ok "delegate killed: the program never connected"
elif [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
	tap_not_ok "delegate killed: the program hung (killed after 30 s)"
elif [ "${RSYS_MODE:-remote}" = direct ]; then
	if grep -q '^alive' "$out" && grep -q '^error' "$out"; then
		tap_ok "delegate killed (direct mode): the connection lives on, a new socket gets an error"
	else
		tap_not_ok "delegate killed (direct mode): want 'alive' then 'error', got '$(tr '\n' ' ' <"$out")'"
	fi
elif grep -q '^error' "$out" || [ $rc -ne 0 ]; then
	tap_ok "delegate killed mid-connection: the program gets an error and does not hang"
else
	tap_not_ok "delegate killed: the program saw '$(tail -1 "$out")' and exit 0, not an error"
fi

tap_finish
