// The oslo.policy check-string language: parsing into an immutable tree and evaluating it
// against Credentials and a Target. Internal to the auth module (policy.cc and tests).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "auth/auth.h"

namespace banyan::provider::auth::detail {

struct CheckNode {
  enum class Kind { kTrue, kFalse, kAnd, kOr, kNot, kRule, kRole, kIsAdmin, kGeneric };
  Kind kind = Kind::kFalse;
  std::vector<std::shared_ptr<const CheckNode>> children;  // kAnd, kOr (2+), kNot (1)
  std::string kind_text;  // kGeneric: the credential name or literal before ':'
  std::string match;      // text after ':' (a %(name)s template for kRole/kGeneric)
  bool expected = true;   // kIsAdmin
};
using CheckPtr = std::shared_ptr<const CheckNode>;

// Parses a check string the way oslo.policy's _parse_text_rule does, but refuses what
// oslo.policy would silently turn into a never-matching check.
Result<CheckPtr> parseCheck(std::string_view text);

// Renders a tree back to a canonical check string (tests, debug logs).
std::string renderCheck(const CheckNode& node);

struct EvalContext {
  const Credentials& who;
  const Target& target;
  bool is_admin = false;
  // Resolves rule:NAME; nullptr when the rule does not exist (the check fails).
  std::function<const CheckNode*(std::string_view)> resolve;
};

bool evaluateCheck(const CheckNode& node, const EvalContext& ctx, int depth = 0);

// Every rule:NAME referenced by the tree.
void collectRuleRefs(const CheckNode& node, std::vector<std::string>& out);

}  // namespace banyan::provider::auth::detail
