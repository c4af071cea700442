// The shared store: PostgreSQL through libpq, for several provider processes (API and
// worker nodes) on one database.
//
// Thread-safe. A pool of up to pool_size connections; a caller waits when all are in
// use. write() runs READ COMMITTED and retries fn on serialization failures and
// deadlocks (SQLSTATE 40001/40P01); read() runs REPEATABLE READ READ ONLY so a list and
// a count in one callback agree (pipelined: BEGIN rides with the first statement and
// COMMIT is not waited for). Hot statements are prepared once per connection. A connection found broken is reconnected once per call.
// lockKey() is pg_advisory_xact_lock(hashtextextended(key, 0)). Inside write(), get()
// locks the row it reads (FOR UPDATE), so get-then-update never loses an update.
// The batch calls are one statement each: getMany is `id = ANY($2)` ordered by id
// (COLLATE "C") and FOR UPDATE inside write(); insertMany/updateMany take one text[]
// per column through unnest (INSERT ... ON CONFLICT DO NOTHING, UPDATE ... FROM), in
// (kind, id) order; lockKeys takes the advisory locks in byte order of the keys.
#pragma once

#include <condition_variable>
#include <deque>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "store/store.h"

namespace banyan::provider::store {

struct PostgresOptions {
  // libpq keywords and values (host, port, dbname, user, password, sslmode, ...).
  std::vector<std::pair<std::string, std::string>> params;
  int pool_size = kDefaultPoolSize;
};

class PostgresStore final : public Store {
 public:
  // Connects once (so a wrong password fails here, not on the first request) without
  // migrating; openStore() migrates.
  static Result<std::unique_ptr<PostgresStore>> open(PostgresOptions options);
  ~PostgresStore() override;

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
  // LISTEN on a connection of its own (postgres_job_listener.h), outside the pool.
  std::unique_ptr<JobListener> listenForJobs(JobListenerCallbacks callbacks) override;

  class Connection;  // one PGconn and the state of its current transaction

 private:
  explicit PostgresStore(PostgresOptions options);

  Result<std::unique_ptr<Connection>> acquire();
  void release(std::unique_ptr<Connection> conn);
  // Runs body between begin_sql and COMMIT on a pooled connection, with the retries
  // described above. body must have no effect outside the transaction.
  // read_only: BEGIN goes out with the first statement and COMMIT is not waited for
  // (see Connection), two round trips fewer for every API read.
  Result<void> runTx(const char* begin_sql, const std::function<Result<void>(Connection&)>& body,
                     bool read_only = false);

  PostgresOptions options_;
  std::mutex pool_mu_;
  std::vector<std::unique_ptr<Connection>> idle_;
  int open_ = 0;  // connections handed out or idle
  // Callers that find every connection busy wait in arrival order, each on its own
  // condition variable: a released connection goes straight to the first of them. (One
  // shared condition variable woke every waiting API thread on each release; at 50
  // concurrent requests on 8 connections that was most of the process's CPU time.)
  struct Waiter {
    std::condition_variable cv;
    std::unique_ptr<Connection> conn;  // handed over by release()
    bool served = false;               // conn, or a free slot to open one in
  };
  std::deque<Waiter*> waiters_;
  void slotFreed();  // pool_mu_ held: a connection is gone; its slot goes to a waiter
};

namespace internal {
// The statement of PostgresTransaction::listLiveChildIds: $1 the parent id (or a text[]
// of them when there are several), $2... the `kinds` kinds; its plan is tested to read
// the live children index alone.
std::string postgresLiveChildIdsSql(size_t parents, size_t kinds);
}  // namespace internal

}  // namespace banyan::provider::store
