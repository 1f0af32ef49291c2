#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Go's own net package tests natively and under rsys: every natively passing test must pass (TAP).
#
# Usage: selftests/gonet_test.sh [REGEXP]   (-test.run of the portion, default: the -short suite)
# Needs Debian's golang-go (make deps). The test binary is built once into $RSYS_O/gonet
# (Go's build cache there; the standard library needs nothing from the internet) and runs in
# $GOROOT/src/net, where its testdata is. -test.short leaves out the tests that need the
# internet (DNS lookups of google.com, ...). Go's runtime waits in edge-triggered epoll from
# many threads: the kernel's epoll meets rsys's placeholders and the delegate's sockets here.
# timeout: 600

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/suites.sh"

# 5-6 s natively; 30-40 s in remote mode here (TestSplice's 1 GiB goes through the delegate).
SUITE_LIMIT=${RSYS_GONET_TIMEOUT:-150}
GONET=$RSYS_O/gonet
GONET_BIN=$GONET/net.test
# The portion: all that -test.short runs (7 s natively on two cores).
GONET_RUN=${1:-.}

rsys_require go
rsys_have_bins || ksft_skip "$RSYS_MISSING"
GOROOT=$(go env GOROOT) || ksft_skip "go does not run"
mkdir -p "$GONET"
# Nothing of the standard library's tests needs a download: GOPROXY=off makes sure.
GOCACHE=$GONET/cache GOPATH=$GONET/gopath GOPROXY=off GOFLAGS='' \
	go test -c -o "$GONET_BIN" net >"$GONET/build.log" 2>&1 || {
	tap_diag_file "$GONET/build.log"
	ksft_skip "go test -c net failed (golang-go incomplete?)"
}
chmod -R a+rX "$GONET"
rsys_topology_up
# The tests talk to themselves over loopback (v4 and v6), TCP and UDP: in the service
# domain under rsys.
RSYS_POLICY_EXTRA='allow any 127.0.0.0/8 *
allow any ::1/128 *
allow bind any 127.0.0.0/8 *
allow bind any ::/0 *
allow bind any 0.0.0.0/0 *'
rsys_delegate_start

# Left out (ids matching this extended regexp, and their parents): raw IP sockets, which
# rsys refuses (rsys-load(8)); the tests see uid 0 under rsys, as natively, and try them.
GONET_EXCLUDE='^TestIPConn(LocalName|RemoteName|SpecificMethods)$'

# go_passed LOG: "pass ID" for each passing test not left out (GONET_EXCLUDE): a test with
# a left-out subtest fails with it, so the ids above a left-out one go too. A run that Go's
# -test.timeout ended (a test hung) ends with "start ID" of the top-level test that was running
# (neither done nor paused for the parallel ones): suite_group runs the rest on without it.
go_passed()
{
	sed -nE 's/^ *--- PASS: ([^ ]+) .*/\1/p' "$1" | awk -v x="$GONET_EXCLUDE" '
		{ id[NR] = $0 }
		$0 ~ x { n = split($0, p, "/"); s = p[1]; out[s]; for (i = 2; i <= n; i++) out[s = s "/" p[i]] }
		END { for (i = 1; i <= NR; i++) if (!(id[i] in out)) print "pass " id[i] }'
	awk '/^=== RUN   / { if ($3 !~ /\//) order[++n] = $3 }
		/^=== PAUSE / { paused[$3] = 1 }
		/^=== CONT  / { paused[$3] = 0 }
		/^ *--- (PASS|FAIL|SKIP): / { done[$3] = 1 }
		/^panic: test timed out/ { hung = 1 }
		END { if (hung) for (i = n; i > 0; i--) if (!(order[i] in done) && !paused[order[i]]) {
			print "start " order[i]; exit } }' "$1"
}

# go_run MODE OUT CWD [TEST-ID...]: the suite's runner (selftests/suites.sh); test ids
# (Name or Name/Subtest) run their top-level tests again.
go_run()
(
	mode=$1 out=$2 cwd=$3 run=$GONET_RUN
	shift 3
	[ $# -gt 0 ] && run="^($(printf '%s\n' "$@" | sed 's,/.*,,' | sort -u | paste -sd '|'))\$"
	# The tests bind unix sockets in $TMPDIR and read ./testdata.
	cd "$GOROOT/src/net" && TMPDIR=$cwd suite_exec "$mode" "$GONET_BIN" \
		-test.v -test.short -test.run "$run" -test.timeout "$((SUITE_LIMIT - 10))s" \
		>"$out.log" 2>&1
	rc=$?
	cat "$out.log"
	go_passed "$out.log" >"$out"
	# A failing test makes the exit status 1: the run itself failed only without the
	# binary's verdict line (killed, a panic, a timeout; the socket statistics follow it).
	[ "$rc" -eq 1 ] && grep -aqx FAIL "$out.log" && rc=0
	exit "$rc"
)

tap_plan 1
suite_group "net" go_run
tap_finish
