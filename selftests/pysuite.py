# SPDX-License-Identifier: GPL-2.0
"""Runs Python standard-library test modules, writing one "OUTCOME test-id" line per test.

Usage: pysuite.py OUTFILE [-x SUBSTRING]... MODULE-OR-TEST-ID...
(run by selftests/pysuite_test.sh natively and under rsys; -x leaves out tests whose id contains SUBSTRING)
Outcomes: pass, fail, error, skip, xfail, xpass; "start TEST-ID" comes before each, so that
a watchdog outside (selftests/pysuite_test.sh) sees a test that hangs: its SIGABRT makes
faulthandler write every thread's traceback to stderr, and the run ends there. (A watchdog
thread in here would make every test process multithreaded, which rsys treats otherwise.)
"""
import faulthandler
import sys
import unittest


class Recorder(unittest.TextTestResult):
    def __init__(self, out, *args, **kw):
        super().__init__(*args, **kw)
        self.out = out

    def _rec(self, outcome, test):
        self.out.write("%s %s\n" % (outcome, test.id()))
        self.out.flush()

    def startTest(self, test):
        self._rec("start", test)
        sys.stderr.write("\n%s: " % test.id())
        sys.stderr.flush()
        super().startTest(test)

    def addSuccess(self, test):
        super().addSuccess(test)
        self._rec("pass", test)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._rec("fail", test)

    def addError(self, test, err):
        super().addError(test, err)
        self._rec("error", test)

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._rec("skip", test)

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._rec("xfail", test)

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._rec("xpass", test)


def tests(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from tests(t)
        else:
            yield t


def main():
    faulthandler.enable(all_threads=True)
    out = open(sys.argv[1], "w")
    args = sys.argv[2:]
    excluded = []
    while len(args) >= 2 and args[0] == "-x":
        excluded.append(args[1])
        args = args[2:]
    suite = unittest.TestSuite()
    for name in args:
        for t in tests(unittest.defaultTestLoader.loadTestsFromName(name)):
            if not any(x in t.id() for x in excluded):
                suite.addTest(t)
    runner = unittest.TextTestRunner(stream=sys.stderr, verbosity=1,
                                     resultclass=lambda *a, **kw: Recorder(out, *a, **kw))
    runner.run(suite)
    return 0


if __name__ == "__main__":
    sys.exit(main())
