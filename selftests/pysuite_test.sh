#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Python's own socket, select, event-loop and protocol test suites natively and under rsys (TAP per group).
#
# Usage: selftests/pysuite_test.sh [GROUP...]   (default: every group below)
# Needs Debian's libpython3.11-testsuite (make deps). A group passes when every test that
# passes natively (in the service netns) also passes under "rsys-load run", where every
# socket of the suite, loopback included, lives in the service domain.
# timeout: 1500

. "$(dirname "$0")/lib.sh"

PYSUITE=$RSYS_SRC/selftests/pysuite.py
LIMIT=${RSYS_PYSUITE_TIMEOUT:-400}

declare -A GROUPS_OF=(
	[waits]="test.test_select test.test_poll test.test_epoll test.test_selectors test.test_timeout"
	[socket]="test.test_socket"
	[http]="test.test_httplib test.test_urllib2_localnet test.test_socketserver"
	[protocols]="test.test_ftplib test.test_smtplib test.test_xmlrpc"
	[asyncio]="test.test_asyncio.test_sock_lowlevel test.test_asyncio.test_events test.test_asyncio.test_streams"
	[ssl]="test.test_ssl"
)
ORDER="waits socket http protocols asyncio ssl"
# AF_VSOCK has no loopback transport on these machines: its test waits forever, natively too.
# test_sethostname sets the host's name as root natively; the sandbox gives no capability.
EXCLUDE=(-x VSOCK -x test_sethostname)

rsys_require
"$PYTHON3" -c 'import test.test_socket' 2>/dev/null ||
	ksft_skip "Python's test suite is missing (apt-get install libpython3.11-testsuite)"
rsys_have_bins || ksft_skip "$RSYS_MISSING"
rsys_topology_up
# The suites talk to themselves over loopback: in the service domain under rsys.
RSYS_POLICY_EXTRA='allow any 127.0.0.0/8 *
allow any ::1/128 *
allow bind any 127.0.0.0/8 *
allow bind any ::/0 *'
rsys_delegate_start

groups=${*:-$ORDER}
tap_plan "$(echo $groups | wc -w)"
for g in $groups; do
	mods=${GROUPS_OF[$g]:-}
	if [ -z "$mods" ]; then
		tap_not_ok "$g: no such group (one of: $ORDER)"
		continue
	fi
	n=$RSYS_TMP/$g.native
	r=$RSYS_TMP/$g.rsys
	# The suites write their files (and bind unix sockets) in the current directory:
	# one the sandbox's uid may write, for both runs.
	mkdir -m 1777 "$RSYS_TMP/$g.cwd.n" "$RSYS_TMP/$g.cwd.r"
	start=$SECONDS
	(cd "$RSYS_TMP/$g.cwd.n" &&
		rsys_native timeout "$LIMIT" "$PYTHON3" "$PYSUITE" "$n" "${EXCLUDE[@]}" $mods) >"$n.err" 2>&1
	nrc=$?
	tn=$((SECONDS - start))
	(cd "$RSYS_TMP/$g.cwd.r" &&
		RSYS_RUN_TIMEOUT=$LIMIT rsys_run "$PYTHON3" "$PYSUITE" "$r" "${EXCLUDE[@]}" $mods) >"$r.err" 2>&1
	rrc=$?
	tr=$((SECONDS - start - tn))
	npass=$(grep -c '^pass ' "$n")
	rpass=$(grep -c '^pass ' "$r")
	# natively passing tests that did not pass (or did not run) under rsys
	lost=$(comm -23 <(sed -n 's/^pass //p' "$n" | sort) <(sed -n 's/^pass //p' "$r" | sort))
	echo "# $g: native $npass passed in ${tn}s (exit $nrc), rsys $rpass passed in ${tr}s (exit $rrc)"
	# Some of these suites race with their own threads (timing, not semantics): a test lost
	# under rsys runs once more on its own, and is lost only if it fails again.
	if [ -n "$lost" ] && [ "$(echo "$lost" | grep -c .)" -le 10 ] && [ "$rrc" -eq 0 ]; then
		echo "$lost" | sed 's/^/# again: /'
		# shellcheck disable=SC2086 # test ids are words
		(cd "$RSYS_TMP/$g.cwd.r" &&
			RSYS_RUN_TIMEOUT=$LIMIT rsys_run "$PYTHON3" "$PYSUITE" "$r.again" $lost) \
			>"$r.again.err" 2>&1
		lost=$(comm -23 <(echo "$lost" | sort) <(sed -n 's/^pass //p' "$r.again" | sort))
		cat "$r.again.err" >>"$r.err"
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
done
tap_finish
