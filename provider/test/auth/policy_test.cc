#include "auth/policy.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>

#include "auth/policy_check.h"

namespace banyan::provider::auth {
namespace {

using detail::parseCheck;
using detail::renderCheck;

constexpr const char* kOwn = "11111111111111111111111111111111";
constexpr const char* kOther = "22222222222222222222222222222222";

Credentials projectUser(std::vector<std::string> roles, std::string project = kOwn) {
  Credentials c;
  c.user_id = "u-" + project.substr(0, 4);
  c.project_id = std::move(project);
  c.roles = std::move(roles);
  return c;
}

Credentials systemUser(std::vector<std::string> roles) {
  Credentials c;
  c.user_id = "sys";
  c.system_scope = true;
  c.roles = std::move(roles);
  return c;
}

std::string api(const std::string& action) { return "os_load-balancer_api:" + action; }

// ---- the check-string language ----

struct ParseRow {
  const char* what;
  const char* check;
  bool parses;
  const char* rendered;  // canonical form when it parses
};

TEST(PolicyCheckParser, ParsesOsloPolicySyntaxAndRefusesWhatItCannot) {
  const ParseRow rows[] = {
      {"empty string always passes", "", true, "@"},
      {"at sign", "@", true, "@"},
      {"bang", "!", true, "!"},
      {"role", "role:admin", true, "role:admin"},
      {"rule", "rule:load-balancer:read", true, "rule:load-balancer:read"},
      {"generic with template", "project_id:%(project_id)s", true, "project_id:%(project_id)s"},
      {"is_admin is Octavia's own check", "is_admin:True", true, "is_admin:True"},
      {"and binds tighter than or", "role:a or role:b and role:c", true,
       "role:a or (role:b and role:c)"},
      {"parentheses regroup", "(role:a or role:b) and role:c", true,
       "(role:a or role:b) and role:c"},
      {"keywords in any case", "role:a AND NOT role:b", true, "role:a and not role:b"},
      {"not binds to one check", "not role:a and role:b", true, "not role:a and role:b"},
      {"double not", "not not role:a", true, "not not role:a"},
      {"parentheses glued to words", "((role:a) or(role:b))", false, nullptr},
      {"nested glued parentheses", "((role:a or role:b))", true, "role:a or role:b"},
      {"literal kind", "'member':%(project_id)s", true, "'member':%(project_id)s"},
      {"multiple blanks and tabs", "role:a \t  or\trole:b", true, "role:a or role:b"},
      {"missing colon", "admin", false, nullptr},
      {"dangling and", "role:a and", false, nullptr},
      {"leading or", "or role:a", false, nullptr},
      {"unbalanced open", "(role:a or role:b", false, nullptr},
      {"unbalanced close", "role:a)", false, nullptr},
      {"two checks without operator", "role:a role:b", false, nullptr},
      {"quoted string token", "role:a or 'x'", false, nullptr},
      {"remote http check", "http://example.org/check", false, nullptr},
      {"https check", "https:example", false, nullptr},
      {"empty kind", ":x", false, nullptr},
      {"rule without name", "rule:", false, nullptr},
      {"bad template", "project_id:%d", false, nullptr},
      {"unterminated template", "project_id:%(project_id", false, nullptr},
      {"blank", "   ", false, nullptr},
      {"empty parentheses", "()", false, nullptr},
  };
  for (const auto& row : rows) {
    auto parsed = parseCheck(row.check);
    EXPECT_EQ(parsed.ok(), row.parses) << row.what << ": '" << row.check << "'"
                                       << (parsed.ok() ? "" : " error: " + parsed.error().message);
    if (parsed.ok() && row.rendered != nullptr) {
      EXPECT_EQ(renderCheck(**parsed), row.rendered) << row.what;
    }
  }
}

struct EvalRow {
  const char* what;
  const char* check;
  Credentials who;
  std::string target_project;
  bool is_admin;
  bool expected;
};

TEST(PolicyCheckEvaluator, DecidesEachKindOfCheckLikeOsloPolicy) {
  Credentials member = projectUser({"member", "load-balancer_member"});
  Credentials sys = systemUser({"admin"});
  Credentials noproject;
  const EvalRow rows[] = {
      {"role present", "role:member", member, kOwn, false, true},
      {"role compare ignores case", "role:MEMBER", member, kOwn, false, true},
      {"role absent", "role:admin", member, kOwn, false, false},
      {"owner", "project_id:%(project_id)s", member, kOwn, false, true},
      {"not owner", "project_id:%(project_id)s", member, kOther, false, false},
      {"empty target project never matches", "project_id:%(project_id)s", noproject, "", false,
       false},
      {"literal project",
       std::string("project_id:") == "" ? "" : "project_id:11111111111111111111111111111111",
       member, kOther, false, true},
      {"system scope", "system_scope:all", sys, "", false, true},
      {"no system scope", "system_scope:all", member, kOwn, false, false},
      {"roles as a generic list", "roles:member", member, kOwn, false, true},
      {"user id", "user_id:u-1111", member, kOwn, false, true},
      {"unknown credential", "domain_id:x", member, kOwn, false, false},
      {"dotted credential path", "user_id.x:u-1111", member, kOwn, false, false},
      {"literal kind equals substituted target",
       "'11111111111111111111111111111111':%(project_id)s", member, kOwn, false, true},
      {"literal True", "True:True", member, kOwn, false, true},
      {"unknown target key", "user_id:%(user_id)s", member, kOwn, false, false},
      {"is_admin true", "is_admin:True", member, kOwn, true, true},
      {"is_admin false context", "is_admin:True", member, kOwn, false, false},
      {"is_admin:False matches non admin", "is_admin:False", member, kOwn, false, true},
      {"is_admin lower case", "is_admin:true", member, kOwn, true, true},
      {"and", "role:member and project_id:%(project_id)s", member, kOther, false, false},
      {"or", "role:admin or project_id:%(project_id)s", member, kOwn, false, true},
      {"not", "not role:admin", member, kOwn, false, true},
      {"bang", "!", member, kOwn, true, false},
      {"at", "@", noproject, "", false, true},
      {"undefined rule fails", "rule:nope", member, kOwn, true, false},
  };
  for (const auto& row : rows) {
    auto parsed = parseCheck(row.check);
    ASSERT_TRUE(parsed.ok()) << row.what;
    Target target{row.target_project};
    detail::EvalContext ctx{row.who, target, row.is_admin, nullptr};
    EXPECT_EQ(detail::evaluateCheck(**parsed, ctx), row.expected) << row.what << ": " << row.check;
  }
}

// ---- Octavia's defaults ----

class OctaviaDefaults : public ::testing::Test {
 protected:
  void SetUp() override {
    auto made = makeOctaviaPolicy("", /*noauth=*/false);
    ASSERT_TRUE(made.ok()) << made.error().message;
    policy_ = std::move(made.value());
  }
  bool can(const Credentials& who, const std::string& action, const std::string& project) {
    return policy_->allowed(api(action), who, Target{project});
  }
  std::unique_ptr<Policy> policy_;
};

// One action of each default rule family.
const char* const kRead = "loadbalancer:get_one";
const char* const kReadGlobal = "loadbalancer:get_all-global";
const char* const kWrite = "loadbalancer:post";
const char* const kAdminOnly = "loadbalancer:put_failover";
const char* const kAmphora = "amphora:get_all";
const char* const kReadQuota = "quota:get_one";
const char* const kReadQuotaGlobal = "quota:get_all-global";
const char* const kWriteQuota = "quota:put";
const char* const kFlavorRead = "flavor:get_all";
const char* const kFlavorProfile = "flavor-profile:get_all";

struct RoleRow {
  const char* what;
  Credentials who;
  // Expected for: read own, read other, read-global, write own, write other, failover, amphora,
  // quota read own, quota read other, quota read global, quota write, flavor read, flavor profile.
  // Project-less actions (flavors, amphorae) get the caller's project as target, as in Octavia.
  std::array<bool, 13> expected;
};

TEST_F(OctaviaDefaults, EachRoleGetsZedsDecisions) {
  const RoleRow rows[] = {
      {"project admin is an admin through the deprecated context_is_admin",
       projectUser({"admin", "member", "reader"}),
       {true, true, true, true, true, true, true, true, true, true, true, true, true}},
      {"plain member has no load-balancer role",
       projectUser({"member", "reader"}),
       {false, false, false, false, false, false, false, false, false, false, false, false, false}},
      {"plain reader",
       projectUser({"reader"}),
       {false, false, false, false, false, false, false, false, false, false, false, false, false}},
      {"load-balancer_observer reads its own project",
       projectUser({"load-balancer_observer"}),
       {true, false, false, false, false, false, false, true, false, false, false, true, false}},
      {"load-balancer_global_observer reads everything",
       projectUser({"load-balancer_global_observer"}),
       {true, true, true, false, false, false, false, true, true, true, false, true, false}},
      {"load-balancer_member reads and writes its own project",
       projectUser({"load-balancer_member"}),
       {true, false, false, true, false, false, false, true, false, false, false, true, false}},
      {"load-balancer_quota_admin manages quotas only",
       projectUser({"load-balancer_quota_admin"}),
       {false, false, false, false, false, false, false, true, true, true, true, false, false}},
      {"load-balancer_admin does everything",
       projectUser({"load-balancer_admin"}),
       {true, true, true, true, true, true, true, true, true, true, true, true, true}},
      {"no roles",
       projectUser({}),
       {false, false, false, false, false, false, false, false, false, false, false, false, false}},
      {"system admin",
       systemUser({"admin", "member", "reader"}),
       {true, true, true, true, true, true, true, true, true, true, true, true, true}},
      {"system reader is a global observer",
       systemUser({"reader"}),
       {true, true, true, false, false, false, false, true, true, true, false, true, false}},
  };
  for (const auto& row : rows) {
    const Credentials& w = row.who;
    std::array<bool, 13> got = {
        can(w, kRead, kOwn),          can(w, kRead, kOther),     can(w, kReadGlobal, ""),
        can(w, kWrite, kOwn),         can(w, kWrite, kOther),    can(w, kAdminOnly, kOwn),
        can(w, kAmphora, ""),         can(w, kReadQuota, kOwn),  can(w, kReadQuota, kOther),
        can(w, kReadQuotaGlobal, ""), can(w, kWriteQuota, kOwn), can(w, kFlavorRead, kOwn),
        can(w, kFlavorProfile, ""),
    };
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i], row.expected[i]) << row.what << ", column " << i;
    }
  }
}

