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
. "$(dirname "$0")/suites.sh"

PYSUITE=$RSYS_SRC/selftests/pysuite.py
SUITE_LIMIT=${RSYS_PYSUITE_TIMEOUT:-400}

declare -A GROUPS_OF=(
	[waits]="test.test_select test.test_poll test.test_epoll test.test_selectors test.test_timeout"
	[socket]="test.test_socket"
	[http]="test.test_httplib test.test_urllib2_localnet test.test_socketserver"
	[protocols]="test.test_ftplib test.test_smtplib test.test_xmlrpc"
	[asyncio]="test.test_asyncio.test_sock_lowlevel test.test_asyncio.test_events test.test_asyncio.test_streams"
	[ssl]="test.test_ssl"
	[aioloop]="test.test_asyncio.test_server test.test_asyncio.test_sendfile
		test.test_asyncio.test_unix_events test.test_asyncio.test_selector_events
		test.test_asyncio.test_base_events test.test_asyncio.test_buffered_proto"
	[aiossl]="test.test_asyncio.test_ssl test.test_asyncio.test_sslproto"
	[servers]="test.test_httpservers test.test_wsgiref test.test_docxmlrpc test.test_asyncore
		test.test_asynchat test.test_poplib"
	[handlers]="test.test_imaplib test.test_logging.SocketHandlerTest
		test.test_logging.UnixSocketHandlerTest test.test_logging.DatagramHandlerTest
		test.test_logging.UnixDatagramHandlerTest test.test_logging.SysLogHandlerTest
		test.test_logging.UnixSysLogHandlerTest test.test_logging.IPv6SysLogHandlerTest
		test.test_logging.HTTPHandlerTest test.test_logging.SMTPHandlerTest
		test.test_logging.ConfigDictTest test.test_signal.WakeupSignalTests
		test.test_signal.WakeupSocketSignalTests"
)
ORDER="waits socket http protocols asyncio ssl aioloop aiossl servers handlers"
# AF_VSOCK has no loopback transport on these machines: its test waits forever, natively too.
# test_sethostname sets the host's name as root natively; the sandbox gives no capability.
# For the CI budget only: four imaplib tests wait 10 s each for their server's read timeout,
# natively too (the same connects run in the tests next to them).
EXCLUDE=(-x VSOCK -x test_sethostname -x test_imaplib_timeout_test
	-x NewIMAPSSLTests.test_ssl_verified -x NewIMAPSSLTests.test_ssl_raises)

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

# A test that runs longer than this hangs (seconds; the suites' slowest take some 20).
PYSUITE_TEST_LIMIT=${PYSUITE_TEST_LIMIT:-120}

# py_watchdog OUT: SIGABRT to the pysuite.py writing OUT once the test of its last "start"
# line has run PYSUITE_TEST_LIMIT seconds: faulthandler dumps its threads' stacks and it ends.
py_watchdog()
{
	local out=$1 last= line since=$SECONDS

	while sleep 2; do
		line=$(tail -n 1 "$out" 2>/dev/null)
		if [ "$line" != "$last" ]; then
			last=$line
			since=$SECONDS
		elif [ "${line#start }" != "$line" ] && [ $((SECONDS - since)) -ge "$PYSUITE_TEST_LIMIT" ]; then
			pkill -ABRT -f -- "$PYSUITE $out " && since=$SECONDS
		fi
	done
}

# py_run MODE OUT CWD MODULE-OR-TEST-ID...: the suite's runner (selftests/suites.sh).
py_run()
(
	mode=$1 out=$2 cwd=$3
	shift 3
	py_watchdog "$out" &
	dog=$!
	# The suites write their files (and bind unix sockets) in the current directory:
	# one the sandbox's uid may write, for both runs.
	cd "$cwd" && suite_exec "$mode" "$PYTHON3" "$PYSUITE" "$out" "${EXCLUDE[@]}" "$@"
	rc=$?
	kill "$dog" 2>/dev/null
	wait "$dog" 2>/dev/null
	return $rc
)

groups=${*:-$ORDER}
tap_plan "$(echo $groups | wc -w)"
for g in $groups; do
	mods=${GROUPS_OF[$g]:-}
	if [ -z "$mods" ]; then
		tap_not_ok "$g: no such group (one of: $ORDER)"
		continue
	fi
	# shellcheck disable=SC2086 # module names are words
	suite_group "$g" py_run $mods
done
tap_finish
