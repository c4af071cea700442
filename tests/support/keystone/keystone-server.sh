#!/bin/bash
# A real Keystone (Debian's keystone package) for tests, entirely inside DIR.
#
#   keystone-server.sh start DIR   set up and start; prints the base URL (http://127.0.0.1:PORT)
#   keystone-server.sh stop DIR    stop it (by the PID it recorded) and leave DIR for inspection
#
# start: writes DIR/keystone.conf (SQLite DIR/keystone.db, fernet tokens, keys under DIR),
# runs keystone-manage db_sync, fernet_setup, credential_setup and bootstrap (or copies
# the result of an earlier run from the template cache, $BANYAN_KEYSTONE_TEMPLATES,
# default /tmp/banyan-keystone-templates-<uid>), serves
# keystone-wsgi-public under uwsgi on 127.0.0.1:<free port>, waits until /v3 answers,
# then creates the test projects, roles and users (keystone-setup.py) and writes:
#   DIR/keystone.env     shell: KEYSTONE_URL, KEYSTONE_PID, KEYSTONE_PASSWORD
#   DIR/keystone.json    url, pid, password, and the ids of every project/user/role made
#   DIR/openrc.<user>    OS_* variables for the openstack CLI, one per test user
#   DIR/keystone.log     Keystone's log (one "GET /v3/auth/tokens" line per validation)
#   DIR/uwsgi.log        the server's log
# Environment knobs: KEYSTONE_TOKEN_EXPIRATION (seconds, default 3600).
# One uwsgi worker with one thread: SQLite allows one writer, and threads collide on it.
# Only 127.0.0.1 is used. stop kills only the recorded PID (the uwsgi master) and waits.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
if [[ -z "$cmd" || -z "$dir" ]]; then
  echo "usage: $0 start|stop DIR" >&2
  exit 2
fi
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
py=/usr/bin/python3   # Debian's python, which has the keystone modules

# shellcheck source=../uwsgi-service.sh
. "$here/../uwsgi-service.sh"

stop() { uwsgi_stop "$dir/keystone.pid"; }

start() {
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  stop
  local expiration=${KEYSTONE_TOKEN_EXPIRATION:-3600}
  local password=banyan-test-password
  mkdir -p "$dir/fernet-keys" "$dir/credential-keys"
  chmod 700 "$dir/fernet-keys" "$dir/credential-keys"
  cat > "$dir/keystone.conf" <<CONF
[DEFAULT]
log_file = $dir/keystone.log
debug = false
[database]
connection = sqlite:///$dir/keystone.db
[token]
provider = fernet
expiration = $expiration
[fernet_tokens]
key_repository = $dir/fernet-keys
[fernet_receipts]
key_repository = $dir/fernet-keys
[credential]
key_repository = $dir/credential-keys
[cache]
# Without a cache one token validation runs ~950 SQL queries (seconds on a busy machine).
# An in-process cache is safe: there is one worker, and Keystone invalidates revoked tokens.
enabled = true
backend = dogpile.cache.memory
[identity]
# bcrypt's minimum cost: each hash then takes milliseconds, not seconds (test passwords).
password_hash_rounds = 4
[oslo_policy]
policy_file = $dir/policy.yaml
CONF
  : > "$dir/policy.yaml"
  local manage=(keystone-manage --config-file "$dir/keystone.conf")
  # The database and keys of a finished setup are kept as a template (keyed by the
  # Keystone version and these scripts), so later starts skip keystone-manage entirely.
  local key template
  key=$( (dpkg-query -W -f='${Version}' keystone 2>/dev/null; cat "$here/keystone-server.sh" "$here/keystone-setup.py") \
        | sha256sum | cut -c1-16)
  template="${BANYAN_KEYSTONE_TEMPLATES:-/tmp/banyan-keystone-templates-$(id -u)}/$key"
  if [[ -f "$template/ready" ]]; then
    cp "$template/keystone.db" "$dir/keystone.db"
    cp -r "$template/fernet-keys/." "$dir/fernet-keys/"
    cp -r "$template/credential-keys/." "$dir/credential-keys/"
  else
    "${manage[@]}" db_sync >> "$dir/setup.log" 2>&1
    # WAL: Keystone keeps a read transaction open across a request while it writes from
    # another connection, which SQLite's default rollback journal answers with "database is
    # locked". With WAL, readers never block the writer. The mode is stored in the file.
    "$py" -c 'import sqlite3, sys; sqlite3.connect(sys.argv[1]).execute("PRAGMA journal_mode=WAL")' "$dir/keystone.db"
    "${manage[@]}" fernet_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)" >> "$dir/setup.log" 2>&1
    "${manage[@]}" credential_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)" >> "$dir/setup.log" 2>&1
    # The port is not known yet: keystone-setup.py rewrites the endpoints once it is.
    "${manage[@]}" bootstrap --bootstrap-password "$password" \
      --bootstrap-admin-url "http://127.0.0.1:1/v3/" --bootstrap-internal-url "http://127.0.0.1:1/v3/" \
      --bootstrap-public-url "http://127.0.0.1:1/v3/" --bootstrap-region-id RegionOne >> "$dir/setup.log" 2>&1
  fi

  prepare() { export OS_KEYSTONE_CONFIG_FILES="$dir/keystone.conf"; }
  uwsgi_serve "$dir" keystone /usr/bin/keystone-wsgi-public /v3 prepare || exit 1
  local url=$UWSGI_URL
  # The endpoints must name the port we really got.
  KEYSTONE_URL="$url" KEYSTONE_PASSWORD="$password" KEYSTONE_DIR="$dir" \
    "$py" "$here/keystone-setup.py" >> "$dir/setup.log" 2>&1 || {
      echo "keystone setup failed; see $dir/setup.log" >&2
      stop
      exit 1
    }
  if [[ ! -f "$template/ready" ]]; then
    # Publish atomically: build beside it, then rename (a concurrent builder's rename fails harmlessly).
    local tmp="$template.tmp.$$"
    mkdir -p "$tmp"
    "$py" -c 'import sqlite3, sys; src = sqlite3.connect(sys.argv[1]); dst = sqlite3.connect(sys.argv[2]); src.backup(dst); dst.execute("PRAGMA journal_mode=WAL"); dst.close()' \
      "$dir/keystone.db" "$tmp/keystone.db"
    cp -r "$dir/fernet-keys" "$dir/credential-keys" "$tmp/"
    touch "$tmp/ready"
    mv -T "$tmp" "$template" 2>/dev/null || rm -rf "$tmp"
  fi
  cat > "$dir/keystone.env" <<ENV
KEYSTONE_URL=$url
KEYSTONE_PID=$(cat "$dir/keystone.pid")
KEYSTONE_PASSWORD=$password
ENV
  echo "$url"
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
