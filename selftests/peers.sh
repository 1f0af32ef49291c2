#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Benchmarks rsys against native networking and its peers (pasta, slirp4netns) on this machine.
#
# Usage: selftests/peers.sh [--quick] [--runs N] [--only TEST,...] [--with ARR,...] [--pin CPU] [-o FILE.png] [-j]
#
# It builds its own namespaces (names end in the script's pid; all removed on exit):
#   world    198.18.0.1/24: iperf3 -s, sockperf server, nginx (1 KiB and big file), sshd
#   service  198.18.0.2/24, veth to the world, default route through it: rsys-delegate,
#            pasta and slirp4netns run here; "native" runs here too (plain veth)
#   pasta    a netns given its connectivity by pasta (tap) running in the service netns
#   slirp    a netns given its connectivity by slirp4netns (tap0) running in the service netns
#   rsys     "rsys-load run" compute domains (lo only), sockets executed by the delegate
#   floor    the program in the service netns under selftests/trapfloor: every call remote
#            mode traps goes to a supervisor that only answers CONTINUE (no delegate, no
#            copy): the ceiling of any mechanism that traps each call, rsys's remote mode
#            included
# Tests (--only takes these names): iperf1 iperf4 rtt curl wrk_out wrk_in scp.
# Arrangements (--with takes these names): native direct rsys floor pasta slirp.
# Runs are interleaved: run 1 of every test on every arrangement, then run 2, ...
# --pin CPU runs every arrangement's program and its helpers on that CPU: pasta, slirp4netns,
# "rsys-load run" (the delegate's session follows its client's CPUs by itself); the world's
# servers and the delegate's listener stay where the scheduler puts them. On a virtual
# machine a wake-up on another CPU costs an exit to the hypervisor: this shows each
# arrangement without that cost, all alike.
# Prints the median, min-max and ratio to native of every cell; -j prints JSON instead.
# It asserts nothing about time; a cell whose runs all failed (timeout, wrong bytes) says so.
# Exit status: 0 when the table was printed (whatever its cells say), 1 when the namespaces
# could not be built, 2 on a usage error, 4 when not root.

. "$(dirname "$0")/lib.sh"

ALL_TESTS=(iperf1 iperf4 rtt curl wrk_out wrk_in scp)
ALL_ARRS=(native direct rsys floor pasta slirp)
WITH=
RUNS=5
QUICK=0
HAVE_SSHD=
SSHD_RUNDIR=
SLIRP_NOFWD=
JSON=0
PNG=
ONLY=
PIN=

usage()
{
	sed -n '5p' "$0" | sed 's/^# //' >&2
	exit 2
}

while [ $# -gt 0 ]; do
	case $1 in
	--quick) QUICK=1; RUNS=1 ;;
	--runs) RUNS=$2; shift ;;
	--only) ONLY=$2; shift ;;
	--with) WITH=$2; shift ;;
	--pin) PIN=$2; shift ;;
	-o) PNG=$2; shift ;;
	-j) JSON=1 ;;
	-h|--help) usage ;;
	*) echo "peers.sh: unknown option $1" >&2; usage ;;
	esac
	shift
done
if ! [[ $RUNS =~ ^[1-9][0-9]*$ ]] || [ "$RUNS" -gt 100 ]; then
	echo "peers.sh: --runs wants 1..100" >&2
	exit 2
fi
TESTS=()
for t in "${ALL_TESTS[@]}"; do
	[ -z "$ONLY" ] || [[ ,$ONLY, == *,$t,* ]] && TESTS+=("$t")
