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
# shellcheck source=../uwsgi-service.sh
. "$here/../uwsgi-service.sh"

stop() { uwsgi_stop "$dir/barbican.pid"; }

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

  prepare() {
    local url=$1
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
    export BARBICAN_TEST_CONF="$dir/barbican.conf" BARBICAN_TEST_PASTE="$dir/paste.ini"
  }
  uwsgi_serve "$dir" barbican "$here/barbican_wsgi.py" / prepare || exit 1
  local url=$UWSGI_URL
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
