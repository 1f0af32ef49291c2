#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# selftests/peers.sh --quick moves the bytes on every arrangement it has; no timing is asserted.
#
# One TAP line per arrangement x test: ok when the quick run measured the cell (peers.sh
# counts a run only when iperf3 reported > 0 bits/s, sockperf gave percentiles, curl and
# scp got the file with the right sha256, wrk got > 0 answers and no errors); SKIP when the
# arrangement or the tool is missing (the reason peers.sh gives); not ok when it failed.
# timeout: 400

. "$(dirname "$0")/lib.sh"

rsys_require bc sha256sum
RSYS_TMP=$(mktemp -d /tmp/rsys-test.XXXXXX)
trap rsys_cleanup EXIT

before=$(ip netns list | sort)
dirs_before=$(compgen -G '/tmp/rsys-peers.*' | sort)
timeout --kill-after=10 300 "$RSYS_SRC/selftests/peers.sh" --quick -j -o "$RSYS_TMP/peers.png" \
	>"$RSYS_TMP/json" 2>"$RSYS_TMP/err"
rc=$?
if [ "$rc" -ne 0 ] || ! "$PYTHON3" -c 'import json, sys; json.load(open(sys.argv[1]))' "$RSYS_TMP/json" 2>/dev/null; then
	echo "1..1"
	tap_diag_file "$RSYS_TMP/err"
	tap_not_ok "peers.sh --quick -j (exit $rc) printed no JSON"
	tap_finish
fi

# Cells as "TAB-separated status, test, arrangement, detail" lines, in the table's order.
"$PYTHON3" - "$RSYS_TMP/json" >"$RSYS_TMP/cells" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
for r in d["tests"]:
    for a in d["arrangements"]:
        c = r["cells"][a]
        detail = "%s %s" % (c["median"], r["unit"]) if c["status"] == "ok" else c["reason"]
        print("\t".join([c["status"], r["test"], a, detail.replace("\t", " ").replace("\n", " ")]))
EOF
n=$(wc -l <"$RSYS_TMP/cells")
tap_plan $((n + 6))
while IFS=$'\t' read -r st t a detail; do
	case $st in
	ok) tap_ok "$a $t: moved the bytes ($detail)" ;;
	n/a) tap_skip "$a $t: $detail" ;;
	*) tap_not_ok "$a $t: $detail" ;;
	esac
done <"$RSYS_TMP/cells"

if [ -s "$RSYS_TMP/peers.png" ] && [ "$(head -c 4 "$RSYS_TMP/peers.png" | tail -c 3)" = PNG ]; then
	tap_ok "peers.sh -o wrote a PNG chart"
else
	tap_not_ok "peers.sh -o wrote no PNG chart"
fi

# Its namespaces and servers are gone: only names of its own pattern are compared, so
# that another test's namespaces coming and going meanwhile do not count.
after=$(ip netns list | sort)
left=$(comm -13 <(echo "$before") <(echo "$after") | grep -E '^rsys-(pasta|slirp)-')
left+=$(comm -13 <(echo "$dirs_before") <(compgen -G '/tmp/rsys-peers.*' | sort))
if [ -n "$left" ]; then
	tap_not_ok "peers.sh left namespaces or directories behind: $left"
else
	tap_ok "peers.sh leaves no namespace or directory behind"
fi

# --with takes only the arrangements it knows, and says which they are.
"$RSYS_SRC/selftests/peers.sh" --quick --with native,bogus >"$RSYS_TMP/with.out" 2>&1
rc=$?
if [ "$rc" -eq 2 ] && grep -q 'unknown arrangement bogus (native direct rsys floor pasta slirp)' "$RSYS_TMP/with.out"; then
	tap_ok "peers.sh --with native,bogus: usage error (exit 2) naming the arrangements"
else
	tap_diag_file "$RSYS_TMP/with.out"
	tap_not_ok "peers.sh --with native,bogus: exit $rc, not a usage error naming the arrangements"
fi

# The trap floor is remote mode's: trapfloor traps the calls the monitor has a handler for
# (loader/supervisor.c's sv_table), fcntl and ioctl included (by command, as the filter).
T=$RSYS_O/selftests/trapfloor
mine=$(sed -n '/^static const int trapped\[\]/,/^};/p' "$RSYS_SRC/selftests/trapfloor.c" |
	grep -o 'SYS_[a-z0-9_]*' | sort -u)
mine=$(printf '%s\n' $mine SYS_fcntl SYS_ioctl | sort -u)
theirs=$(sed -n '/^static const sv_handler_fn sv_table\[\]/,/^};/p' "$RSYS_SRC/loader/supervisor.c" |
	grep -o '^\s*\[SYS_[a-z0-9_]*\]' | grep -o 'SYS_[a-z0-9_]*' | sort -u)
if [ -n "$theirs" ] && [ "$mine" = "$theirs" ]; then
	tap_ok "trapfloor traps the $(echo "$theirs" | wc -l) calls the monitor handles in remote mode"
else
	tap_diag "only trapfloor: $(comm -23 <(echo "$mine") <(echo "$theirs") | tr '\n' ' ')"
	tap_diag "only sv_table: $(comm -13 <(echo "$mine") <(echo "$theirs") | tr '\n' ' ')"
	tap_not_ok "trapfloor and remote mode's sv_table trap different calls"
fi

# It traps them for real and gives the program's exit status.
"$T" -v sh -c 'read -r x </dev/null; exit 3' >/dev/null 2>"$RSYS_TMP/floor.err"
rc=$?
calls=$(sed -n 's/^trapfloor: \([0-9]*\) calls trapped$/\1/p' "$RSYS_TMP/floor.err")
if [ "$rc" -eq 3 ] && [ "${calls:-0}" -gt 0 ]; then
	tap_ok "trapfloor: sh's exit status 3, $calls of its calls trapped"
else
	tap_diag_file "$RSYS_TMP/floor.err"
	tap_not_ok "trapfloor: exit $rc (want 3), ${calls:-no} calls trapped"
fi

# --pin takes only a CPU this process may use, and says which those are.
"$RSYS_SRC/selftests/peers.sh" --quick --pin 4096 >"$RSYS_TMP/pin.out" 2>&1
rc=$?
cpus=$(awk '/^Cpus_allowed_list:/ { print $2 }' /proc/self/status)
if [ "$rc" -eq 2 ] && grep -q -- "--pin wants the number of a CPU this process may use" "$RSYS_TMP/pin.out"; then
	tap_ok "peers.sh --pin 4096: usage error (exit 2) naming the CPUs ($cpus)"
else
	tap_diag_file "$RSYS_TMP/pin.out"
	tap_not_ok "peers.sh --pin 4096: exit $rc, not a usage error"
fi
tap_finish