done
for t in ${ONLY//,/ }; do
	[[ " ${ALL_TESTS[*]} " == *" $t "* ]] || { echo "peers.sh: unknown test $t (${ALL_TESTS[*]})" >&2; exit 2; }
done
if [ -n "$WITH" ]; then
	for a in ${WITH//,/ }; do
		[[ " ${ALL_ARRS[*]} " == *" $a "* ]] || { echo "peers.sh: unknown arrangement $a (${ALL_ARRS[*]})" >&2; exit 2; }
	done
	ARRS=()
	for a in "${ALL_ARRS[@]}"; do
		[[ ,$WITH, == *,$a,* ]] && ARRS+=("$a")
	done
	ALL_ARRS=("${ARRS[@]}")
fi
if [ -n "$PIN" ] && { ! [[ $PIN =~ ^[0-9]+$ ]] || ! taskset -c "$PIN" true 2>/dev/null; }; then
	echo "peers.sh: --pin wants the number of a CPU this process may use ($(taskset -cp $$ | sed 's/.*: //'))" >&2
	exit 2
fi
# The prefix that runs a command on the pinned CPU, if any.
PIN_CMD=()
[ -n "$PIN" ] && PIN_CMD=(taskset -c "$PIN")
[ "$(id -u)" -eq 0 ] || { echo "peers.sh: needs root (network namespaces)" >&2; exit 4; }

# Sizes and durations: the quick run only proves that the bytes move.
if [ "$QUICK" -eq 1 ]; then
	BIG_MIB=1 SECS=1
else
	BIG_MIB=100 SECS=5
fi
# No single measurement may take longer than this (a stuck peer is "failed", not a hang).
TMO=$((SECS * 4 + 30))

NS_PASTA=rsys-pasta-$$
NS_SLIRP=rsys-slirp-$$
WORLD=$RSYS_WORLD_IP
SVC=$RSYS_SERVICE_IP
# Ports of the nginx run under each arrangement, as seen from the world (wrk_in).
declare -A IN_PORT=([native]=8101 [rsys]=8102 [pasta]=8103 [slirp]=8104 [direct]=8105 [floor]=8106)
declare -A NA=()	# "test arr" or "arr" -> why the cell is n/a
declare -A HAVE=()	# arrangement -> 1 when it is up

# log MSG: progress on stderr, so that stdout is the table or the JSON alone.
log()
{
	echo "peers: $*" >&2
}

# A setup step that failed: its log goes to stderr, and the caller makes a cell n/a.
log_file()
{
	[ -s "$1" ] && sed 's/^/peers:   /' "$1" | tail -n 15 >&2
	return 0
}

# wait_port NS ADDR PORT: bounded wait for a TCP listener (servers start asynchronously).
wait_port()
{
	rsys_wait_tcp "$1" "$2" "$3"
}

# World servers: each one's config lives in $RSYS_TMP so that nothing of the host's is used.
nginx_conf()	# DIR LISTEN: an nginx prefix DIR serving $RSYS_TMP/www on LISTEN
{
	mkdir -p "$1/tmp" && chmod 0777 "$1" "$1/tmp"
	cat >"$1/nginx.conf" <<EOF
# Generated by selftests/peers.sh.
worker_processes 1;
user root root;
pid $1/nginx.pid;
error_log stderr;
events { worker_connections 512; }
http {
	access_log off;
	default_type application/octet-stream;
	client_body_temp_path $1/tmp/body;
	proxy_temp_path $1/tmp/proxy;
	fastcgi_temp_path $1/tmp/fastcgi;
	uwsgi_temp_path $1/tmp/uwsgi;
	scgi_temp_path $1/tmp/scgi;
	keepalive_requests 1000000;
	server {
		listen $2;
		root $RSYS_TMP/www;
	}
}
EOF
}

world_up()
{
	local a=rpw$$ b=rps$$ d=$RSYS_TMP

	rsys_netns_add "$RSYS_NS_WORLD" && rsys_netns_add "$RSYS_NS_SERVICE" &&
	ip link add "$a" type veth peer name "$b" &&
	ip link set "$a" netns "$RSYS_NS_WORLD" && ip link set "$b" netns "$RSYS_NS_SERVICE" &&
	ip -n "$RSYS_NS_WORLD" addr add "$WORLD/24" dev "$a" &&
	ip -n "$RSYS_NS_SERVICE" addr add "$SVC/24" dev "$b" &&
	ip -n "$RSYS_NS_WORLD" link set "$a" up && ip -n "$RSYS_NS_SERVICE" link set "$b" up &&
	# pasta copies the service netns' default route into its namespace.
	ip -n "$RSYS_NS_SERVICE" route add default via "$WORLD" || return 1

	mkdir -m 0755 "$d/www" && mkdir -m 1777 "$d/dl" || return 1
	head -c 1024 /dev/urandom >"$d/www/1k"
	head -c $((BIG_MIB << 20)) /dev/urandom >"$d/www/big"
	chmod 0644 "$d/www/"*
	BIG_SHA=$(sha256sum <"$d/www/big" | cut -d' ' -f1)

	command -v sockperf >/dev/null && sockperf_up
	if command -v nginx >/dev/null; then
		nginx_conf "$d/ngx-world" "$WORLD:8080"
		rsys_bg "$RSYS_NS_WORLD" nginx -p "$d/ngx-world" -c "$d/ngx-world/nginx.conf" -e stderr \
			-g 'daemon off;' 2>"$d/ngx-world.log"
		wait_port "$RSYS_NS_SERVICE" "$WORLD" 8080 || { log "nginx in the world did not start"; log_file "$d/ngx-world.log"; }
	fi
	if [ -x /usr/sbin/sshd ] && command -v scp >/dev/null && command -v ssh-keygen >/dev/null; then
		sshd_up || log "sshd in the world did not start"
	fi
	wait_port "$RSYS_NS_SERVICE" "$WORLD" 11111 >/dev/null 2>&1
	return 0
}

# sshd on world:2222 with its own host key, letting in the benchmark's key only.
sshd_up()
{
	local d=$RSYS_TMP/ssh

	mkdir -m 0755 "$d" &&
	ssh-keygen -q -t ed25519 -N '' -f "$d/host" &&
	ssh-keygen -q -t ed25519 -N '' -f "$d/id" &&
	cp "$d/id.pub" "$d/authorized_keys" || return 1
	# The client under rsys is root in a user namespace that is uid 65534 outside.
	chown 65534:65534 "$d/id" && chmod 0600 "$d/id"
	cat >"$d/sshd_config" <<EOF
# Generated by selftests/peers.sh.
ListenAddress $WORLD:2222
HostKey $d/host
PermitRootLogin prohibit-password
AuthorizedKeysFile $d/authorized_keys
StrictModes no
UsePAM no
PidFile none
Subsystem sftp internal-sftp
EOF
	# sshd wants its privilege separation directory; made only if missing, removed on exit.
	if [ ! -d /run/sshd ]; then
		mkdir -m 0755 /run/sshd && SSHD_RUNDIR=1
	fi
	rsys_bg "$RSYS_NS_WORLD" /usr/sbin/sshd -D -e -f "$d/sshd_config" 2>"$RSYS_TMP/sshd.log"
	wait_port "$RSYS_NS_SERVICE" "$WORLD" 2222 || { log_file "$RSYS_TMP/sshd.log"; return 1; }
	HAVE_SSHD=1
}

# Arrangements. Each *_up sets HAVE[arr] or NA[arr] with the reason.
native_up()
{
	HAVE[native]=1
}

rsys_up()
{
	if ! rsys_have_bins; then
		NA[rsys]=$RSYS_MISSING
		NA[direct]=$RSYS_MISSING
		return
	fi
	# lib.sh's test policy: egress to 198.18.0.0/24, binding in the service netns.
	rsys_delegate_start >/dev/null || { NA[rsys]="rsys-delegate did not start"; return; }
	# Attached, as rsys is used (README): BPF's signal events let held calls wait killably.
	rsys_attach_once || log "rsys-load attach failed: rsys runs unattached"
	HAVE[rsys]=1
	# Direct mode comes with another change: detected from the loader's own help.
	if "$RSYS_LOAD" run --help 2>&1 | grep -q -- '--mode.*direct'; then
		HAVE[direct]=1
	else
		NA[direct]="direct mode not implemented yet (rsys-load run has no --mode direct)"
	fi
}

floor_up()
{
	TRAPFLOOR=$RSYS_O/selftests/trapfloor
	if [ -x "$TRAPFLOOR" ]; then
		HAVE[floor]=1
	else
		NA[floor]="$TRAPFLOOR not built (make -C selftests)"
	fi
}

pasta_up()
{
	command -v pasta >/dev/null || { NA[pasta]="pasta not installed (Debian package passt)"; return; }
	rsys_netns_add "$NS_PASTA" || { NA[pasta]="cannot create its netns"; return; }
	# As root pasta would drop to nobody and then fail to enter the netns: --runas 0.
	# --no-map-gw: the world's address is the gateway; it must not mean the host's loopback.
	rsys_bg "$RSYS_NS_SERVICE" "${PIN_CMD[@]}" pasta -f -q --runas 0 -4 --config-net --no-map-gw \
		-t "${IN_PORT[pasta]}" -T none -u none -U none --netns "$NS_PASTA" 2>"$RSYS_TMP/pasta.log"
	if wait_port "$NS_PASTA" "$WORLD" 8080 2>/dev/null || wait_port "$NS_PASTA" "$WORLD" 11111 2>/dev/null; then
		HAVE[pasta]=1
	else
		log_file "$RSYS_TMP/pasta.log"
		NA[pasta]="pasta gave its namespace no route to the world"
	fi
}

slirp_up()
{
	local sock=$RSYS_TMP/slirp.sock

	command -v slirp4netns >/dev/null || { NA[slirp]="slirp4netns not installed"; return; }
	rsys_netns_add "$NS_SLIRP" || { NA[slirp]="cannot create its netns"; return; }
	rsys_bg "$RSYS_NS_SERVICE" "${PIN_CMD[@]}" slirp4netns --configure --mtu=65520 --disable-host-loopback \
		--api-socket "$sock" --netns-type=path "/run/netns/$NS_SLIRP" tap0 2>"$RSYS_TMP/slirp.log"
	if ! rsys_wait_file "$sock" || ! wait_port "$NS_SLIRP" "$WORLD" 11111 2>/dev/null &&
	   ! wait_port "$NS_SLIRP" "$WORLD" 8080 2>/dev/null; then
		log_file "$RSYS_TMP/slirp.log"
		NA[slirp]="slirp4netns gave its namespace no route to the world"
		return
	fi
	HAVE[slirp]=1
	# Port forwarding for wrk_in: the service netns' port goes to the guest's 10.0.2.100.
	"$PYTHON3" - "$sock" "$SVC" "${IN_PORT[slirp]}" >"$RSYS_TMP/slirp-fwd.log" 2>&1 <<'EOF' || SLIRP_NOFWD=1
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect(sys.argv[1])
s.sendall(json.dumps({"execute": "add_hostfwd", "arguments": {"proto": "tcp",
          "host_addr": sys.argv[2], "host_port": int(sys.argv[3]), "guest_port": int(sys.argv[3])}}).encode())
r = json.loads(s.recv(4096))
print(r)
sys.exit(0 if "return" in r else 1)
EOF
}

# on ARR CMD...: run CMD as a client of the world under arrangement ARR, bounded by $TMO.
on()
{
	local arr=$1

	shift
	case $arr in
	native) timeout -k 5 "$TMO" ip netns exec "$RSYS_NS_SERVICE" "${PIN_CMD[@]}" "$@" ;;
	floor) timeout -k 5 "$TMO" ip netns exec "$RSYS_NS_SERVICE" "${PIN_CMD[@]}" "$TRAPFLOOR" "$@" ;;
	pasta) timeout -k 5 "$TMO" ip netns exec "$NS_PASTA" "${PIN_CMD[@]}" "$@" ;;
	slirp) timeout -k 5 "$TMO" ip netns exec "$NS_SLIRP" "${PIN_CMD[@]}" "$@" ;;
	rsys) RSYS_RUN_TIMEOUT=$TMO RSYS_MODE_OPT="--mode remote" pinned rsys_run "$@" ;;
	direct) RSYS_RUN_TIMEOUT=$TMO RSYS_MODE_OPT="--mode direct" pinned rsys_run "$@" ;;
	esac
}