TEST_F(OctaviaDefaults, FlavorReadIsForAnyLoadBalancerRoleInAnyProject) {
  // Flavors have no owner: Octavia passes the caller's project as the target.
  Credentials observer = projectUser({"load-balancer_observer"});
  EXPECT_TRUE(can(observer, kFlavorRead, kOwn));
  EXPECT_FALSE(can(projectUser({"member"}), kFlavorRead, kOwn));
}

TEST_F(OctaviaDefaults, AdminFlagFromTheContextPassesIsAdminChecks) {
  Credentials flagged = projectUser({});
  flagged.is_admin = true;
  EXPECT_TRUE(can(flagged, kAmphora, ""));
  EXPECT_TRUE(can(flagged, kWrite, kOther));
}

TEST_F(OctaviaDefaults, IsAdminContextFollowsContextIsAdmin) {
  EXPECT_TRUE(isAdminContext(*policy_, projectUser({"admin"})));
  EXPECT_TRUE(isAdminContext(*policy_, projectUser({"load-balancer_admin"})));
  EXPECT_TRUE(isAdminContext(*policy_, systemUser({"admin"})));
  EXPECT_FALSE(isAdminContext(*policy_, projectUser({"member", "load-balancer_member"})));
  EXPECT_FALSE(isAdminContext(*policy_, systemUser({"reader"})));
}

