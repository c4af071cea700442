// A real Keystone for tests (Debian's keystone under uwsgi, SQLite, 127.0.0.1 only),
// wrapping keystone-server.sh beside this file. See README.md here for what it creates.
//
//   auto ks = banyan::testing::KeystoneServer::start();
//   ASSERT_TRUE(ks.ok()) << ks.error().message;
//   auto token = (*ks)->issueToken("p1-lb-member");       // project-scoped (banyan-p1)
//   (*ks)->url();                                         // http://127.0.0.1:PORT
//
// The destructor stops Keystone (by its PID) and removes its directory, so a failing
// test cleans up too. Set BANYAN_KEEP_KEYSTONE=1 to keep the directory for debugging.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "banyan/common/http_client.h"
#include "banyan/common/result.h"

namespace banyan::testing {

struct KeystoneServerOptions {
  int token_expiration_seconds = 3600;  // Keystone's [token] expiration
  std::string loadbalancer_url{};       // non-empty: register a load-balancer endpoint
};

class KeystoneServer {
 public:
  static common::Result<std::unique_ptr<KeystoneServer>> start(
      const KeystoneServerOptions& options = {});
  ~KeystoneServer();
  KeystoneServer(const KeystoneServer&) = delete;
  KeystoneServer& operator=(const KeystoneServer&) = delete;

  // Stops Keystone (idempotent); the directory stays until destruction.
  void stop();

  const std::string& url() const { return url_; }  // http://127.0.0.1:PORT (no /v3)
  const std::string& dir() const { return dir_; }
  const std::string& password() const { return password_; }  // every test user's password
  // Ids by name: projects "banyan-p1", "banyan-p2", "service", "admin"; users as in README.
  std::string projectId(const std::string& name) const;
  std::string userId(const std::string& name) const;
  std::string projectOf(const std::string& user) const;  // the user's project name

  // A token for a test user, scoped to its own project (or `project` if given).
  common::Result<std::string> issueToken(const std::string& user, const std::string& project = "");
  // A system-scoped token (only "admin" has a system role).
  common::Result<std::string> issueSystemToken(const std::string& user);
  // Revokes a token, as admin (DELETE /v3/auth/tokens).
  common::Result<void> revokeToken(const std::string& token);
  // How many requests uwsgi logged whose line contains `needle`, e.g. "GET /v3/auth/tokens".
  int countRequests(const std::string& needle) const;

 private:
  KeystoneServer() = default;
  common::Result<std::string> issue(const std::string& body);

  std::string dir_;
  std::string url_;
  std::string password_;
  std::map<std::string, std::string> projects_, users_, user_projects_;
  std::unique_ptr<common::HttpClient> http_;
  bool running_ = false;
};

}  // namespace banyan::testing
