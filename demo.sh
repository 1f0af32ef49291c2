#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# rsys demo: a trusted curl reaches a "world" through the delegate, the same curl untrusted cannot.
#
# Run by "make demo" (as root). Builds nothing itself; everything it creates is removed on exit.

set -u

SRC=$(cd "$(dirname "$0")" && pwd)
O=${O:-$SRC/.output}
case $O in /*) ;; *) O=$SRC/$O ;; esac
LOAD=$O/rsys-load
DELEGATE_BIN=$O/rsys-delegate
POLICY=$SRC/policy/net.policy
PYTHON3=/usr/bin/python3
PIN=/sys/fs/bpf/rsys

WORLD_IP=198.18.0.1
SERVICE_IP=198.18.0.2
NS_WORLD=rsys-demo-world-$$
NS_SERVICE=rsys-demo-svc-$$
NS_PLAIN=rsys-demo-plain-$$
TMP=
PIDS=()
NETNS=()
ATTACHED=0

step()
{
	printf '\n\033[1m== %s\033[0m\n' "$*"
}

# Show a command, then run it.
show()
{
	printf '$ %s\n' "$*"
	"$@" 2>&1
}

die()
{
	echo "Error: $*" >&2
	exit 1
}

cleanup()
{
	local pid ns

	step "Cleaning up"
	[ "$ATTACHED" -eq 1 ] && show "$LOAD" detach
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null
	done
	for ns in "${NETNS[@]}"; do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do
			kill -9 "$pid" 2>/dev/null
		done
		ip netns del "$ns" 2>/dev/null
	done
	[ -n "$TMP" ] && rm -rf "$TMP"
	echo "removed namespaces ${NETNS[*]}, servers and the delegate"
}

netns_add()
{
	ip netns add "$1" || die "cannot create network namespace $1"
	NETNS+=("$1")
	ip -n "$1" link set lo up
}

wait_for()
{
	local i

	for ((i = 0; i < 100; i++)); do
		eval "$1" && return 0
		sleep 0.1
	done
	return 1
}

[ "$(id -u)" -eq 0 ] || die "the demo needs root (network namespaces, BPF, seccomp): run it as root"
for cmd in ip curl bpftool; do
	command -v "$cmd" >/dev/null || die "$cmd not found: install the dependencies with 'make deps'"
done
[ -x "$PYTHON3" ] || die "$PYTHON3 not found: install the dependencies with 'make deps'"
[ -x "$LOAD" ] && [ -x "$DELEGATE_BIN" ] || die "rsys is not built in $O: run 'make' (or 'make demo')"

trap cleanup EXIT
trap 'exit 130' INT TERM HUP
TMP=$(mktemp -d /tmp/rsys-demo.XXXXXX)
chmod 755 "$TMP"
DELEGATE=unix:$TMP/delegate.sock

step "1. A world (servers, $WORLD_IP) and a service domain ($SERVICE_IP) joined by a veth"
netns_add "$NS_WORLD"
netns_add "$NS_SERVICE"
ip link add rdw$$ type veth peer name rds$$ &&
ip link set rdw$$ netns "$NS_WORLD" && ip link set rds$$ netns "$NS_SERVICE" &&
ip -n "$NS_WORLD" addr add $WORLD_IP/24 dev rdw$$ && ip -n "$NS_WORLD" link set rdw$$ up &&
ip -n "$NS_SERVICE" addr add $SERVICE_IP/24 dev rds$$ && ip -n "$NS_SERVICE" link set rds$$ up ||
	die "cannot set up the veth between $NS_WORLD and $NS_SERVICE"
mkdir "$TMP/www"
echo "Hello from the world netns ($WORLD_IP), fetched by a trusted program through rsys." \
	>"$TMP/www/index.html"
ip netns exec "$NS_WORLD" "$PYTHON3" -m http.server 80 --bind $WORLD_IP \
	--directory "$TMP/www" >/dev/null 2>&1 &
PIDS+=($!)
wait_for "ip netns exec $NS_SERVICE curl -s -o /dev/null http://$WORLD_IP/" ||
	die "the HTTP server in $NS_WORLD did not come up"
echo "netns $NS_WORLD: HTTP server on http://$WORLD_IP/"
echo "netns $NS_SERVICE: $SERVICE_IP, reaches the world"

step "2. The delegate runs in the service domain and enforces the policy's egress rules"
ip netns exec "$NS_SERVICE" "$DELEGATE_BIN" --listen "$DELEGATE" --policy "$POLICY" \
	2>"$TMP/delegate.log" &
PIDS+=($!)
wait_for "[ -S $TMP/delegate.sock ]" || { cat "$TMP/delegate.log"; die "rsys-delegate did not start"; }
echo "rsys-delegate --listen $DELEGATE --policy $POLICY  (in netns $NS_SERVICE)"
grep -v '^#' "$POLICY" | grep . | sed 's/^/    /'

step "3. Attach the policy: BPF programs and the fd table pinned under $PIN"
if [ -e "$PIN/fdtable" ]; then
	echo "rsys is already attached; using it as it is"
elif show "$LOAD" attach "$POLICY"; then
	ATTACHED=1
else
	echo "(attach failed: the run below still works, without the BPF fd table and counters)"
fi

step "4. curl as a trusted program: a fresh compute domain (a sandbox, only lo), sockets from the delegate"
echo "(direct mode, the default with a unix: delegate: the delegate creates each socket and the"
echo " program holds it; only the calls that decide where packets go reach the monitor)"
show "$LOAD" run -v --policy "$POLICY" --delegate "$DELEGATE" -- curl -sS --max-time 20 "http://$WORLD_IP/"
trusted_rc=$?
echo "(curl exit status $trusted_rc)"

step "5. The same curl untrusted, in a network namespace with only lo: no way out"
netns_add "$NS_PLAIN"
show ip netns exec "$NS_PLAIN" curl -sS --max-time 5 "http://$WORLD_IP/"
plain_rc=$?
echo "(curl exit status $plain_rc)"

step "6. Remote mode: the fd table while a trusted python3 holds a connection (fd 3) and a dup of it (fd 10)"
echo "(--mode remote: the program holds placeholders and the delegate makes every call on them)"
"$LOAD" run --mode remote --policy "$POLICY" --delegate "$DELEGATE" -- "$PYTHON3" -c '
import os, socket, time
s = socket.create_connection(("'$WORLD_IP'", 80))
os.dup2(s.fileno(), 10)
t = socket.socket(fileno=10)
t.sendall(b"GET / HTTP/1.0\r\n\r\n")
print("python3 (pid %d): connected, fds %d and 10" % (os.getpid(), s.fileno()), flush=True)
time.sleep(3)
' >"$TMP/holder.out" 2>&1 &
holder=$!
PIDS+=("$holder")
wait_for "grep -q connected $TMP/holder.out"
cat "$TMP/holder.out"
if [ -e "$PIN/fdtable" ]; then
	show bpftool map dump pinned "$PIN/fdtable"
	echo "(key: table = tgid as the host sees it (python's pid above is the sandbox's), vfd = fd"
	echo " number; domain 1 = remote; fd 10 shares fd 3's handle,"
	echo " flags 1 = FD_CLOEXEC, which python sets on sockets and dup2 clears)"
else
	echo "(not attached: no pinned fd table to dump)"
fi
wait "$holder"

step "7. rsys-load status: programs, call counters, trusted tasks"
show "$LOAD" status

[ "$trusted_rc" -eq 0 ] || die "the trusted curl failed (exit $trusted_rc)"
[ "$plain_rc" -ne 0 ] || die "the untrusted curl reached the world: the compute domain leaks"
