# Sourced by the test servers that run an OpenStack service's WSGI application under
# uwsgi on 127.0.0.1 (keystone/keystone-server.sh, barbican/barbican-server.sh).
#
#   uwsgi_stop PIDFILE        stops the recorded uwsgi master (INT, KILL after 10 s)
#   uwsgi_free_port           prints a free TCP port on 127.0.0.1
#   uwsgi_serve DIR NAME WSGI_FILE PROBE_PATH PREPARE
#                             starts NAME on a free port, at most three tries: PREPARE
#                             is called with the base URL first (to write configuration
#                             that names it, export what the application reads), then
#                             uwsgi runs WSGI_FILE with one worker and one thread,
#                             daemonized, pid in DIR/NAME.pid, log in DIR/uwsgi.log, until
#                             URL+PROBE_PATH answers (60 s per try). Sets UWSGI_URL; on
#                             failure says why on stderr and returns 1.
# Only the PID uwsgi recorded is ever signalled.

uwsgi_stop() {
  local pidfile=$1 pid
  [[ -f "$pidfile" ]] || return 0
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

uwsgi_free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

uwsgi_serve() {
  local dir=$1 name=$2 wsgi=$3 probe=$4 prepare=$5 attempt port url
  for attempt in 1 2 3; do
    port=$(uwsgi_free_port)
    url="http://127.0.0.1:$port"
    "$prepare" "$url"
    # "Connection: close" on every answer (as Debian's barbican-api-uwsgi.ini does): the
    # http-socket closes each connection after one answer without saying so, and clients
    # (keystonemiddleware, keystoneauth) that reuse it meet a reset.
    uwsgi --plugin python3 --http-socket "127.0.0.1:$port" --wsgi-file "$wsgi" \
      --add-header "Connection: close" \
      --master --processes 1 --threads 1 --die-on-term --lazy-apps --need-app \
      --pidfile "$dir/$name.pid" --daemonize2 "$dir/uwsgi.log" \
      >> "$dir/setup.log" 2>&1 || true
    for _ in $(seq 1 300); do
      if curl -fsS -o /dev/null --max-time 2 "$url$probe" 2>/dev/null; then
        UWSGI_URL=$url
        return 0
      fi
      sleep 0.2
    done
    uwsgi_stop "$dir/$name.pid"
    echo "$name did not come up on port $port (attempt $attempt), see $dir/uwsgi.log" >> "$dir/setup.log"
  done
  echo "$name did not start; see $dir/setup.log and $dir/uwsgi.log" >&2
  return 1
}
