#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Attacks on direct mode, with the delegate's egress guard and without it (and the same ones on remote mode): denied destinations, racing threads (TOCTOU), fd swaps, SCM_RIGHTS to an untrusted process, options; each with a native control where it works.
#
# Usage: selftests/attack_direct_test.sh
#
# The attacker (selftests/direct_attack.c) runs trusted under "rsys-load run
# --mode direct" (a delegate with its egress guard, where sendto() with an
# address is not trapped, and "direct-trap": one started --no-egress-guard)
# and "--mode remote" and must not reach its goal; natively, as
# root in the service netns where nothing stops it, the same attack must work,
# so that no case passes because the attack was broken. The race cases print
# how often each racing value got through natively.

. "$(dirname "$0")/lib.sh"

ATTACKER=$RSYS_O/selftests/direct_attack
ALLOWED_TCP=7003	# the policy's egress: world's query port (TCP) ...
ALLOWED_UDP=9		# ... and UDP port 9 (nobody answers there)
DENIED=7		# world's TCP and UDP echo port

rsys_require timeout
[ -x "$ATTACKER" ] || ksft_skip "$ATTACKER not built (make -C selftests)"
rsys_have_bins || ksft_skip "$RSYS_MISSING"

rsys_write_policy()
{
	cat >"$1" <<EOF
# attack_direct_test policy (generated)
trusted *
remote inet inet6
delegate $RSYS_DELEGATE
allow tcp $RSYS_WORLD_IP/32 $ALLOWED_TCP
allow udp $RSYS_WORLD_IP/32 $ALLOWED_UDP
allow udp 10.20.0.0/17 1000-2000
allow udplite 10.40.128.0/23 *
allow any 172.16.0.0/12 53
allow udp 2001:db8:1:2::/64 *
allow udp 2001:db8:1:3:8000::/65 5000-5001
allow any 2001:db8:ff::1/128 9
allow icmp $RSYS_SERVICE_IP/32
allow icmp 10.60.0.0/14
allow any 10.80.0.0/16 *
allow icmp 2001:db8:5::/48
allow bind tcp 0.0.0.0/0 *
allow bind udp 0.0.0.0/0 *
EOF
}

# The egress rules above at their edges (prefix bits, port ranges, protocols, v4-mapped; an
# echo matches "allow icmp" or "allow any CIDR *" by address alone): DEST=VERDICT as the policy
# says, for selftests/egress_probe.
PROBES="udp:$RSYS_WORLD_IP:$ALLOWED_UDP=allowed udp:$RSYS_WORLD_IP:$DENIED=denied
udp:10.20.0.1:1000=allowed udp:10.20.127.255:2000=allowed udp:10.20.128.0:1500=denied
udp:10.20.0.1:999=denied udp:10.20.0.1:2001=denied udplite:10.20.0.1:1500=denied
udplite:10.40.128.5:1=allowed udplite:10.40.129.255:65535=allowed udplite:10.40.130.0:1=denied
udplite:10.40.127.255:1=denied udp:10.40.128.5:1=denied
udp:172.16.0.1:53=allowed udplite:172.31.255.255:53=allowed udp:172.32.0.0:53=denied
udp:172.15.255.255:53=denied udp:172.16.0.1:54=denied
udp:[2001:db8:1:2::1]:1=allowed udp:[2001:db8:1:2:ffff:ffff:ffff:ffff]:65535=allowed
udp:[2001:db8:1:3::1]:1=denied udplite:[2001:db8:1:2::1]:1=denied
udp:[2001:db8:1:3:8000::1]:5000=allowed udp:[2001:db8:1:3:ffff::]:5001=allowed
udp:[2001:db8:1:3:7fff:ffff:ffff:ffff]:5000=denied udp:[2001:db8:1:3:8000::1]:5002=denied
udplite:[2001:db8:ff::1]:9=allowed udp:[2001:db8:ff::2]:9=denied udp:[2001:db8:ff::1]:8=denied
udp:[::ffff:$RSYS_WORLD_IP]:$ALLOWED_UDP=allowed udp:[::ffff:$RSYS_WORLD_IP]:$DENIED=denied
udp:[::ffff:10.20.0.1]:1000=allowed udp:[::ffff:10.20.128.0]:1000=denied
icmp:10.60.0.1=allowed icmp:10.63.255.255=allowed icmp:10.64.0.0=denied icmp:10.59.255.255=denied
icmp:10.80.3.4=allowed icmp:10.81.0.1=denied icmp:172.16.0.1=denied icmp:10.20.0.1=denied
icmp:[2001:db8:5::1]=allowed icmp:[2001:db8:5:ffff:ffff:ffff:ffff:ffff]=allowed
icmp:[2001:db8:6::]=denied icmp:[2001:db8:4:ffff::1]=denied icmp:[2001:db8:ff::1]=denied"

