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

stop() {
  local pidfile="$dir/keystone.pid"
  [[ -f "$pidfile" ]] || return 0
  local pid
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -INT "$pid" 2>/dev/null || true   # uwsgi master: INT = shut down now, workers too
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$pidfile"
}

free_port() {
  "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

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

  local attempt port url up=0
  for attempt in 1 2 3; do
    port=$(free_port)
    url="http://127.0.0.1:$port"
    OS_KEYSTONE_CONFIG_FILES="$dir/keystone.conf" \
      uwsgi --plugin python3 --http-socket "127.0.0.1:$port" --wsgi-file /usr/bin/keystone-wsgi-public \
        --master --processes 1 --threads 1 --die-on-term --lazy-apps --need-app \
        --pidfile "$dir/keystone.pid" --daemonize2 "$dir/uwsgi.log" \
        >> "$dir/setup.log" 2>&1 || true
    # Wait (bounded: 60 s) for /v3 to answer.
    for _ in $(seq 1 300); do
      if curl -fsS -o /dev/null --max-time 2 "$url/v3" 2>/dev/null; then up=1; break; fi
      sleep 0.2
    done
    if [[ $up == 1 ]]; then break; fi
    stop
    echo "keystone did not come up on port $port (attempt $attempt), see $dir/uwsgi.log" >> "$dir/setup.log"
  done
  if [[ $up != 1 ]]; then
    echo "keystone did not start; see $dir/setup.log and $dir/uwsgi.log" >&2
    exit 1
  fi
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
