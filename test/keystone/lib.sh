# shellcheck shell=bash
# test/keystone/lib.sh: a real Keystone (Debian's keystone 2:22.0.2) for
# panko's tests, in a temp directory: sqlite, fernet tokens, an in-process
# dogpile memory cache, served by uwsgi (python3 plugin) on 127.0.0.1.
# No systemd, no Apache, and nothing read from /etc/keystone.
#
# Source it from a bash test (it works under set -euo pipefail).  It defines:
#
#   keystone_start [TOKEN_EXPIRATION_SECONDS]   (default 3600)
#       temp dir, keystone.conf, keystone-manage db_sync / fernet_setup /
#       credential_setup / bootstrap (admin, project admin, roles admin >
#       member > reader, region RegionOne, identity endpoints), uwsgi in the
#       background; returns once GET /v3 answers.  Exports
#         KEYSTONE_URL=http://127.0.0.1:$KEYSTONE_PORT/v3  KEYSTONE_PORT
#         KEYSTONE_ROOT_URL=http://127.0.0.1:$KEYSTONE_PORT (no /v3)
#         KEYSTONE_DIR (conf, db, keys, logs)  KEYSTONE_PID (uwsgi)
#         KEYSTONE_ADMIN_USER=admin  KEYSTONE_ADMIN_PROJECT=admin
#         KEYSTONE_ADMIN_PASSWORD  KEYSTONE_REGION=RegionOne
#         KEYSTONE_START_SECONDS (wall time of the whole start)
#       Set KEYSTONE_PORT_WANTED to choose the port.
#   keystone_setup_panko PANKO_PUBLIC_URL
#       as admin, with the openstack CLI: projects p1, p2, service; role
#       service; users alice (member of p1), bob (member of p2), carol
#       (admin of p1), panko and ceilometer (service on project service);
#       service "panko" of type "event" with public/internal/admin
#       endpoints at PANKO_PUBLIC_URL in RegionOne.  Exports
#         KS_{ADMIN,ALICE,BOB,CAROL,PANKO,CEILOMETER}_PASSWORD
#         KS_{ADMIN,ALICE,BOB,CAROL,PANKO,CEILOMETER}_ID     (user ids)
#         KS_PANKO_USER=panko KS_CEILOMETER_USER=ceilometer
#         KS_SERVICE_PROJECT=service
#         KS_P1_ID KS_P2_ID KS_SERVICE_PROJECT_ID KS_ADMIN_PROJECT_ID
#         KS_ROLE_{ADMIN,MEMBER,READER,SERVICE}_ID  KS_EVENT_SERVICE_ID
#         KS_EVENT_{PUBLIC,INTERNAL,ADMIN}_ENDPOINT_ID  KS_DOMAIN_ID=default
#       Prints one summary line.  Call it once per keystone_start.
#   keystone_token USER PASSWORD PROJECT
#       prints a project-scoped token id (POST /v3/auth/tokens).
#   keystone_validate SERVICE_TOKEN SUBJECT_TOKEN [BODY_FILE]
#       GET /v3/auth/tokens?nocatalog; prints the HTTP status (000 when
#       Keystone cannot be reached); the body goes to BODY_FILE if given.
#   keystone_stop        stop uwsgi (TERM, then KILL after 10 s); keeps data
#   keystone_restart     start uwsgi again: same port, conf, db and keys
#   keystone_cleanup     stop and remove KEYSTONE_DIR (KEEP_KEYSTONE=1 keeps)
#   keystone_trap_exit   add keystone_cleanup in front of the caller's
#                        current EXIT trap (e.g. test/lib.sh's pg_stop)
#   keystone_os_env USER PASSWORD PROJECT   export OS_* for that user
#   keystone_admin_env   export OS_* for admin
#   keystone_openstack ARGS...  run `openstack ARGS` as admin in a subshell
#                               (the caller's OS_* are left alone)
#
# uwsgi gets SIGTERM when the shell that called keystone_start exits, even
# if that shell is killed (setpriv --pdeathsig): do not call keystone_start
# in a subshell or $(...) that ends before the test does.
#
# Traps: keystone_start sets none.  test/lib.sh's pg_start does
# `trap pg_stop EXIT`, so call keystone_trap_exit after pg_start, or write
# the chain yourself: trap 'keystone_cleanup; pg_stop' EXIT.
#
# uwsgi runs one process (the memory cache is per process: with several,
# a revocation seen by one would not be seen by the others) with one
# thread by default (KEYSTONE_THREADS): with several, SQLAlchemy's sqlite
# connections are sometimes closed from another thread than theirs, which
# sqlite refuses, and the database stays locked until writes time out
# (POST /v3/users: 500 after 5 s) on a loaded machine.  It sends
# "Connection: close": its plain --http-socket cannot keep a connection
# alive, and clients that reuse one get resets on POST.