TEST_F(OctaviaDefaults, UnknownActionsAreDenied) {
  Credentials admin = projectUser({"admin"});
  EXPECT_FALSE(
      policy_->allowed("os_load-balancer_api:loadbalancer:frobnicate", admin, Target{kOwn}));
  // A base rule is not an action either.
  EXPECT_FALSE(policy_->allowed("load-balancer:read", admin, Target{kOwn}));
}

TEST(OctaviaPolicyActions, KnowsEveryZedActionOnceAndNothingElse) {
  auto actions = knownActions();
  EXPECT_EQ(actions.size(), 79u);
  std::set<std::string> unique(actions.begin(), actions.end());
  EXPECT_EQ(unique.size(), actions.size());
  for (const char* a :
       {"loadbalancer:get_all", "loadbalancer:get_all-global", "loadbalancer:get_one",
        "loadbalancer:post", "loadbalancer:put", "loadbalancer:delete", "loadbalancer:get_stats",
        "loadbalancer:get_status", "loadbalancer:put_failover", "listener:get_stats",
        "member:get_all", "quota:get_defaults", "amphora:put_config", "amphora:get_stats",
        "provider-flavor:get_all", "provider-availability-zone:get_all",
        "availability-zone-profile:delete"}) {
    EXPECT_TRUE(unique.count(api(a))) << a;
  }
  EXPECT_FALSE(unique.count(api("member:get_all-global")))
      << "Octavia has no member get_all-global";
}