# pinned CMD...: CMD (a shell function too) on the --pin CPU, in a subshell; else as is.
pinned()
{
	if [ -n "$PIN" ]; then
		( taskset -p -c "$PIN" "$BASHPID" >/dev/null && "$@" )
	else
		"$@"
	fi
}

# on_bg ARR CMD...: like on, in the background for the whole benchmark (nginx for wrk_in).
on_bg()
{
	local arr=$1

	shift
	case $arr in
	native) rsys_bg "$RSYS_NS_SERVICE" "${PIN_CMD[@]}" "$@" ;;
	floor) rsys_bg "$RSYS_NS_SERVICE" "${PIN_CMD[@]}" "$TRAPFLOOR" "$@" ;;
	pasta) rsys_bg "$NS_PASTA" "${PIN_CMD[@]}" "$@" ;;
	slirp) rsys_bg "$NS_SLIRP" "${PIN_CMD[@]}" "$@" ;;
	rsys|direct)
		"${PIN_CMD[@]}" "$RSYS_LOAD" run --mode "$([ "$arr" = direct ] && echo direct || echo remote)" \
			--policy "$RSYS_POLICY" \
			--delegate "$RSYS_DELEGATE" -- "$@" &
		RSYS_PIDS+=($!) ;;
	esac
}

