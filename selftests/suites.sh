# SPDX-License-Identifier: GPL-2.0
# Runs a group of a program's own test suite natively and under rsys and compares the passing tests (TAP).
#
# Sourced after lib.sh by pysuite_test.sh and gonet_test.sh. A runner is a shell function
#   RUNNER MODE OUT CWD TEST...
# that runs TEST... (the group's, or test ids to try again) with "suite_exec MODE" in CWD and
# leaves one "pass TEST-ID" line per passing test in OUT (other lines are ignored but a
# last "start TEST-ID": that test hung, see suite_hung).
# A group passes when every test that passes natively (in the service netns) also passes
# under "rsys-load run". SUITE_LIMIT bounds each run (seconds, default 400); SUITE_SAVE=DIR
# keeps each group's logs and outcomes there (the temporary directory goes on exit).

SUITE_LIMIT=${SUITE_LIMIT:-400}
# At most this many lost tests (top-level ones) are tried once more (more is a difference,
# not a flip).
SUITE_AGAIN_MAX=${SUITE_AGAIN_MAX:-10}

# suite_exec native|rsys CMD...: CMD natively in the service netns or under rsys-load run.
suite_exec()
{
	local mode=$1

	shift
	if [ "$mode" = native ]; then
		rsys_native timeout --kill-after=5 "$SUITE_LIMIT" "$@"
	else
		RSYS_RUN_TIMEOUT=$SUITE_LIMIT rsys_run "$@"
	fi
}

# suite_passed FILE: the ids of the tests that passed, sorted.
suite_passed()
{
	sed -n 's/^pass //p' "$1" | sort -u
}

# suite_again NAME RUNNER MODE LOST: try LOST (ids, one a line) once more in MODE; prints
# those that passed.
suite_again()
{
	local base=$RSYS_TMP/$1.again.$3 cwd=$RSYS_TMP/$1.cwd.again.$3

	mkdir -m 1777 "$cwd"
	# shellcheck disable=SC2086 # test ids are words
	"$2" "$3" "$base" "$cwd" $4 >"$base.err" 2>&1
	comm -12 <(echo "$4" | sort) <(suite_passed "$base")
}

# suite_hung FILE: the test whose "start TEST-ID" line is the last of FILE (a runner's
# watchdog ended the run there: it hung); fails when there is none.
suite_hung()
{
	tail -n 1 "$1" | sed -n 's/^start //p' | grep .
}

# suite_group NAME RUNNER TEST...: one TAP result for the group NAME.
suite_group()
{
	local g=$1 runner=$2 n=$RSYS_TMP/$1.native r=$RSYS_TMP/$1.rsys
	local nrc rrc tn tr npass rpass lost again flips start k hung rest

	shift 2
	mkdir -m 1777 "$RSYS_TMP/$g.cwd.native" "$RSYS_TMP/$g.cwd.rsys"
	# Said before the runs: a suite killed by run_all's timeout shows which group hung.
	echo "# $g: running natively and under rsys${RSYS_MODE:+ ($RSYS_MODE mode)}"
	start=$SECONDS
	"$runner" native "$n" "$RSYS_TMP/$g.cwd.native" "$@" >"$n.err" 2>&1
	nrc=$?
	tn=$((SECONDS - start))
	"$runner" rsys "$r" "$RSYS_TMP/$g.cwd.rsys" "$@" >"$r.err" 2>&1
	rrc=$?
	touch "$n" "$r"
	# A test that hung under rsys ended the run: the tests after it run on (3 hangs at most).
	# The hung one is lost, and tried again below as any other.
	for k in 1 2 3; do
		hung=$(suite_hung "$r") || break
		rrc=0
		echo "# $g: $hung hung under rsys; the tests after it run on"
		# (and not the hung one's subtests: Go's are ID/SUB)
		rest=$(comm -23 <(suite_passed "$n") <(sed -n 's/^[a-z]* //p' "$r" | sort -u) |
			grep -vF -- "$hung/")
		[ -n "$rest" ] || break
		# shellcheck disable=SC2086 # test ids are words
		"$runner" rsys "$r.$k" "$RSYS_TMP/$g.cwd.rsys" $rest >>"$r.err" 2>&1
		rrc=$?
		touch "$r.$k"
		cat "$r.$k" >>"$r"
	done
	# where each hang was: the runner's dump of its threads
	grep -A24 -E 'Fatal Python error: Aborted' "$r.err" | head -n 80 | tap_diag_file /dev/stdin
	tr=$((SECONDS - start - tn))
	npass=$(suite_passed "$n" | grep -c .)
	rpass=$(suite_passed "$r" | grep -c .)
	# natively passing tests that did not pass (or did not run) under rsys
	lost=$(comm -23 <(suite_passed "$n") <(suite_passed "$r"))
	echo "# $g: native $npass passed in ${tn}s (exit $nrc), rsys $rpass passed in ${tr}s (exit $rrc)"
	# Some of these suites race with their own threads (timing, not semantics): a test lost
	# under rsys runs once more on its own, and is lost only if it fails again. One that
	# then fails natively too flips natively: it is no difference of rsys, only said.
	# (counted by top-level test: a Go test's subtests, ID/SUB, run again with it)
	if [ -n "$lost" ] && [ "$(echo "$lost" | sed 's,/.*,,' | sort -u | grep -c .)" -le "$SUITE_AGAIN_MAX" ] &&
		[ "$rrc" -eq 0 ]; then
		echo "$lost" | sed 's/^/# again: /'
		again=$(suite_again "$g" "$runner" rsys "$lost")
		lost=$(comm -23 <(echo "$lost") <(echo "$again"))
		if [ -n "$lost" ]; then
			again=$(suite_again "$g" "$runner" native "$lost")
			flips=$(comm -23 <(echo "$lost") <(echo "$again"))
			[ -n "$flips" ] && echo "$flips" | sed 's/^/# fails natively too (flaky): /'
			lost=$(comm -12 <(echo "$lost") <(echo "$again"))
		fi
		cat "$RSYS_TMP/$g.again.rsys.err" >>"$r.err"
	fi
	if [ "$nrc" -ne 0 ] || [ "$npass" -eq 0 ]; then
		tail -5 "$n.err" | tap_diag_file /dev/stdin
		tap_not_ok "$g: the native run failed (exit $nrc, $npass passed)"
	elif [ -z "$lost" ] && [ "$rrc" -eq 0 ]; then
		tap_ok "$g: all $npass natively passing tests pass under rsys"
	else
		echo "$lost" | head -40 | tap_diag_file /dev/stdin
		tail -30 "$r.err" | tap_diag_file /dev/stdin
		tap_not_ok "$g: $(echo "$lost" | grep -c .) of $npass natively passing tests did not pass under rsys (exit $rrc)"
	fi
	[ -n "${SUITE_SAVE:-}" ] && mkdir -p "$SUITE_SAVE" && cp "$RSYS_TMP/$g".[a-z]* "$SUITE_SAVE/" 2>/dev/null
	return 0
}