_KS_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# Debian's /usr/bin/keystone-wsgi-public, plus a wait (see wsgi.py)
KEYSTONE_WSGI=${KEYSTONE_WSGI:-$_KS_LIB_DIR/wsgi.py}
KEYSTONE_THREADS=${KEYSTONE_THREADS:-1}

_ks_now() { date +%s.%N; }
_ks_secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

_ks_free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

_ks_pw() {
    printf '%s-%s' "$1" "$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
}

# alive and not a zombie
_ks_alive() {
    local pid=$1 state
    [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || return 1
    state=$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null) || return 1
    [ -n "$state" ] && [ "$state" != Z ]
}

_ks_manage() {
    local log=$1; shift
    if ! keystone-manage --config-file "$KEYSTONE_DIR/keystone.conf" "$@" >"$log" 2>&1; then
        echo "keystone: keystone-manage $1 failed:" >&2
        tail -n 30 "$log" >&2
        return 1
    fi
}

_ks_write_conf() {
    local expiration=$1 d=$KEYSTONE_DIR
    mkdir -p "$d/policy.d"
    # YAML (not JSON) so oslo.policy does not warn; no rule: the defaults
    echo '# no overrides: Keystone 22 policy defaults' >"$d/policy.yaml"
    cat >"$d/keystone.conf" <<EOF
[DEFAULT]
log_dir = $d
log_file = keystone.log
use_stderr = false
debug = false

[database]
connection = sqlite:///$d/keystone.db

[token]
provider = fernet
expiration = $expiration

[fernet_tokens]
key_repository = $d/fernet-keys
max_active_keys = 3

[fernet_receipts]
key_repository = $d/fernet-keys

[credential]
key_repository = $d/credential-keys

[cache]
enabled = true
backend = dogpile.cache.memory

[identity]
password_hash_algorithm = bcrypt
# bcrypt allows 4..31 (default 12): 4 makes each password check ~1 ms
password_hash_rounds = 4

[oslo_policy]
policy_file = $d/policy.yaml
policy_dirs = $d/policy.d
EOF
}

_ks_spawn() {
    (
        cd "$KEYSTONE_DIR" || exit 1
        export OS_KEYSTONE_CONFIG_FILES="$KEYSTONE_DIR/keystone.conf"
        export KEYSTONE_READY_FILE="$KEYSTONE_DIR/ready"
        unset OS_KEYSTONE_CONFIG_DIR
        # SIGTERM when the shell that started it dies, even by SIGKILL
        exec setpriv --pdeathsig TERM -- uwsgi --plugin python3 \
            --http-socket "127.0.0.1:$KEYSTONE_PORT" \
            --wsgi-file "$KEYSTONE_WSGI" \
            --processes 1 --threads "$KEYSTONE_THREADS" \
            --need-app --die-on-term --skip-atexit-teardown \
            --buffer-size 65535 \
            --add-header 'Connection: close' \
            --pidfile "$KEYSTONE_DIR/uwsgi.pid"
    ) >>"$KEYSTONE_DIR/uwsgi.log" 2>&1 </dev/null &
    KEYSTONE_PID=$!
    export KEYSTONE_PID
}

# wait until GET /v3 answers 200 (uwsgi binds before the app is loaded:
# a request sent meanwhile waits for the app)
_ks_wait_ready() {
    local deadline=$((SECONDS + ${KEYSTONE_START_TIMEOUT:-90})) code
    while :; do
        if ! _ks_alive "$KEYSTONE_PID"; then
            echo "keystone: uwsgi exited; $KEYSTONE_DIR/uwsgi.log:" >&2
            tail -n 30 "$KEYSTONE_DIR/uwsgi.log" >&2
            return 1
        fi
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$KEYSTONE_URL" 2>/dev/null) || true
        [ "$code" = 200 ] && return 0
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "keystone: no answer from $KEYSTONE_URL (last status $code)" >&2
            tail -n 30 "$KEYSTONE_DIR/uwsgi.log" >&2
            return 1
        fi
        sleep 0.1
    done
}

