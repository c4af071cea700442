#!/bin/bash
# A real Barbican (Debian's barbican-api) for tests, entirely inside DIR.
#
#   barbican-server.sh start DIR   set up and start; prints the base URL (http://127.0.0.1:PORT)
#   barbican-server.sh stop DIR    stop it (by the PID it recorded) and leave DIR for inspection
#
# SQLite DIR/barbican.db, the simple_crypto secret store with a key made here, served
# by uwsgi on 127.0.0.1:<free port>. Authentication: with KEYSTONE_URL set (and
# KEYSTONE_PASSWORD, the password of the "barbican" service user in project "service"),
# tokens are validated by that Keystone; without it Barbican runs unauthenticated and
# takes the caller's X-Project-Id, X-Roles and X-User-Id headers as given.
# Writes DIR/barbican.env (BARBICAN_URL, BARBICAN_PID) and DIR/uwsgi.log.
# Only 127.0.0.1 is used. stop kills only the recorded PID (the uwsgi master) and waits.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
if [[ -z "$cmd" || -z "$dir" ]]; then
  echo "usage: $0 start|stop DIR" >&2
  exit 2
fi
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
py=/usr/bin/python3   # Debian's python, which has the barbican modules

stop() {
  local pidfile="$dir/barbican.pid"
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
  local kek pipeline auth_conf=""
  kek=$("$py" -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')
  if [[ -n "${KEYSTONE_URL:-}" ]]; then
    pipeline="cors http_proxy_to_wsgi authtoken context microversion apiapp"
    auth_conf="[keystone_authtoken]
www_authenticate_uri = $KEYSTONE_URL
auth_url = $KEYSTONE_URL
auth_type = password
username = barbican
password = ${KEYSTONE_PASSWORD:?KEYSTONE_PASSWORD is needed with KEYSTONE_URL}
project_name = service
user_domain_name = Default
project_domain_name = Default
"
  else
    pipeline="cors http_proxy_to_wsgi unauthenticated-context microversion apiapp"
  fi
  cat > "$dir/paste.ini" <<PASTE
[composite:main]
use = egg:Paste#urlmap
/: barbican_version
/v1: barbican_api
[pipeline:barbican_version]
pipeline = cors http_proxy_to_wsgi microversion versionapp
[pipeline:barbican_api]
pipeline = $pipeline
[app:apiapp]
paste.app_factory = barbican.api.app:create_main_app
[app:versionapp]
paste.app_factory = barbican.api.app:create_version_app
[filter:unauthenticated-context]
paste.filter_factory = barbican.api.middleware.context:UnauthenticatedContextMiddleware.factory
[filter:context]
paste.filter_factory = barbican.api.middleware.context:ContextMiddleware.factory
[filter:microversion]
paste.filter_factory = barbican.api.middleware.microversion:MicroversionMiddleware.factory
[filter:authtoken]
paste.filter_factory = keystonemiddleware.auth_token:filter_factory
[filter:cors]
paste.filter_factory = oslo_middleware.cors:filter_factory
oslo_config_project = barbican
[filter:http_proxy_to_wsgi]
paste.filter_factory = oslo_middleware:HTTPProxyToWSGI.factory
PASTE

  local attempt port url up=0
  for attempt in 1 2 3; do
    port=$(free_port)
    url="http://127.0.0.1:$port"
    cat > "$dir/barbican.conf" <<CONF
[DEFAULT]
host_href = $url
sql_connection = sqlite:///$dir/barbican.db
db_auto_create = true
log_file = $dir/barbican.log
debug = false
[secretstore]
enabled_secretstore_plugins = store_crypto
[crypto]
enabled_crypto_plugins = simple_crypto
[simple_crypto_plugin]
kek = $kek
[oslo_policy]
enforce_scope = false
enforce_new_defaults = false
$auth_conf
CONF
    BARBICAN_TEST_CONF="$dir/barbican.conf" BARBICAN_TEST_PASTE="$dir/paste.ini" \
      uwsgi --plugin python3 --http-socket "127.0.0.1:$port" --wsgi-file "$here/barbican_wsgi.py" \
        --master --processes 1 --threads 1 --die-on-term --lazy-apps --need-app \
        --pidfile "$dir/barbican.pid" --daemonize2 "$dir/uwsgi.log" \
        >> "$dir/setup.log" 2>&1 || true
    # Wait (bounded: 60 s) for the API to answer.
    for _ in $(seq 1 300); do
      if curl -fsS -o /dev/null --max-time 2 "$url/" 2>/dev/null; then up=1; break; fi
      sleep 0.2
    done
    if [[ $up == 1 ]]; then break; fi
    stop
    echo "barbican did not come up on port $port (attempt $attempt), see $dir/uwsgi.log" >> "$dir/setup.log"
  done
  if [[ $up != 1 ]]; then
    echo "barbican did not start; see $dir/setup.log and $dir/uwsgi.log" >&2
    exit 1
  fi
  cat > "$dir/barbican.env" <<ENV
BARBICAN_URL=$url
BARBICAN_PID=$(cat "$dir/barbican.pid")
ENV
  echo "$url"
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
