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

# The table's figures are measured: each row's ratio is its seconds over native's, the
# close after the cancels took time, and the trap floor's ratio is its seconds over native's.
timeout 300 "$BENCH" -n 300 >"$RSYS_TMP/table" 2>"$RSYS_TMP/err"
rc=$?
if [ "$rc" -eq 0 ] && "$PYTHON3" - "$RSYS_TMP/table" >"$RSYS_TMP/check" 2>&1 <<'PY'; then
import re, sys
lines = open(sys.argv[1]).read().splitlines()
want = [("native", "1"), ("trapped", "9"), ("select(LocalFD)", "11"),
        ("select(LocalFD, [RemoteFD])", "15 (31)"), ("select(RemoteFD)", "189"),
        ("select([LocalFD], RemoteFD)", "253")]
num = r"([0-9]+\.[0-9]+)"
rows = []
for name, orig in want:
    pat = re.escape(name) + r" +" + num + r" +" + num + r" +" + re.escape(orig) + r" +" + num + r"$"
    m = [re.match(pat, l) for l in lines]
    m = [x for x in m if x]
    assert len(m) == 1, (name, "row missing or twice")
    sec, ratio, wall = (float(g) for g in m[0].groups())
    assert sec > 0 and wall > 0, (name, sec, wall)
    rows.append((name, sec, ratio))
native = rows[0][1]

def ratio_ok(ratio, sec):
    # ratio printed with one decimal, seconds with six: within their rounding
    q = sec / native
    return abs(ratio - q) <= 0.05 + q * (0.5e-6 / sec + 0.5e-6 / native) + 1e-9

for name, sec, ratio in rows:
    assert ratio_ok(ratio, sec), (name, ratio, sec / native)
close = [re.match(r"close after 300 cancels .*: " + num + " s", l) for l in lines]
close = [x for x in close if x]
assert len(close) == 1 and float(close[0].group(1)) > 0, "close after 300 cancels"
floor = re.search(r"nothing else: " + num + r" s, ratio ([0-9]+\.[0-9])", "\n".join(lines))
assert floor and float(floor.group(1)) > 0, "trap floor"
assert ratio_ok(float(floor.group(2)), float(floor.group(1))), "trap floor ratio"
print("# table consistent: " + ", ".join("%s %.1f" % (n, r) for n, _, r in rows))
PY
	cat "$RSYS_TMP/check"
	tap_ok "rsys-bench table: measured seconds, ratios to native, the close after the cancels, the trap floor"
else
	tap_diag_file "$RSYS_TMP/err"
	tap_diag_file "$RSYS_TMP/table"
	tap_diag_file "$RSYS_TMP/check"
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