keystone_start() {
    local expiration=${1:-3600} t0 pid_db pid_fernet pid_cred rc=0
    if _ks_alive "${KEYSTONE_PID:-}"; then
        echo "keystone: already running (pid $KEYSTONE_PID)" >&2
        return 1
    fi
    t0=$(_ks_now)
    KEYSTONE_DIR=$(mktemp -d /tmp/panko-keystone-XXXXXX)
    KEYSTONE_PORT=${KEYSTONE_PORT_WANTED:-$(_ks_free_port)}
    KEYSTONE_URL="http://127.0.0.1:$KEYSTONE_PORT/v3"
    KEYSTONE_ROOT_URL="http://127.0.0.1:$KEYSTONE_PORT"
    KEYSTONE_ADMIN_USER="admin"
    KEYSTONE_ADMIN_PROJECT="admin"
    KEYSTONE_ADMIN_PASSWORD=$(_ks_pw admin)
    KEYSTONE_REGION=RegionOne
    KEYSTONE_PID=
    export KEYSTONE_DIR KEYSTONE_PORT KEYSTONE_URL KEYSTONE_ROOT_URL KEYSTONE_ADMIN_USER \
        KEYSTONE_ADMIN_PROJECT KEYSTONE_ADMIN_PASSWORD KEYSTONE_REGION KEYSTONE_PID
    _ks_write_conf "$expiration"

    local who=(--keystone-user "$(id -un)" --keystone-group "$(id -gn)")
    local boot=(bootstrap --bootstrap-username "$KEYSTONE_ADMIN_USER"
        --bootstrap-project-name "$KEYSTONE_ADMIN_PROJECT"
        --bootstrap-role-name admin --bootstrap-service-name keystone
        --bootstrap-region-id "$KEYSTONE_REGION"
        --bootstrap-admin-url "$KEYSTONE_URL"
        --bootstrap-public-url "$KEYSTONE_URL"
        --bootstrap-internal-url "$KEYSTONE_URL")
    # bootstrap reads the admin password from here (not from argv)
    local -x OS_BOOTSTRAP_PASSWORD="$KEYSTONE_ADMIN_PASSWORD"

    # Importing keystone costs ~3 s of CPU per process, the commands
    # themselves < 1 s together.  So uwsgi starts first and imports keystone
    # while keystone-manage runs; wsgi.py then waits for $KEYSTONE_DIR/ready
    # (made below) before building the app, which needs the fernet keys.
    # By default the four keystone-manage commands run in one process
    # (manage.py, keystone-manage's own entry point called four times);
    # KEYSTONE_MANAGE_EACH=1 runs /usr/bin/keystone-manage once per command
    # instead (db_sync, fernet_setup, credential_setup side by side, then
    # bootstrap): ~4 s slower.
    _ks_spawn
    if [ -n "${KEYSTONE_MANAGE_EACH:-}" ]; then
        _ks_manage "$KEYSTONE_DIR/db_sync.log" db_sync & pid_db=$!
        _ks_manage "$KEYSTONE_DIR/fernet_setup.log" fernet_setup "${who[@]}" & pid_fernet=$!
        _ks_manage "$KEYSTONE_DIR/credential_setup.log" credential_setup "${who[@]}" & pid_cred=$!
        wait "$pid_db" || rc=1
        wait "$pid_fernet" || rc=1
        wait "$pid_cred" || rc=1
        [ "$rc" -ne 0 ] || _ks_manage "$KEYSTONE_DIR/bootstrap.log" "${boot[@]}" || rc=1
    elif ! /usr/bin/python3 "$_KS_LIB_DIR/manage.py" "$KEYSTONE_DIR/keystone.conf" \
            db_sync "fernet_setup ${who[*]}" "credential_setup ${who[*]}" "${boot[*]}" \
            >"$KEYSTONE_DIR/manage.log" 2>&1 </dev/null; then
        echo "keystone: keystone-manage failed; $KEYSTONE_DIR/manage.log:" >&2
        tail -n 30 "$KEYSTONE_DIR/manage.log" >&2
        rc=1
    fi
    if [ "$rc" -ne 0 ]; then keystone_stop; return 1; fi
    touch "$KEYSTONE_DIR/ready"
    _ks_wait_ready || { keystone_stop; return 1; }
    KEYSTONE_START_SECONDS=$(_ks_secs "$t0" "$(_ks_now)")
    export KEYSTONE_START_SECONDS
}

keystone_stop() {
    local pid=${KEYSTONE_PID:-} _
    [ -n "$pid" ] || return 0
    if _ks_alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 100); do
            _ks_alive "$pid" || break
            sleep 0.1
        done
        if _ks_alive "$pid"; then
            kill -KILL "$pid" 2>/dev/null || true
            for _ in $(seq 50); do _ks_alive "$pid" || break; sleep 0.1; done
        fi
    fi
    wait "$pid" 2>/dev/null || true    # reap it if it is our child
    KEYSTONE_PID=
    export KEYSTONE_PID
}