# The nginx that wrk_in measures, run under each arrangement, reachable from the world at
# the service netns' address: directly (native, floor), through the delegate's listening socket
# (rsys), through pasta's or slirp4netns' port forwarding.
nginx_in_up()
{
	local arr=$1 port=${IN_PORT[$1]} d=$RSYS_TMP/ngx-$1 listen

	listen=0.0.0.0:$port
	[ "$arr" = native ] || [ "$arr" = floor ] && listen=$SVC:$port
	nginx_conf "$d" "$listen"
	on_bg "$arr" nginx -p "$d" -c "$d/nginx.conf" -e stderr -g 'daemon off;' 2>"$d.log"
	if [ "$arr" = slirp ] && [ -n "$SLIRP_NOFWD" ]; then
		NA["wrk_in $arr"]="slirp4netns refused the port forwarding: $(tr '\n' ' ' <"$RSYS_TMP/slirp-fwd.log")"
	elif ! wait_port "$RSYS_NS_WORLD" "$SVC" "$port" 2>/dev/null; then
		log "nginx under $arr is not reachable from the world"
		log_file "$d.log"
		NA["wrk_in $arr"]="nginx under $arr did not become reachable from the world"
	fi
}

# Measurements: each prints "ok VALUE" or "failed WHY" on stdout.