rsys_topology_up
# Ping sockets, for root (the delegate, and the native controls) in the service netns.
ip netns exec "$RSYS_NS_SERVICE" sysctl -qw net.ipv4.ping_group_range="0 0" ||
	ksft_skip "cannot allow ping sockets in the service netns"
# Routes for the probes' destinations (below): the guard judges an echo once it is routed,
# and an echo no route takes fails with ENETUNREACH, refused or not. They lead to the world
# netns, which forwards nothing.
dev=$(ip -n "$RSYS_NS_SERVICE" -o route get "$RSYS_WORLD_IP" | sed -n 's/.* dev \([^ ]*\).*/\1/p')
{ [ -n "$dev" ] && ip -n "$RSYS_NS_SERVICE" route add 10.0.0.0/8 dev "$dev" &&
  ip -n "$RSYS_NS_SERVICE" route add 172.16.0.0/12 dev "$dev"; } ||
	ksft_skip "cannot route the probes' destinations in the service netns"
if ! { ip -n "$RSYS_NS_SERVICE" -6 addr add 2001:db8:9::2/64 dev "$dev" nodad &&
       ip -n "$RSYS_NS_SERVICE" -6 route add 2001:db8::/32 dev "$dev"; }; then
	echo "# no IPv6 route in the service netns: the IPv6 echoes are left out of the edges"
	PROBES=$(for p in $PROBES; do [[ "$p" == icmp:\[* ]] || echo "$p"; done)
fi
rsys_delegate_start
TRAP_DELEGATE=unix:$RSYS_SOCKDIR/trap.sock
rsys_bg "$RSYS_NS_SERVICE" "$RSYS_DELEGATE_BIN" --listen "$TRAP_DELEGATE" --policy "$RSYS_POLICY" \
	--no-egress-guard 2>"$RSYS_TMP/trap.log"
rsys_wait_file "$RSYS_SOCKDIR/trap.sock" || ksft_skip "the second rsys-delegate did not start"
timeout 60 "$RSYS_LOAD" run -v --mode direct --policy "$RSYS_POLICY" --delegate "$RSYS_DELEGATE" \
	-- true 2>"$RSYS_TMP/v.err"
timeout 60 "$RSYS_LOAD" run -v --mode direct --policy "$RSYS_POLICY" --delegate "$TRAP_DELEGATE" \
	-- true 2>"$RSYS_TMP/vt.err"
grep -q "mode: direct (no egress guard" "$RSYS_TMP/v.err" && {
	tap_diag_file "$RSYS_TMP/delegate.log"
	ksft_skip "rsys-delegate has no egress guard here (cgroup BPF; its log says why)"
}

MODES="direct direct-trap remote"
CASES=18
tap_plan $((CASES * 3 + 10))

# in_mode MODE CMD...: the attacker under rsys-load run --mode MODE (direct-trap: direct,
# with the delegate that has no egress guard).
in_mode()
{
	local mode=$1

	shift
	in_mode_prog "$mode" "$ATTACKER" "$@"
}

# in_mode_prog MODE PROG ARGS...: PROG (not the attacker) under rsys-load run as in_mode.
in_mode_prog()
{
	local mode=$1 dlg=$RSYS_DELEGATE

	shift
	if [ "$mode" = direct-trap ]; then
		mode=direct
		dlg=$TRAP_DELEGATE
	fi
	timeout --kill-after=5 60 "$RSYS_LOAD" run --mode "$mode" --policy "$RSYS_POLICY" \
		--delegate "$dlg" -- "$@"
}

# both MODE OUT NOUT ARGS...: the attacker under rsys-load run as in_mode into OUT, and
# natively into NOUT; their exit statuses in the caller's rc and nrc.
both()
{
	local mode=$1 out=$2 nout=$3

	shift 3
	in_mode "$mode" "$@" >"$out" 2>&1
	rc=$?
	rsys_native timeout 30 "$ATTACKER" "$@" >"$nout" 2>&1
	nrc=$?
}

# attack MODE NAME ARGS...: refused under rsys (exit 1), reached natively (exit 0).
attack()
{
	local mode=$1 name=$2 out=$RSYS_TMP/a.out nout=$RSYS_TMP/n.out rc nrc

	shift 2
	both "$mode" "$out" "$nout" "$@"
	if [ $rc -eq 1 ] && [ $nrc -eq 0 ]; then
		tap_ok "$mode: $name: refused ($(grep -v '^rsys-load' "$out" | tail -n1)); natively: $(tail -n1 "$nout")"
	else
		tap_diag_file "$out"
		tap_diag_file "$nout"
		tap_not_ok "$mode: $name: rsys exit $rc (want 1), native exit $nrc (want 0)"
	fi
}

# receiver PATH: an untrusted process (host netns, not under rsys) taking fds on PATH.
receiver()
{
	rm -f "$1"
	"$ATTACKER" receive "$RSYS_WORLD_IP" "$DENIED" "$1" >"$1.out" 2>&1 &
	RCV=$!
	RSYS_PIDS+=("$RCV")
	rsys_wait_file "$1"
}

# pass MODE NAME CMD: the program passes its UDP socket to the receiver; it must not reach.
pass()
{
	local mode=$1 name=$2 cmd=$3 sock=$RSYS_TMP/recv.sock rc nrc

	receiver "$sock"
	in_mode "$mode" "$cmd" "$RSYS_WORLD_IP" "$DENIED" "$sock" >"$RSYS_TMP/p.out" 2>&1
	wait "$RCV"
	rc=$?
	cp "$sock.out" "$RSYS_TMP/r.out"
	receiver "$sock"
	rsys_native timeout 30 "$ATTACKER" "$cmd" "$RSYS_WORLD_IP" "$DENIED" "$sock" >"$RSYS_TMP/pn.out" 2>&1
	wait "$RCV"
	nrc=$?
	if [ $rc -eq 1 ] && [ $nrc -eq 0 ]; then
		tap_ok "$mode: $name: the receiver got no usable socket ($(tail -n1 "$RSYS_TMP/p.out"); $(tail -n1 "$RSYS_TMP/r.out")); natively: $(tail -n1 "$sock.out")"
	else
		tap_diag_file "$RSYS_TMP/p.out"
		tap_diag_file "$RSYS_TMP/r.out"
		tap_diag_file "$sock.out"
		tap_not_ok "$mode: $name: receiver exit $rc under rsys (want 1), $nrc natively (want 0)"
	fi
}

# works MODE NAME CMD: not an attack; the program's transcript under rsys is the native one.
works()
{
	local mode=$1 name=$2 out=$RSYS_TMP/w.out nout=$RSYS_TMP/wn.out rc nrc

	shift 2
	both "$mode" "$out" "$nout" "$@"
	if [ $rc -eq 0 ] && [ $nrc -eq 0 ] && diff -q <(grep -v '^rsys-load' "$out") "$nout" >/dev/null; then
		tap_ok "$mode: $name: as natively ($(tr '\n' ';' <"$nout"))"
	else
		tap_diag_file "$out"
		tap_diag_file "$nout"
		tap_not_ok "$mode: $name: rsys exit $rc, native exit $nrc (want 0 and the same output)"
	fi
}

W=$RSYS_WORLD_IP
for mode in $MODES; do
	attack "$mode" "TCP connect to a denied destination" connect "$W" "$DENIED"
	attack "$mode" "UDP sendto a denied destination" udp-sendto "$W" "$DENIED"
	attack "$mode" "ICMP echo from a ping socket to a denied destination" icmp-sendto "$W" "$DENIED"
	attack "$mode" "TCP fast open (sendto MSG_FASTOPEN) to a denied destination" tfo-sendto "$W" "$DENIED"
	attack "$mode" "TCP_FASTOPEN_CONNECT + connect to a denied destination" tfo-connect "$W" "$DENIED"
	attack "$mode" "setsockopt SO_BINDTODEVICE" setsockopt "$W" "$DENIED" bindtodevice
	attack "$mode" "setsockopt IP_TRANSPARENT" setsockopt "$W" "$DENIED" transparent
	attack "$mode" "setsockopt SO_MARK" setsockopt "$W" "$DENIED" mark
	attack "$mode" "setsockopt IP_OPTIONS (source route)" setsockopt "$W" "$DENIED" ipoptions
	attack "$mode" "TOCTOU: a thread rewrites connect's address" race-connect "$W" "$DENIED" "$ALLOWED_TCP"
	attack "$mode" "TOCTOU: a thread rewrites sendto's address" race-sendto "$W" "$DENIED" "$ALLOWED_UDP"
	attack "$mode" "TOCTOU: a thread rewrites sendmsg's msg_name" race-sendmsg "$W" "$DENIED" "$ALLOWED_UDP"
	attack "$mode" "fd swap: a thread dup2()s a socket onto the fd being connected" swap-connect "$W" "$DENIED"
	attack "$mode" "fd swap: a thread dup2()s a UDP socket onto a TCP one that sendto()s with an address" \
		swap-sendto "$W" "$DENIED" "$ALLOWED_TCP"
	pass "$mode" "SCM_RIGHTS of a socket to an untrusted process" pass-fd
	pass "$mode" "TOCTOU: a thread puts the socket into sendmsg's SCM_RIGHTS" race-cmsg-fd
	works "$mode" "a threaded program binds, listens on, connects and sends to unix sockets (by path, abstract) and binds a netlink one and asks it for a dump by sendmsg" \
		unix-threads "$W" "$DENIED"
	attack "$mode" "a threaded program sets SO_MARK (CAP_NET_ADMIN) on a unix socket" local-opt "$W" "$DENIED"
done
# CASES above, per mode; the direct-only cases follow.

attack direct "clone(CLONE_FILES) without CLONE_THREAD (would let another process swap fds)" \
	clone-files "$W" "$DENIED"
pass direct "TOCTOU: a thread raises sendmsg's msg_controllen over an SCM_RIGHTS" race-cmsg-len

# steal HOLDER...: HOLDER runs "direct_attack hold"; a host process of uid 65534 (nobody)
# then takes its socket with pidfd_getfd; prints the taker's exit status (0: it reached the
# denied destination).
steal()
{
	local pid i

	"$@" "$ATTACKER" hold "$W" "$DENIED" 5 >"$RSYS_TMP/hold.out" 2>&1 &
	for ((i = 0; i < 50; i++)); do
		pid=$(pgrep -f "^$ATTACKER hold $W $DENIED 5\$" | head -n1)
		[ -n "$pid" ] && grep -q holding "$RSYS_TMP/hold.out" && break
		sleep 0.1
	done
	"$ATTACKER" steal "$W" "$DENIED" "${pid:-0}" "$(grep -o 'fd [0-9]*' "$RSYS_TMP/hold.out" |
		cut -d' ' -f2)" 65534 >>"$RSYS_TMP/steal.out" 2>&1
	echo $?
	wait
}
: >"$RSYS_TMP/steal.out"
rc=$(steal "$RSYS_LOAD" run --mode direct --policy "$RSYS_POLICY" --delegate "$RSYS_DELEGATE" --)
nrc=$(steal ip netns exec "$RSYS_NS_SERVICE" setpriv --reuid=65534 --regid=65534 --clear-groups)
if [ "$rc" = 1 ] && [ "$nrc" = 0 ]; then
	tap_ok "direct: nobody on the host cannot pidfd_getfd the sandboxed program's socket (the sandbox's user namespace); a native program of uid 65534's it can: $(tail -n1 "$RSYS_TMP/steal.out")"
