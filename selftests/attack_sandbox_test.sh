#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Attacks on the compute domain's sandbox: each fails under rsys-load run, and works with its defence off.

. "$(dirname "$0")/lib.sh"

PROBE=$RSYS_O/selftests/sandbox_probe
rsys_require nsenter setpriv unshare script
[ -x "$PROBE" ] || ksft_skip "sandbox_probe not built (make -C selftests)"
rsys_have_bins || ksft_skip "$RSYS_MISSING"
rsys_topology_up
rsys_delegate_start

# in_rsys CMD...: CMD as a trusted program in a fresh compute domain.
in_rsys()
{
	timeout --kill-after=5 30 "$RSYS_LOAD" run $RSYS_MODE_OPT --policy "$RSYS_POLICY" --delegate "$RSYS_DELEGATE" -- "$@"
}

# in_rsys_self CMD...: the same, with the word @MON@ in CMD replaced by its own monitor's pid.
in_rsys_self()
{
	# shellcheck disable=SC2016 # expanded by the inner bash, whose pid becomes rsys-load's
	timeout --kill-after=5 30 bash -c 'args=("${@//@MON@/$$}"); exec "${args[@]}"' bash \
		"$RSYS_LOAD" run $RSYS_MODE_OPT --policy "$RSYS_POLICY" --delegate "$RSYS_DELEGATE" -- "$@"
}

# attack NAME PATTERN [WHY]: the attack's output is in a.log (exit $arc), the control's in
# c.log (exit $crc). Passes if the control worked (so the case is not vacuous) and the attack
# failed (exit 1) saying PATTERN. A control that fails is a failure, or a skip saying WHY
# when this kernel forbids the attack to everyone.
attack()
{
	if [ "$crc" -ne 0 ] && [ -n "$3" ]; then
		tap_skip "$1: $3: $(head -n1 "$RSYS_TMP/c.log")"
	elif [ "$crc" -ne 0 ]; then
		tap_diag_file "$RSYS_TMP/c.log"
		tap_not_ok "$1: the control with the defence off failed too (exit $crc)"
	elif [ "$arc" -eq 1 ] && grep -qE -- "$2" "$RSYS_TMP/a.log"; then
		tap_ok "$1: $(grep -m1 -E -- "$2" "$RSYS_TMP/a.log") (control: $(head -n1 "$RSYS_TMP/c.log"))"
	else
		tap_diag_file "$RSYS_TMP/a.log"
		tap_not_ok "$1: the attack under rsys exited $arc"
	fi
}

a() { "$@" >"$RSYS_TMP/a.log" 2>&1; arc=$?; }
c() { "$@" >"$RSYS_TMP/c.log" 2>&1; crc=$?; }

tap_plan 19

