#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Runs every fdsem scenario natively and under "rsys-load run" and diffs the transcripts (TAP per scenario).
#
# Usage: selftests/fdsem_test.sh [SCENARIO...]   (default: all of "fdsem --list")

. "$(dirname "$0")/lib.sh"

FDSEM=$RSYS_O/selftests/fdsem
rsys_require
[ -x "$FDSEM" ] || ksft_skip "$FDSEM not built (make -C selftests)"
rsys_topology_up
if rsys_have_bins; then
	rsys_delegate_start
fi

scenarios=${*:-$("$FDSEM" --list)}
behind=0	# write-behind's two lines (below): remote mode's
[[ " $(echo $scenarios) " == *" behind "* ]] && [ "${RSYS_MODE:-remote}" = remote ] && behind=3
tap_plan "$(($(echo $scenarios | wc -w) + behind))"
for sc in $scenarios; do
	n=$RSYS_TMP/$sc.native
	r=$RSYS_TMP/$sc.rsys
	rsys_native timeout 40 "$FDSEM" "$sc" >"$n" 2>"$n.err"
	nrc=$?
	if [ $nrc -ne 0 ]; then
		# The scenario itself is wrong (or the machine is): say why.
		tap_diag_file "$n"
		tap_diag_file "$n.err"
		tap_not_ok "$sc: native run exit $nrc"
		continue
	fi
	if [ -n "$RSYS_MISSING" ]; then
		tap_skip "$sc: native transcript ok; $RSYS_MISSING"
		continue
	fi
	RSYS_RUN_TIMEOUT=40 rsys_run "$FDSEM" "$sc" >"$r" 2>"$r.err"
	rrc=$?
	if diff -u "$n" "$r" >"$r.diff" && [ $rrc -eq 0 ]; then
		tap_ok "$sc"
	else
		tap_diag_file "$r.diff"
		tap_diag_file "$r.err"
		tap_not_ok "$sc: rsys run exit $rrc, transcript differs from native"
	fi
done

# Write-behind (rsys-load(8)): in remote mode the behind scenario's sends are answered before
# the delegate makes them, as "rsys-load run -v" counts; with --no-write-behind (the control)
# none is, and either way the transcript is the native one.
world_query()	# world_query LINE: the world's query port's answer to LINE (world_server.c)
{
	rsys_native bash -c 'exec 3<>"/dev/tcp/$1/7003" && echo "$2" >&3 && read -r a <&3 && echo "$a"' \
		_ "$RSYS_WORLD_IP" "$1"
}
behind_run()	# behind_run [OPTION]: $rrc, and $count of the sends answered before they were made
{
	RSYS_RUN_TIMEOUT=40 RSYS_RUN_OPTS="-v $*" rsys_run "$FDSEM" behind >"$r" 2>"$r.err"
	rrc=$?
	count=$(sed -n 's/.* \([0-9]*\) sends answered before the delegate made them.*/\1/p' "$r.err")
}
if [ "$behind" -gt 0 ]; then
	n=$RSYS_TMP/behind.native
	r=$RSYS_TMP/behind.rsys
	if [ -n "$RSYS_MISSING" ]; then
		tap_skip "behind: write-behind counted; $RSYS_MISSING"
		tap_skip "behind: --no-write-behind; $RSYS_MISSING"
		tap_skip "behind: sends then exit; $RSYS_MISSING"
	else
		for opt in "" --no-write-behind; do
			behind_run $opt
			if [ -z "$opt" ]; then
				want="at least 299"
				ok=$([ "${count:-0}" -ge 299 ] && echo 1)
			else
				want=0
				ok=$([ "$count" = 0 ] && echo 1)
			fi
			diff -u "$n" "$r" >"$r.diff"
			if [ -n "$ok" ] && [ $rrc -eq 0 ] && [ ! -s "$r.diff" ]; then
				tap_ok "behind ${opt:-(write-behind on)}: $count sends answered before the delegate made them, the native transcript"
			else
				tap_diag_file "$r.diff"
				tap_diag_file "$r.err"
				tap_not_ok "behind ${opt:-(write-behind on)}: ${count:-no} sends answered early (want $want), exit $rrc"
			fi
		done
		# A program that exits right after its last send, which the world does not read yet (a
		# "held-" token): under rsys that send is still at the delegate when the session ends
		# (rsys-load -v counts it), and the delegate still makes it, once the world reads, before
		# it closes the socket (rsys-delegate(8)). Natively the send waits in the program's kernel.
		bytes=$(((64 << 10) + 1024))	# fdsem's EXIT_LAST, and one 1 KiB send before it
		for how in native rsys; do
			token=held-sendexit-$how-$$
			if [ $how = native ]; then
				rsys_native timeout 40 "$FDSEM" sendexit "$token" $bytes >"$r.exit" 2>&1 &
				going=$(world_query "$token go")
				wait $!
			else
				RSYS_RUN_TIMEOUT=40 RSYS_RUN_OPTS=-v rsys_run "$FDSEM" sendexit "$token" $bytes \
					>"$r.exit" 2>&1
			fi
			rrc=$?
			[ $how = native ] || going=$(world_query "$token go")
			got=$(world_query "$token 10000 bytes")
			[ $rrc -eq 0 ] && [ "$going" = going ] && [ "$got" = "closed $bytes" ] || break
		done
		left=$(sed -n 's/.* \([0-9]*\) of them still at the delegate.*/\1/p' "$r.exit")
		if [ $rrc -eq 0 ] && [ "$got" = "closed $bytes" ] && [ "${left:-0}" -gt 0 ]; then
			tap_ok "behind: a program that exits right after its sends: the world got all $bytes bytes, natively and under rsys ($left sent by the delegate after the session)"
		else
			tap_diag_file "$r.exit"
			tap_not_ok "behind: sends then exit, $how: exit $rrc, go: \"$going\", the world says \"$got\" (want \"closed $bytes\"), ${left:-no} sends left to the delegate (want 1 or more)"
		fi
	fi
fi
tap_finish
