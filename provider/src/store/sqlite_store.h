// The embedded store: one SQLite file in WAL mode, for a single provider node.
//
// Thread-safe. Each read()/write() borrows a connection from a small pool (one per
// thread in use); writers in this process queue on a mutex, and BEGIN IMMEDIATE plus
// busy_timeout serialise them against other processes opening the same file, so
// lockKey() has nothing left to do. Readers never block writers (WAL).
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "store/store.h"

namespace banyan::provider::store {

class SqliteStore final : public Store {
 public:
  // Opens (creating the file and its parent directories when missing) without
  // migrating; openStore() migrates.
  static Result<std::unique_ptr<SqliteStore>> open(const std::string& path);
  ~SqliteStore() override;

  Result<void> migrate() override;
  Result<int> schemaVersion() override;
  Result<void> read(const std::function<Result<void>(Transaction&)>& fn) override;
  Result<void> write(const std::function<Result<void>(Transaction&)>& fn) override;
  Result<std::optional<Job>> claimJob(std::string_view worker_id,
                                      std::chrono::milliseconds lease) override;
  Result<void> renewJob(int64_t job_id, std::string_view worker_id,
                        std::chrono::milliseconds lease) override;
  Result<void> finishJob(int64_t job_id, std::string_view worker_id) override;
  Result<void> retryJob(int64_t job_id, std::string_view worker_id,
                        std::chrono::milliseconds delay, std::string_view error) override;
  Result<int64_t> pendingJobs() override;

  const std::string& path() const { return path_; }

  class Connection;  // one sqlite3 handle and its prepared statements

 private:
  explicit SqliteStore(std::string path);

  Result<std::unique_ptr<Connection>> acquire();
  void release(std::unique_ptr<Connection> conn);
  // Runs fn on a pooled connection inside BEGIN IMMEDIATE ... COMMIT (rolled back when
  // fn fails), holding write_mu_.
  Result<void> runWrite(const std::function<Result<void>(Connection&)>& fn);

  std::string path_;
  std::mutex pool_mu_;
  std::vector<std::unique_ptr<Connection>> idle_;
  std::mutex write_mu_;  // one writer per process; other processes wait in busy_timeout
};

namespace internal {
// The statement of SqliteTransaction::listLiveChildIds: ?1 a JSON array of parent ids,
// ?2... the `kinds` kinds; its plan is tested to search the live children index.
std::string sqliteLiveChildIdsSql(size_t kinds);
}  // namespace internal

}  // namespace banyan::provider::store
