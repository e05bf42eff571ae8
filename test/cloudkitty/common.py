"""What the CloudKitty tests share: the cluster run.sh started, and a
superuser connection that empties the rated data between tests."""

import contextlib
import os

import psycopg2
from oslo_config import cfg

# The backend's login (panko_writer + panko_auditor, and EXECUTE on
# rating_delete and rating_init, as the README tells operators).
CONNECTION = os.environ['PANKO_CK_CONNECTION']
ADMIN_DSN = os.environ['PANKO_CK_ADMIN_DSN']

import panko_drivers.cloudkitty  # noqa: E402  (registers [storage_panko])


def configure():
    """Point [storage_panko] connection at the test cluster (as a default:
    a test's config fixture clears it again when the test ends)."""
    cfg.CONF.set_default('connection', CONNECTION, 'storage_panko')


@contextlib.contextmanager
def admin():
    """A superuser's cursor, autocommit (every statement its own
    transaction; psycopg2's "with conn" would open one)."""
    conn = psycopg2.connect(ADMIN_DSN)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            yield cur
    finally:
        conn.close()


def empty_store():
    """Every test starts from an empty store: no rated data, no known
    groupby attributes, no project_id other than the scopes."""
    with admin() as cur:
        cur.execute("SELECT panko.rating_delete()")
        cur.execute("TRUNCATE panko.rating_attribute, panko.rating_project_alias")


def count_points():
    with admin() as cur:
        cur.execute("SELECT count(*) FROM panko.events WHERE event_type LIKE 'cloudkitty.%'")
        return cur.fetchone()[0]
