#!/usr/bin/python3
"""Install panko_drivers for the Python that runs this script (make install
runs it with /usr/bin/python3): a plain copy of the package into the first
site-packages directory (on Debian /usr/local/lib/python3.X/dist-packages,
which dpkg leaves alone), panko_drivers.pth next to it, byte-compiled
files, and a dist-info directory (METADATA and a RECORD, so that pip lists
it and ``pip uninstall panko-drivers`` removes it).

    /usr/bin/python3 python/install.py --version 0.4.0 [--root DESTDIR] [--sitedir DIR]
"""

import argparse
import base64
import compileall
import hashlib
import os
import shutil
import site
import sys

NAME = "panko_drivers"
DIST = "panko-drivers"
HERE = os.path.dirname(os.path.abspath(__file__))


def record_line(path, sitedir):
    with open(path, "rb") as f:
        digest = base64.urlsafe_b64encode(hashlib.sha256(f.read()).digest()).rstrip(b"=")
    return "%s,sha256=%s,%d" % (os.path.relpath(path, sitedir), digest.decode(),
                                os.path.getsize(path))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--version", required=True)
    ap.add_argument("--root", default="", help="staging root (DESTDIR)")
    ap.add_argument("--sitedir", default=None,
                    help="site-packages directory (default: %s)" % site.getsitepackages()[0])
    args = ap.parse_args()

    sitedir = args.sitedir or site.getsitepackages()[0]
    target = args.root.rstrip("/") + sitedir if args.root else sitedir
    pkg = os.path.join(target, NAME)
    os.makedirs(target, exist_ok=True)

    # A fresh copy: modules removed from the source must not linger.
    if os.path.isdir(pkg):
        shutil.rmtree(pkg)
    os.makedirs(pkg)
    for name in sorted(os.listdir(os.path.join(HERE, NAME))):
        if name.endswith(".py"):
            shutil.copyfile(os.path.join(HERE, NAME, name), os.path.join(pkg, name))
    shutil.copyfile(os.path.join(HERE, NAME + ".pth"), os.path.join(target, NAME + ".pth"))
    compileall.compile_dir(pkg, quiet=1, ddir=os.path.join(sitedir, NAME))

    for old in os.listdir(target):
        if old.startswith(NAME + "-") and old.endswith(".dist-info"):
            shutil.rmtree(os.path.join(target, old))
    info = os.path.join(target, "%s-%s.dist-info" % (NAME, args.version))
    os.makedirs(info)
    with open(os.path.join(info, "METADATA"), "w") as f:
        f.write("Metadata-Version: 2.1\nName: %s\nVersion: %s\n"
                "Summary: Adapters that store OpenStack systems' records in panko's "
                "PostgreSQL event store (OSProfiler's panko:// driver, CloudKitty's panko storage backend)\n"
                "License: Apache-2.0\nRequires-Dist: psycopg2\nRequires-Dist: osprofiler\nProvides-Extra: cloudkitty\nRequires-Dist: cloudkitty; extra == \"cloudkitty\"\n"
                % (DIST, args.version))
    with open(os.path.join(info, "INSTALLER"), "w") as f:
        f.write("panko-make\n")
    with open(os.path.join(info, "top_level.txt"), "w") as f:
        f.write(NAME + "\n")
    # CloudKitty's loader (stevedore) finds its storage backends here.
    with open(os.path.join(info, "entry_points.txt"), "w") as f:
        f.write("[cloudkitty.storage.v2.backends]\npanko = panko_drivers.cloudkitty:PankoStorage\n")
    files = [os.path.join(target, NAME + ".pth")]
    for d, _, names in os.walk(pkg):
        files += [os.path.join(d, n) for n in sorted(names)]
    files += [os.path.join(info, n) for n in ("METADATA", "INSTALLER", "top_level.txt", "entry_points.txt")]
    with open(os.path.join(info, "RECORD"), "w") as f:
        for path in files:
            f.write(record_line(path, target) + "\n")
        f.write(os.path.relpath(os.path.join(info, "RECORD"), target) + ",,\n")
    print("panko_drivers %s installed in %s (%s)" % (args.version, target, sys.executable))


if __name__ == "__main__":
    main()
