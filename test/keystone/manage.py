"""Run several keystone-manage commands in one Python process.

    /usr/bin/python3 manage.py KEYSTONE_CONF 'db_sync' 'fernet_setup ...' ...

Each argument is one keystone-manage command line (split on blanks, so no
quoting), run in order through keystone.cmd.cli.main, the entry point of
/usr/bin/keystone-manage, as `keystone-manage --config-file KEYSTONE_CONF
ARGS`.  Importing keystone costs about 3 s; the four commands a fresh
Keystone needs take under 1 s together, so one process instead of four
saves ~9 s of CPU.  Stops at the first command that fails (exit 1).
"""
import logging
import os
import sys
import time


def main():
    conf, commands = sys.argv[1], sys.argv[2:]
    t0 = time.monotonic()
    from keystone.cmd import cli
    print("import keystone: %.2f s" % (time.monotonic() - t0), flush=True)
    rc = 0
    for line in commands:
        args = line.split()
        t = time.monotonic()
        # main() registers its CLI option and parses argv each time:
        # clear the parsed state of the previous command first.
        cli.CONF.clear()
        try:
            cli.main(argv=["keystone-manage", "--config-file", conf] + args)
        except SystemExit as e:
            if e.code not in (None, 0):
                print("keystone-manage %s: exit %s" % (args[0], e.code), flush=True)
                rc = 1
        except Exception as e:  # report it like keystone-manage would
            logging.getLogger("keystone").exception("keystone-manage %s", args[0])
            print("keystone-manage %s: %s: %s" % (args[0], type(e).__name__, e), flush=True)
            rc = 1
        if rc:
            break
        print("keystone-manage %s: %.2f s" % (args[0], time.monotonic() - t), flush=True)
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    # skip interpreter teardown: eventlet's patched threading prints an
    # "Exception ignored in _removeHandlerRef" traceback there
    os._exit(rc)


if __name__ == "__main__":
    main()
