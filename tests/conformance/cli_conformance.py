#!/usr/bin/python3
"""CLI conformance: the real `openstack loadbalancer ...` commands against banyan-provider.

usage: cli_conformance.py BANYAN_PROVIDER_BINARY [--keystone-script PATH] [--only noauth|keystone]

Phase "noauth": banyan-provider with auth_strategy = noauth, noop_driver as the default
provider and its embedded netns network view (so --vip-subnet-id resolves without Neutron).
Every command group runs create/list/show/set/unset/delete with -f json and its output is
checked. The commands run through openstackclient's own entry point (shell.main), in this
process, to avoid ~9 s of interpreter start-up per command; one command also runs as the
real /usr/bin/openstack executable.

Phase "keystone": a real Keystone (tests/support/keystone/keystone-server.sh) with a
load-balancer endpoint in its catalog, banyan-provider with auth_strategy = keystone; the
quota commands (they resolve projects in Keystone) and project scoping are checked.

Everything runs on 127.0.0.1 with free ports, in a temp dir; every process started here is
stopped by its PID, also on failure. Exit status 0 only if every check passed.
"""
import argparse
import contextlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request

COMMAND_TIMEOUT = 60  # seconds per command; --wait polls every 3 s
VIP_SUBNET = "00000000-0000-4000-8000-203000113000"      # the netns drivers' default VIP network
MEMBER_SUBNET = "00000000-0000-4000-8000-198051100000"   # and member network


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Provider:
    """banyan-provider in a temp dir, stopped by PID."""

    def __init__(self, binary, workdir, extra_conf, port=None):
        self.port = port or free_port()
        self.dir = workdir
        conf = os.path.join(workdir, "provider.conf")
        with open(conf, "w") as f:
            f.write("[DEFAULT]\ndebug = true\n[api_settings]\nbind_port = %d\n%s\n[netns]\nstate_dir = %s\n"
                    % (self.port, extra_conf, os.path.join(workdir, "netns")))
        self.log = open(os.path.join(workdir, "provider.log"), "w")
        self.proc = subprocess.Popen([binary, "--config-file", conf, "--state-dir",
                                      os.path.join(workdir, "state"), "api"],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("banyan-provider exited with %s; see %s" % (self.proc.returncode, self.log.name))
            try:
                urllib.request.urlopen(self.url + "/", timeout=1).read()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("banyan-provider did not answer within 20 s")

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = []

    def check(self, what, cond, detail=""):
        if cond:
            self.passed += 1
        else:
            self.failed.append("%s %s" % (what, detail))
            print("FAIL: %s %s" % (what, detail), flush=True)

    def equal(self, what, got, want):
        self.check(what, got == want, "got %r want %r" % (got, want))


class Cli:
    """Runs `openstack <args>` through openstackclient's entry point."""

    def __init__(self, global_args, env=None, separate_process=False):
        self.global_args = list(global_args)
        self.env = env or {}
        # Keystone's test server (one uwsgi worker) resets connections that an earlier
        # in-process command left in a pool; a fresh process per command avoids that.
        self.separate_process = separate_process

    def run(self, *args):
        if self.separate_process:
            # The single-worker test Keystone sometimes resets a connection; the client then
            # fails before reaching Banyan. That is retried a few times; anything else is the
            # command's real answer.
            for attempt in range(4):
                try:
                    p = subprocess.run(["/usr/bin/openstack"] + self.global_args + [str(a) for a in args],
                                       capture_output=True, text=True, timeout=COMMAND_TIMEOUT * 2,
                                       env=dict(os.environ, **self.env))
                except subprocess.TimeoutExpired:
                    return "timeout", "", "timed out"
                transient = "Connection reset by peer" in p.stderr
                if p.returncode == 0 or not transient or attempt == 3:
                    return p.returncode, p.stdout, p.stderr
                time.sleep(1)
        from openstackclient import shell  # Debian's python3-openstackclient
        out, err = io.StringIO(), io.StringIO()
        saved = {k: os.environ.get(k) for k in self.env}
        os.environ.update(self.env)
        def too_slow(signum, frame):
            raise TimeoutError("command took longer than %d s" % COMMAND_TIMEOUT)
        previous = signal.signal(signal.SIGALRM, too_slow)
        signal.alarm(COMMAND_TIMEOUT)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    rc = shell.main(self.global_args + [str(a) for a in args])
                except SystemExit as e:
                    rc = e.code if isinstance(e.code, int) else 1
                except TimeoutError as e:
                    print("TIMEOUT: openstack %s: %s" % (" ".join(map(str, args)), e), file=sys.__stdout__)
                    rc = "timeout"
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        return rc, out.getvalue(), err.getvalue()

    def json(self, checks, what, *args):
        rc, out, err = self.run(*(list(args) + ["-f", "json"]))
        checks.equal(what + " exit status", rc, 0)
        if rc != 0:
            print("  stderr: " + err.strip()[-500:], flush=True)
            return None
        try:
            return json.loads(out)
        except ValueError:
            checks.check(what + " prints JSON", False, out[:300])
            return None

    def ok(self, checks, what, *args):
        rc, out, err = self.run(*args)
        checks.equal(what + " exit status", rc, 0)
        if rc != 0:
            print("  stderr: " + err.strip()[-500:], flush=True)
        return out

    def fails(self, checks, what, expect_text, *args):
        rc, out, err = self.run(*args)
        checks.check(what + " fails", rc != 0, "exit status %r" % rc)
        checks.check(what + " says why", expect_text in err, "stderr %r" % err.strip()[-300:])


def field(obj, key):
    return None if obj is None else obj.get(key)


def phase_noauth(binary, workdir, checks):
    provider = Provider(binary, workdir,
                        "enabled_provider_drivers = noop_driver:The no-op driver.,amphora:The Octavia Amphora driver.\n"
                        "default_provider_driver = noop_driver\nnoauth_project_id = conformance\n"
                        "healthcheck_enabled = true\n")
    try:
        cli = Cli(["--os-auth-type", "none", "--os-endpoint", provider.url])
        lb_cmd = "loadbalancer"

        # The real executable once: the entry point, plugin loading and output.
        real = subprocess.run(["/usr/bin/openstack", "--os-auth-type", "none", "--os-endpoint", provider.url,
                               lb_cmd, "provider", "list", "-f", "json"], capture_output=True, text=True, timeout=120)
        checks.equal("/usr/bin/openstack loadbalancer provider list exit status", real.returncode, 0)
        checks.equal("provider list names", sorted(p["name"] for p in json.loads(real.stdout or "[]")),
                     ["amphora", "noop_driver"])

        # ---- load balancer ----
        lb = cli.json(checks, "loadbalancer create", lb_cmd, "create", "--name", "web", "--vip-subnet-id", VIP_SUBNET,
                      "--description", "first", "--tag", "t1")
        checks.equal("loadbalancer create name", field(lb, "name"), "web")
        checks.equal("loadbalancer create vip_subnet_id", field(lb, "vip_subnet_id"), VIP_SUBNET)
        checks.equal("loadbalancer create provisioning_status", field(lb, "provisioning_status"), "PENDING_CREATE")
        checks.equal("loadbalancer create project_id", field(lb, "project_id"), "conformance")
        checks.check("loadbalancer create vip_address in subnet", str(field(lb, "vip_address")).startswith("203.0.113."))
        shown = cli.json(checks, "loadbalancer show", lb_cmd, "show", "web")
        checks.equal("loadbalancer show provisioning_status", field(shown, "provisioning_status"), "ACTIVE")
        checks.equal("loadbalancer show operating_status", field(shown, "operating_status"), "OFFLINE")
        listed = cli.json(checks, "loadbalancer list", lb_cmd, "list", "--name", "web")
        checks.equal("loadbalancer list --name", [x["name"] for x in listed or []], ["web"])
        cli.ok(checks, "loadbalancer set", lb_cmd, "set", "web", "--name", "web2", "--description", "second",
               "--tag", "t2")
        shown = cli.json(checks, "loadbalancer show after set", lb_cmd, "show", "web2")
        checks.equal("loadbalancer set description", field(shown, "description"), "second")
        checks.equal("loadbalancer set tags", sorted(str(field(shown, "tags") or "").split()), ["t1", "t2"])
        cli.ok(checks, "loadbalancer unset", lb_cmd, "unset", "web2", "--description", "--all-tag")
        shown = cli.json(checks, "loadbalancer show after unset", lb_cmd, "show", "web2")
        checks.equal("loadbalancer unset description", field(shown, "description"), "")
        checks.equal("loadbalancer unset tags", field(shown, "tags"), "")
        stats = cli.json(checks, "loadbalancer stats show", lb_cmd, "stats", "show", "web2")
        checks.equal("loadbalancer stats", stats, {"active_connections": 0, "bytes_in": 0, "bytes_out": 0,
                                                   "request_errors": 0, "total_connections": 0})
        cli.ok(checks, "loadbalancer failover --wait", lb_cmd, "failover", "web2", "--wait")
        disabled = cli.json(checks, "loadbalancer create --disable", lb_cmd, "create", "--name", "off",
                            "--vip-network-id", VIP_SUBNET, "--disable", "--wait")
        checks.equal("loadbalancer create --disable admin_state_up", field(disabled, "admin_state_up"), False)
        cli.fails(checks, "loadbalancer create without VIP", "Requires one of --vip-subnet-id", lb_cmd, "create",
                  "--name", "novip")

        # ---- listener ----
        listener = cli.json(checks, "listener create", lb_cmd, "listener", "create", "web2", "--name", "l1",
                            "--protocol", "HTTP", "--protocol-port", "80", "--connection-limit", "200",
                            "--insert-headers", "X-Forwarded-For=true,X-Forwarded-Port=true",
                            "--allowed-cidr", "198.51.100.0/24", "--timeout-client-data", "1000")
        checks.equal("listener create connection_limit", field(listener, "connection_limit"), 200)
        checks.equal("listener create timeout_client_data", field(listener, "timeout_client_data"), 1000)
        checks.equal("listener create timeout_member_connect", field(listener, "timeout_member_connect"), 5000)
        checks.equal("listener create allowed_cidrs", field(listener, "allowed_cidrs"), "198.51.100.0/24")
        checks.check("listener create insert_headers",
                     "X-Forwarded-For=true" in str(field(listener, "insert_headers")), str(field(listener, "insert_headers")))
        cli.fails(checks, "listener create on a used port", "Another Listener on this Load Balancer", lb_cmd,
                  "listener", "create", "web2", "--protocol", "TCP", "--protocol-port", "80")
        udp = cli.json(checks, "listener create UDP same port", lb_cmd, "listener", "create", "web2", "--name", "u1",
                       "--protocol", "UDP", "--protocol-port", "80")
        checks.equal("listener create UDP protocol", field(udp, "protocol"), "UDP")
        listed = cli.json(checks, "listener list", lb_cmd, "listener", "list", "--loadbalancer", "web2")
        checks.equal("listener list", sorted(x["name"] for x in listed or []), ["l1", "u1"])
        cli.ok(checks, "listener set", lb_cmd, "listener", "set", "l1", "--name", "l1b", "--connection-limit", "300")
        cli.ok(checks, "listener unset", lb_cmd, "listener", "unset", "l1b", "--connection-limit", "--allowed-cidrs")
        shown = cli.json(checks, "listener show", lb_cmd, "listener", "show", "l1b")
        checks.equal("listener unset connection_limit", field(shown, "connection_limit"), -1)
        checks.equal("listener unset allowed_cidrs", field(shown, "allowed_cidrs"), None)
        stats = cli.json(checks, "listener stats show", lb_cmd, "listener", "stats", "show", "l1b")
        checks.equal("listener stats keys", sorted((stats or {}).keys()),
                     ["active_connections", "bytes_in", "bytes_out", "request_errors", "total_connections"])
        cli.ok(checks, "listener delete", lb_cmd, "listener", "delete", "u1", "--wait")

        # ---- pool ----
        pool = cli.json(checks, "pool create", lb_cmd, "pool", "create", "--name", "p1", "--listener", "l1b",
                        "--protocol", "HTTP", "--lb-algorithm", "ROUND_ROBIN",
                        "--session-persistence", "type=APP_COOKIE,cookie_name=sid")
        checks.equal("pool create lb_algorithm", field(pool, "lb_algorithm"), "ROUND_ROBIN")
        checks.check("pool create session_persistence", "APP_COOKIE" in str(field(pool, "session_persistence")))
        cli.fails(checks, "pool create with a mismatched protocol", "is invalid while the listener protocol", lb_cmd,
                  "pool", "create", "--listener", "l1b", "--protocol", "UDP",
                  "--lb-algorithm", "ROUND_ROBIN")
        cli.ok(checks, "pool set", lb_cmd, "pool", "set", "p1", "--lb-algorithm", "LEAST_CONNECTIONS",
               "--description", "pool one")
        cli.ok(checks, "pool unset", lb_cmd, "pool", "unset", "p1", "--session-persistence")
        shown = cli.json(checks, "pool show", lb_cmd, "pool", "show", "p1")
        checks.equal("pool set lb_algorithm", field(shown, "lb_algorithm"), "LEAST_CONNECTIONS")
        checks.equal("pool unset session_persistence", field(shown, "session_persistence"), None)
        listed = cli.json(checks, "pool list", lb_cmd, "pool", "list", "--loadbalancer", "web2")
        checks.equal("pool list", [x["name"] for x in listed or []], ["p1"])

        # ---- member ----
        member = cli.json(checks, "member create", lb_cmd, "member", "create", "p1", "--name", "m1",
                          "--address", "198.51.100.10", "--protocol-port", "8080", "--weight", "5",
                          "--subnet-id", MEMBER_SUBNET)
        checks.equal("member create weight", field(member, "weight"), 5)
        checks.equal("member create operating_status", field(member, "operating_status"), "NO_MONITOR")
        cli.json(checks, "member create second", lb_cmd, "member", "create", "p1", "--name", "m2",
                 "--address", "198.51.100.11", "--protocol-port", "8080")
        cli.ok(checks, "member set", lb_cmd, "member", "set", "p1", "m1", "--weight", "7", "--enable-backup")
        shown = cli.json(checks, "member show", lb_cmd, "member", "show", "p1", "m1")
        checks.equal("member set weight", field(shown, "weight"), 7)
        checks.equal("member set backup", field(shown, "backup"), True)
        cli.ok(checks, "member unset", lb_cmd, "member", "unset", "p1", "m1", "--weight", "--backup")
        shown = cli.json(checks, "member show after unset", lb_cmd, "member", "show", "p1", "m1")
        checks.equal("member unset weight", field(shown, "weight"), 1)
        checks.equal("member unset backup", field(shown, "backup"), False)
        listed = cli.json(checks, "member list", lb_cmd, "member", "list", "p1")
        checks.equal("member list", sorted(x["name"] for x in listed or []), ["m1", "m2"])
        cli.ok(checks, "member delete", lb_cmd, "member", "delete", "p1", "m2", "--wait")
        listed = cli.json(checks, "member list after delete", lb_cmd, "member", "list", "p1")
        checks.equal("member list after delete", [x["name"] for x in listed or []], ["m1"])

        # ---- health monitor ----
        hm = cli.json(checks, "healthmonitor create", lb_cmd, "healthmonitor", "create", "p1", "--name", "hm1",
                      "--delay", "5", "--timeout", "3", "--max-retries", "3", "--type", "HTTP", "--url-path", "/health")
        checks.equal("healthmonitor create http_method", field(hm, "http_method"), "GET")
        checks.equal("healthmonitor create expected_codes", field(hm, "expected_codes"), "200")
        checks.equal("healthmonitor create max_retries_down", field(hm, "max_retries_down"), 3)
        shown = cli.json(checks, "healthmonitor show", lb_cmd, "healthmonitor", "show", "hm1")
        checks.equal("healthmonitor operating_status", field(shown, "operating_status"), "ONLINE")
        cli.ok(checks, "healthmonitor set", lb_cmd, "healthmonitor", "set", "hm1", "--delay", "10",
               "--expected-codes", "200-204")
        cli.ok(checks, "healthmonitor unset", lb_cmd, "healthmonitor", "unset", "hm1", "--url-path")
        shown = cli.json(checks, "healthmonitor show after set", lb_cmd, "healthmonitor", "show", "hm1")
        checks.equal("healthmonitor set delay", field(shown, "delay"), 10)
        checks.equal("healthmonitor set expected_codes", field(shown, "expected_codes"), "200-204")
        checks.equal("healthmonitor unset url_path", field(shown, "url_path"), "/")
        listed = cli.json(checks, "healthmonitor list", lb_cmd, "healthmonitor", "list")
        checks.equal("healthmonitor list", [x["name"] for x in listed or []], ["hm1"])
        cli.fails(checks, "second healthmonitor on a pool", "already has a health monitor", lb_cmd, "healthmonitor",
                  "create", "p1", "--delay", "5", "--timeout", "3", "--max-retries", "3", "--type", "TCP")

        # ---- L7 policy and rule ----
        pol1 = cli.json(checks, "l7policy create", lb_cmd, "l7policy", "create", "l1b", "--name", "pol1",
                        "--action", "REDIRECT_TO_URL", "--redirect-url", "http://example.com/")
        checks.equal("l7policy create redirect_http_code", field(pol1, "redirect_http_code"), 302)
        cli.json(checks, "l7policy create at position 1", lb_cmd, "l7policy", "create", "l1b", "--name", "pol2",
                 "--action", "REJECT", "--position", "1")
        listed = cli.json(checks, "l7policy list", lb_cmd, "l7policy", "list", "--listener", "l1b")
        checks.equal("l7policy list (creation order)", [x["name"] for x in listed or []], ["pol1", "pol2"])
        checks.equal("l7policy positions", [x["position"] for x in listed or []], [2, 1])
        shown = cli.json(checks, "l7policy show", lb_cmd, "l7policy", "show", "pol1")
        checks.equal("l7policy position renumbered", field(shown, "position"), 2)
        cli.ok(checks, "l7policy set", lb_cmd, "l7policy", "set", "pol1", "--action", "REDIRECT_TO_POOL",
               "--redirect-pool", "p1")
        shown = cli.json(checks, "l7policy show after set", lb_cmd, "l7policy", "show", "pol1")
        checks.equal("l7policy set action", field(shown, "action"), "REDIRECT_TO_POOL")
        checks.equal("l7policy set clears redirect_url", field(shown, "redirect_url"), None)
        cli.ok(checks, "l7policy unset", lb_cmd, "l7policy", "unset", "pol1", "--description")
        rule = cli.json(checks, "l7rule create", lb_cmd, "l7rule", "create", "pol1", "--compare-type", "EQUAL_TO",
                        "--type", "HEADER", "--key", "X-Key", "--value", "v1")
        rule_id = field(rule, "id")
        checks.equal("l7rule create invert", field(rule, "invert"), False)
        cli.ok(checks, "l7rule set", lb_cmd, "l7rule", "set", "pol1", rule_id, "--value", "v2", "--invert")
        cli.ok(checks, "l7rule unset", lb_cmd, "l7rule", "unset", "pol1", rule_id, "--invert")
        shown = cli.json(checks, "l7rule show", lb_cmd, "l7rule", "show", "pol1", rule_id)
        checks.equal("l7rule set value", field(shown, "value"), "v2")
        checks.equal("l7rule unset invert", field(shown, "invert"), False)
        listed = cli.json(checks, "l7rule list", lb_cmd, "l7rule", "list", "pol1")
        checks.equal("l7rule list", [x["id"] for x in listed or []], [rule_id])
        cli.fails(checks, "pool delete while an L7 policy uses it", "is in use by L7 policy", lb_cmd, "pool",
                  "delete", "p1")
        cli.ok(checks, "l7rule delete", lb_cmd, "l7rule", "delete", "pol1", rule_id)
        cli.ok(checks, "l7policy delete", lb_cmd, "l7policy", "delete", "pol1")
        cli.ok(checks, "l7policy delete second", lb_cmd, "l7policy", "delete", "pol2")

        # ---- status tree ----
        rc, out, err = cli.run(lb_cmd, "status", "show", "web2")
        checks.equal("loadbalancer status show exit status", rc, 0)
        try:
            tree = json.loads(out)["loadbalancer"]
            checks.equal("status tree listener", tree["listeners"][0]["name"], "l1b")
            checks.equal("status tree pool", tree["listeners"][0]["pools"][0]["name"], "p1")
            checks.equal("status tree member", tree["listeners"][0]["pools"][0]["members"][0]["address"],
                         "198.51.100.10")
            checks.equal("status tree health monitor", tree["listeners"][0]["pools"][0]["health_monitor"]["type"],
                         "HTTP")
        except (ValueError, KeyError, IndexError) as e:
            checks.check("loadbalancer status show prints the tree", False, "%r %s" % (e, out[:300]))

        # ---- deletes ----
        cli.ok(checks, "healthmonitor delete", lb_cmd, "healthmonitor", "delete", "hm1")
        cli.ok(checks, "pool delete", lb_cmd, "pool", "delete", "p1")
        cli.fails(checks, "loadbalancer delete with children", "it has children", lb_cmd, "delete", "web2")
        cli.ok(checks, "listener delete l1b", lb_cmd, "listener", "delete", "l1b")
        cli.ok(checks, "loadbalancer delete --cascade --wait", lb_cmd, "delete", "off", "--cascade", "--wait")
        cli.ok(checks, "loadbalancer delete", lb_cmd, "delete", "web2")
        listed = cli.json(checks, "loadbalancer list empty", lb_cmd, "list")
        checks.equal("loadbalancer list after deletes", listed, [])

        # ---- providers, flavors, availability zones ----
        caps = cli.json(checks, "provider capability list", lb_cmd, "provider", "capability", "list", "amphora")
        checks.check("provider capability list has loadbalancer_topology",
                     any(c.get("name") == "loadbalancer_topology" for c in caps or []), str(caps)[:200])
        azcaps = cli.json(checks, "provider capability list --availability-zone", lb_cmd, "provider", "capability",
                          "list", "amphora", "--availability-zone")
        checks.check("availability zone capabilities", any(c.get("name") == "compute_zone" for c in azcaps or []))
        fp = cli.json(checks, "flavorprofile create", lb_cmd, "flavorprofile", "create", "--name", "fp1",
                      "--provider", "amphora", "--flavor-data", '{"loadbalancer_topology": "ACTIVE_STANDBY"}')
        checks.equal("flavorprofile create provider_name", field(fp, "provider_name"), "amphora")
        cli.ok(checks, "flavorprofile set", lb_cmd, "flavorprofile", "set", "fp1", "--name", "fp1b")
        checks.equal("flavorprofile list", [x["name"] for x in cli.json(checks, "flavorprofile list", lb_cmd,
                                                                       "flavorprofile", "list") or []], ["fp1b"])
        flavor = cli.json(checks, "flavor create", lb_cmd, "flavor", "create", "--name", "ha", "--flavorprofile",
                          "fp1b", "--description", "two amphorae", "--enable")
        checks.equal("flavor create enabled", field(flavor, "enabled"), True)
        cli.ok(checks, "flavor set", lb_cmd, "flavor", "set", "ha", "--disable")
        cli.ok(checks, "flavor unset", lb_cmd, "flavor", "unset", "ha", "--description")
        shown = cli.json(checks, "flavor show", lb_cmd, "flavor", "show", "ha")
        checks.equal("flavor set --disable", field(shown, "enabled"), False)
        checks.equal("flavor unset description", field(shown, "description"), "")
        cli.fails(checks, "loadbalancer create with a disabled flavor", "not allowed", lb_cmd, "create",
                  "--vip-subnet-id", VIP_SUBNET, "--flavor", "ha")
        checks.equal("flavor list", [x["name"] for x in cli.json(checks, "flavor list", lb_cmd, "flavor", "list")
                                     or []], ["ha"])
        cli.fails(checks, "flavorprofile delete in use", "in use", lb_cmd, "flavorprofile", "delete", "fp1b")
        cli.ok(checks, "flavor delete", lb_cmd, "flavor", "delete", "ha")
        cli.ok(checks, "flavorprofile delete", lb_cmd, "flavorprofile", "delete", "fp1b")
        azp = cli.json(checks, "availabilityzoneprofile create", lb_cmd, "availabilityzoneprofile", "create",
                       "--name", "azp1", "--provider", "amphora", "--availability-zone-data",
                       '{"compute_zone": "nova"}')
        checks.equal("availabilityzoneprofile create name", field(azp, "name"), "azp1")
        cli.ok(checks, "availabilityzoneprofile set", lb_cmd, "availabilityzoneprofile", "set", "azp1", "--name",
               "azp1b")
        az = cli.json(checks, "availabilityzone create", lb_cmd, "availabilityzone", "create", "--name", "zone1",
                      "--availabilityzoneprofile", "azp1b", "--description", "first zone")
        checks.equal("availabilityzone create enabled", field(az, "enabled"), True)
        cli.ok(checks, "availabilityzone set", lb_cmd, "availabilityzone", "set", "zone1", "--description", "z")
        cli.ok(checks, "availabilityzone unset", lb_cmd, "availabilityzone", "unset", "zone1", "--description")
        shown = cli.json(checks, "availabilityzone show", lb_cmd, "availabilityzone", "show", "zone1")
        checks.equal("availabilityzone unset description", field(shown, "description"), "")
        zoned = cli.json(checks, "loadbalancer create in a zone", lb_cmd, "create", "--vip-subnet-id", VIP_SUBNET,
                         "--availability-zone", "zone1", "--name", "zoned")
        checks.equal("loadbalancer availability_zone", field(zoned, "availability_zone"), "zone1")
        cli.fails(checks, "availabilityzone delete in use", "in use", lb_cmd, "availabilityzone", "delete", "zone1")
        cli.ok(checks, "loadbalancer delete zoned", lb_cmd, "delete", "zoned")
        checks.equal("availabilityzone list", [x["name"] for x in cli.json(
            checks, "availabilityzone list", lb_cmd, "availabilityzone", "list") or []], ["zone1"])
        cli.ok(checks, "availabilityzone delete", lb_cmd, "availabilityzone", "delete", "zone1")
        checks.equal("availabilityzoneprofile list", [x["name"] for x in cli.json(
            checks, "availabilityzoneprofile list", lb_cmd, "availabilityzoneprofile", "list") or []], ["azp1b"])
        cli.ok(checks, "availabilityzoneprofile delete", lb_cmd, "availabilityzoneprofile", "delete", "azp1b")

        # ---- amphorae (none exist with noop_driver) and quota defaults ----
        checks.equal("amphora list", cli.json(checks, "amphora list", lb_cmd, "amphora", "list"), [])
        cli.fails(checks, "amphora show of an unknown id", "not found", lb_cmd, "amphora", "show",
                  "8b1f1e1c-0000-4000-8000-000000000001")
        defaults = cli.json(checks, "quota defaults show", lb_cmd, "quota", "defaults", "show")
        checks.equal("quota defaults", defaults, {"load_balancer": -1, "listener": -1, "pool": -1,
                                                  "health_monitor": -1, "member": -1, "l7policy": -1, "l7rule": -1})
        checks.equal("quota list", cli.json(checks, "quota list", lb_cmd, "quota", "list"), [])

        # ---- health check ----
        body = urllib.request.urlopen(provider.url + "/healthcheck", timeout=5).read()
        checks.equal("healthcheck", body, b"OK")
    finally:
        provider.stop()


def phase_keystone(binary, keystone_script, workdir, checks):
    port = free_port()
    kdir = os.path.join(workdir, "keystone")
    env = dict(os.environ, LOADBALANCER_URL="http://127.0.0.1:%d" % port)
    started = subprocess.run([keystone_script, "start", kdir], env=env, capture_output=True, text=True, timeout=600)
    try:
        checks.equal("keystone started", started.returncode, 0)
        if started.returncode != 0:
            print(started.stdout[-2000:], started.stderr[-2000:], flush=True)
            return
        with open(os.path.join(kdir, "keystone.json")) as f:
            info = json.load(f)
        provider = Provider(binary, workdir,
                            "auth_strategy = keystone\n"
                            "[keystone_authtoken]\nwww_authenticate_uri = %s\nauth_url = %s\nusername = banyan\n"
                            "password = %s\nproject_name = service\n" % (info["url"], info["url"], info["password"]),
                            port=port)
        try:
            def cli_as(user):
                return Cli(["--os-auth-url", info["url"] + "/v3", "--os-identity-api-version", "3",
                            "--os-username", user, "--os-password", info["password"],
                            "--os-project-name", info["user_projects"][user], "--os-user-domain-name", "Default",
                            "--os-project-domain-name", "Default", "--os-region-name", "RegionOne",
                            "--os-interface", "public"], separate_process=True)
            admin = cli_as("admin")
            p1 = info["projects"]["banyan-p1"]
            cli_lb = "loadbalancer"
            # Projects are given by id: with Debian's osc-lib 2.6 and keystoneclient, resolving a
            # project *name* fails in the client (osc_lib find_resource calls
            # keystoneclient's Resource.get('id')) before any request reaches the API.
            admin.ok(checks, "quota set", cli_lb, "quota", "set", "--loadbalancer", "3", "--member", "50",
                     "--healthmonitor", "2", p1)
            shown = admin.json(checks, "quota show", cli_lb, "quota", "show", p1)
            checks.equal("quota show load_balancer", field(shown, "load_balancer"), 3)
            checks.equal("quota show health_monitor", field(shown, "health_monitor"), 2)
            checks.equal("quota show listener default", field(shown, "listener"), -1)
            listed = admin.json(checks, "quota list", cli_lb, "quota", "list")
            checks.equal("quota list project", [q.get("project_id") for q in listed or []], [p1])
            admin.ok(checks, "quota unset", cli_lb, "quota", "unset", p1, "--loadbalancer")
            shown = admin.json(checks, "quota show after unset", cli_lb, "quota", "show", p1)
            checks.equal("quota unset load_balancer", field(shown, "load_balancer"), -1)
            admin.ok(checks, "quota reset", cli_lb, "quota", "reset", p1)
            checks.equal("quota list after reset", admin.json(checks, "quota list after reset", cli_lb, "quota",
                                                              "list"), [])
            member = cli_as("p1-lb-member")
            checks.equal("project member sees its own (empty) list",
                         member.json(checks, "loadbalancer list as p1-lb-member", cli_lb, "list"), [])
            member.fails(checks, "quota set as a project member", "Policy does not allow", cli_lb, "quota", "set",
                         "--loadbalancer", "1", p1)
            noroles = cli_as("p1-reader")
            noroles.fails(checks, "loadbalancer list without a load-balancer role", "Policy does not allow",
                          cli_lb, "list")
        finally:
            provider.stop()
    finally:
        subprocess.run([keystone_script, "stop", kdir], capture_output=True, timeout=120)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--keystone-script", default="")
    ap.add_argument("--only", choices=["noauth", "keystone"], default="")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = ap.parse_args()
    workdir = tempfile.mkdtemp(prefix="banyan-cli-conformance-")
    checks = Checks()
    try:
        if args.only in ("", "noauth"):
            phase_noauth(args.binary, os.path.join(workdir, "noauth") if os.makedirs(
                os.path.join(workdir, "noauth")) is None else "", checks)
        if args.only in ("", "keystone") and args.keystone_script:
            os.makedirs(os.path.join(workdir, "ks"))
            phase_keystone(args.binary, args.keystone_script, os.path.join(workdir, "ks"), checks)
    except Exception:
        traceback.print_exc()
        checks.check("the run completed", False)
    finally:
        print("%d checks passed, %d failed (logs in %s)" % (checks.passed, len(checks.failed), workdir), flush=True)
        if not checks.failed and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