# iperf3 against a fresh one-shot server (a client killed mid-test cannot wedge the next run).
m_iperf()
{
	local arr=$1 streams=$2 out=$RSYS_TMP/iperf.json spid i

	ip netns exec "$RSYS_NS_WORLD" timeout -k 5 "$TMO" iperf3 -s -1 -B "$WORLD" -p 5201 >/dev/null 2>&1 &
	spid=$!
	# Not wait_port: a probe connection would be the one-shot server's only client.
	for ((i = 0; i < 50; i++)); do
		ip netns exec "$RSYS_NS_WORLD" ss -Hltn "sport = :5201" | grep -q . && break
		sleep 0.1
	done
	on "$arr" iperf3 -c "$WORLD" -p 5201 -t "$SECS" -P "$streams" -J >"$out" 2>&1
	kill "$spid" 2>/dev/null
	wait "$spid" 2>/dev/null
	"$PYTHON3" - "$out" <<'EOF'
import json, sys
try:
    d = json.load(open(sys.argv[1]))
except ValueError:
    d = {"error": "no JSON from iperf3 (killed by the timeout?)"}
bps = d.get("end", {}).get("sum_received", {}).get("bits_per_second", 0)
if d.get("error") or bps <= 0:
    print("failed", d.get("error") or "0 bits/s")
else:
    print("ok %.3f" % (bps / 1e9))
EOF
}

# The world's sockperf server; it may exit on a client's error: started again, saying so.
SOCKPERF_PID=
sockperf_up()
{
	[ -n "$SOCKPERF_PID" ] && kill -0 "$SOCKPERF_PID" 2>/dev/null && return 0
	if [ -n "$SOCKPERF_PID" ]; then
		log "the world's sockperf server had exited: starting it again"
		log_file "$RSYS_TMP/sockperf.log"
	fi
	rsys_bg "$RSYS_NS_WORLD" sockperf server --tcp -i "$WORLD" -p 11111 >>"$RSYS_TMP/sockperf.log" 2>&1
	SOCKPERF_PID=$!
	sleep 0.5
}

