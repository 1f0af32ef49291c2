#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Runs every libFuzzer target of fuzz/ for its share of FUZZ_SECONDS and reports each (TAP): a crash or leak is "not ok" with its reproducer.
#
# Usage: [FUZZ_SECONDS=N] selftests/fuzz_test.sh [O]   (default 60 s in all; "make fuzz" runs it)
# The corpus grows in O/fuzz/corpus/TARGET across runs, seeded from fuzz/seeds/TARGET;
# reproducers go to O/fuzz/artifacts/TARGET/ (rerun one: O/fuzz/fuzz_TARGET FILE).

[ -n "$1" ] && RSYS_O=$(cd "$1" && pwd)
. "$(dirname "$0")/lib.sh"

FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_O=$RSYS_O/fuzz
CLANG=${CLANG:-clang}

targets=()
for src in "$RSYS_SRC"/fuzz/fuzz_*.c; do
	t=$(basename "$src" .c)
	t=${t#fuzz_}
	[ "$t" = common ] || targets+=("$t")
done
[ ${#targets[@]} -gt 0 ] || ksft_skip "no fuzz targets in $RSYS_SRC/fuzz"

tmp=$(mktemp -d /tmp/rsys-fuzz.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { (void)d; (void)n; return 0; }' \
	>"$tmp/probe.c"
"$CLANG" -fsanitize=fuzzer,address,undefined -o "$tmp/probe" "$tmp/probe.c" >/dev/null 2>&1 ||
	ksft_skip "$CLANG has no libFuzzer runtime (apt-get install libfuzzer-14-dev)"

tap_plan ${#targets[@]}
if ! make -s -C "$RSYS_SRC" O="$RSYS_O" fuzz-build >"$tmp/build.log" 2>&1; then
	tap_diag_file "$tmp/build.log"
	for t in "${targets[@]}"; do
		tap_not_ok "$t: the fuzz targets do not build"
	done
	tap_finish
fi

share=$((FUZZ_SECONDS / ${#targets[@]}))
[ $share -ge 1 ] || share=1
for t in "${targets[@]}"; do
	corpus=$FUZZ_O/corpus/$t
	art=$FUZZ_O/artifacts/$t
	log=$FUZZ_O/$t.log
	dict=()
	mkdir -p "$corpus" "$art"
	[ -f "$RSYS_SRC/fuzz/$t.dict" ] && dict=(-dict="$RSYS_SRC/fuzz/$t.dict")
	# -timeout: an input taking 10 s is a hang, reported like a crash.
	timeout --kill-after=10 $((share + 120)) "$FUZZ_O/fuzz_$t" -max_total_time=$share \
		-timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$art/" \
		"${dict[@]}" "$corpus" "$RSYS_SRC/fuzz/seeds/$t" >"$log" 2>&1
	rc=$?
	# -a: a target's own output may hold binary bytes
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
	speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)
	cov=$(grep -ao 'cov: [0-9]* ft: [0-9]* corp: [0-9]*/[0-9]*[a-zA-Z]*' "$log" | tail -n1)
	if [ $rc -eq 0 ]; then
		tap_ok "$t: ${share}s, $execs execs ($speed/s), $cov"
	else
		grep -aE 'ERROR|SUMMARY|runtime error' "$log" | head -n 5 >"$tmp/why"
		tap_diag_file "$tmp/why"
		repro=$(sed -n 's/.*Test unit written to //p' "$log" | tail -n1)
		tap_not_ok "$t: exit $rc after $execs execs; reproducer ${repro:-none} (log $log)"
	fi
done
tap_finish