dpid=$(pgrep -f -n -- "--listen $RSYS_DELEGATE")
# A monitor to attack natively, as the controls of the attacks on a program's own monitor.
"$RSYS_LOAD" run $RSYS_MODE_OPT --policy "$RSYS_POLICY" --delegate "$RSYS_DELEGATE" -- sleep 60 &
victim=$!
RSYS_PIDS+=("$victim")
# victim_ready: its monitor holds the program's seccomp listener
victim_ready()
{
	local f

	for f in /proc/"$victim"/fd/*; do
		[ "$(readlink "$f")" = "anon_inode:seccomp notify" ] && return 0
	done
	return 1
}
for ((i = 0; i < 100; i++)); do
	victim_ready && break
	sleep 0.1
done

a in_rsys nsenter --net="/proc/$dpid/ns/net" echo joined the delegate\'s netns
c nsenter --net="/proc/$dpid/ns/net" echo joined the delegate\'s netns
attack "nsenter --net=/proc/<delegate>/ns/net" "nsenter:"

a in_rsys "$PROBE" setns "/run/netns/$RSYS_NS_SERVICE"
c "$PROBE" setns "/run/netns/$RSYS_NS_SERVICE"
attack "setns to the service netns by /run/netns" "^blocked"

a in_rsys "$PROBE" connect "$RSYS_SOCKDIR/delegate.sock"
c rsys_native "$PROBE" connect "$RSYS_SOCKDIR/delegate.sock"
attack "connect to the delegate's unix socket" "^blocked"

a in_rsys "$PROBE" find rsys-load rsys-delegate
c "$PROBE" find rsys-load rsys-delegate
attack "the monitor and the delegate in /proc" "^blocked"

a in_rsys_self "$PROBE" pidfd @MON@
c "$PROBE" pidfd "$victim"
attack "pidfd_getfd of the monitor's fds" "^blocked"

a in_rsys_self "$PROBE" mem @MON@
c "$PROBE" mem "$victim"
attack "open /proc/<monitor>/mem read-write" "^blocked"

a in_rsys_self "$PROBE" ptrace @MON@
c "$PROBE" ptrace "$victim"
attack "PTRACE_ATTACH to the monitor" "^blocked"

# pid 1 of the sandbox runs without the filter: the program may not take it over either.
a in_rsys "$PROBE" ptrace 1
c "$PROBE" ptrace "$(pgrep -P "$victim")"
attack "PTRACE_ATTACH to the sandbox's pid 1" "^blocked"

a in_rsys_self "$PROBE" signal @MON@
c "$PROBE" signal "$victim"
attack "signal the monitor" "^blocked"

# A set-user-ID-root copy of the probe reads a root-only file: natively for uid 65534.
SUID=$RSYS_TMP/suid-probe
SECRET=$RSYS_TMP/secret
cp "$PROBE" "$SUID" && chown root:root "$SUID" && chmod 4755 "$SUID"
echo secret >"$SECRET" && chmod 600 "$SECRET"
a in_rsys "$SUID" read "$SECRET"
c setpriv --reuid=65534 --regid=65534 --clear-groups "$SUID" read "$SECRET"
attack "a set-user-ID-root binary gains nothing (no_new_privs, user namespace)" "^blocked"

# Root in the sandbox is not the host's root: the control is the compute domain without sandbox.
ROOTFILE=$RSYS_TMP/rootfile
echo root >"$ROOTFILE" && chmod 644 "$ROOTFILE"
a in_rsys "$PROBE" write "$ROOTFILE"
c timeout 30 "$RSYS_LOAD" run $RSYS_MODE_OPT --no-sandbox --policy "$RSYS_POLICY" --delegate "$RSYS_DELEGATE" -- \
	"$PROBE" write "$ROOTFILE"
attack "root in the sandbox writes a root-owned file of the host" "^blocked"

# CAP_NET_ADMIN over a netns of the host's user namespace (joined with --netns).
rsys_netns_add "rsys-atk-$$"
a timeout 30 "$RSYS_LOAD" run $RSYS_MODE_OPT --netns "rsys-atk-$$" --policy "$RSYS_POLICY" --delegate "$RSYS_DELEGATE" -- \
	"$PROBE" netadmin
c ip netns exec "rsys-atk-$$" "$PROBE" netadmin
attack "CAP_NET_ADMIN over a host netns (--netns)" "^blocked"

a in_rsys "$PROBE" hostname
c "$PROBE" hostname
attack "CAP_SYS_ADMIN over the host (sethostname)" "^blocked"

# The covers are locked: the control is the same cover in a mount namespace of root's own.
a in_rsys "$PROBE" umount /run/netns
# shellcheck disable=SC2016 # $0 is the inner shell's
c unshare -m sh -c 'mount -t tmpfs rsys-cover /run/netns && exec "$0" umount /run/netns' "$PROBE"
attack "unmount the cover over /run/netns" "^blocked"

# Root in the sandbox has no capability even in its own mount namespace: it cannot make a
# path the monitor checks name another file. The control: root in a mount namespace of its own.
a in_rsys "$PROBE" bind "$PROBE" "$ROOTFILE"
c unshare -m "$PROBE" bind "$PROBE" "$ROOTFILE"
attack "bind-mount another file over a path (own mount namespace)" "^blocked"

# Nor from a user namespace of its own (it may create none). The control: uid 65534 natively.
a in_rsys "$PROBE" userns-bind "$PROBE" "$ROOTFILE"
c setpriv --reuid=65534 --regid=65534 --clear-groups "$PROBE" userns-bind "$PROBE" "$ROOTFILE"
attack "bind-mount from a nested user namespace" "^blocked" \
	"unprivileged user namespaces are disabled on this host"

# Type into the terminal of the shell that started rsys-load (in a pty of script(1)).
a script -qec "$(printf '%q ' "$RSYS_LOAD" run $RSYS_MODE_OPT --policy "$RSYS_POLICY" --delegate "$RSYS_DELEGATE" -- \
	"$PROBE" tiocsti)" /dev/null
c script -qec "$(printf '%q ' "$PROBE" tiocsti)" /dev/null
attack "TIOCSTI into the controlling terminal" "^blocked" \
	"this kernel forbids TIOCSTI without CAP_SYS_ADMIN (dev.tty.legacy_tiocsti=0)"

# Fail closed: a sandbox whose root is the host's root is refused, not built.
a timeout 30 "$RSYS_LOAD" run $RSYS_MODE_OPT --uid 0 --policy "$RSYS_POLICY" --delegate "$RSYS_DELEGATE" -- "$PROBE" write "$ROOTFILE"
c timeout 30 "$RSYS_LOAD" run $RSYS_MODE_OPT --uid 1 --policy "$RSYS_POLICY" --delegate "$RSYS_DELEGATE" -- echo sandbox built
attack "--uid 0 is refused (exit 1)" "^rsys-load: Error: --uid 0"

# Fail closed: without user namespaces there is no sandbox, and PROG does not run. The
# limit is set in a user namespace of our own (all ids mapped), not the host's.
cat >"$RSYS_TMP/userns-max.sh" <<'SH'
#!/bin/sh
# userns-max.sh MAX CMD...: once our uid map is written, exec ourselves again (for the
# capabilities of root in the namespace), set max_user_namespaces to MAX and exec CMD.
if [ -z "$RSYS_MAPPED" ]; then
	for i in $(seq 100); do
		[ "$(wc -l </proc/self/uid_map)" = 0 ] || RSYS_MAPPED=1 exec /bin/sh "$0" "$@"
		sleep 0.05
	done
	exit 9
fi
echo "$1" >/proc/sys/user/max_user_namespaces || exit 9
shift
exec "$@"
SH
# userns_max MAX: rsys-load run -- echo in a user namespace whose max_user_namespaces is MAX
userns_max()
{
	local p

	unshare --user --mount --setgroups allow /bin/sh "$RSYS_TMP/userns-max.sh" "$1" \
		timeout 30 "$RSYS_LOAD" run $RSYS_MODE_OPT --policy "$RSYS_POLICY" --delegate "$RSYS_DELEGATE" -- echo PROG ran &
	p=$!
	for ((i = 0; i < 100; i++)); do
		[ "$(readlink "/proc/$p/ns/user")" != "$(readlink /proc/self/ns/user)" ] && break
		sleep 0.05
	done
	echo "0 0 4294967295" >"/proc/$p/uid_map" && echo "0 0 4294967295" >"/proc/$p/gid_map"
	wait "$p"
}
a userns_max 0
c userns_max 10
attack "no user namespaces: exit 1, PROG does not run" "cannot create the sandbox's user namespace"

kill "$victim" 2>/dev/null
wait "$victim" 2>/dev/null
tap_finish