m_rtt()
{
	local out=$RSYS_TMP/rtt.log v

	sockperf_up
	on "$1" sockperf ping-pong --tcp --full-rtt -i "$WORLD" -p 11111 -t "$SECS" >"$out" 2>&1
	v=$(sed -n 's/.*percentile 50.000 = *\([0-9.]*\).*/\1/p' "$out")
	[ -n "$v" ] && echo "ok $v" ||
		echo "failed $(grep -m1 -E 'ERROR|rror' "$out" | tr -d '\033' | head -c 160 || echo 'no percentiles')"
}

m_curl()
{
	local f=$RSYS_TMP/dl/curl.$1 v

	rm -f "$f"
	v=$(on "$1" curl -sS --max-time "$TMO" -o "$f" -w '%{time_total}' "http://$WORLD:8080/big" 2>/dev/null)
	if [ -s "$f" ] && [ "$(sha256sum <"$f" | cut -d' ' -f1)" = "$BIG_SHA" ] && [ -n "$v" ]; then
		echo "ok $v"
	else
		echo "failed wrong or no bytes"
	fi
	rm -f "$f"
}

# wrk_parse FILE: requests/s if wrk got answers and no errors.
wrk_parse()
{
	local n rps

	n=$(sed -n 's/^ *\([0-9]*\) requests in .*/\1/p' "$1")
	rps=$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$1")
	if [ -n "$n" ] && [ "$n" -gt 0 ] && [ -n "$rps" ] && ! grep -q 'Non-2xx' "$1"; then
		echo "ok $rps"
	else
		echo "failed $(grep -m1 -E 'error|Non-2xx|unable' "$1" || echo 'no requests')"
	fi
}

m_wrk_out()
{
	on "$1" wrk -t2 -c16 -d"${SECS}s" "http://$WORLD:8080/1k" >"$RSYS_TMP/wrk.log" 2>&1
	wrk_parse "$RSYS_TMP/wrk.log"
}

m_wrk_in()
{
	timeout -k 5 "$TMO" ip netns exec "$RSYS_NS_WORLD" wrk -t2 -c16 -d"${SECS}s" \
		"http://$SVC:${IN_PORT[$1]}/1k" >"$RSYS_TMP/wrk.log" 2>&1
	wrk_parse "$RSYS_TMP/wrk.log"
}

m_scp()
{
	local f=$RSYS_TMP/dl/scp.$1 t0 t1 d=$RSYS_TMP/ssh

	rm -f "$f"
	t0=$(date +%s.%N)
	on "$1" scp -q -F /dev/null -i "$d/id" -o BatchMode=yes -o StrictHostKeyChecking=no \
		-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -P 2222 \
		"root@$WORLD:$RSYS_TMP/www/big" "$f" >"$RSYS_TMP/scp.log" 2>&1
	t1=$(date +%s.%N)
	if [ -s "$f" ] && [ "$(sha256sum <"$f" | cut -d' ' -f1)" = "$BIG_SHA" ]; then
		echo "ok $(echo "$t1 - $t0" | bc)"
	else
		echo "failed $(head -c 200 "$RSYS_TMP/scp.log" | tr '\n' ' ')"
	fi
	rm -f "$f"
}

# Which cells can't be measured at all, and why (tools missing, arrangement down).
tool_na()
{
	local t=$1

	case $t in
	iperf1|iperf4) command -v iperf3 >/dev/null || echo "iperf3 not installed" ;;
	rtt) command -v sockperf >/dev/null || echo "sockperf not installed" ;;
	curl) command -v nginx >/dev/null || echo "nginx not installed"
	      command -v curl >/dev/null || echo "curl not installed" ;;
	wrk_out|wrk_in) command -v nginx >/dev/null || echo "nginx not installed"
	      command -v wrk >/dev/null || echo "wrk not installed" ;;
	scp) [ -n "$HAVE_SSHD" ] || echo "sshd (openssh-server) not installed or did not start" ;;
	esac
}

