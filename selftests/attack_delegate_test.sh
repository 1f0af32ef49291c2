#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Attacks on rsys-delegate by whoever can reach it: each case runs against the real delegate and
# asserts the attacker's goal did not happen, next to a control showing the same attack works
# where the defence is off (natively as root, or a policy that allows it).

source "$(dirname "$0")/lib.sh"

ATK=$RSYS_O/selftests/attack_delegate
NS_ATK=rsys-atk-$$
ECHO_PORT=7
LO_PORT=8001
TLS_PORT=7711

rsys_require
rsys_have_bins || ksft_skip "$RSYS_MISSING"
[ -x "$ATK" ] || ksft_skip "$ATK not built (make -C selftests)"
rsys_topology_up
rsys_netns_add "$NS_ATK" || ksft_skip "cannot create a network namespace"

# attack_policy FILE SOCK CLIENTS EXTRA...: the policy of the delegate under attack.
attack_policy()
{
	local file=$1 sock=$2 clients=$3

	shift 3
	{
		echo "client uid $clients"
		echo "delegate unix:$sock"
		echo "allow tcp $RSYS_WORLD_IP $ECHO_PORT"
		# Rules that the old matching let reach loopback through 0.0.0.0 and ::.
		echo "allow tcp 0.0.0.0/5 *"
		echo "allow tcp ::/128 *"
		echo "allow bind tcp ::/0 *"
		printf '%s\n' "$@"
	} >"$file"
}

# delegate_up NAME SOCK POLICY: start a delegate in the service netns; its log is $RSYS_TMP/NAME.log.
delegate_up()
{
	rsys_bg "$RSYS_NS_SERVICE" "$RSYS_DELEGATE_BIN" --listen "unix:$2" --policy "$3" -v \
		2>"$RSYS_TMP/$1.log"
	rsys_wait_file "$2" || {
		tap_diag_file "$RSYS_TMP/$1.log"
		ksft_skip "rsys-delegate did not start listening on $2"
	}
}

# check DESCRIPTION CMD...: ok when CMD succeeds; its output as diagnostics.
check()
{
	local desc=$1 out

	shift
	out=$("$@" 2>&1)
	if [ $? -eq 0 ]; then
		tap_ok "$desc"
	else
		tap_not_ok "$desc"
	fi
	[ -n "$out" ] && echo "$out" | sed 's/^/# /'
}

# expect DESCRIPTION WANT CMD...: ok when CMD prints WANT.
expect()
{
	local desc=$1 want=$2 out

	shift 2
	out=$("$@" 2>&1)
	if [ "$out" = "$want" ]; then
		tap_ok "$desc -> $out"
	else
		tap_not_ok "$desc -> $out (want $want)"
	fi
}

atk() { ip netns exec "$NS_ATK" "$ATK" "$@"; }
svc() { ip netns exec "$RSYS_NS_SERVICE" "$@"; }
not() { ! "$@"; }

# tls_files DIR: a CA, a delegate certificate for 127.0.0.1, a client's, and a client of another CA.
tls_files()
{
	local d=$1 c n ca

	mkdir -p "$d" || return 1
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/ca.key" &&
	openssl req -x509 -new -key "$d/ca.key" -out "$d/ca.crt" -subj /CN=rsys-test-ca -days 1 &&
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/evil-ca.key" &&
	openssl req -x509 -new -key "$d/evil-ca.key" -out "$d/evil-ca.crt" -subj /CN=evil-ca -days 1 ||
		return 1
	echo "subjectAltName=IP:127.0.0.1" >"$d/ext"
	for c in srv:ca cli:ca evil:evil-ca; do
		n=${c%%:*} ca=${c#*:}
		openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/$n.key" &&
		openssl req -new -key "$d/$n.key" -out "$d/$n.csr" -subj "/CN=$n" &&
		openssl x509 -req -in "$d/$n.csr" -CA "$d/$ca.crt" -CAkey "$d/$ca.key" \
			-CAcreateserial -out "$d/$n.crt" -days 1 -extfile "$d/ext" || return 1
	done
	# A raw client: HELLO over TLS, with or without a certificate.
	cat >"$d/hello.py" <<'EOF'
import socket, ssl, struct, sys
ca, cert, key, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.load_verify_locations(ca)
if cert != "-":
    ctx.load_cert_chain(cert, key)
hello = struct.pack("<IHHQII6q", 0x52535953, 1, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0)
try:
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5),
                        server_hostname="127.0.0.1")
    s.sendall(hello)
    r = s.recv(72)