keystone_restart() {
    if [ -z "${KEYSTONE_DIR:-}" ] || [ ! -f "$KEYSTONE_DIR/keystone.conf" ]; then
        echo "keystone: keystone_restart before keystone_start" >&2
        return 1
    fi
    keystone_stop
    _ks_spawn
    _ks_wait_ready || { keystone_stop; return 1; }
}

keystone_cleanup() {
    keystone_stop
    if [ -n "${KEYSTONE_DIR:-}" ] && [ -d "$KEYSTONE_DIR" ] && [ -z "${KEEP_KEYSTONE:-}" ]; then
        case $KEYSTONE_DIR in /tmp/panko-keystone-*) rm -rf "$KEYSTONE_DIR" ;; esac
    fi
}

keystone_trap_exit() {
    local prev parts
    prev=$(trap -p EXIT)
    if [ -z "$prev" ]; then
        trap keystone_cleanup EXIT
        return 0
    fi
    eval "parts=($prev)"    # trap -- 'CMD' EXIT
    case ${parts[2]} in
        *keystone_cleanup*) return 0 ;;
    esac
    # shellcheck disable=SC2064
    trap "keystone_cleanup; ${parts[2]}" EXIT
}

keystone_os_env() {
    local user=$1 password=$2 project=$3 v
    for v in $(compgen -e OS_); do
        case $v in OS_KEYSTONE_*) ;; *) unset "$v" ;; esac
    done
    export OS_AUTH_URL="$KEYSTONE_URL" OS_IDENTITY_API_VERSION=3 \
        OS_AUTH_TYPE=password OS_USERNAME="$user" OS_PASSWORD="$password" \
        OS_PROJECT_NAME="$project" OS_USER_DOMAIN_NAME=Default \
        OS_PROJECT_DOMAIN_NAME=Default OS_REGION_NAME="$KEYSTONE_REGION" \
        OS_INTERFACE=public
}

keystone_admin_env() {
    keystone_os_env "$KEYSTONE_ADMIN_USER" "$KEYSTONE_ADMIN_PASSWORD" "$KEYSTONE_ADMIN_PROJECT"
}

# shellcheck disable=SC2120
keystone_openstack() {
    ( keystone_admin_env && exec openstack "$@" )
}