measure()
{
	case $1 in
	iperf1) m_iperf "$2" 1 ;;
	iperf4) m_iperf "$2" 4 ;;
	rtt) m_rtt "$2" ;;
	curl) m_curl "$2" ;;
	wrk_out) m_wrk_out "$2" ;;
	wrk_in) m_wrk_in "$2" ;;
	scp) m_scp "$2" ;;
	esac
}

cleanup()
{
	rsys_cleanup
	[ -n "$SSHD_RUNDIR" ] && rmdir /run/sshd 2>/dev/null
	return 0
}

trap cleanup EXIT
trap 'exit 143' TERM INT HUP
rsys_tmp_up rsys-peers || exit 1

log "building the namespaces (world $WORLD, service $SVC)"
world_up || { log "cannot create the network namespaces"; exit 1; }
native_up
rsys_up
floor_up
pasta_up
slirp_up
for t in "${TESTS[@]}"; do
	why=$(tool_na "$t" | head -n 1)
	for a in "${ALL_ARRS[@]}"; do
		if [ -n "${NA[$a]}" ]; then
			NA["$t $a"]=${NA[$a]}
		elif [ -n "$why" ]; then
			NA["$t $a"]=$why
		fi
	done
done
if [[ " ${TESTS[*]} " == *" wrk_in "* ]] && command -v nginx >/dev/null && command -v wrk >/dev/null; then
	for a in "${ALL_ARRS[@]}"; do
		[ -n "${HAVE[$a]}" ] && nginx_in_up "$a"
	done
fi

RESULTS=$RSYS_TMP/results.tsv
: >"$RESULTS"
for ((run = 1; run <= RUNS; run++)); do
	for t in "${TESTS[@]}"; do
		for a in "${ALL_ARRS[@]}"; do
			[ -n "${NA["$t $a"]}" ] && continue
			r=$(measure "$t" "$a")
			log "run $run/$RUNS $t $a: $r"
			printf '%s\t%s\t%s\t%s\n' "$t" "$a" "$run" "${r:-failed nothing}" >>"$RESULTS"
		done
	done
done
NAFILE=$RSYS_TMP/na.tsv
: >"$NAFILE"
for k in "${!NA[@]}"; do
	[[ $k == *" "* ]] && printf '%s\t%s\n' "$k" "${NA[$k]}" >>"$NAFILE"
done

"$PYTHON3" - "$RESULTS" "$NAFILE" "$JSON" "$RUNS" "$QUICK" "${PNG:-}" "${TESTS[*]}" "${ALL_ARRS[*]}" "$PIN" <<'EOF'
import json, os, statistics, subprocess, sys

res, nafile, as_json, runs, quick, png, tests, arrs, pin = sys.argv[1:10]
tests, arrs = tests.split(), arrs.split()
TITLE = {
    "iperf1": ("iperf3 1 stream", "Gbit/s", "higher"),
    "iperf4": ("iperf3 -P 4", "Gbit/s", "higher"),
    "rtt": ("TCP round trip (sockperf ping-pong), median", "us", "lower"),
    "curl": ("curl big file", "s", "lower"),
    "wrk_out": ("wrk -c16 against nginx 1 KiB", "req/s", "higher"),
    "wrk_in": ("nginx under the arrangement, wrk from outside", "req/s", "higher"),
    "scp": ("scp big file", "s", "lower"),
}
ANAME = {"native": "native veth", "direct": "rsys direct", "rsys": "rsys", "floor": "trap floor",
         "pasta": "pasta", "slirp": "slirp4netns"}
vals, fails, na = {}, {}, {}
for line in open(res):
    t, a, _, r = line.rstrip("\n").split("\t", 3)
    st, _, v = r.partition(" ")
    if st == "ok":
        vals.setdefault((t, a), []).append(float(v))
    else:
        fails.setdefault((t, a), []).append(v)
for line in open(nafile):
    k, why = line.rstrip("\n").split("\t", 1)
    t, a = k.split(" ")
    na[(t, a)] = why

out = {"runs": int(runs), "quick": quick == "1", "pin": int(pin) if pin else None,
       "arrangements": arrs, "tests": []}
