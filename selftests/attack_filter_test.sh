#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Attacks on the compute domain's filter (socket families, namespaces, 64-bit arguments, other ABIs) and on policy input, each against the real monitor and delegate, each with a control showing it works where the defence is off.
#
# Usage: selftests/attack_filter_test.sh
#
# Every case runs the attacker (selftests/attacker.c) trusted under "rsys-load
# run" and asserts that its goal did not happen; its control runs the same
# attacker natively as root (where nothing stops it) and asserts that it
# works, so that no case passes because the attack was broken.

. "$(dirname "$0")/lib.sh"

ATTACKER=$RSYS_O/selftests/attacker
ALLOWED_PORT=7003	# the policy's only egress: world's query port
FORBIDDEN_PORT=7	# world's echo port, which the policy forbids

rsys_require timeout mkfifo unshare
[ -x "$ATTACKER" ] || ksft_skip "$ATTACKER not built (make -C selftests)"
rsys_have_bins || ksft_skip "$RSYS_MISSING"

# The delegate's policy: egress to one port of the world only.
rsys_write_policy()
{
	cat >"$1" <<EOF
# attack_filter_test policy (generated)
trusted *
remote inet inet6
delegate $RSYS_DELEGATE
allow tcp $RSYS_WORLD_IP/32 $ALLOWED_PORT
EOF
}

rsys_topology_up
rsys_delegate_start

# attack NAME RSYS_RUN_ARGS -- ATTACKER_ARGS: the attacker under rsys must exit 1
# with its output matching $EXPECT; natively ($NATIVE_NS, default the service
# netns; "host" for the root netns) it must exit 0.
# A case with SKIP_UNLESS_NATIVE set is a skip where the kernel itself refuses it.
EXPECT=
NATIVE_NS=$RSYS_NS_SERVICE
SKIP_UNLESS_NATIVE=
attack()
{
	local name=$1 out=$RSYS_TMP/attack.out nout=$RSYS_TMP/native.out rc nrc
	local -a runargs=()

	shift
	while [ "$1" != -- ]; do
		runargs+=("$1")
		shift
	done
	shift
	RSYS_RUN_TIMEOUT=20 timeout 30 "$RSYS_LOAD" run $RSYS_MODE_OPT --policy "$RSYS_POLICY" \
		--delegate "$RSYS_DELEGATE" "${runargs[@]}" -- "$ATTACKER" "$@" >"$out" 2>&1
	rc=$?
	if [ "$NATIVE_NS" = host ]; then
		timeout 20 "$ATTACKER" "$@" >"$nout" 2>&1
	else
		timeout 20 ip netns exec "$NATIVE_NS" "$ATTACKER" "$@" >"$nout" 2>&1
	fi
	nrc=$?
	if [ $nrc -ne 0 ] && [ -n "$SKIP_UNLESS_NATIVE" ]; then
		tap_skip "$name: not available natively on this kernel ($(tail -n1 "$nout"))"
		return
	fi
	if [ $rc -eq 1 ] && grep -q -- "$EXPECT" "$out" && [ $nrc -eq 0 ]; then
		tap_ok "$name: refused under rsys ($(tail -n1 "$out")), works natively"
		return
	fi
	tap_diag_file "$out"
	tap_diag_file "$nout"
	tap_not_ok "$name: under rsys exit $rc (want 1, '$EXPECT'), natively exit $nrc (want 0)"
}

# works NAME ATTACKER_ARGS: a sanity check, both under rsys and natively.
works()
{
	local name=$1 out=$RSYS_TMP/works.out rc

	shift
	RSYS_RUN_TIMEOUT=20 rsys_run "$ATTACKER" "$@" >"$out" 2>&1
	rc=$?
	if [ $rc -eq 0 ] && timeout 20 ip netns exec "$RSYS_NS_SERVICE" "$ATTACKER" "$@" >/dev/null 2>&1; then
		tap_ok "$name"
	else
		tap_diag_file "$out"
		tap_not_ok "$name: under rsys exit $rc"
	fi
}