except (OSError, ssl.SSLError) as e:
    print("refused: %s" % str(e)[:100])
    sys.exit(1)
print("HELLO answered" if len(r) == 72 else "no HELLO reply")
sys.exit(len(r) != 72)
EOF
}

SOCK_A=$RSYS_SOCKDIR/a.sock
SOCK_B=$RSYS_SOCKDIR/b.sock
attack_policy "$RSYS_TMP/a.policy" "$SOCK_A" "0 1000" "limit sessions 8"
# B: the peer check disabled for uid 65534; few fds, so that the global socket cap is reached.
attack_policy "$RSYS_TMP/b.policy" "$SOCK_B" "0 1000 65534" "limit fds 200"
delegate_up a "$SOCK_A" "$RSYS_TMP/a.policy"
(ulimit -n 2400 && delegate_up b "$SOCK_B" "$RSYS_TMP/b.policy") || exit 4
command -v openssl >/dev/null || ksft_skip "openssl not found (make deps)"
tls_files "$RSYS_TMP/tls" >/dev/null 2>&1 || ksft_skip "cannot make test certificates with openssl"
rsys_bg "$RSYS_NS_SERVICE" "$RSYS_DELEGATE_BIN" --listen tcp:127.0.0.1:$TLS_PORT \
	--policy "$RSYS_TMP/a.policy" --tls-cert "$RSYS_TMP/tls/srv.crt" \
	--tls-key "$RSYS_TMP/tls/srv.key" --tls-ca "$RSYS_TMP/tls/ca.crt" -v 2>"$RSYS_TMP/tls.log"
rsys_wait_tcp "$RSYS_NS_SERVICE" 127.0.0.1 $TLS_PORT || ksft_skip "the TLS delegate did not start"
svc "$ATK" serve 127.0.0.1 $LO_PORT "$RSYS_TMP/lo4.ready" &
RSYS_PIDS+=($!)
svc "$ATK" serve ::1 $LO_PORT "$RSYS_TMP/lo6.ready" &
RSYS_PIDS+=($!)
rsys_wait_file "$RSYS_TMP/lo4.ready" && rsys_wait_file "$RSYS_TMP/lo6.ready" ||
	ksft_skip "loopback servers in the service netns did not start"

tap_plan 46

# 1. Who may connect: SO_PEERCRED against 'client uid', from another netns, not under rsys.
check "peer credentials: uid 65534 from another netns gets no session, nothing fetched" \
	not atk fetch "unix:$SOCK_A" 65534 $RSYS_WORLD_IP $ECHO_PORT
check "  the refusal is logged with the uid" \
	grep -q "uid 65534 is not a client the policy allows" "$RSYS_TMP/a.log"
check "  control: uid 1000, which the policy names, fetches the world's echo" \
	atk fetch "unix:$SOCK_A" 1000 $RSYS_WORLD_IP $ECHO_PORT
check "  control: uid 65534 fetches it where the policy names it too" \
	atk fetch "unix:$SOCK_B" 65534 $RSYS_WORLD_IP $ECHO_PORT
check "direct mode's SOCKFD: uid 1000, a client the policy names, gets no socket of the service domain" \
	not atk sockfd "unix:$SOCK_A" 1000 $RSYS_WORLD_IP 7003
check "  control: root gets one, and it reaches a port no rule allows" \
	atk sockfd "unix:$SOCK_A" 0 $RSYS_WORLD_IP 7003

# 2. Where the socket lives, and transports without peer authentication.
mkdir -m 0777 "$RSYS_TMP/ww"
out=$(svc timeout 5 "$RSYS_DELEGATE_BIN" --listen "unix:$RSYS_TMP/ww/d.sock" 2>&1)
rc=$?
if [ $rc -eq 1 ] && [[ $out == *"world writable"* ]] && [ ! -e "$RSYS_TMP/ww/d.sock" ]; then
	tap_ok "a socket in a world-writable directory: refused, exit 1, says why"
else
	tap_not_ok "a socket in a world-writable directory: exit $rc: $out"
