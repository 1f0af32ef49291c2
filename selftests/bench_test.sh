#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# rsys-bench keeps its promises in a short run: every test named as the original writes it,
# figures that are numbers, JSON as documented, and nothing left behind. No timing is asserted.

. "$(dirname "$0")/lib.sh"

BENCH=$RSYS_O/rsys-bench
rsys_require
[ -x "$BENCH" ] || ksft_skip "$BENCH not built (make)"
rsys_have_bins || ksft_skip "$RSYS_MISSING"
RSYS_TMP=$(mktemp -d /tmp/rsys-test.XXXXXX)
trap rsys_cleanup EXIT

tap_plan 3
before=$(compgen -G '/tmp/rsys-bench.*' | sort)

timeout 300 "$BENCH" -n 300 -j >"$RSYS_TMP/json" 2>"$RSYS_TMP/err"
rc=$?
if [ "$rc" -eq 0 ] && "$PYTHON3" - "$RSYS_TMP/json" >"$RSYS_TMP/check" 2>&1 <<'PY'; then
import json, sys
d = json.load(open(sys.argv[1]))
names = [r["test"] for r in d["rows"]]
want = ["native", "trapped", "select(LocalFD)", "select(LocalFD, [RemoteFD])",
        "select(RemoteFD)", "select([LocalFD], RemoteFD)"]
assert names == want, names
for r in d["rows"]:
    assert r["seconds"] > 0 and r["ratio"] > 0, r
assert d["rows"][0]["ratio"] == 1.0, d["rows"][0]
assert d["close_after_cancels_seconds"] > 0, d
assert d["trap_floor_seconds"] > 0 and d["trap_floor_ratio"] > 0, d
print("# " + ", ".join("%s %.1f" % (r["test"], r["ratio"]) for r in d["rows"]))
PY
	cat "$RSYS_TMP/check"
	tap_ok "rsys-bench -n 300 -j: the six tests of the original, in order, with seconds, ratios and the trap floor"
else
	tap_diag_file "$RSYS_TMP/err"
	tap_diag_file "$RSYS_TMP/json"
	tap_diag_file "$RSYS_TMP/check"
	tap_not_ok "rsys-bench -n 300 -j (exit $rc)"
fi

timeout 300 "$BENCH" -n 300 >"$RSYS_TMP/table" 2>"$RSYS_TMP/err"
rc=$?
if [ "$rc" -eq 0 ] && grep -q '^select(LocalFD, \[RemoteFD\]) .* 15 (31)' "$RSYS_TMP/table" &&
   grep -q '^trap floor:' "$RSYS_TMP/table" && grep -q '^close after 300 cancels' "$RSYS_TMP/table"; then
	tap_ok "rsys-bench table: the original's column, the close after the cancels, the trap floor"
else
	tap_diag_file "$RSYS_TMP/err"
	tap_diag_file "$RSYS_TMP/table"
	tap_not_ok "rsys-bench table (exit $rc)"
fi

# Its private delegate and directory are gone, and so are its monitors.
after=$(compgen -G '/tmp/rsys-bench.*' | sort)
if pgrep -f -- '--listen unix:/tmp/rsys-bench' >/dev/null || pgrep -f -- 'rsys-bench --worker' >/dev/null ||
   [ "$before" != "$after" ]; then
	tap_not_ok "rsys-bench left processes or files behind: $(pgrep -af rsys-bench | head -3) $after"
else
	tap_ok "rsys-bench leaves no delegate, worker or directory behind"
fi
tap_finish