# bad_policy NAME FILE EXPECT: rsys-load run and rsys-delegate both refuse FILE
# promptly (exit 1 within 5 s) with a message matching EXPECT.
bad_policy()
{
	local name=$1 file=$2 expect=$3 out=$RSYS_TMP/policy.out rc drc

	timeout 5 "$RSYS_LOAD" run $RSYS_MODE_OPT --policy "$file" --delegate "$RSYS_DELEGATE" -- \
		"$ATTACKER" noop >"$out" 2>&1
	rc=$?
	timeout 5 "$RSYS_DELEGATE_BIN" --listen "unix:$RSYS_SOCKDIR/bad.sock" --policy "$file" \
		>>"$out" 2>&1
	drc=$?
	if [ $rc -eq 1 ] && [ $drc -ne 0 ] && [ $drc -ne 124 ] &&
	   [ "$(grep -c -- "$expect" "$out")" -ge 2 ]; then
		tap_ok "$name: both tools refuse it ($(head -n1 "$out"))"
	else
		tap_diag_file "$out"
		tap_not_ok "$name: rsys-load exit $rc, rsys-delegate exit $drc (want prompt errors '$expect')"
	fi
}

# good_policy NAME FILE: the control of a bad_policy case, rsys-load runs with FILE.
good_policy()
{
	local name=$1 file=$2 out=$RSYS_TMP/policy.out

	if timeout 20 "$RSYS_LOAD" run $RSYS_MODE_OPT --policy "$file" --delegate "$RSYS_DELEGATE" -- \
		"$ATTACKER" noop >"$out" 2>&1; then
		tap_ok "$name"
	else
		tap_diag_file "$out"
		tap_not_ok "$name"
	fi
}

FORBIDDEN="$RSYS_WORLD_IP $FORBIDDEN_PORT"
tap_plan 36

# The harness itself: allowed egress works, threads (libc's clone3 fallback) work.
works "sanity: allowed connect through the delegate" connect "$RSYS_WORLD_IP" "$ALLOWED_PORT"
works "sanity: pthread_create falls back from clone3" thread

# A socket whose family has garbage above bit 31 is AF_INET to the kernel. With
# the compute domain already in the service netns (as after a netns escape),
# only the monitor's interception keeps the delegate's egress rules in force.
EXPECT="connect: EACCES\|connect: EPERM\|connect: ECONNREFUSED"
attack "64-bit family socket() is still the delegate's" --netns "$RSYS_NS_SERVICE" -- \
	--hi connect $FORBIDDEN
EXPECT="socket: EAFNOSUPPORT"
attack "64-bit family AF_PACKET socket()" -- --hi socket packet raw 0x300

# fcntl's command is an unsigned int: F_SETFL with bit 32 set must reach the
# remote socket, else the program and the delegate disagree on O_NONBLOCK.
works "64-bit fcntl F_SETFL sets O_NONBLOCK on the remote socket" \
	--hi nonblock "$RSYS_WORLD_IP" "$ALLOWED_PORT"

# Into the service domain's netns, then an ordinary socket to a forbidden port.
# The sandbox hides both paths (attack_sandbox_test); here the filter alone must
# stop a root program that can name them, so these run without the sandbox.
EXPECT="setns: EPERM"
NATIVE_NS=host
attack "setns via /run/netns + forbidden connect (filter alone)" --no-sandbox -- \
	--setns "/run/netns/$RSYS_NS_SERVICE" --hi connect $FORBIDDEN
attack "setns via /proc/<delegate>/ns/net + forbidden connect (filter alone)" --no-sandbox -- \
	--setns "/proc/$RSYS_DELEGATE_PID/ns/net" --hi connect $FORBIDDEN
NATIVE_NS=$RSYS_NS_SERVICE

EXPECT="socket: EAFNOSUPPORT"
attack "AF_PACKET socket" -- socket packet raw 0x300
attack "AF_PACKET SOCK_DGRAM socket" -- socket packet dgram 0x300
attack "AF_NETLINK NETLINK_KOBJECT_UEVENT socket" -- socket netlink raw 15
attack "AF_NETLINK NETLINK_SOCK_DIAG socket" -- socket netlink raw 4
# rtnetlink is left to a sandboxed program, which has no capability to change
# anything with it (see below); without the sandbox the filter refuses it.
attack "AF_NETLINK NETLINK_ROUTE socket without the sandbox (rtnetlink reaches other netns)" \
	--no-sandbox -- socket netlink raw 0