fi
svc "$RSYS_DELEGATE_BIN" --listen "unix:$RSYS_TMP/new/d.sock" 2>/dev/null &
pid=$!
rsys_wait_file "$RSYS_TMP/new/d.sock"
mode=$(stat -c '%a %U' "$RSYS_TMP/new" 2>/dev/null)/$(stat -c '%a' "$RSYS_TMP/new/d.sock" 2>/dev/null)
kill $pid 2>/dev/null
wait $pid 2>/dev/null
if [ "$mode" = "700 root/600" ]; then
	tap_ok "a missing directory is created 0700, the socket is 0600 (root-only policy): $mode"
else
	tap_not_ok "directory and socket modes: $mode (want 700 root/600)"
fi
for addr in tcp:127.0.0.1:$TLS_PORT vsock:1:7000; do
	out=$(svc timeout 5 "$RSYS_DELEGATE_BIN" --listen "$addr" 2>&1)
	rc=$?
	if [ $rc -eq 1 ] && [[ $out == *"--tls-cert"* ]]; then
		tap_ok "--listen $addr without mutual TLS: refused, exit 1, says why"
	else
		tap_not_ok "--listen $addr: exit $rc: $out"
	fi
done

# 3. tcp: with mutual TLS: a client must show a certificate of the CA.
T=$RSYS_TMP/tls
check "TLS: a client without a certificate gets no HELLO answered" \
	not svc "$PYTHON3" "$T/hello.py" "$T/ca.crt" - - $TLS_PORT
check "TLS: a client whose certificate another CA signed gets none either" \
	not svc "$PYTHON3" "$T/hello.py" "$T/ca.crt" "$T/evil.crt" "$T/evil.key" $TLS_PORT
check "  both are logged" \
	test "$(grep -c 'TLS handshake failed' "$RSYS_TMP/tls.log")" -ge 2
check "  control: with the CA's client certificate, HELLO is answered" \
	svc "$PYTHON3" "$T/hello.py" "$T/ca.crt" "$T/cli.crt" "$T/cli.key" $TLS_PORT
rsys_write_policy "$RSYS_TMP/run.policy"
tls_run()
{
	svc timeout 30 "$RSYS_LOAD" run --policy "$RSYS_TMP/run.policy" \
		--delegate tcp:127.0.0.1:$TLS_PORT --tls-cert "$T/$1.crt" --tls-key "$T/$1.key" \
		--tls-ca "$T/ca.crt" -- "$PYTHON3" -c "
import socket
s = socket.create_connection(('$RSYS_WORLD_IP', $ECHO_PORT), timeout=5)
s.sendall(b'over tls\\n')
assert s.recv(64) == b'over tls\\n'
print('echo through the TLS delegate')"
}
check "rsys-load run over tcp: with mutual TLS: a program reaches the world" tls_run cli
check "  rsys-load with a certificate of another CA is refused" not tls_run evil

# 4. Socket options and flags that change where packets go, or leak another session's data.
check "setsockopt IP_OPTIONS, IPV6_RTHDR, SO_RCVBUFFORCE, SO_ZEROCOPY, SO_MARK, IP_TRANSPARENT: ENOPROTOOPT" \
	atk opts "unix:$SOCK_A"
check "  control: natively, as root in the service netns, the kernel takes every one" \
	svc "$ATK" native-opts
check "send(MSG_ZEROCOPY) refused with EPERM; the session goes on" \
	atk zerocopy "unix:$SOCK_A" $RSYS_WORLD_IP $ECHO_PORT
check "  control: natively the kernel takes SO_ZEROCOPY + MSG_ZEROCOPY" \
	svc "$ATK" native-zerocopy $RSYS_WORLD_IP $ECHO_PORT

# 5. Mapped and unspecified addresses match the rules of where the packets go.
expect "connect ::ffff:$RSYS_WORLD_IP (the allowed host, v4-mapped)" 0 \
	atk connect "unix:$SOCK_A" ::ffff:$RSYS_WORLD_IP $ECHO_PORT
expect "connect ::ffff:127.0.0.1 (loopback, not allowed)" EPERM \
	atk connect "unix:$SOCK_A" ::ffff:127.0.0.1 $LO_PORT
expect "connect ::ffff:0.0.0.0 (in 0.0.0.0/5, but reaches 127.0.0.1)" EPERM \
	atk connect "unix:$SOCK_A" ::ffff:0.0.0.0 $LO_PORT
