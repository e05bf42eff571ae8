"""uwsgi --wsgi-file for test/keystone/lib.sh.

The same application as Debian's /usr/bin/keystone-wsgi-public
(keystone.server.wsgi.initialize_public_application, which reads the
files named by OS_KEYSTONE_CONFIG_FILES), with one difference: after the
imports (~3 s) it waits for the file named by KEYSTONE_READY_FILE.
keystone_start creates that file once keystone-manage has made the fernet
keys and the database, so uwsgi can import keystone while keystone-manage
runs: the fernet provider refuses to start on an empty key repository.
"""
import os
import time

from keystone.server.wsgi import initialize_public_application

_ready = os.environ.get("KEYSTONE_READY_FILE")
if _ready:
    _deadline = time.monotonic() + float(os.environ.get("KEYSTONE_READY_TIMEOUT", "120"))
    while not os.path.exists(_ready):
        if time.monotonic() > _deadline:
            raise SystemExit("keystone: %s did not appear" % _ready)
        time.sleep(0.05)

application = initialize_public_application()