TEST(OctaviaPolicyNewDefaults, DropTheDeprecatedAlternatives) {
  auto made = makeOctaviaPolicy("", false, PolicyOptions{.enforce_new_defaults = true});
  ASSERT_TRUE(made.ok());
  const Policy& p = **made;
  // Project-scoped admin is no longer an admin without system scope.
  EXPECT_FALSE(p.allowed(api(kAmphora), projectUser({"admin"}), Target{}));
  EXPECT_TRUE(p.allowed(api(kAmphora), systemUser({"admin"}), Target{}));
  // Observers need reader too, members need member too.
  EXPECT_FALSE(p.allowed(api(kRead), projectUser({"load-balancer_observer"}), Target{kOwn}));
  EXPECT_TRUE(
      p.allowed(api(kRead), projectUser({"load-balancer_observer", "reader"}), Target{kOwn}));
  EXPECT_FALSE(p.allowed(api(kWrite), projectUser({"load-balancer_member"}), Target{kOwn}));
  EXPECT_TRUE(
      p.allowed(api(kWrite), projectUser({"load-balancer_member", "member"}), Target{kOwn}));
}

// ---- policy files ----

class PolicyFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("banyan-policy-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    auto path = dir_ / name;
    std::ofstream(path) << text;
    return path.string();
  }
  std::filesystem::path dir_;
};

TEST_F(PolicyFile, YamlOverridesAnActionAndLeavesTheRestAlone) {
  auto path =
      write("policy.yaml",
            "# Operators may let observers fail over their own load balancers.\n"
            "---\n"
            "\"os_load-balancer_api:loadbalancer:put_failover\": \"rule:load-balancer:read\"\n"
            "\n");
  auto made = makeOctaviaPolicy(path, false);
  ASSERT_TRUE(made.ok()) << made.error().message;
  Credentials observer = projectUser({"load-balancer_observer"});
  EXPECT_TRUE((*made)->allowed(api(kAdminOnly), observer, Target{kOwn}));
  EXPECT_FALSE((*made)->allowed(api(kAdminOnly), observer, Target{kOther}));
  EXPECT_FALSE((*made)->allowed(api(kWrite), observer, Target{kOwn}));
}

TEST_F(PolicyFile, OverridingABaseRuleChangesEveryActionUsingIt) {
  auto path = write("policy.yaml",
                    "load-balancer:member_and_owner: role:member and project_id:%(project_id)s\n"
                    "'context_is_admin': 'role:cloud_admin'  # our admin role\n");
  auto made = makeOctaviaPolicy(path, false);
  ASSERT_TRUE(made.ok()) << made.error().message;
  const Policy& p = **made;
  EXPECT_TRUE(p.allowed(api(kWrite), projectUser({"member"}), Target{kOwn}));
  EXPECT_TRUE(p.allowed(api("pool:delete"), projectUser({"member"}), Target{kOwn}));
  // Overriding a rule drops its deprecated alternative: a project admin is no longer admin.
  EXPECT_FALSE(p.allowed(api(kAmphora), projectUser({"admin"}), Target{}));
  EXPECT_TRUE(p.allowed(api(kAmphora), projectUser({"cloud_admin"}), Target{}));
}