else
	tap_diag_file "$RSYS_TMP/steal.out"
	tap_diag_file "$RSYS_TMP/hold.out"
	tap_not_ok "direct: pidfd_getfd by nobody: exit $rc under rsys (want 1), $nrc natively as uid 65534 (want 0)"
fi

if grep -q "mode: direct (the delegate's egress guard" "$RSYS_TMP/v.err" &&
   grep -q "mode: direct (no egress guard" "$RSYS_TMP/vt.err"; then
	tap_ok "rsys-load run -v --mode direct says 'mode: direct' and whether the delegate's egress guard is on"
else
	tap_diag_file "$RSYS_TMP/v.err"
	tap_diag_file "$RSYS_TMP/vt.err"
	tap_not_ok "rsys-load run -v --mode direct does not say 'mode: direct' with the egress guard's state"
fi

# Direct mode is the default where it can be: a unix: delegate and the sandbox; without the
# sandbox the default is remote mode, and --mode remote asks for it.
timeout 60 "$RSYS_LOAD" run -v --policy "$RSYS_POLICY" --delegate "$RSYS_DELEGATE" \
	-- true 2>"$RSYS_TMP/d0.err"
timeout 60 "$RSYS_LOAD" run -v --no-sandbox --policy "$RSYS_POLICY" --delegate "$RSYS_DELEGATE" \
	-- true 2>"$RSYS_TMP/d1.err"
