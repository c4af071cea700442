#include "auth/policy.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "auth/policy_check.h"
#include "banyan/common/logging.h"

namespace banyan::provider::auth {
namespace {

using common::ErrorCode;
using common::makeError;
using detail::CheckNode;
using detail::CheckPtr;

struct DefaultRule {
  const char* name;
  const char* check;
  const char* deprecated_check;  // nullptr: none. Octavia's deprecated rules keep their names.
};

// Octavia Zed's registered defaults (octavia/policies/*.py), in registration order.
constexpr DefaultRule kDefaults[] = {
    // Generic roles (base.py).
    {"system-admin", "role:admin and system_scope:all", nullptr},
    {"system-reader", "role:reader and system_scope:all", nullptr},
    {"project-member", "role:member and project_id:%(project_id)s", nullptr},
    {"project-reader", "role:reader and project_id:%(project_id)s", nullptr},
    {"context_is_admin", "role:load-balancer_admin or rule:system-admin",
     "role:admin or role:load-balancer_admin"},
    {"load-balancer:owner", "project_id:%(project_id)s", nullptr},
    {"load-balancer:observer_and_owner", "role:load-balancer_observer and rule:project-reader",
     "role:load-balancer_observer and rule:load-balancer:owner"},
    {"load-balancer:global_observer", "role:load-balancer_global_observer or rule:system-reader",
     nullptr},
    {"load-balancer:member_and_owner", "role:load-balancer_member and rule:project-member",
     "role:load-balancer_member and rule:load-balancer:owner"},
    {"load-balancer:admin", "is_admin:True or role:load-balancer_admin or rule:system-admin",
     nullptr},
    {"load-balancer:read",
     "rule:load-balancer:observer_and_owner or rule:load-balancer:global_observer or "
     "rule:load-balancer:member_and_owner or rule:load-balancer:admin",
     nullptr},
    {"load-balancer:read-global", "rule:load-balancer:global_observer or rule:load-balancer:admin",
     nullptr},
    {"load-balancer:write", "rule:load-balancer:member_and_owner or rule:load-balancer:admin",
     nullptr},
    {"load-balancer:read-quota",
     "rule:load-balancer:observer_and_owner or rule:load-balancer:global_observer or "
     "rule:load-balancer:member_and_owner or role:load-balancer_quota_admin or "
     "rule:load-balancer:admin",
     nullptr},
    {"load-balancer:read-quota-global",
     "rule:load-balancer:global_observer or role:load-balancer_quota_admin or "
     "rule:load-balancer:admin",
     nullptr},
    {"load-balancer:write-quota", "role:load-balancer_quota_admin or rule:load-balancer:admin",
     nullptr},

#define BANYAN_API(action, rule) \
  { "os_load-balancer_api:" action, "rule:load-balancer:" rule, nullptr }
    BANYAN_API("flavor:get_all", "read"),
    BANYAN_API("flavor:post", "admin"),
    BANYAN_API("flavor:put", "admin"),
    BANYAN_API("flavor:get_one", "read"),
    BANYAN_API("flavor:delete", "admin"),
    BANYAN_API("flavor-profile:get_all", "admin"),
    BANYAN_API("flavor-profile:post", "admin"),
    BANYAN_API("flavor-profile:put", "admin"),
    BANYAN_API("flavor-profile:get_one", "admin"),
    BANYAN_API("flavor-profile:delete", "admin"),
    BANYAN_API("availability-zone:get_all", "read"),
    BANYAN_API("availability-zone:post", "admin"),
    BANYAN_API("availability-zone:put", "admin"),
    BANYAN_API("availability-zone:get_one", "read"),
    BANYAN_API("availability-zone:delete", "admin"),
    BANYAN_API("availability-zone-profile:get_all", "admin"),
    BANYAN_API("availability-zone-profile:post", "admin"),
    BANYAN_API("availability-zone-profile:put", "admin"),
    BANYAN_API("availability-zone-profile:get_one", "admin"),
    BANYAN_API("availability-zone-profile:delete", "admin"),
    BANYAN_API("healthmonitor:get_all", "read"),
    BANYAN_API("healthmonitor:get_all-global", "read-global"),
    BANYAN_API("healthmonitor:post", "write"),
    BANYAN_API("healthmonitor:get_one", "read"),
    BANYAN_API("healthmonitor:put", "write"),
    BANYAN_API("healthmonitor:delete", "write"),
    BANYAN_API("l7policy:get_all", "read"),
    BANYAN_API("l7policy:get_all-global", "read-global"),
    BANYAN_API("l7policy:post", "write"),
    BANYAN_API("l7policy:get_one", "read"),
    BANYAN_API("l7policy:put", "write"),
    BANYAN_API("l7policy:delete", "write"),
    BANYAN_API("l7rule:get_all", "read"),
    BANYAN_API("l7rule:post", "write"),
    BANYAN_API("l7rule:get_one", "read"),
    BANYAN_API("l7rule:put", "write"),
    BANYAN_API("l7rule:delete", "write"),
    BANYAN_API("listener:get_all", "read"),
    BANYAN_API("listener:get_all-global", "read-global"),
    BANYAN_API("listener:post", "write"),
    BANYAN_API("listener:get_one", "read"),
    BANYAN_API("listener:put", "write"),
    BANYAN_API("listener:delete", "write"),
    BANYAN_API("listener:get_stats", "read"),
    BANYAN_API("loadbalancer:get_all", "read"),
    BANYAN_API("loadbalancer:get_all-global", "read-global"),
    BANYAN_API("loadbalancer:post", "write"),
    BANYAN_API("loadbalancer:get_one", "read"),
    BANYAN_API("loadbalancer:put", "write"),
    BANYAN_API("loadbalancer:delete", "write"),
    BANYAN_API("loadbalancer:get_stats", "read"),
    BANYAN_API("loadbalancer:get_status", "read"),
    BANYAN_API("loadbalancer:put_failover", "admin"),
    BANYAN_API("member:get_all", "read"),
    BANYAN_API("member:post", "write"),
    BANYAN_API("member:get_one", "read"),
    BANYAN_API("member:put", "write"),
    BANYAN_API("member:delete", "write"),
    BANYAN_API("pool:get_all", "read"),
    BANYAN_API("pool:get_all-global", "read-global"),
    BANYAN_API("pool:post", "write"),
    BANYAN_API("pool:get_one", "read"),
    BANYAN_API("pool:put", "write"),
    BANYAN_API("pool:delete", "write"),
    BANYAN_API("provider:get_all", "read"),
    BANYAN_API("quota:get_all", "read-quota"),
    BANYAN_API("quota:get_all-global", "read-quota-global"),
    BANYAN_API("quota:get_one", "read-quota"),
    BANYAN_API("quota:put", "write-quota"),
    BANYAN_API("quota:delete", "write-quota"),
    BANYAN_API("quota:get_defaults", "read-quota"),
    BANYAN_API("amphora:get_all", "admin"),
    BANYAN_API("amphora:get_one", "admin"),
    BANYAN_API("amphora:delete", "admin"),
    BANYAN_API("amphora:put_config", "admin"),
    BANYAN_API("amphora:put_failover", "admin"),
    BANYAN_API("amphora:get_stats", "admin"),
    BANYAN_API("provider-flavor:get_all", "admin"),
    BANYAN_API("provider-availability-zone:get_all", "admin"),
#undef BANYAN_API
};

constexpr std::string_view kActionPrefix = "os_load-balancer_api:";

struct FileRule {
  std::string check;
  std::string where;  // "file:line" for errors
};
using FileRules = std::map<std::string, FileRule, std::less<>>;

// ---- policy file: YAML subset and JSON ----

Result<std::string> readQuotedYaml(std::string_view line, size_t& pos, const std::string& where) {
  char quote = line[pos++];
  std::string out;
  while (pos < line.size()) {
    char c = line[pos++];
    if (quote == '\'' && c == '\'') {
      if (pos < line.size() && line[pos] == '\'') {  // '' is an escaped quote
        out.push_back('\'');
        ++pos;
        continue;
      }
      return out;
    }
    if (quote == '"' && c == '"') return out;
    if (quote == '"' && c == '\\') {
      if (pos >= line.size()) break;
      char e = line[pos++];
      switch (e) {
        case '"':
          out.push_back('"');
          break;
        case '\\':
          out.push_back('\\');
          break;
        case '/':
          out.push_back('/');
          break;
        case 't':
          out.push_back('\t');
          break;
        default:
          return makeError(ErrorCode::kInvalidArgument,
                           std::string("unsupported escape \\") + e + " in a quoted string", where);
      }
      continue;
    }
    out.push_back(c);
  }
  return makeError(ErrorCode::kInvalidArgument,
                   "unterminated quoted string (multi-line strings are not supported)", where);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

// After a quoted scalar only blanks and a comment may follow.
Result<void> expectLineEnd(std::string_view line, size_t pos, const std::string& where) {
  std::string_view rest = trim(line.substr(pos));
  if (!rest.empty() && rest.front() != '#') {
    return makeError(ErrorCode::kInvalidArgument,
                     "unexpected text after the quoted value: '" + std::string(rest) + "'", where);
  }
  return {};
}

Result<FileRules> parseYamlSubset(const std::string& text, const std::string& source) {
  FileRules rules;
  std::istringstream in(text);
  std::string raw;
  int line_no = 0;
  while (std::getline(in, raw)) {
    ++line_no;
    std::string where = source + ":" + std::to_string(line_no);
    std::string_view line = raw;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    std::string_view stripped = trim(line);
    if (stripped.empty() || stripped.front() == '#' || stripped == "---" || stripped == "...")
      continue;
    if (line.front() == ' ' || line.front() == '\t') {
      return makeError(ErrorCode::kInvalidArgument,
                       "indented line: only one \"rule\": \"check\" pair per line is supported",
                       where);
    }
    std::string key;
    size_t pos = 0;
    if (line[0] == '"' || line[0] == '\'') {
      auto quoted = readQuotedYaml(line, pos, where);
      if (!quoted) return quoted.error();
      key = quoted.value();
      while (pos < line.size() && (line[pos] == ' ' || line[pos] == '\t')) ++pos;
      if (pos >= line.size() || line[pos] != ':') {
        return makeError(ErrorCode::kInvalidArgument, "expected ':' after the rule name", where);
      }
      ++pos;
    } else {
      // A plain key ends at the first ": " (rule names themselves contain ':').
      size_t sep = line.find(": ");
      if (sep == std::string_view::npos && line.back() == ':') sep = line.size() - 1;
      if (sep == std::string_view::npos) sep = line.find(":\t");
      if (sep == std::string_view::npos) {
        return makeError(ErrorCode::kInvalidArgument,
                         "expected \"rule\": \"check\", got '" + std::string(line) + "'", where);
      }
      key = std::string(trim(line.substr(0, sep)));
      pos = sep + 1;
      if (key.empty() || key.front() == '-' || key.front() == '[' || key.front() == '{') {
        return makeError(ErrorCode::kInvalidArgument,
                         "expected a mapping of rule names to check strings", where);
      }
    }
    while (pos < line.size() && (line[pos] == ' ' || line[pos] == '\t')) ++pos;
    std::string value;
    if (pos < line.size() && (line[pos] == '"' || line[pos] == '\'')) {
      auto quoted = readQuotedYaml(line, pos, where);
      if (!quoted) return quoted.error();
      auto end = expectLineEnd(line, pos, where);
      if (!end) return end.error();
      value = quoted.value();
    } else {
      std::string_view rest = line.substr(pos);
      size_t comment = rest.find(" #");
      if (comment != std::string_view::npos) rest = rest.substr(0, comment);
      rest = trim(rest);
      if (rest.empty() || rest.front() == '#') {
        return makeError(ErrorCode::kInvalidArgument,
                         "rule '" + key + "' has no value (write \"\" to allow everyone)", where);
      }
      if (std::string_view("[{|>&*!@%`").find(rest.front()) != std::string_view::npos) {
        return makeError(ErrorCode::kInvalidArgument,
                         "value of rule '" + key + "' must be quoted: '" + std::string(rest) + "'",
                         where);
      }
      value = std::string(rest);
    }
    if (rules.count(key)) {
      return makeError(ErrorCode::kInvalidArgument, "rule '" + key + "' is defined twice", where);
    }
    rules.emplace(key, FileRule{value, where});
  }
  return rules;
}

Result<FileRules> parseJsonPolicy(const std::string& text, const std::string& source) {
  rapidjson::Document doc;
  doc.Parse(text.c_str(), text.size());
  if (doc.HasParseError()) {
    return makeError(ErrorCode::kInvalidArgument,
                     std::string("invalid JSON: ") +
                         rapidjson::GetParseError_En(doc.GetParseError()) + " at offset " +
                         std::to_string(doc.GetErrorOffset()),
                     source);
  }
  if (!doc.IsObject()) {
    return makeError(ErrorCode::kInvalidArgument, "the policy document must be an object", source);
  }
  FileRules rules;
  const rapidjson::Document& const_doc = doc;  // const iterators: clang rejects mixed ones in C++20
  for (const auto& member : const_doc.GetObject()) {
    std::string key(member.name.GetString(), member.name.GetStringLength());
    if (!member.value.IsString()) {
      return makeError(
          ErrorCode::kInvalidArgument,
          "rule '" + key + "' must be a check string (the list syntax is not supported)", source);
    }
    if (rules.count(key)) {
      return makeError(ErrorCode::kInvalidArgument, "rule '" + key + "' is defined twice", source);
    }
    rules.emplace(key,
                  FileRule{std::string(member.value.GetString(), member.value.GetStringLength()),
                           source + ":" + key});
  }
  return rules;
}

Result<FileRules> parsePolicyDocument(const std::string& text, const std::string& source) {
  size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && text[first] == '{') return parseJsonPolicy(text, source);
  return parseYamlSubset(text, source);
}

// ---- the policy ----

CheckPtr orOf(CheckPtr a, CheckPtr b) {
  auto node = std::make_shared<CheckNode>();
  node->kind = CheckNode::Kind::kOr;
  node->children = {std::move(a), std::move(b)};
  return node;
}

class OctaviaPolicy final : public Policy {
 public:
  OctaviaPolicy(std::map<std::string, CheckPtr, std::less<>> rules,
                std::set<std::string, std::less<>> actions, bool noauth)
      : rules_(std::move(rules)), actions_(std::move(actions)), noauth_(noauth) {}

