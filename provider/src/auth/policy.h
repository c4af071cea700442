// Octavia's policy: an oslo.policy rule engine loaded with Octavia Zed's registered
// defaults and an optional operator policy file.
//
// Semantics follow oslo.policy 4.0 as configured by Octavia Zed (11.0):
//  - [oslo_policy] enforce_scope = False (Zed's default): a rule's scope_types are not
//    enforced, so a project-scoped token is judged by the check strings alone.
//  - [oslo_policy] enforce_new_defaults = False (Zed's default): a rule that has a
//    deprecated rule (context_is_admin, load-balancer:observer_and_owner,
//    load-balancer:member_and_owner) is evaluated as "<new check> or <deprecated check>",
//    unless the policy file overrides it. So in Zed a project-scoped "admin" is an admin
//    (deprecated context_is_admin = "role:admin or role:load-balancer_admin").
//  - is_admin:True is true when the caller is an admin context: Credentials::is_admin,
//    or noauth, or the rule context_is_admin passes (Octavia's Context.is_admin).
//  - An action that is not registered is denied (Octavia raises PolicyNotRegistered).
//  - An empty target or credential project id never matches project_id:%(project_id)s
//    (Python compares "None" == "None"; we refuse instead).
// Check strings: "role:x", "rule:x", "is_admin:True|False", "<credential>:<value>" with
// %(project_id)s substitution from the target, literal kinds ('x', True, 5), "@" (always),
// "!" (never), "" (always), and/or/not with parentheses. "http:" checks are refused.
//
// The policy file is YAML ("name": "check" per line; comments, blank lines, "---") or JSON
// ({"name": "check", ...}). Anything else, a syntax error in a check string, or a cycle of
// rule: references is refused with an error naming the file and line.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "auth/auth.h"

namespace banyan::provider::auth {

struct PolicyOptions {
  // oslo.policy's [oslo_policy] enforce_new_defaults: drop the deprecated alternatives.
  bool enforce_new_defaults = false;
};

// policy_file "" = Octavia's defaults only. noauth: every caller is an admin context
// (Octavia: auth_strategy = noauth makes Context.is_admin true).
Result<std::unique_ptr<Policy>> makeOctaviaPolicy(const std::string& policy_file, bool noauth);
Result<std::unique_ptr<Policy>> makeOctaviaPolicy(const std::string& policy_file, bool noauth,
                                                  const PolicyOptions& options);
// Same, with the policy document given as text (YAML subset or JSON); source names it in errors.
Result<std::unique_ptr<Policy>> makeOctaviaPolicyFromText(const std::string& text,
                                                          const std::string& source, bool noauth,
                                                          const PolicyOptions& options = {});

// Every registered os_load-balancer_api:* action (see policy_actions.md), in Octavia's order.
std::vector<std::string> knownActions();

// Octavia's Context.is_admin: Credentials::is_admin, or the policy's context_is_admin rule.
// The API uses it where Octavia reads context.is_admin. Policy must come from makeOctaviaPolicy.
bool isAdminContext(const Policy& policy, const Credentials& who);

// Parses one oslo.policy check string; the error says what is wrong. For tests and tools.
Result<void> validateCheckString(const std::string& check);

}  // namespace banyan::provider::auth