attack "AF_VSOCK socket" -- socket vsock seqpacket 0

# What rtnetlink gives a root program: from a namespace of its own, it puts an
# interface into the service domain's namespace without setns. Under rsys it
# must not: with the sandbox it has no capability for it, without the sandbox
# the filter refuses netlink.
peer=rsysatk$$
veth_case()
{
	local label=$1 rc planted nplanted

	shift
	# Both ends go there: an end left in the dying namespace would take its peer along.
	RSYS_RUN_TIMEOUT=20 RSYS_RUN_OPTS="$*" rsys_run ip link add name "${peer}c" \
		netns "$RSYS_DELEGATE_PID" type veth peer name "$peer" netns "$RSYS_DELEGATE_PID" \
		>"$RSYS_TMP/ip.out" 2>&1
	rc=$?
	ip -n "$RSYS_NS_SERVICE" link show "$peer" >/dev/null 2>&1; planted=$?
	ip -n "$RSYS_NS_SERVICE" link del "$peer" 2>/dev/null
	timeout 20 unshare -n ip link add name "${peer}c" netns "$RSYS_DELEGATE_PID" type veth \
		peer name "$peer" netns "$RSYS_DELEGATE_PID" >>"$RSYS_TMP/ip.out" 2>&1
	ip -n "$RSYS_NS_SERVICE" link show "$peer" >/dev/null 2>&1; nplanted=$?
	ip -n "$RSYS_NS_SERVICE" link del "$peer" 2>/dev/null
	if [ $rc -ne 0 ] && [ $planted -ne 0 ] && [ $nplanted -eq 0 ]; then
		tap_ok "rtnetlink $label: no veth into the service netns ($(head -n1 "$RSYS_TMP/ip.out")); natively from a fresh netns there is one"
	else
		tap_diag_file "$RSYS_TMP/ip.out"
		tap_not_ok "rtnetlink $label: ip under rsys exit $rc, veth in service netns: rsys $((!planted)), native $((!nplanted)) (want 0, 1)"
	fi
}
veth_case "in the sandbox"
veth_case "without the sandbox" --no-sandbox
EXPECT="socket: EPERM"
attack "raw IPv4 socket" -- socket inet raw 1
attack "raw IPv4 socket with SOCK_NONBLOCK|SOCK_CLOEXEC" -- socket inet raw+0x80800 1
attack "raw IPv6 socket" -- socket inet6 raw 58
attack "SOCK_PACKET socket of a remote family" -- socket inet sockpacket 0x300

# Other system call ABIs of x86-64 bypass rules written for the native one:
# libseccomp's filter kills a task that uses them.
EXPECT="killed by SYS\|socket: E"
SKIP_UNLESS_NATIVE=1
attack "AF_PACKET socket through the i386 ABI (int 0x80)" -- int80-socket packet raw 0x300
attack "AF_PACKET socket through the x32 ABI" -- x32-socket packet raw 0x300
SKIP_UNLESS_NATIVE=

EXPECT="unshare: EPERM"
attack "unshare(CLONE_NEWUSER|CLONE_NEWNET)" -- unshare newuser+newnet
attack "unshare(CLONE_NEWNET)" -- unshare newnet
EXPECT="clone: EPERM"
attack "clone(CLONE_NEWNET)" -- clone newnet
attack "clone(CLONE_NEWUSER) with bit 32 set" -- --hi clone newuser
EXPECT="clone3: ENOSYS"
attack "clone3(CLONE_NEWNET)" -- clone3 newnet

