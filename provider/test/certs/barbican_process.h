// A real Barbican for one test binary (tests/support/barbican/barbican-server.sh in a
// temp dir): unauthenticated, or behind the Keystone at `keystone_url`.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "certs/barbican.h"

namespace banyan::provider::certs::test {

// Options naming a fixed endpoint.
inline BarbicanOptions at(const std::string& endpoint,
                          std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  BarbicanOptions o;
  o.endpoint = endpoint;
  o.timeout = timeout;
  return o;
}

class BarbicanProcess {
 public:
  // Fails the test (fatally) when Barbican does not start.
  void start(const std::string& keystone_url = "", const std::string& keystone_password = "") {
    char tmpl[] = "/tmp/banyan-barbican-test-XXXXXX";
    dir_ = mkdtemp(tmpl);
    std::string env = keystone_url.empty() ? std::string()
                                           : "KEYSTONE_URL=" + keystone_url +
                                                 " KEYSTONE_PASSWORD=" + keystone_password + " ";
    FILE* p = popen((env + BANYAN_BARBICAN_SCRIPT + " start " + dir_).c_str(), "r");
    ASSERT_NE(p, nullptr);
    std::array<char, 256> buf{};
    std::string out;
    while (fgets(buf.data(), buf.size(), p)) out += buf.data();
    ASSERT_EQ(pclose(p), 0) << "barbican did not start; see " << dir_;
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
    url_ = out;
  }
  // Stops it by its recorded PID; the directory stays when a test failed.
  void stop() {
    if (dir_.empty()) return;
    (void)std::system((std::string(BANYAN_BARBICAN_SCRIPT) + " stop " + dir_).c_str());
    if (!::testing::UnitTest::GetInstance()->Failed())
      (void)std::system(("rm -rf " + dir_).c_str());
    dir_.clear();
  }
  ~BarbicanProcess() { stop(); }
  const std::string& url() const { return url_; }

 private:
  std::string dir_;
  std::string url_;
};

}  // namespace banyan::provider::certs::test
