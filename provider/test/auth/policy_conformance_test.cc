// Banyan's policy engine against the real oslo.policy loaded with Octavia Zed's own
// registered defaults (Debian's python3-octavia, python3-oslo.policy): every action for
// a matrix of role sets, scopes and target projects must get the same decision.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "auth/policy.h"

namespace banyan::provider::auth {
namespace {

struct Case {
  std::vector<std::string> roles;
  std::string project;  // "" = unscoped/system
  bool system = false;
  std::string target;
};

std::string jsonList(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? ",\"" : "\"") + items[i] + "\"";
  return out + "]";
}

std::vector<Case> matrix() {
  const std::vector<std::vector<std::string>> role_sets = {
      {},
      {"reader"},
      {"member", "reader"},
      {"admin", "member", "reader"},
      {"load-balancer_observer"},
      {"load-balancer_observer", "reader"},
      {"load-balancer_global_observer"},
      {"load-balancer_member"},
      {"load-balancer_member", "member", "reader"},
      {"load-balancer_quota_admin"},
      {"load-balancer_admin"},
      {"Load-Balancer_Member", "MEMBER"},
      {"ops"},
      {"ops", "load-balancer_observer"},
  };
  std::vector<Case> cases;
  for (const auto& roles : role_sets) {
    for (const char* target : {"p1", "p2"}) {
      cases.push_back({roles, "p1", false, target});
      cases.push_back({roles, "", true, target});
    }
  }
  return cases;
}

class PolicyConformance : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("banyan-policy-conf-" + std::to_string(::getpid()) + "-" + std::to_string(GetParam()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Runs oslo.policy over the matrix; one string of '0'/'1' per case.
  std::vector<std::string> osloDecisions(const std::vector<Case>& cases,
                                         const std::vector<std::string>& actions, bool new_defaults,
                                         const std::string& policy_file) {
    std::ostringstream in;
    in << "{\"enforce_new_defaults\":" << (new_defaults ? "true" : "false") << ",\"policy_file\":\""
       << policy_file << "\",\"actions\":" << jsonList(actions) << ",\"cases\":[";
    for (size_t i = 0; i < cases.size(); ++i) {
      const Case& c = cases[i];
      in << (i ? "," : "") << "{\"roles\":" << jsonList(c.roles)
         << ",\"project_id\":" << (c.project.empty() ? "null" : "\"" + c.project + "\"")
         << ",\"system_scope\":" << (c.system ? "\"all\"" : "null") << ",\"target\":\"" << c.target
         << "\"}";
    }
    in << "]}";
    std::ofstream((dir_ / "in.json").string()) << in.str();
    std::string cmd = "/usr/bin/python3 " + std::string(BANYAN_OSLO_DECISIONS_SCRIPT) + " " +
                      (dir_ / "in.json").string() + " " + (dir_ / "out.txt").string() + " 2>" +
                      (dir_ / "err.txt").string();
    int rc = std::system(cmd.c_str());
    std::ifstream err((dir_ / "err.txt").string());
    std::stringstream err_text;
    err_text << err.rdbuf();
    EXPECT_EQ(rc, 0) << "oslo.policy helper failed: " << err_text.str();
    std::vector<std::string> out;
    std::ifstream result((dir_ / "out.txt").string());
    for (std::string line; std::getline(result, line);) out.push_back(line);
    return out;
  }

  void compare(bool new_defaults, const std::string& policy_text) {
    std::string policy_file;
    if (!policy_text.empty()) {
      policy_file = (dir_ / "policy.yaml").string();
      std::ofstream(policy_file) << policy_text;
    }
    auto ours =
        makeOctaviaPolicy(policy_file, false, PolicyOptions{.enforce_new_defaults = new_defaults});
    ASSERT_TRUE(ours.ok()) << ours.error().message;
    std::vector<std::string> actions = knownActions();
    std::vector<Case> cases = matrix();
    std::vector<std::string> theirs = osloDecisions(cases, actions, new_defaults, policy_file);
    ASSERT_EQ(theirs.size(), cases.size());
    int mismatches = 0;
    for (size_t i = 0; i < cases.size(); ++i) {
      const Case& c = cases[i];
      Credentials who;
      who.user_id = "u";
      who.project_id = c.project;
      who.system_scope = c.system;
      for (const auto& r : c.roles) {
        std::string lower = r;
        for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        who.roles.push_back(lower);
      }
      for (size_t a = 0; a < actions.size(); ++a) {
        bool mine = (*ours)->allowed(actions[a], who, Target{c.target});
        bool oslo = theirs[i][a] == '1';
        if (mine != oslo && ++mismatches <= 20) {
          ADD_FAILURE() << actions[a] << " roles=" << jsonList(c.roles) << " project=" << c.project
                        << " system=" << c.system << " target=" << c.target << ": banyan=" << mine
                        << " oslo.policy=" << oslo;
        }
      }
    }
    EXPECT_EQ(mismatches, 0);
  }

  std::filesystem::path dir_;
};

TEST_P(PolicyConformance, EveryActionDecidesLikeOsloPolicyWithOctaviasDefaults) {
  switch (GetParam()) {
    case 0:
      compare(false, "");
      break;  // Zed's defaults
    case 1:
      compare(true, "");
      break;  // enforce_new_defaults = True
    case 2:
      compare(false,
              "# operator overrides\n"
              "\"load-balancer:member_and_owner\": \"role:member and project_id:%(project_id)s\"\n"
              "\"lb-ops\": \"role:ops and not role:reader\"\n"
              "\"os_load-balancer_api:amphora:get_all\": \"rule:lb-ops or (is_admin:True and @)\"\n"
              "\"os_load-balancer_api:loadbalancer:get_one\": \"not (role:load-balancer_observer "
              "or !) or "
              "role:reader\"\n"
              "\"os_load-balancer_api:flavor:get_all\": \"\"\n"
              "\"os_load-balancer_api:quota:put\": \"system_scope:all\"\n"
              "\"context_is_admin\": \"role:load-balancer_quota_admin\"\n");
      break;
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, PolicyConformance, ::testing::Values(0, 1, 2));

}  // namespace
}  // namespace banyan::provider::auth
