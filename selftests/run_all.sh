#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Runs every rsys selftest (C programs, shell tests, real programs, KVM tier), counts TAP results.
#
# Usage: selftests/run_all.sh [O]   (O: build output directory, default .output)
# Environment: RSYS_TEST_TIMEOUT (s per test, default 300), RSYS_VMTEST_TIMEOUT (default 3600),
# RSYS_VMTEST=0 to skip the KVM tier.
# The last line is "N passed, N failed" (the skips are counted on the line above it);
# exit status 1 if anything failed.

set -u

SRC=$(cd "$(dirname "$0")/.." && pwd)
O=$(cd "${1:-$SRC/.output}" 2>/dev/null && pwd) || {
	echo "Error: build output directory ${1:-$SRC/.output} does not exist (run make first)" >&2
	exit 1
}
export RSYS_O=$O RSYS_SRC=$SRC

TEST_TIMEOUT=${RSYS_TEST_TIMEOUT:-300}
VMTEST_TIMEOUT=${RSYS_VMTEST_TIMEOUT:-3600}

passed=0
failed=0
skipped=0
failed_names=()
log=$(mktemp /tmp/rsys-run-all.XXXXXX)
digest=$(mktemp /tmp/rsys-run-all-failed.XXXXXX)
trap 'rm -f "$log" "$digest"' EXIT

# run_one NAME TIMEOUT CMD...: stream CMD's output under a header, then count its TAP lines.
run_one()
{
	local name=$1 limit=$2 rc p f s plan why=
	shift 2

	printf '\n==== %s ====\n' "$name"
	# timeout signals its whole process group: a hung test and what it started die.
	timeout --kill-after=10 "$limit" "$@" </dev/null 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}

	# Only top-level TAP lines count; indented lines are subtests of a top-level one.
	s=$(grep -cE '^ok [0-9]+.*# *SKIP' "$log")
	p=$(grep -cE '^ok [0-9]+' "$log")
	p=$((p - s))
	f=$(grep -cE '^not ok [0-9]+' "$log")

	# The plan a test announced must be what it ran (a test that stops early is a failure).
	plan=$(grep -m1 -oE '^1\.\.[0-9]+' "$log" | cut -d. -f3)
	if [ -n "$plan" ] && [ "$plan" -ne $((p + f + s)) ] && [ "$rc" != 4 ]; then
		why+="# $name: planned $plan results, got $((p + f + s)), counted as a failure"$'\n'
		f=$((f + 1))
	fi

	case $rc in
	0)
		if [ $((p + f + s)) -eq 0 ]; then
			why+="# $name: exit 0 without any TAP result, counted as a failure"$'\n'
			f=1
		fi
		;;
	4)
		[ $((p + f + s)) -eq 0 ] && s=1
		;;
	124 | 137)
		why+="# $name: killed after ${limit}s, counted as a failure"$'\n'
		f=$((f + 1))
		;;
	*)
		if [ "$f" -eq 0 ]; then
			why+="# $name: exit status $rc without a 'not ok' line, counted as a failure"$'\n'
			f=1
		fi
		;;
	esac
	printf '%s' "$why"
	printf '# %s: %d passed, %d failed, %d skipped (exit %d)\n' "$name" "$p" "$f" "$s" "$rc"
	passed=$((passed + p))
	failed=$((failed + f))
	skipped=$((skipped + s))
	if [ "$f" -gt 0 ]; then
		failed_names+=("$name")
		# Each failure with the diagnostics just before it, repeated at the end where a
		# reader of the log's tail finds it.
		{
			echo "# == $name (exit $rc)"
			# unanchored: a "not ok" glued to a line without its newline is shown too
			if grep -qE 'not ok [0-9]+' "$log"; then
				grep -E -B12 'not ok [0-9]+' "$log" | grep -vE '^(ok [0-9]+|--$)' | tail -n 40
			else
				tail -n 10 "$log"
			fi
			printf '%s' "$why"
		} >>"$digest"
	fi
}

# C programs. One that a driver script runs (selftests/NAME_test.sh, or a *_test.sh or lib.sh
# naming .../selftests/NAME: the world's servers) is left to its driver: it needs the driver's setup.
for prog in "$O"/selftests/*; do
	[ -f "$prog" ] && [ -x "$prog" ] || continue
	name=$(basename "$prog")
	[ -e "$SRC/selftests/${name}_test.sh" ] && continue
	grep -qE "/selftests/${name}([^A-Za-z0-9_]|\$)" "$SRC"/selftests/*_test.sh \
		"$SRC"/selftests/lib.sh 2>/dev/null && continue
	run_one "$name" "$TEST_TIMEOUT" "$prog"
done

# A script may need longer than the default: a "# timeout: N" line in its header (kselftest's
# per-test "settings" timeout), unless RSYS_TEST_TIMEOUT is larger.
script_limit()
{
	local limit

	limit=$(sed -n '1,15s/^# timeout: \([0-9][0-9]*\)$/\1/p' "$1" | head -n1)
	[ -n "$limit" ] && [ "$limit" -gt "$TEST_TIMEOUT" ] || limit=$TEST_TIMEOUT
	echo "$limit"
}

for script in "$SRC"/selftests/*_test.sh "$SRC"/selftests/realprogs.sh; do
	[ -f "$script" ] || continue
	run_one "$(basename "$script")" "$(script_limit "$script")" bash "$script"
done

# Direct mode (rsys-load run --mode direct) once more for the suites that compare the
# program's calls with Linux or attack the sandbox; attack_direct_test runs both modes itself.
for name in fdsem_test.sh wait_test.sh realprogs.sh sendintr_test.sh attack_filter_test.sh \
	attack_sandbox_test.sh gonet_test.sh; do
	script=$SRC/selftests/$name
	[ -f "$script" ] || continue
	run_one "$name (direct mode)" "$(script_limit "$script")" env RSYS_MODE=direct bash "$script"
done
# ... and the groups of Python's suite that fit the CI budget twice (some 2 minutes).
run_one "pysuite_test.sh aioloop aiossl servers handlers (direct mode)" 600 \
	env RSYS_MODE=direct bash "$SRC/selftests/pysuite_test.sh" aioloop aiossl servers handlers

# The KVM tier builds a kernel the first time (~20 min on 2 cores); RSYS_VMTEST=0 skips it.
if [ "${RSYS_VMTEST:-1}" = 0 ]; then
	run_one vmtest.sh 10 sh -c 'echo "1..0 # SKIP RSYS_VMTEST=0"; exit 4'
elif [ -f "$SRC/kvm-patch/vmtest.sh" ]; then
	run_one vmtest.sh "$VMTEST_TIMEOUT" bash "$SRC/kvm-patch/vmtest.sh"
fi

echo
if [ ${#failed_names[@]} -gt 0 ]; then
	echo "# what failed, with the lines before it:"
	cat "$digest"
	echo "# failed: ${failed_names[*]}"
fi
echo "# $skipped skipped"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