expect "connect 0.0.0.0 from an IPv4 socket (same)" EPERM \
	atk connect "unix:$SOCK_A" 0.0.0.0 $LO_PORT v4
expect "connect :: (in ::/128, but reaches ::1)" EPERM \
	atk connect "unix:$SOCK_A" :: $LO_PORT
expect "  control: natively ::ffff:0.0.0.0 reaches the 127.0.0.1 server" 0 \
	svc "$ATK" native-connect ::ffff:0.0.0.0 $LO_PORT
expect "  control: natively :: reaches the ::1 server" 0 \
	svc "$ATK" native-connect :: $LO_PORT
expect "bind :: dual-stack with only 'allow bind tcp ::/0' (would listen on IPv4 too)" EPERM \
	atk bind "unix:$SOCK_A" :: 0 0
expect "  control: bind :: with IPV6_V6ONLY is allowed" 0 \
	atk bind "unix:$SOCK_A" :: 0 1

# 6. Resources: idle connections, deadlines, caps.
check "1100 connections that never send HELLO: a legitimate session is still served" \
	atk flood "unix:$SOCK_A" 1100 $RSYS_WORLD_IP $ECHO_PORT
check "no HELLO (or half of one) within 5 s: dropped; a session stays" \
	atk idle "unix:$SOCK_A" 6
sleep 0.5
expect "limit sessions 8: the 9th session of uid 0 is refused with EUSERS" \
	"8 served, first refusal EUSERS" atk sessions "unix:$SOCK_A" 9
out=$(atk threads "unix:$SOCK_B" 9 $RSYS_WORLD_IP $ECHO_PORT 2>&1)
refused=$(echo "$out" | sed -n 's/^576 blocking recvs, \([0-9]*\) answered EAGAIN$/\1/p')
# 64 over the cap; a few more when a thread that just answered was not idle again yet.
if [ -n "$refused" ] && [ "$refused" -ge 64 ] && [ "$refused" -le 96 ] &&
   [[ $out == *"is served" ]]; then
	tap_ok "global thread cap (512): 9 sessions x 64 blocking recvs, $refused answered EAGAIN; a new session served"
else
	tap_not_ok "global thread cap: $(echo $out)"
fi
check "  the cap is logged" grep -q "512 delegate threads running in all sessions" "$RSYS_TMP/b.log"
out=$(atk handles "unix:$SOCK_B" 4 2>&1)
want="session 0: 200 sockets, then EMFILE
session 1: 200 sockets, then EMFILE
session 2: 200 sockets, then EMFILE
session 3: 0 sockets, then ENFILE"
if [ "$out" = "$want" ]; then
	tap_ok "global socket cap (RLIMIT_NOFILE 2400): EMFILE per session, ENFILE once all sessions hold 600"
else
	tap_not_ok "global socket cap: $(echo $out)"
fi
check "  the cap is logged" grep -q "sockets open in all sessions" "$RSYS_TMP/b.log"

# 7. Sessions outliving their connection: the sends a client marks as answered already
# (write-behind) still go out after it disconnects, for up to 60 s; until then the session
# counts against the client's limit, or disconnecting would open sessions without bound. The
# sends block on a connection to a listener of the same session that never accepts.
SOCK_C=$RSYS_SOCKDIR/c.sock
attack_policy "$RSYS_TMP/c.policy" "$SOCK_C" "0" "limit sessions 2" "allow bind tcp 127.0.0.1 *" \
	"allow tcp 127.0.0.1 *"
delegate_up c "$SOCK_C" "$RSYS_TMP/c.policy"
expect "  control: 2 sessions leave plain sends blocked and disconnect: they end, a new one is served" \
	"a new session is served" atk linger "unix:$SOCK_C" 2 127.0.0.1 8100 0
expect "limit sessions 2: 2 sessions leave answered sends blocked and disconnect: a 3rd is refused" \
	"a new session is EUSERS" atk linger "unix:$SOCK_C" 2 127.0.0.1 8110 1
check "  the delegate says the sends still go out" \
	grep -q "answered sends still going out (up to 60 s)" "$RSYS_TMP/c.log"
# "limit linger 1": the same sessions are cancelled after 1 s, and free their places.
SOCK_E=$RSYS_SOCKDIR/e.sock
attack_policy "$RSYS_TMP/e.policy" "$SOCK_E" "0" "limit sessions 2" "limit linger 1" \
	"allow bind tcp 127.0.0.1 *" "allow tcp 127.0.0.1 *"
