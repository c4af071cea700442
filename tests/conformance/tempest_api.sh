#!/bin/bash
# Runs octavia-tempest-plugin's API tests (Debian's octavia-tempest-plugin 2.0.0 and
# tempest 33) against banyan-provider with a real Keystone and the noop_driver provider.
#
#   tempest_api.sh BANYAN_PROVIDER_BINARY [REGEX]    (default REGEX: the API test package)
#
# Keystone: tests/support/keystone/keystone-server.sh, with a load-balancer endpoint in
# its catalog. Tempest: dynamic credentials, test_with_noop (random VIP/member subnets,
# operating status OFFLINE accepted), no Neutron/Nova. Everything lives in a temp dir on
# 127.0.0.1; the processes started here are stopped by PID on exit. The tempest summary
# and the workspace path are printed; exit status is tempest's.
set -euo pipefail
binary=$(readlink -f "$1")
regex=${2:-octavia_tempest_plugin.tests.api.v2}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
keystone_script="$here/../support/keystone/keystone-server.sh"
work=$(mktemp -d /tmp/banyan-tempest-XXXXXX)
py=/usr/bin/python3
port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
provider_pid=""

cleanup() {
  if [[ -n "$provider_pid" ]] && kill -0 "$provider_pid" 2>/dev/null; then
    kill -TERM "$provider_pid"
    wait "$provider_pid" 2>/dev/null || true
  fi
  "$keystone_script" stop "$work/keystone" >/dev/null 2>&1 || true
  echo "workspace: $work"
}
trap cleanup EXIT

LOADBALANCER_URL="http://127.0.0.1:$port" "$keystone_script" start "$work/keystone" > "$work/keystone-start.log"
# shellcheck disable=SC1091
source "$work/keystone/keystone.env"

cat > "$work/provider.conf" <<CONF
[DEFAULT]
debug = true
[api_settings]
bind_port = $port
auth_strategy = keystone
enabled_provider_drivers = noop_driver:The no-op driver.
default_provider_driver = noop_driver
[keystone_authtoken]
www_authenticate_uri = $KEYSTONE_URL
auth_url = $KEYSTONE_URL
username = banyan
password = $KEYSTONE_PASSWORD
project_name = service
[netns]
state_dir = $work/netns
CONF
"$binary" --config-file "$work/provider.conf" --state-dir "$work/state" api > "$work/provider.log" 2>&1 &
provider_pid=$!
for _ in $(seq 1 100); do
  curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$port/" 2>/dev/null && break
  sleep 0.1
done

cd "$work"
tempest init --name "banyan-$(basename "$work")" tempest > /dev/null
cat > tempest/etc/tempest.conf <<CONF
[DEFAULT]
log_file = $work/tempest.log
[auth]
use_dynamic_credentials = True
create_isolated_networks = False
admin_username = admin
admin_password = $KEYSTONE_PASSWORD
admin_project_name = admin
admin_domain_name = Default
tempest_roles = member
[identity]
uri_v3 = $KEYSTONE_URL/v3
auth_version = v3
region = RegionOne
[identity-feature-enabled]
api_v2 = False
[network]
project_networks_reachable = True
[service_available]
load_balancer = True
neutron = False
nova = False
glance = False
cinder = False
swift = False
[load_balancer]
provider = noop_driver
enabled_provider_drivers = noop_driver:The no-op driver.
test_with_noop = True
RBAC_test_type = advanced
build_interval = 1
build_timeout = 60
lb_build_interval = 1
lb_build_timeout = 60
check_interval = 1
check_timeout = 30
[loadbalancer-feature-enabled]
not_implemented_is_error = False
CONF
cd tempest
set +e
timeout 3000 tempest run --regex "$regex" --concurrency 1 > "$work/tempest-run.log" 2>&1
rc=$?
set -e
grep -E "^(=+|Totals|     - |Sum of|Worker|FAIL|\{0\} .*(FAILED|ok|SKIPPED))" "$work/tempest-run.log" | tail -60 || true
tail -15 "$work/tempest-run.log"
exit $rc