TEST_F(PolicyFile, JsonIsAcceptedToo) {
  auto path = write("policy.json",
                    "{\n  \"os_load-balancer_api:amphora:get_all\": \"\",\n"
                    "  \"os_load-balancer_api:loadbalancer:get_one\": \"!\"\n}\n");
  auto made = makeOctaviaPolicy(path, false);
  ASSERT_TRUE(made.ok()) << made.error().message;
  EXPECT_TRUE((*made)->allowed(api(kAmphora), projectUser({}), Target{}));
  EXPECT_FALSE((*made)->allowed(api(kRead), projectUser({"admin"}), Target{kOwn}));
}

TEST_F(PolicyFile, CustomRulesCanBeReferenced) {
  auto path = write(
      "policy.yaml",
      "\"lb-ops\": \"role:ops\"\n"
      "\"os_load-balancer_api:amphora:get_all\": \"rule:lb-ops or rule:load-balancer:admin\"\n");
  auto made = makeOctaviaPolicy(path, false);
  ASSERT_TRUE(made.ok()) << made.error().message;
  EXPECT_TRUE((*made)->allowed(api(kAmphora), projectUser({"ops"}), Target{}));
  EXPECT_FALSE((*made)->allowed(api(kAmphora), projectUser({"member"}), Target{}));
}

TEST_F(PolicyFile, AnEmptyFileMeansDefaults) {
  auto made = makeOctaviaPolicy(write("policy.yaml", "# nothing\n"), false);
  ASSERT_TRUE(made.ok());
  EXPECT_TRUE((*made)->allowed(api(kWrite), projectUser({"load-balancer_member"}), Target{kOwn}));
}

struct BadFileRow {
  const char* what;
  const char* text;
  const char* message_part;
};

TEST_F(PolicyFile, RefusesWhatItCannotParseWithTheLine) {
  const BadFileRow rows[] = {
      {"bad check string", "\"a\": \"role:x\"\n\"b\": \"role:a and\"\n", ":2"},
      {"block scalar", "\"a\": |\n  role:x\n", "quoted"},
      {"indented continuation", "\"a\": \"role:x\"\n  \"b\": \"role:y\"\n", "indented"},
      {"list item", "- role:x\n", "expected"},
      {"no value", "\"a\":\n", "no value"},
      {"unquoted at sign", "a: @\n", "quoted"},
      {"duplicate", "a: role:x\na: role:y\n", "twice"},
      {"unterminated quote", "\"a\": \"role:x\n", "unterminated"},
      {"text after a quoted value", "\"a\": \"role:x\" role:y\n", "after"},
      {"json list syntax", "{\"a\": [[\"role:x\"]]}", "list"},
      {"broken json", "{\"a\": ", "JSON"},
      {"cycle", "a: rule:b\nb: rule:a\n", "cycle"},
      {"cycle through a default",
       "\"load-balancer:read\": \"rule:os_load-balancer_api:flavor:get_all\"\n", "cycle"},
      {"remote check", "a: http://x/\n", "not supported"},
  };
  for (const auto& row : rows) {
    auto made = makeOctaviaPolicyFromText(row.text, "policy.yaml", false);
    ASSERT_FALSE(made.ok()) << row.what;
    std::string full = made.error().message + " @ " + made.error().context;
    EXPECT_NE(full.find(row.message_part), std::string::npos) << row.what << ": " << full;
  }
}

TEST_F(PolicyFile, AMissingFileIsAnError) {
  auto made = makeOctaviaPolicy((dir_ / "absent.yaml").string(), false);
  ASSERT_FALSE(made.ok());
  EXPECT_EQ(made.error().code, common::ErrorCode::kUnavailable);
}

}  // namespace
}  // namespace banyan::provider::auth