timeout 60 "$RSYS_LOAD" run -v --mode remote --policy "$RSYS_POLICY" --delegate "$RSYS_DELEGATE" \
	-- true 2>"$RSYS_TMP/d2.err"
if grep -q "mode: direct (the delegate's egress guard" "$RSYS_TMP/d0.err" &&
   grep -q "direct mode (the default) needs the sandbox" "$RSYS_TMP/d1.err" &&
   grep -q "mode: remote" "$RSYS_TMP/d1.err" && grep -q "mode: remote" "$RSYS_TMP/d2.err" &&
   ! grep -q "needs" "$RSYS_TMP/d2.err"; then
	tap_ok "without --mode: direct with a unix: delegate and the sandbox, remote with --no-sandbox (-v says why); --mode remote is remote"
else
	tap_diag_file "$RSYS_TMP/d0.err"
	tap_diag_file "$RSYS_TMP/d1.err"
	tap_diag_file "$RSYS_TMP/d2.err"
	tap_not_ok "the default mode: not direct with a unix: delegate and the sandbox, or not remote otherwise"
fi

# What "allow icmp" allows works in every mode (the guard's egress_skb judges it in direct
# mode): an echo to the service address gets its reply, as natively.
bad=
for mode in $MODES; do
	in_mode "$mode" icmp-sendto "$RSYS_SERVICE_IP" 0 >"$RSYS_TMP/icmp.out" 2>&1 ||
		{ bad="$bad $mode"; tap_diag_file "$RSYS_TMP/icmp.out"; }
