#!/usr/bin/python3
"""Run OSProfiler's own functional test, osprofiler/tests/functional/
test_driver.py from Debian's python3-osprofiler, unmodified, against
panko://, with only its configuration set.

How that test gets its configuration:
  DriverTestCase.setUp        CONF(["--config-file", <its dir>/config.cfg])
                              then opts.set_defaults(CONF, ...): the
                              connection string comes from config.cfg;
  RedisDriverTestCase.setUp   CONF([]) then set_defaults(connection_string=
                              "redis://localhost:6379"): a default only.
oslo.config reads OS_<GROUP>__<OPTION> from the environment before config
files and defaults, so OS_PROFILER__CONNECTION_STRING=panko://... sets
both (RedisDriverTestCase then runs against panko too: its test_list_traces
is the list check).  Debian does not ship config.cfg, so the test module
is loaded from a directory holding a symlink to Debian's file and a
config.cfg with the same connection string: the file that runs is
Debian's, byte for byte (checked below).

Each test runs in a process of its own, as stestr runs them upstream: the
test module calls profiler.init(), which keeps one profiler (one base_id)
per thread, so in one process the second test would read the first one's
spans too, with any driver.

    functional.py CONNECTION_STRING    exit 0 when exactly the 3 tests ran and passed
"""

import filecmp
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

EXPECTED = {
    "osprofiler.tests.functional.test_driver.DriverTestCase.test_get_report",
    "osprofiler.tests.functional.test_driver.RedisDriverTestCase.test_get_report",
    "osprofiler.tests.functional.test_driver.RedisDriverTestCase.test_list_traces",
}


def main():
    if len(sys.argv) == 3:
        return run_one(sys.argv[1], sys.argv[2])
    conn_str = sys.argv[1]
    failures = []
    ran = 0
    for test_id in sorted(EXPECTED):
        out = subprocess.run([sys.executable, os.path.abspath(__file__), conn_str, test_id],
                             capture_output=True, text=True)
        text = out.stdout + out.stderr
        print(out.stdout.strip())
        ran += text.count("\nRan 1 test")
        if out.returncode != 0:
            failures.append("%s failed:\n%s" % (test_id, text[-4000:]))
    if ran != len(EXPECTED):
        failures.append("%d tests ran, expected %d" % (ran, len(EXPECTED)))
    for f in failures:
        print("FAIL: " + f)
    if not failures:
        print("functional: OSProfiler's %d tests passed against panko://" % ran)
    return 1 if failures else 0


def run_one(conn_str, test_id):
    os.environ["OS_PROFILER__CONNECTION_STRING"] = conn_str

    import osprofiler.tests.functional as functional
    work = tempfile.mkdtemp(prefix="panko-osprofiler-functional-")
    try:
        return _run_in(work, conn_str, test_id, functional)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run_in(work, conn_str, test_id, functional):
    debian_dir = functional.__path__[-1]
    debian_file = os.path.join(debian_dir, "test_driver.py")
    os.symlink(debian_file, os.path.join(work, "test_driver.py"))
    with open(os.path.join(work, "config.cfg"), "w") as f:
        f.write("[profiler]\nconnection_string = %s\n" % conn_str)
    # the package's modules are looked up here first, then in Debian's dir
    functional.__path__.insert(0, work)

    import osprofiler.tests.functional.test_driver as test_driver
    assert os.path.dirname(test_driver.__file__) == work, test_driver.__file__
    assert filecmp.cmp(os.path.realpath(test_driver.__file__), debian_file, shallow=False)
    print("# %s: %s (Debian's python3-osprofiler, unmodified) with "
          "OS_PROFILER__CONNECTION_STRING and config.cfg set to %s" % (test_id.split(".", 4)[-1], debian_file, conn_str.split("?")[0]))

    suite = unittest.defaultTestLoader.loadTestsFromModule(test_driver)
    ids = {t.id() for t in _flatten(suite)}
    one = unittest.TestSuite([t for t in _flatten(suite) if t.id() == test_id])
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(one)

    # the test's own configuration ended up as panko://, and its notifier
    # is the panko driver
    from oslo_config import cfg
    from osprofiler import notifier
    failures = []
    if cfg.CONF.profiler.connection_string != conn_str:
        failures.append("the test's connection_string was %r" % cfg.CONF.profiler.connection_string)
    owner = getattr(notifier.get(), "__self__", None)
    if type(owner).__name__ != "PankoDriver":
        failures.append("the test's notifier was %r, not the panko driver's notify" % (notifier.get(),))
    if ids != EXPECTED:
        failures.append("expected the tests %s, found %s" % (sorted(EXPECTED), sorted(ids)))
    if result.testsRun != 1:
        failures.append("%d tests ran, expected 1 (%s)" % (result.testsRun, test_id))
    if not result.wasSuccessful() or result.skipped:
        failures.append("%d failures, %d errors, %d skipped"
                        % (len(result.failures), len(result.errors), len(result.skipped)))
    for f in failures:
        print("FAIL: " + f)
    return 1 if failures else 0


def _flatten(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from _flatten(t)
        else:
            yield t


if __name__ == "__main__":
    sys.exit(main())