_ks_json_str() {    # a JSON string body: escape \ and "
    local s=${1//\\/\\\\}
    printf '%s' "${s//\"/\\\"}"
}

keystone_token() {
    local user password project hdr code token
    user=$(_ks_json_str "$1"); password=$(_ks_json_str "$2"); project=$(_ks_json_str "$3")
    hdr=$(curl -s -o /dev/null -D - --max-time 30 -w '%{http_code}' \
        -H 'Content-Type: application/json' \
        --data-binary @- "$KEYSTONE_URL/auth/tokens?nocatalog" <<EOF
{"auth": {"identity": {"methods": ["password"], "password": {"user":
  {"name": "$user", "domain": {"id": "default"}, "password": "$password"}}},
 "scope": {"project": {"name": "$project", "domain": {"id": "default"}}}}}
EOF
    ) || true
    code=${hdr##*$'\n'}
    token=$(printf '%s\n' "$hdr" | tr -d '\r' | awk 'tolower($1) == "x-subject-token:" { print $2 }')
    if [ "$code" != 201 ] || [ -z "$token" ]; then
        echo "keystone: no token for $1 in $3 (HTTP ${code:-none})" >&2
        return 1
    fi
    printf '%s\n' "$token"
}

keystone_validate() {
    local service_token=$1 subject_token=$2 out=${3:-/dev/null}
    curl -s -o "$out" -w '%{http_code}' --max-time 30 \
        -H "X-Auth-Token: $service_token" -H "X-Subject-Token: $subject_token" \
        "$KEYSTONE_URL/auth/tokens?nocatalog" || true
}

keystone_setup_panko() {
    local panko_url=${1:-} err out u id name
    [ -n "$panko_url" ] || { echo "usage: keystone_setup_panko PANKO_PUBLIC_URL" >&2; return 1; }
    KS_ADMIN_PASSWORD=$KEYSTONE_ADMIN_PASSWORD
    KS_ALICE_PASSWORD=$(_ks_pw alice)
    KS_BOB_PASSWORD=$(_ks_pw bob)
    KS_CAROL_PASSWORD=$(_ks_pw carol)
    KS_PANKO_PASSWORD=$(_ks_pw panko)
    KS_CEILOMETER_PASSWORD=$(_ks_pw ceilometer)
    KS_PANKO_USER=panko
    KS_CEILOMETER_USER=ceilometer
    KS_SERVICE_PROJECT=service
    KS_DOMAIN_ID=default
    export KS_ADMIN_PASSWORD KS_ALICE_PASSWORD KS_BOB_PASSWORD KS_CAROL_PASSWORD \
        KS_PANKO_PASSWORD KS_CEILOMETER_PASSWORD KS_PANKO_USER KS_CEILOMETER_USER \
        KS_SERVICE_PROJECT KS_DOMAIN_ID
    err="$KEYSTONE_DIR/setup_panko.err"
    out="$KEYSTONE_DIR/setup_panko.out"
    # One openstack process reading commands from stdin (its interactive
    # mode): ~2 s instead of ~1.5 s per command.  It goes on after a
    # failed command and exits 0, so anything on stderr is a failure.
    # shellcheck disable=SC2119
    keystone_openstack >"$out" 2>"$err" <<EOF
project create --domain default --description panko-test-tenant-1 p1 -f shell -c id --prefix KS_P1_
project create --domain default --description panko-test-tenant-2 p2 -f shell -c id --prefix KS_P2_
project create --domain default --description service-users service -f shell -c id --prefix KS_SERVICE_PROJECT_
project show admin -f shell -c id --prefix KS_ADMIN_PROJECT_
role create --or-show member -f shell -c id --prefix KS_ROLE_MEMBER_
role create --or-show reader -f shell -c id --prefix KS_ROLE_READER_
role create --or-show service -f shell -c id --prefix KS_ROLE_SERVICE_
role show admin -f shell -c id --prefix KS_ROLE_ADMIN_
user show admin -f shell -c id --prefix KS_ADMIN_
user create --domain default --password $KS_ALICE_PASSWORD alice -f shell -c id --prefix KS_ALICE_
user create --domain default --password $KS_BOB_PASSWORD bob -f shell -c id --prefix KS_BOB_
user create --domain default --password $KS_CAROL_PASSWORD carol -f shell -c id --prefix KS_CAROL_
user create --domain default --password $KS_PANKO_PASSWORD panko -f shell -c id --prefix KS_PANKO_
user create --domain default --password $KS_CEILOMETER_PASSWORD ceilometer -f shell -c id --prefix KS_CEILOMETER_
role add --project p1 --user alice member
role add --project p2 --user bob member
role add --project p1 --user carol admin
role add --project service --user panko service
role add --project service --user ceilometer service
service create --name panko --description OpenStack-Event-Service event -f shell -c id --prefix KS_EVENT_SERVICE_
endpoint create --region $KEYSTONE_REGION panko public $panko_url -f shell -c id --prefix KS_EVENT_PUBLIC_ENDPOINT_
endpoint create --region $KEYSTONE_REGION panko internal $panko_url -f shell -c id --prefix KS_EVENT_INTERNAL_ENDPOINT_
endpoint create --region $KEYSTONE_REGION panko admin $panko_url -f shell -c id --prefix KS_EVENT_ADMIN_ENDPOINT_
EOF
    if [ -s "$err" ]; then
        echo "keystone: keystone_setup_panko failed:" >&2
        cat "$err" >&2
        return 1
    fi
    # lines KS_ALICE_id="0123abcd..." -> export KS_ALICE_ID=0123abcd...
    while IFS='=' read -r name id; do
        id=${id//\"/}
        name=${name%_id}_ID
        printf -v "$name" '%s' "$id"
        export "${name?}"
    done < <(grep -E '^KS_[A-Z0-9_]+_id="[0-9a-f]{32}"$' "$out")
    for u in KS_P1_ID KS_P2_ID KS_SERVICE_PROJECT_ID KS_ADMIN_PROJECT_ID KS_ADMIN_ID \
             KS_ALICE_ID KS_BOB_ID KS_CAROL_ID KS_PANKO_ID KS_CEILOMETER_ID \
             KS_ROLE_ADMIN_ID KS_ROLE_MEMBER_ID KS_ROLE_READER_ID KS_ROLE_SERVICE_ID \
             KS_EVENT_SERVICE_ID KS_EVENT_PUBLIC_ENDPOINT_ID; do
        if [ -z "${!u:-}" ]; then
            echo "keystone: keystone_setup_panko: no $u in $out" >&2
            return 1
        fi
    done
    echo "keystone: $KEYSTONE_URL: projects p1 p2 service; users alice bob carol panko ceilometer; event service at $panko_url"
}
