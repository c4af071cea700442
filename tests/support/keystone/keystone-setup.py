#!/usr/bin/python3
"""Creates Banyan's test identities in a freshly bootstrapped Keystone (see keystone-server.sh).

Projects: banyan-p1, banyan-p2, service. Every user's password is KEYSTONE_PASSWORD.
Users (project: roles):
  admin                 admin: admin (bootstrap; also system-scoped admin)
  p1-admin              banyan-p1: admin            (implies member, reader)
  p1-member             banyan-p1: member           (implies reader)
  p1-reader             banyan-p1: reader
  p1-lb-observer        banyan-p1: load-balancer_observer
  p1-lb-global-observer banyan-p1: load-balancer_global_observer
  p1-lb-member          banyan-p1: load-balancer_member, member
  p1-lb-quota-admin     banyan-p1: load-balancer_quota_admin
  p1-lb-admin           banyan-p1: load-balancer_admin
  p1-noroles            banyan-p1: (none; cannot get a project-scoped token)
  p2-lb-member          banyan-p2: load-balancer_member, member
  p1-creator            banyan-p1: creator, load-balancer_member, member (stores Barbican secrets)
  p2-creator            banyan-p2: creator, load-balancer_member, member
  banyan                service: service, admin    (Banyan's own service user)
  barbican              service: service, admin    (a test Barbican's service user)
Optional: LOADBALANCER_URL registers a "load-balancer" service with that endpoint.
Writes KEYSTONE_DIR/keystone.json and KEYSTONE_DIR/openrc.<user>.
"""
import json
import os
import sys
import urllib.error
import urllib.request

URL = os.environ["KEYSTONE_URL"].rstrip("/")
PASSWORD = os.environ["KEYSTONE_PASSWORD"]
DIR = os.environ["KEYSTONE_DIR"]
LB_URL = os.environ.get("LOADBALANCER_URL", "")

LB_ROLES = ["load-balancer_observer", "load-balancer_global_observer", "load-balancer_member",
            "load-balancer_quota_admin", "load-balancer_admin", "service", "creator"]
USERS = [
    ("p1-admin", "banyan-p1", ["admin"]),
    ("p1-member", "banyan-p1", ["member"]),
    ("p1-reader", "banyan-p1", ["reader"]),
    ("p1-lb-observer", "banyan-p1", ["load-balancer_observer"]),
    ("p1-lb-global-observer", "banyan-p1", ["load-balancer_global_observer"]),
    ("p1-lb-member", "banyan-p1", ["load-balancer_member", "member"]),
    ("p1-lb-quota-admin", "banyan-p1", ["load-balancer_quota_admin"]),
    ("p1-lb-admin", "banyan-p1", ["load-balancer_admin"]),
    ("p1-noroles", "banyan-p1", []),
    ("p2-lb-member", "banyan-p2", ["load-balancer_member", "member"]),
    ("p1-creator", "banyan-p1", ["creator", "load-balancer_member", "member"]),
    ("p2-creator", "banyan-p2", ["creator", "load-balancer_member", "member"]),
    ("banyan", "service", ["service", "admin"]),
    ("barbican", "service", ["service", "admin"]),
]


def call(method, path, token=None, body=None, expect=(200, 201, 204)):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(URL + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("X-Auth-Token", token)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            text = resp.read().decode()
            return resp.status, dict(resp.headers), (json.loads(text) if text else None)
    except urllib.error.HTTPError as e:
        if e.code in expect:
            return e.code, dict(e.headers), None
        raise SystemExit("%s %s -> %d %s" % (method, path, e.code, e.read().decode()[:500]))


def admin_token():
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"id": "default"}, "password": PASSWORD}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
    _, headers, _ = call("POST", "/v3/auth/tokens", body=body)
    return headers["X-Subject-Token"]


def main():
    tok = admin_token()
    # bootstrap may have named another port (keystone-server.sh retries on a new one).
    _, _, eps = call("GET", "/v3/endpoints", tok)
    for ep in eps["endpoints"]:
        if ep["url"] != URL + "/v3/":
            call("PATCH", "/v3/endpoints/" + ep["id"], tok, {"endpoint": {"url": URL + "/v3/"}})

    _, _, existing = call("GET", "/v3/roles", tok)
    roles = {r["name"]: r["id"] for r in existing["roles"]}
    for name in LB_ROLES:
        if name not in roles:
            _, _, made = call("POST", "/v3/roles", tok, {"role": {"name": name}})
            roles[name] = made["role"]["id"]

    _, _, existing = call("GET", "/v3/projects", tok)
    projects = {p["name"]: p["id"] for p in existing["projects"]}
    for name in ["banyan-p1", "banyan-p2", "service"]:
        if name not in projects:
            _, _, made = call("POST", "/v3/projects", tok,
                              {"project": {"name": name, "domain_id": "default"}})
            projects[name] = made["project"]["id"]

    _, _, existing = call("GET", "/v3/users", tok)
    users = {u["name"]: u["id"] for u in existing["users"]}
    for name, project, user_roles in USERS:
        if name not in users:
            _, _, made = call("POST", "/v3/users", tok, {"user": {
                "name": name, "domain_id": "default", "password": PASSWORD,
                "default_project_id": projects[project]}})
            users[name] = made["user"]["id"]
        for role in user_roles:
            call("PUT", "/v3/projects/%s/users/%s/roles/%s" % (projects[project], users[name], roles[role]), tok)

    if LB_URL:
        _, _, made = call("POST", "/v3/services", tok,
                          {"service": {"type": "load-balancer", "name": "octavia", "enabled": True}})
        for iface in ["public", "internal", "admin"]:
            call("POST", "/v3/endpoints", tok, {"endpoint": {
                "service_id": made["service"]["id"], "interface": iface, "url": LB_URL,
                "region_id": "RegionOne"}})

    info = {
        "url": URL,
        "password": PASSWORD,
        "projects": projects,
        "users": users,
        "roles": roles,
        "user_projects": {name: project for name, project, _ in USERS},
    }
    info["user_projects"]["admin"] = "admin"
    with open(os.path.join(DIR, "keystone.json"), "w") as f:
        json.dump(info, f, indent=2, sort_keys=True)
    for name, project in info["user_projects"].items():
        with open(os.path.join(DIR, "openrc." + name), "w") as f:
            f.write("export OS_AUTH_URL=%s/v3\nexport OS_IDENTITY_API_VERSION=3\n"
                    "export OS_USERNAME=%s\nexport OS_PASSWORD=%s\nexport OS_PROJECT_NAME=%s\n"
                    "export OS_USER_DOMAIN_NAME=Default\nexport OS_PROJECT_DOMAIN_NAME=Default\n"
                    "export OS_REGION_NAME=RegionOne\nexport OS_INTERFACE=public\n"
                    % (URL, name, PASSWORD, project))
    print("keystone test identities ready at %s" % URL)


if __name__ == "__main__":
    sys.exit(main())