done
if [ -z "$bad" ]; then
	tap_ok "an ICMP echo from a ping socket to a destination of 'allow icmp' is answered in modes $MODES"
else
	tap_not_ok "an ICMP echo to an 'allow icmp' destination got no answer in:$bad"
fi

# The positive control of the egress guard: its programs detached from the delegate's cgroup
# (the monitor still trusts them, so sendto() with an address is not trapped), the denied
# datagram goes out; attached again, it is refused.
guard_cg()
{
	local mnt

	mnt=$(awk '{ for (i = 7; i < NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") print $5; break } }' \
		/proc/self/mountinfo | head -n1)
	[ -n "$mnt" ] && echo "$mnt$(sed -n 's/^0:://p' "/proc/$RSYS_DELEGATE_PID/cgroup")"
}
CG=$(guard_cg)
# guard_prog PROG: the id of the guard's program PROG in the delegate's cgroup, or nothing.
guard_prog()
{
	[ -n "$CG" ] && bpftool cgroup show "$CG" 2>/dev/null | awk -v p="$1" '$NF == p { print $1 }'
}
# guard_control PROG ATTACH_TYPE CMD WHAT: PROG detached, CMD reaches the denied destination;
# attached again, it is refused.
guard_control()
{
	local prog=$1 type=$2 cmd=$3 what=$4 id rc0 rc1

	id=$(guard_prog "$prog")
	if [ -z "$id" ]; then
		tap_skip "the egress guard's control: no cgroup2 mount or no $prog at '$CG'"
		return
	fi
	bpftool cgroup detach "$CG" "$type" id "$id"
	in_mode direct "$cmd" "$W" "$DENIED" >"$RSYS_TMP/g0.out" 2>&1
	rc0=$?
	bpftool cgroup attach "$CG" "$type" id "$id" multi
	in_mode direct "$cmd" "$W" "$DENIED" >"$RSYS_TMP/g1.out" 2>&1
	rc1=$?
	if [ $rc0 -eq 0 ] && [ $rc1 -eq 1 ]; then
		tap_ok "direct: $prog is what refuses: detached, $what reached the denied destination ($(tail -n1 "$RSYS_TMP/g0.out")); attached again: $(tail -n1 "$RSYS_TMP/g1.out")"
	else
		tap_diag_file "$RSYS_TMP/g0.out"
		tap_diag_file "$RSYS_TMP/g1.out"
		tap_not_ok "direct: $prog control: exit $rc0 detached (want 0), $rc1 attached (want 1)"
	fi
}
guard_control egress_sendmsg4 sendmsg4 udp-sendto "the datagram"
# ping sockets' echoes, which egress_skb judges as they leave
guard_control egress_skb egress icmp-sendto "the echo"

