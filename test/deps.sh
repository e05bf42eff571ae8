#!/usr/bin/env bash
# Install what panko's build, demo and tests need on Debian 12 (as root),
# skipping packages that are already there.
set -euo pipefail

PACKAGES=(
    build-essential make gcc clang libclang-rt-14-dev
    postgresql-15 postgresql-server-dev-15 postgresql-common
    postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl
    postgresql-15-cron
    libmicrohttpd-dev libpq-dev
    python3-gabbi python3-psycopg2
    python3-openstackclient python3-pankoclient python3-ceilometer
    wrk curl procps
    keystone uwsgi-core uwsgi-plugin-python3 python3-keystoneclient
    libcurl4-openssl-dev libjansson-dev libssl-dev
    python3-osprofiler python3-oslo.serialization python3-testtools python3-sqlalchemy
    python3-cloudkitty python3-testscenarios python3-oslotest
)

missing=()
for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "deps: all ${#PACKAGES[@]} packages present"
    exit 0
fi

echo "deps: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
# Debian's postgresql-common would create and start a cluster on 5432; we
# run our own clusters, so keep it from doing that.
if [ ! -f /etc/postgresql-common/createcluster.conf ]; then
    $SUDO mkdir -p /etc/postgresql-common
    echo "create_main_cluster = false" | $SUDO tee /etc/postgresql-common/createcluster.conf >/dev/null
fi
# Debian's keystone asks (debconf) whether to set up a database, bootstrap
# an admin and register an endpoint; test/keystone/lib.sh runs its own
# Keystone from a temp dir, so answer no to all three.  Its postinst also
# starts the system keystone service (uwsgi on :5000): deny service starts
# for this install (policy-rc.d, unless the machine has one, as Docker
# images do) and leave the unit disabled.
$SUDO debconf-set-selections <<'DEBCONF'
keystone keystone/configure_db boolean false
keystone keystone/create-admin-tenant boolean false
keystone keystone/register-endpoint boolean false
DEBCONF
policy_rc=
if [ ! -e /usr/sbin/policy-rc.d ]; then
    policy_rc=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy_rc" >/dev/null
    $SUDO chmod 755 "$policy_rc"
    trap '$SUDO rm -f "$policy_rc"' EXIT
fi
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
if [[ " ${missing[*]} " == *" keystone "* ]]; then
    $SUDO systemctl disable keystone >/dev/null 2>&1 || true
    $SUDO update-rc.d keystone disable >/dev/null 2>&1 || true
fi