delegate_up e "$SOCK_E" "$RSYS_TMP/e.policy"
expect "limit linger 1: the same, the 3rd session 0.2 s later is still refused" \
	"a new session is EUSERS" atk linger "unix:$SOCK_E" 2 127.0.0.1 8120 1
sleep 2
expect "  2 s later a new session is served: the answered sends were cancelled after 1 s" \
	"1 served, first refusal none" atk sessions "unix:$SOCK_E" 1
check "  the delegate says so" grep -q "answered sends still not out after 1 s: cancelled" "$RSYS_TMP/e.log"

# 8. A session runs on its client's CPUs ("taskset -c 0 rsys-load run" keeps the whole
# exchange on one CPU): only that session's threads follow. A client must not move the
# delegate's listener or another client's session. The control is an unpinned client, whose
# session runs wherever the delegate may.
# cpu_threads PID LIST: how many threads of PID may run exactly on the CPUs LIST.
cpu_threads()
{
	grep -h '^Cpus_allowed_list:' /proc/"$1"/task/*/status 2>/dev/null | awk -v l="$2" '$2 == l' | wc -l
}

# until_threads PID LIST N: wait (bounded, 5 s) until at least N threads of PID run on LIST.
until_threads()
{
	local i

	for ((i = 0; i < 50; i++)); do
		[ "$(cpu_threads "$1" "$2")" -ge "$3" ] && return 0
		sleep 0.1
	done
	return 1
}

all_cpus=$(awk '/^Cpus_allowed_list:/ { print $2 }' /proc/$$/status)
if [ "$(taskset -c "$all_cpus" nproc)" -lt 2 ]; then
	for t in "unpinned client" "pinned client" "listener and other session" "log"; do
		tap_skip "session CPUs ($t): needs 2 CPUs, this process may use $all_cpus"
	done
else
	last_cpu=${all_cpus##*[,-]}
	SOCK_D=$RSYS_SOCKDIR/d.sock
	attack_policy "$RSYS_TMP/d.policy" "$SOCK_D" "0"
	delegate_up d "$SOCK_D" "$RSYS_TMP/d.policy"
	dpid=${RSYS_PIDS[-1]}
	base=$(cpu_threads "$dpid" "$all_cpus")
	atk hold "unix:$SOCK_D" $RSYS_WORLD_IP $ECHO_PORT 20 >"$RSYS_TMP/hold-u.out" &
	hold_u=$!
	if until_threads "$dpid" "$all_cpus" $((base + 2)) && [ "$(cpu_threads "$dpid" "$last_cpu")" -eq 0 ]; then
		tap_ok "  control: an unpinned client's session (reader, recv thread) runs on every CPU ($all_cpus)"
	else
		tap_not_ok "  control: unpinned client: $(cpu_threads "$dpid" "$all_cpus") threads on $all_cpus (want $((base + 2)))"
	fi
	unpinned=$(cpu_threads "$dpid" "$all_cpus")
	taskset -c "$last_cpu" ip netns exec "$NS_ATK" "$ATK" hold "unix:$SOCK_D" $RSYS_WORLD_IP $ECHO_PORT 20 \
		>"$RSYS_TMP/hold-p.out" &
	hold_p=$!
	if until_threads "$dpid" "$last_cpu" 2; then
		tap_ok "a client on CPU $last_cpu: its session's reader and recv thread run on CPU $last_cpu"
	else
		tap_not_ok "a client on CPU $last_cpu: $(cpu_threads "$dpid" "$last_cpu") of its session's threads there (want 2)"
	fi
	now=$(cpu_threads "$dpid" "$all_cpus")
	if [ "$now" -eq "$unpinned" ] && [ "$now" -gt "$base" ]; then
		tap_ok "  the listener and the other client's session still run on $all_cpus ($now threads)"
	else
		tap_not_ok "  the pinned client moved other threads: $now on $all_cpus, $unpinned before"
	fi
	check "  the delegate says so" grep -q "on the 1 CPU(s) of its client" "$RSYS_TMP/d.log"
	kill "$hold_u" "$hold_p" 2>/dev/null
	wait "$hold_u" "$hold_p" 2>/dev/null
fi

tap_finish