  bool allowed(std::string_view action, const Credentials& who,
               const Target& target) const override {
    auto it = rules_.find(action);
    if (it == rules_.end() || !actions_.count(action)) {
      LB_WARN("policy action is not registered action=%.*s", static_cast<int>(action.size()),
              action.data());
      return false;
    }
    detail::EvalContext ctx{who, target, isAdmin(who), resolver()};
    return detail::evaluateCheck(*it->second, ctx);
  }

  bool isAdmin(const Credentials& who) const {
    if (who.is_admin || noauth_) return true;
    auto it = rules_.find("context_is_admin");
    if (it == rules_.end()) return false;
    // Octavia's check_is_admin passes the credentials as the target too.
    Target self{who.project_id};
    detail::EvalContext ctx{who, self, false, resolver()};
    return detail::evaluateCheck(*it->second, ctx);
  }

 private:
  std::function<const CheckNode*(std::string_view)> resolver() const {
    return [this](std::string_view name) -> const CheckNode* {
      auto it = rules_.find(name);
      return it == rules_.end() ? nullptr : it->second.get();
    };
  }

  std::map<std::string, CheckPtr, std::less<>> rules_;
  std::set<std::string, std::less<>> actions_;
  bool noauth_;
};

// Refuses rule: reference cycles (oslo.policy would recurse until RecursionError).
Result<void> checkCycles(const std::map<std::string, CheckPtr, std::less<>>& rules) {
  enum class Mark { kNone, kActive, kDone };
  std::map<std::string, Mark, std::less<>> marks;
  std::function<Result<void>(const std::string&, std::string)> visit =
      [&](const std::string& name, std::string path) -> Result<void> {
    auto& mark = marks[name];
    if (mark == Mark::kDone) return {};
    if (mark == Mark::kActive) {
      return makeError(ErrorCode::kInvalidArgument, "rule references form a cycle: " + path + name);
    }
    mark = Mark::kActive;
    auto it = rules.find(name);
    if (it != rules.end()) {
      std::vector<std::string> refs;
      detail::collectRuleRefs(*it->second, refs);
      for (const auto& ref : refs) {
        auto r = visit(ref, path + name + " -> ");
        if (!r) return r;
      }
    }
    marks[name] = Mark::kDone;
    return {};
  };
  for (const auto& [name, _] : rules) {
    auto r = visit(name, "");
    if (!r) return r;
  }
  return {};
}

Result<std::unique_ptr<Policy>> build(const FileRules& file_rules, bool noauth,
                                      const PolicyOptions& options) {
  std::map<std::string, CheckPtr, std::less<>> rules;
  std::set<std::string, std::less<>> actions;
  for (const auto& def : kDefaults) {
    std::string name = def.name;
    if (name.starts_with(kActionPrefix)) actions.insert(name);
    if (file_rules.count(name)) continue;  // the operator's rule replaces the default
    auto check = detail::parseCheck(def.check);
    LB_CHECK(check.ok(), "Octavia's default check strings parse");
    CheckPtr effective = check.value();
    // enforce_new_defaults=False: oslo.policy ORs the deprecated check string in.
    if (def.deprecated_check != nullptr && !options.enforce_new_defaults) {
      auto old = detail::parseCheck(def.deprecated_check);
      LB_CHECK(old.ok(), "Octavia's deprecated check strings parse");
      effective = orOf(effective, old.value());
    }
    rules.emplace(name, effective);
  }
  for (const auto& [name, rule] : file_rules) {
    auto check = detail::parseCheck(rule.check);
    if (!check) {
      return makeError(ErrorCode::kInvalidArgument, "rule '" + name + "': " + check.error().message,
                       rule.where);
    }
    rules[name] = check.value();
  }
  auto cycles = checkCycles(rules);
  if (!cycles) return cycles.error();
  for (const auto& [name, check] : rules) {
    std::vector<std::string> refs;
    detail::collectRuleRefs(*check, refs);
    for (const auto& ref : refs) {
      if (!rules.count(ref)) {
        LB_WARN("policy rule references an undefined rule, which never passes rule=%s undefined=%s",
                name.c_str(), ref.c_str());
      }
    }
  }
  return std::unique_ptr<Policy>(
      std::make_unique<OctaviaPolicy>(std::move(rules), std::move(actions), noauth));
}

}  // namespace

Result<std::unique_ptr<Policy>> makeOctaviaPolicyFromText(const std::string& text,
                                                          const std::string& source, bool noauth,
                                                          const PolicyOptions& options) {
  auto rules = parsePolicyDocument(text, source);
  if (!rules) return rules.error();
  return build(rules.value(), noauth, options);
}

Result<std::unique_ptr<Policy>> makeOctaviaPolicy(const std::string& policy_file, bool noauth,
                                                  const PolicyOptions& options) {
  if (policy_file.empty()) return build({}, noauth, options);
  std::ifstream in(policy_file, std::ios::binary);
  if (!in) {
    return makeError(ErrorCode::kUnavailable, "cannot open the policy file", policy_file);
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad())
    return makeError(ErrorCode::kUnavailable, "cannot read the policy file", policy_file);
  return makeOctaviaPolicyFromText(text.str(), policy_file, noauth, options);
}

Result<std::unique_ptr<Policy>> makeOctaviaPolicy(const std::string& policy_file, bool noauth) {
  return makeOctaviaPolicy(policy_file, noauth, PolicyOptions{});
}

std::vector<std::string> knownActions() {
  std::vector<std::string> out;
  for (const auto& def : kDefaults) {
    if (std::string_view(def.name).starts_with(kActionPrefix)) out.emplace_back(def.name);
  }
  return out;
}

bool isAdminContext(const Policy& policy, const Credentials& who) {
  auto* octavia = dynamic_cast<const OctaviaPolicy*>(&policy);
  if (octavia == nullptr) return who.is_admin;
  return octavia->isAdmin(who);
}

Result<void> validateCheckString(const std::string& check) {
  auto parsed = detail::parseCheck(check);
  if (!parsed) return parsed.error();
  return {};
}

}  // namespace banyan::provider::auth