for t in tests:
    title, unit, better = TITLE[t]
    row = {"test": t, "title": title, "unit": unit, "better": better, "cells": {}}
    for a in arrs:
        c = {}
        if (t, a) in na:
            c = {"status": "n/a", "reason": na[(t, a)]}
        elif (t, a) in vals:
            v = vals[(t, a)]
            c = {"status": "ok", "median": statistics.median(v), "min": min(v), "max": max(v),
                 "runs": v, "failed_runs": len(fails.get((t, a), []))}
        else:
            why = fails.get((t, a), ["not run"])
            c = {"status": "failed", "reason": why[0][:200], "failed_runs": len(why)}
        row["cells"][a] = c
    nat = row["cells"].get("native", {})
    for a, c in row["cells"].items():
        if c["status"] == "ok" and nat.get("status") == "ok" and nat["median"] > 0:
            c["ratio"] = c["median"] / nat["median"]
    out["tests"].append(row)

def num(x):
    return "%.3g" % x if x < 100 else "%.0f" % x if x < 10000 else "%.1fk" % (x / 1000)

notes = []
def cell(c):
    if c["status"] == "ok":
        s = num(c["median"])
        if c["min"] != c["max"]:
            s += " [%s-%s]" % (num(c["min"]), num(c["max"]))
        if "ratio" in c:
            s += " x%.2f" % c["ratio"]
        if c["failed_runs"]:
            s += " (%d failed)" % c["failed_runs"]
        return s
    if c["reason"] not in notes:
        notes.append(c["reason"])
    return "%s (%d)" % (c["status"], notes.index(c["reason"]) + 1)

# The chart has a bar group per test and a bar per arrangement that has a ratio anywhere.
charted = [a for a in arrs if any("ratio" in r["cells"][a] for r in out["tests"])]
if png and not charted:
    sys.stderr.write("peers: no ratio to chart\n")
    png = ""
if png:
    arrs_png = charted
    dat = png + ".dat"
    with open(dat, "w") as f:
        f.write("test " + " ".join('"%s"' % ANAME[a] for a in arrs_png) + "\n")
        for row in out["tests"]:
            f.write('"%s" ' % row["title"].replace('"', "'"))
            f.write(" ".join("%.4f" % row["cells"][a]["ratio"] if "ratio" in row["cells"][a] else "NaN"
                             for a in arrs_png) + "\n")
    gp = """set terminal pngcairo size 1200,600 noenhanced
set output '%s'
set title 'rsys and peers: median of %s run(s), relative to native veth (higher is better for rates, lower for times)'
set style data histogram
set style histogram cluster gap 1
set style fill solid border -1
set boxwidth 0.9
set logscale y
set yrange [0.01:*]
set ylabel 'value / native'
set xtics rotate by -20 scale 0 font ',9'
set grid ytics
set key outside right top
plot for [i=2:%d] '%s' using i:xtic(1) title columnheader(i)
""" % (png, runs, len(arrs_png) + 1, dat)
    r = subprocess.run(["gnuplot"], input=gp, text=True, capture_output=True)
    os.unlink(dat)
    out["png"] = png if r.returncode == 0 else None
    if r.returncode:
        sys.stderr.write("peers: gnuplot failed: " + r.stderr)

if as_json == "1":
    json.dump(out, sys.stdout, indent=1)
    print()
    sys.exit(0)

hdr = ["test"] + [ANAME[a] for a in arrs]
rows = [["%s, %s" % (r["title"], r["unit"])] + [cell(r["cells"][a]) for a in arrs] for r in out["tests"]]
w = [max(len(x[i]) for x in [hdr] + rows) for i in range(len(hdr))]
print("medians of %s run(s)%s%s, [min-max], xRATIO to native veth" % (runs, " (--quick sizes)" if quick == "1" else "",
      ", each arrangement on CPU %s" % pin if pin else ""))
for r in [hdr] + rows:
    print(" | ".join(x.ljust(w[i]) for i, x in enumerate(r)).rstrip())
for i, n in enumerate(notes):
    print("(%d) %s" % (i + 1, n))
if png and out.get("png"):
    print("chart: " + png)
EOF
