#!/usr/bin/python3
"""Decides a matrix of Octavia policy checks with the real oslo.policy and Octavia's
registered defaults, for policy_conformance_test.cc.

argv: input.json output.txt
input: {"enforce_new_defaults": bool, "policy_file": "" | path,
        "actions": [...], "cases": [{"roles": [...], "project_id": str|null,
        "system_scope": "all"|null, "target": str|null}]}
output: one line per case, one '0'/'1' per action.
"""
import json
import sys
import warnings

warnings.simplefilter("ignore")

from oslo_config import cfg  # noqa: E402
from oslo_policy import policy as oslo_policy  # noqa: E402

import octavia.common.policy  # noqa: E402,F401  (registers Octavia's is_admin check)
from octavia import policies  # noqa: E402


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    conf = cfg.ConfigOpts()
    conf([], project="banyan-policy-check")
    enforcer = oslo_policy.Enforcer(conf, policy_file=spec["policy_file"] or None, use_conf=True)
    conf.set_override("enforce_new_defaults", spec["enforce_new_defaults"], "oslo_policy")
    enforcer.register_defaults(policies.list_rules())
    enforcer.load_rules()
    lines = []
    for case in spec["cases"]:
        creds = {"roles": case["roles"], "project_id": case["project_id"],
                 "system_scope": case["system_scope"], "user_id": "u", "is_admin": False}
        # Octavia's Context.is_admin: context_is_admin with the context as target.
        creds["is_admin"] = bool(enforcer.enforce("context_is_admin", dict(creds), dict(creds)))
        target = {"project_id": case["target"]}
        lines.append("".join("1" if enforcer.enforce(a, target, creds) else "0" for a in spec["actions"]))
    with open(sys.argv[2], "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
