// A throwaway PostgreSQL server for tests: initdb in a fresh temp dir, postgres on
// 127.0.0.1 with a free port and its socket in that dir, a login user with a password.
// Tuned for speed (fsync off, small buffers): never for data anyone wants to keep.
//
// The server runs as the `postgres` user when the test runs as root (PostgreSQL refuses
// root). The destructor stops it by PID and removes the dir; the server also dies with
// the test process if the test crashes: the postmaster gets SIGQUIT (PR_SET_PDEATHSIG,
// set after the switch to `postgres`, which would clear it), its immediate shutdown that
// stops its children and frees its shared memory; the temp dir stays then. Not
// thread-safe: start and destroy it on the test's main thread (PDEATHSIG fires when the
// starting *thread* exits).
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

#include "banyan/common/result.h"

namespace banyan::provider::testing {

class PostgresServer {
 public:
  static common::Result<std::unique_ptr<PostgresServer>> start();
  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  // postgresql://<user>:<password>@127.0.0.1:<port>/<dbname>, password percent-encoded
  // (it holds URL-special characters on purpose). url() names the default database.
  std::string url() const { return url(database()); }
  std::string url(std::string_view dbname) const;
  // Creates an empty database owned by user() and returns its URL. name: [a-z0-9_]+.
  common::Result<std::string> createDatabase(std::string_view name);
  // Runs SQL as the superuser in dbname (for tests that inspect or sabotage the server).
  common::Result<void> execAsSuperuser(std::string_view dbname, std::string_view sql);

  int port() const { return port_; }
  const std::string& user() const { return user_; }
  const std::string& password() const { return password_; }
  const std::string& database() const { return database_; }
  const std::string& dir() const { return dir_; }
  pid_t pid() const { return pid_; }

 private:
  PostgresServer() = default;
  common::Result<void> boot();
  void stop();
  std::string superuserConninfo(std::string_view dbname) const;

  std::string dir_;
  int port_ = 0;
  pid_t pid_ = -1;
  uid_t run_uid_ = 0;
  gid_t run_gid_ = 0;
  bool switch_user_ = false;
  std::string superuser_ = "postgres";
  std::string user_ = "banyan";
  std::string password_ = "s3cr@t:/pw%&?";
  std::string database_ = "banyan";
};

// One server per test binary: ::testing::AddGlobalTestEnvironment(new PostgresEnvironment)
// in main(), or let the test library's registration do it; then PostgresEnvironment::server().
class PostgresEnvironment : public ::testing::Environment {
 public:
  void SetUp() override;
  void TearDown() override;
  // The running server; fails the calling test (and returns nullptr) when it did not start.
  static PostgresServer* server();
  // A new empty database on that server, named <prefix>_<pid>_<n> so that tests, repeats
  // and concurrent binaries never share one; its URL. Fails like server() when the server
  // did not start.
  static common::Result<std::string> freshDatabase(std::string_view prefix);

 private:
  static std::unique_ptr<PostgresServer> server_;
  static std::string start_error_;
};

}  // namespace banyan::provider::testing