# Policy input. Controls: a naive reader hangs on /dev/zero and a FIFO; the
# same files without the offending bytes load.
mkfifo "$RSYS_TMP/fifo"
timeout 2 "$PYTHON3" -c 'import sys; open(sys.argv[1]).read()' /dev/zero; zrc=$?
timeout 2 cat "$RSYS_TMP/fifo" >/dev/null; frc=$?
if [ $zrc -eq 124 ] && [ $frc -eq 124 ]; then
	bad_policy "policy /dev/zero" /dev/zero "not a regular file"
	bad_policy "policy FIFO" "$RSYS_TMP/fifo" "not a regular file"
else
	tap_not_ok "control: naive readers of /dev/zero (exit $zrc) and a FIFO (exit $frc) should hang"
	tap_not_ok "policy FIFO: no control"
fi

# A NUL makes grep call the file binary: the rule after it is not shown.
hidden=$RSYS_TMP/nul.policy
rsys_write_policy "$hidden"
printf '# reviewed\0\nallow tcp 0.0.0.0/0 *\n' >>"$hidden"
if ! grep 'allow tcp 0.0.0.0/0' "$hidden" 2>/dev/null | grep -q '^allow'; then
	bad_policy "NUL byte in a comment hiding an allow rule" "$hidden" ":6: NUL byte"
else
	tap_not_ok "control: grep should not show the hidden rule"
fi
tr -d '\000' <"$hidden" >"$RSYS_TMP/nonul.policy"
good_policy "control: the same policy without the NUL loads" "$RSYS_TMP/nonul.policy"
rsys_write_policy "$RSYS_TMP/ctl.policy"
printf '# ok\033[1A\033[2K\n' >>"$RSYS_TMP/ctl.policy"
bad_policy "control character in a policy" "$RSYS_TMP/ctl.policy" ":6: control character 0x1b"
rsys_write_policy "$RSYS_TMP/1m.policy"
yes '# padding' | head -c $((1024 * 1024 - 1000)) >>"$RSYS_TMP/1m.policy"
good_policy "control: a policy just under 1 MiB loads" "$RSYS_TMP/1m.policy"
{ cat "$RSYS_TMP/1m.policy"; yes '# padding' | head -c 1000; } >"$RSYS_TMP/big.policy"
bad_policy "policy over 1 MiB" "$RSYS_TMP/big.policy" "larger than 1048576 bytes"

# A trusted entry naming a symlink trusts its target; one naming a symlink to
# another program does not trust the attacker.
ln -s "$ATTACKER" "$RSYS_TMP/attacker-link"
ln -s /bin/true "$RSYS_TMP/true-link"
sed "s|^trusted .*|trusted $RSYS_TMP/attacker-link|" "$RSYS_POLICY" >"$RSYS_TMP/link.policy"
sed "s|^trusted .*|trusted $RSYS_TMP/true-link|" "$RSYS_POLICY" >"$RSYS_TMP/other.policy"
good_policy "trusted symlink path matches its target" "$RSYS_TMP/link.policy"
if [ -L "$PYTHON3" ]; then
	sed "s|^trusted .*|trusted $PYTHON3|" "$RSYS_POLICY" >"$RSYS_TMP/python.policy"
	if timeout 20 "$RSYS_LOAD" run $RSYS_MODE_OPT --policy "$RSYS_TMP/python.policy" \
		--delegate "$RSYS_DELEGATE" -- "$PYTHON3" -c pass >"$RSYS_TMP/policy.out" 2>&1; then
		tap_ok "trusted $PYTHON3 (a symlink to $(readlink "$PYTHON3")) runs it"
	else
		tap_diag_file "$RSYS_TMP/policy.out"
		tap_not_ok "trusted $PYTHON3 (a symlink to $(readlink "$PYTHON3")) runs it"
	fi
else
	tap_skip "$PYTHON3 is not a symlink"
fi
if timeout 20 "$RSYS_LOAD" run $RSYS_MODE_OPT --policy "$RSYS_TMP/other.policy" --delegate "$RSYS_DELEGATE" -- \
	"$ATTACKER" noop >"$RSYS_TMP/policy.out" 2>&1; then
	tap_not_ok "control: a symlink to another program does not trust the attacker"
else
	tap_ok "control: a symlink to another program does not trust the attacker"
fi

tap_finish