# guard_denied: the guard's count of the sends it refused ("denied" in egress_skb's .bss).
guard_denied()
{
	local prog map

	prog=$(guard_prog egress_skb)
	[ -n "$prog" ] || return 1
	for map in $(bpftool prog show id "$prog" | sed -n 's/.*map_ids \([0-9,]*\).*/\1/p' | tr , ' '); do
		bpftool map dump id "$map" 2>/dev/null | sed -n 's/.*"denied": \([0-9]*\).*/\1/p'
	done | grep . || return 1
}

# egress_probe_in MODE DEST...: egress_probe's lines under MODE. An IPv6 echo the guard drops
# leaves its send without an error (Linux's ICMPv6 sends do not report what happens as the
# packet leaves: icmpv6_push_pending_frames), so in direct mode each such echo is probed on
# its own and the guard's count says whether it was refused.
egress_probe_in()
{
	local mode=$1 d n0 n1

	shift
	# shellcheck disable=SC2046 # one word per destination
	in_mode_prog "$mode" "$PROBE" $(for d in "$@"; do [[ "$mode:$d" == direct:icmp:\[* ]] || echo "$d"; done)
	[ "$mode" = direct ] || return 0
	for d in "$@"; do
		[[ "$d" == icmp:\[* ]] || continue
		n0=$(guard_denied) && in_mode_prog "$mode" "$PROBE" "$d" >/dev/null && n1=$(guard_denied) ||
			{ echo "$d no-count"; continue; }
		echo "$d $([ "$n1" -gt "$n0" ] && echo denied || echo allowed)"
	done
}

# The guard's programs (direct), the delegate's own check (direct-trap) and both (remote)
# judge the same edges as the policy says; natively every datagram goes.
PROBE=$RSYS_O/selftests/egress_probe
want=$(for p in $PROBES; do echo "${p%=*} ${p##*=}"; done)
dests=$(for p in $PROBES; do echo "${p%=*}"; done)
bad=
for mode in $MODES; do
	# shellcheck disable=SC2086 # one word per destination
	got=$(egress_probe_in "$mode" $dests 2>"$RSYS_TMP/probe.err")
	if [ "$got" != "$want" ]; then
		bad="$bad $mode"
		diff <(echo "$want") <(echo "$got") | sed 's/^/# /'
		tap_diag_file "$RSYS_TMP/probe.err"
	fi
done
# shellcheck disable=SC2086
native=$(rsys_native "$PROBE" $dests)
nden=$(echo "$want" | grep -c ' denied$')
if [ -z "$bad" ] && [ "$nden" -gt 0 ] && ! echo "$native" | grep -q ' denied$' &&
   [ "$(echo "$native" | wc -l)" = "$(echo "$want" | wc -l)" ]; then
	tap_ok "egress rules at their edges (prefix bits, ports, protocols, v4-mapped): $(echo "$want" | wc -l) datagrams and echoes, $nden refused alike by the egress guard, the delegate's check and remote mode; natively none"
else
	echo "$native" | sed 's/^/# native: /'
	tap_not_ok "egress rules at their edges: modes that disagree with the policy:${bad:- none}; natively refused: $(echo "$native" | grep -c ' denied$')"
fi

# Without the sandbox root holds capabilities over the service netns: direct mode is refused.
timeout 60 "$RSYS_LOAD" run -v --no-sandbox --mode direct --policy "$RSYS_POLICY" \
	--delegate "$RSYS_DELEGATE" -- "$ATTACKER" setsockopt "$W" "$DENIED" mark \
	>"$RSYS_TMP/ns.out" 2>&1
rc=$?
rsys_native timeout 30 "$ATTACKER" setsockopt "$W" "$DENIED" mark >"$RSYS_TMP/nsn.out" 2>&1
nrc=$?
if [ $rc -eq 1 ] && [ $nrc -eq 0 ] && grep -q "using remote mode" "$RSYS_TMP/ns.out" &&
   grep -q "mode: remote" "$RSYS_TMP/ns.out"; then
	tap_ok "--no-sandbox --mode direct falls back to remote mode and SO_MARK is refused (natively as root it works)"
else
	tap_diag_file "$RSYS_TMP/ns.out"
	tap_not_ok "--no-sandbox --mode direct: exit $rc (want 1), native $nrc (want 0), fallback message missing?"
fi
tap_finish
