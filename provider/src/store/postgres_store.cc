#include "store/postgres_store.h"

#include <libpq-fe.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <random>
#include <set>
#include <tuple>
#include <thread>
#include <unordered_map>

#include "banyan/common/logging.h"
#include "store/postgres_job_listener.h"
#include "store/store_internal.h"

namespace banyan::provider::store {
namespace {

using common::Error;
using common::ErrorCode;
using common::makeError;

// Serialization failures and deadlocks are transient: the loser of a race retries.
constexpr int kMaxAttempts = 8;
// How many candidate jobs one claimJob() inspects before reporting none claimable; only
// serialised jobs whose key turns out busy are skipped, so this is rarely reached.
constexpr int kMaxClaimCandidates = 32;
constexpr std::chrono::seconds kPoolWait{30};

struct Migration {
  int version;
  std::vector<const char*> statements;
};

// Append-only: a released migration is never edited, a change is a new version.
const std::vector<Migration>& migrations() {
  static const std::vector<Migration> kMigrations = {
      {1,
       {
           "CREATE TABLE records ("
           " kind text NOT NULL, id text NOT NULL,"
           " seq bigint GENERATED ALWAYS AS IDENTITY,"
           " project_id text NOT NULL DEFAULT '', parent_id text NOT NULL DEFAULT '',"
           " load_balancer_id text NOT NULL DEFAULT '',"
           " revision bigint NOT NULL, body text NOT NULL,"
           " created_at timestamptz NOT NULL DEFAULT now(),"
           " updated_at timestamptz NOT NULL DEFAULT now(),"
           " PRIMARY KEY (kind, id))",
           "CREATE INDEX records_kind_seq ON records (kind, seq)",
           "CREATE INDEX records_project ON records (kind, project_id, seq)",
           "CREATE INDEX records_parent ON records (kind, parent_id, seq)",
           "CREATE INDEX records_load_balancer ON records (kind, load_balancer_id, seq)",
           // Lease and schedule times come from the database clock (clock_timestamp()),
           // the one clock every provider process shares.
           "CREATE TABLE jobs ("
           " id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
           " kind text NOT NULL, payload text NOT NULL, serial_key text NOT NULL DEFAULT '',"
           " state text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued','claimed','done')),"
           " claimed_by text, lease_until timestamptz, run_after timestamptz NOT NULL,"
           " attempts integer NOT NULL DEFAULT 0, last_error text NOT NULL DEFAULT '',"
           " created_at timestamptz NOT NULL DEFAULT now(), finished_at timestamptz)",
           "CREATE INDEX jobs_open ON jobs (state, id) WHERE state <> 'done'",
           "CREATE INDEX jobs_serial ON jobs (serial_key, id) WHERE state <> 'done'",
       }},
      // Room on every page for a row's next version: an update that changes no indexed
      // column (body, revision, updated_at) then stays on its page and writes no index
      // entry (a HOT update). The health manager rewrites thousands of rows per second;
      // with full pages each update also inserted into all five indexes (measured: a
      // batch's status writes took 40% less time with room). Pages written before this
      // keep their old fill.
      {2, {"ALTER TABLE records SET (fillfactor = 70)"}},
      // The body's name (store.h), computed by PostgreSQL from the body on every write: no
      // writer can forget it, and `?name=` becomes one index search instead of reading
      // and parsing every record of the project. COLLATE "C": byte order, as every other
      // text sort of the store, and the index serves both `=` and the ORDER BY. An update
      // that leaves the name as it was stays a HOT update (the index sees no change).
      {3,
       {
           "ALTER TABLE records ADD COLUMN name text COLLATE \"C\" NOT NULL"
           " GENERATED ALWAYS AS (coalesce(body::jsonb ->> 'name', '')) STORED",
           "CREATE INDEX records_name ON records (kind, name, seq)",
       }},
      // Whether the record is live (its body's provisioning_status is not DELETED; the
      // body is parsed only when it holds the word), computed on every write like the
      // name, and the live children of each parent in an index that carries their kind and
      // id: a page's relation lists are read from the index, with no body searched and
      // no row visited on pages vacuumed since their last change (for a page of 50 load
      // balancers: 150 buffers instead of 400, 0.17 ms instead of 0.31). An update that
      // leaves the record live stays a HOT update.
      {4,
       {
           "ALTER TABLE records ADD COLUMN live boolean NOT NULL GENERATED ALWAYS AS"
           " (strpos(body, 'DELETED') = 0 OR coalesce(body::jsonb ->> 'provisioning_status', '') <> 'DELETED')"
           " STORED",
           "CREATE INDEX records_live_by_parent ON records (parent_id, seq) INCLUDE (kind, id) WHERE live",
       }},
  };
  return kMigrations;
}

void quietNotices(void*, const char* message) {
  // "relation already exists, skipping" and friends: not worth stderr.
  LB_DEBUG("postgres notice: %s", message);
}

int64_t toInt64(const char* text) { return std::strtoll(text, nullptr, 10); }

}  // namespace

// One PGconn. Tracks the current transaction: after the first failed statement the
// server rejects everything until ROLLBACK, so later calls return that first error
// without a round trip, and runTx() decides from it whether to retry.
class PostgresStore::Connection {
 public:
  explicit Connection(PGconn* conn) : conn_(conn) { PQsetNoticeProcessor(conn_, quietNotices, nullptr); }
  ~Connection() { PQfinish(conn_); }

  bool broken() const { return PQstatus(conn_) != CONNECTION_OK; }
  PGconn* raw() { return conn_; }
  bool reset() {
    if (PQpipelineStatus(conn_) != PQ_PIPELINE_OFF) (void)PQexitPipelineMode(conn_);
    pending_commit_ = false;
    deferred_begin_ = nullptr;
    along_.reset();
    PQreset(conn_);
    PQsetNoticeProcessor(conn_, quietNotices, nullptr);
    prepared_.clear();  // a new session has none of the old one's statements
    clearTx();
    return !broken();
  }

  void clearTx() {
    tx_error_.reset();
    tx_sqlstate_.clear();
  }
  const std::optional<Error>& txError() const { return tx_error_; }
  const std::string& txSqlstate() const { return tx_sqlstate_; }
  bool txRetryable() const { return tx_sqlstate_ == "40001" || tx_sqlstate_ == "40P01"; }

  using ResultPtr = std::unique_ptr<PGresult, decltype(&PQclear)>;

  // Runs sql with text parameters $1..$n. kConflict on unique violations, kUnavailable
  // otherwise (the message carries the server's text and SQLSTATE).
  Result<ResultPtr> exec(const char* sql, const std::vector<std::string>& params = {}) {
    return run(sql, params, false);
  }

  // The same through a statement prepared once per connection: the API's few hot
  // statements are then parsed and planned once, not on every request (the server
  // shares the provider's cores).
  Result<ResultPtr> execPrepared(const std::string& sql, const std::vector<std::string>& params) {
    return run(sql.c_str(), params, true);
  }

  // For statements outside a transaction's bookkeeping (BEGIN, COMMIT, ROLLBACK).
  Result<void> command(const char* sql) {
    auto r = exec(sql);
    if (!r.ok()) return r.error();
    return {};
  }

  // Read transactions cost two round trips fewer (libpq pipeline mode): BEGIN travels
  // with the transaction's first statement, and COMMIT is sent without waiting for its
  // answer, which the connection's next user reads first (finishPending). The server
  // ends the transaction as soon as COMMIT arrives, so an idle pooled connection never
  // holds a snapshot.
  void deferBegin(const char* begin_sql) { deferred_begin_ = begin_sql; }
  bool beginPending() const { return deferred_begin_ != nullptr; }
  void abandonBegin() {
    deferred_begin_ = nullptr;
    along_.reset();
  }

  // A statement (prepared) to send in the same round trip as the deferred BEGIN and the
  // statement after it; ignored once BEGIN has gone. takeAlong() hands over its result
  // to the caller that asks for the same statement and parameters, once.
  void sendAlong(std::string sql, std::vector<std::string> params) {
    if (!deferred_begin_) return;
    along_.emplace(Along{std::move(sql), std::move(params), ResultPtr(nullptr, &PQclear)});
  }
  std::optional<ResultPtr> takeAlong(const std::string& sql, const std::vector<std::string>& params) {
    if (!along_ || !along_->result || along_->sql != sql || along_->params != params) return std::nullopt;
    ResultPtr res = std::move(along_->result);
    along_.reset();
    return res;
  }
  // False when the connection broke (the caller reconnects).
  bool sendCommitDeferred() {
    if (PQenterPipelineMode(conn_) != 1) return false;
    if (PQsendQueryParams(conn_, "COMMIT", 0, nullptr, nullptr, nullptr, nullptr, 0) != 1 ||
        PQpipelineSync(conn_) != 1) {
      (void)PQexitPipelineMode(conn_);
      return false;
    }
    pending_commit_ = true;
    return true;
  }
  // Reads the answer of a deferred COMMIT, if any. False when the connection broke.
  bool finishPending() {
    if (!pending_commit_) return true;
    pending_commit_ = false;
    auto results = collectPipeline(1);
    return results.size() == 1 && results[0] && PQresultStatus(results[0].get()) == PGRES_COMMAND_OK &&
           PQexitPipelineMode(conn_) == 1;
  }

 private:
  // The first result of each of n pipelined queries, then the sync; nullptr entries
  // when the connection failed.
  std::vector<ResultPtr> collectPipeline(int n) {
    std::vector<ResultPtr> out;
    for (int i = 0; i < n; ++i) {
      out.emplace_back(PQgetResult(conn_), &PQclear);
      if (!out.back()) break;  // connection lost
      while (PGresult* extra = PQgetResult(conn_)) PQclear(extra);
    }
    if (static_cast<int>(out.size()) == n && out.back()) {
      ResultPtr sync(PQgetResult(conn_), &PQclear);
      (void)sync;  // PGRES_PIPELINE_SYNC, or nothing when the connection failed
    }
    while (static_cast<int>(out.size()) < n) out.emplace_back(nullptr, &PQclear);
    return out;
  }

  // BEGIN (deferred), [Parse], statement, [[Parse], the statement sent along], Sync in
  // one round trip. The statement's result, or the first error (a failed BEGIN aborts
  // the rest of the pipeline). The result of the statement sent along waits for
  // takeAlong(); when it failed, the transaction is aborted and its error is the
  // transaction's from here on.
  ResultPtr runWithBegin(const char* sql, const std::vector<const char*>& values, const std::vector<int>& lengths,
                         bool prepare) {
    const char* begin = deferred_begin_;
    deferred_begin_ = nullptr;
    // One statement into the pipeline: the number of results it adds (its Parse, the
    // first time on this connection, is one), or 0 when libpq refused it.
    std::vector<std::pair<std::string, std::string>> parsed;  // (sql, name) of new Parses
    auto send = [&](const char* text, const std::vector<const char*>& vals, const std::vector<int>& lens,
                    bool prep) -> int {
      const int n = static_cast<int>(vals.size());
      if (!prep) return PQsendQueryParams(conn_, text, n, nullptr, vals.data(), lens.data(), nullptr, 0) == 1;
      std::string name;
      int added = 0;
      auto in_pipeline = std::find_if(parsed.begin(), parsed.end(), [&](const auto& p) { return p.first == text; });
      if (auto it = prepared_.find(text); it != prepared_.end()) {
        name = it->second;
      } else if (in_pipeline != parsed.end()) {
        name = in_pipeline->second;  // the same statement twice: one Parse serves both
      } else {
        name = "banyan_" + std::to_string(prepared_.size() + parsed.size() + 1);
        if (PQsendPrepare(conn_, name.c_str(), text, n, nullptr) != 1) return 0;
        parsed.emplace_back(text, name);
        added = 1;
      }
      return PQsendQueryPrepared(conn_, name.c_str(), n, vals.data(), lens.data(), nullptr, 0) == 1 ? added + 1 : 0;
    };
    std::vector<const char*> along_values;
    std::vector<int> along_lengths;
    if (along_) {
      for (const auto& p : along_->params) {
        along_values.push_back(p.c_str());
        along_lengths.push_back(static_cast<int>(p.size()));
      }
    }
    int sent = 0;
    int main_sent = 0;
    int along_sent = 0;
    bool ok = PQenterPipelineMode(conn_) == 1;
    ok = ok && PQsendQueryParams(conn_, begin, 0, nullptr, nullptr, nullptr, nullptr, 0) == 1 && ++sent;
    ok = ok && (main_sent = send(sql, values, lengths, prepare)) > 0;
    sent += main_sent;
    if (ok && along_) {
      ok = (along_sent = send(along_->sql.c_str(), along_values, along_lengths, true)) > 0;
      sent += along_sent;
    }
    ok = ok && PQpipelineSync(conn_) == 1;
    std::vector<ResultPtr> results;
    if (ok) results = collectPipeline(sent);
    (void)PQexitPipelineMode(conn_);
    if (!ok) {
      along_.reset();
      return ResultPtr(nullptr, &PQclear);
    }
    // BEGIN, then the statement's Parse: a failure there is the error to report.
    const size_t main_index = static_cast<size_t>(main_sent);  // BEGIN is 0
    for (size_t i = 0; i < main_index; ++i) {
      if (!results[i] || PQresultStatus(results[i].get()) != PGRES_COMMAND_OK) {
        along_.reset();
        return std::move(results[i]);
      }
    }
    // A Parse that succeeded names its statement for good, whatever follows it.
    if (main_index > 1) prepared_.emplace(parsed.front());
    const ExecStatusType main_status =
        results[main_index] ? PQresultStatus(results[main_index].get()) : PGRES_FATAL_ERROR;
    if (along_ && main_status != PGRES_COMMAND_OK && main_status != PGRES_TUPLES_OK) {
      along_.reset();  // the server skipped the rest of the pipeline
    } else if (along_) {
      const size_t along_index = main_index + static_cast<size_t>(along_sent);
      ResultPtr* along_result = &results[along_index];
      if (along_sent > 1) {  // its Parse came first
        ResultPtr& parse = results[along_index - 1];
        if (parse && PQresultStatus(parse.get()) == PGRES_COMMAND_OK)
          prepared_.emplace(parsed.back());
        else
          along_result = &parse;
      }
      if (*along_result && PQresultStatus(along_result->get()) == PGRES_TUPLES_OK) {
        along_->result = std::move(*along_result);
      } else {
        along_.reset();
        (void)check(std::move(*along_result));  // the transaction is aborted: its error from here on
      }
    }
    return std::move(results[main_index]);
  }

  Result<ResultPtr> run(const char* sql, const std::vector<std::string>& params, bool prepare) {
    if (tx_error_) return *tx_error_;
    std::vector<const char*> values;
    std::vector<int> lengths;
    values.reserve(params.size());
    for (const auto& p : params) {
      values.push_back(p.c_str());
      lengths.push_back(static_cast<int>(p.size()));
    }
    ResultPtr res(nullptr, &PQclear);
    if (deferred_begin_) {
      res = runWithBegin(sql, values, lengths, prepare);
    } else if (prepare) {
      auto it = prepared_.find(sql);
      if (it == prepared_.end()) {
        std::string name = "banyan_" + std::to_string(prepared_.size() + 1);
        ResultPtr made(PQprepare(conn_, name.c_str(), sql, static_cast<int>(params.size()), nullptr), &PQclear);
        if (made && PQresultStatus(made.get()) == PGRES_COMMAND_OK) {
          it = prepared_.emplace(sql, std::move(name)).first;
        } else {
          res = std::move(made);
        }
      }
      if (it != prepared_.end())
        res.reset(PQexecPrepared(conn_, it->second.c_str(), static_cast<int>(params.size()), values.data(),
                                 lengths.data(), nullptr, 0));
    } else {
      res.reset(PQexecParams(conn_, sql, static_cast<int>(params.size()), nullptr, values.data(),
                             lengths.data(), nullptr, 0));
    }
    return check(std::move(res));
  }

  // res when it succeeded; otherwise its error, which becomes the transaction's.
  Result<ResultPtr> check(ResultPtr res) {
    ExecStatusType status = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return res;
    const char* state = res ? PQresultErrorField(res.get(), PG_DIAG_SQLSTATE) : nullptr;
    tx_sqlstate_ = state ? state : "";
    std::string message = "postgres: ";
    const char* primary = res ? PQresultErrorField(res.get(), PG_DIAG_MESSAGE_PRIMARY) : nullptr;
    message += primary ? primary : PQerrorMessage(conn_);
    while (!message.empty() && message.back() == '\n') message.pop_back();
    if (!tx_sqlstate_.empty()) message += " (SQLSTATE " + tx_sqlstate_ + ")";
    ErrorCode code = tx_sqlstate_ == "23505" ? ErrorCode::kConflict : ErrorCode::kUnavailable;
    tx_error_ = makeError(code, std::move(message), "postgres");
    return *tx_error_;
  }

  PGconn* conn_;
  std::unordered_map<std::string, std::string> prepared_;  // sql -> statement name
  const char* deferred_begin_ = nullptr;  // BEGIN to send with the next statement
  struct Along {
    std::string sql;
    std::vector<std::string> params;
    ResultPtr result;  // set once the round trip answered it
  };
  std::optional<Along> along_;  // sent with BEGIN (sendAlong)
  bool pending_commit_ = false;           // a COMMIT whose answer is unread
  std::optional<Error> tx_error_;
  std::string tx_sqlstate_;
};

namespace {

using Conn = PostgresStore::Connection;

Error notFound(std::string_view kind, std::string_view id) {
  return makeError(ErrorCode::kNotFound, std::string(kind) + " " + std::string(id) + " not found",
                   std::string(kind));
}

Record readRecord(PGresult* res, int row) {
  Record r;
  r.kind = PQgetvalue(res, row, 0);
  r.id = PQgetvalue(res, row, 1);
  r.project_id = PQgetvalue(res, row, 2);
  r.parent_id = PQgetvalue(res, row, 3);
  r.load_balancer_id = PQgetvalue(res, row, 4);
  r.revision = toInt64(PQgetvalue(res, row, 5));
  r.body.assign(PQgetvalue(res, row, 6), static_cast<size_t>(PQgetlength(res, row, 6)));
  return r;
}

std::vector<Record> readRecords(PGresult* res) {
  std::vector<Record> out;
  int n = PQntuples(res);
  out.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) out.push_back(readRecord(res, i));
  return out;
}

// `column` equal to one of values, which travel as parameter $n: the test and the
// value to bind. One value is `column = $n`, not an array of one: PostgreSQL plans
// `= ANY($n)` for ten values when it plans once for all calls, finds that dearer than
// planning each call for one value, and so plans every call anew (its parser and
// planner were the most of a load balancer show's database time).
struct AnyOf {
  std::string sql;
  std::string param;
};
std::string anyOfSql(std::string_view column, int n, size_t values) {
  const std::string placeholder = "$" + std::to_string(n);
  if (values == 1) return std::string(column) + " = " + placeholder;
  return std::string(column) + " = ANY(" + placeholder + "::text[])";
}
std::string anyOfParam(const std::vector<std::string>& values) {
  return values.size() == 1 ? values.front() : internal::pgTextArray(values);
}
AnyOf anyOf(std::string_view column, int n, const std::vector<std::string>& values) {
  return {anyOfSql(column, n, values.size()), anyOfParam(values)};
}

// A statement's text and its parameters.
struct Statement {
  std::string sql;
  std::vector<std::string> params;
};

// listLiveChildIds' statement.
Statement liveChildIdsStatement(const std::vector<std::string>& kinds, const std::vector<std::string>& parent_ids) {
  std::vector<std::string> params = {anyOfParam(parent_ids)};
  for (const auto& kind : internal::sortedUnique(kinds)) params.push_back(kind);
  return {internal::postgresLiveChildIdsSql(parent_ids.size(), params.size() - 1), std::move(params)};
}

}  // namespace

std::string internal::postgresLiveChildIdsSql(size_t parents, size_t kinds) {
  LB_CHECK(parents > 0 && kinds > 0, "at least one parent and one kind");
  // Every kind in one statement (one round trip); nothing but the ids leaves the server.
  // Each kind is a parameter of its own (`kind IN ($2, $3)`: a statement per number of
  // kinds, each planned for exactly that many). The kinds filter the index's entries;
  // the index is searched by the parent alone.
  std::string in;
  for (size_t i = 0; i < kinds; ++i) in += (i ? ", $" : "$") + std::to_string(i + 2);
  return "SELECT kind, id, '', parent_id, '', 0, '' FROM records WHERE " + anyOfSql("parent_id", 1, parents) +
         " AND kind IN (" + in + ") AND live ORDER BY seq";
}

namespace {

class PostgresTransaction final : public Transaction {
 public:
  PostgresTransaction(Conn& conn, bool writable) : conn_(conn), writable_(writable) {}

  Result<std::optional<Record>> get(std::string_view kind, std::string_view id) override {
    // In a write, get() locks the row: READ COMMITTED would otherwise let two
    // get-then-update writers both read the old body and lose one update, which SQLite's
    // serial writers never do. (Phantoms in list/count are what lockKey() is for.)
    auto res = run(getStatement(kind, id));
    if (!res.ok()) return res.error();
    if (PQntuples(res->get()) == 0) return std::optional<Record>();
    return std::optional<Record>(readRecord(res->get(), 0));
  }

  Result<std::vector<Record>> list(const Query& query) override { return records(listStatement(query)); }

  Result<std::vector<Record>> listPage(const Query& query, const PageSpec& page) override {
    return records(pageStatement(query, page));
  }

  // The hints send the statement the call will run, so that the call finds its answer.
  void prefetchGet(std::string_view kind, std::string_view id) override { sendAlong(getStatement(kind, id)); }
  void prefetchList(const Query& query) override { sendAlong(listStatement(query)); }
  void prefetchListPage(const Query& query, const PageSpec& page) override {
    sendAlong(pageStatement(query, page));
  }
  void prefetchLiveChildIds(const std::vector<std::string>& kinds,
                            const std::vector<std::string>& parent_ids) override {
    if (!parent_ids.empty() && !kinds.empty()) sendAlong(liveChildIdsStatement(kinds, parent_ids));
  }

  Result<std::vector<Record>> listByParents(std::string_view kind,
                                            const std::vector<std::string>& parent_ids) override {
    if (parent_ids.empty()) return std::vector<Record>();
    if (parent_ids.size() == 1) {
      Query q;
      q.kind = std::string(kind);
      q.parent_id = parent_ids.front();
      return list(q);
    }
    return listWhereIn(kind, "parent_id", parent_ids);
  }

  Result<std::vector<Record>> listLiveChildIds(const std::vector<std::string>& kinds,
                                               const std::vector<std::string>& parent_ids) override {
    if (parent_ids.empty() || kinds.empty()) return std::vector<Record>();
    return records(liveChildIdsStatement(kinds, parent_ids));
  }

  Result<int64_t> count(const Query& query) override {
    std::vector<std::string> params;
    std::string sql = "SELECT count(*) FROM records" + where(query, params);
    auto res = conn_.execPrepared(sql, params);
    if (!res.ok()) return res.error();
    return toInt64(PQgetvalue(res->get(), 0, 0));
  }

  Result<void> insert(Record& record) override {
    requireWritable("insert");
    // ON CONFLICT keeps the transaction usable: a unique violation would abort it.
    auto res = conn_.execPrepared(
        "INSERT INTO records (kind, id, project_id, parent_id, load_balancer_id, revision, body)"
        " VALUES ($1, $2, $3, $4, $5, 1, $6) ON CONFLICT (kind, id) DO NOTHING",
        {record.kind, record.id, record.project_id, record.parent_id, record.load_balancer_id,
         record.body});
    if (!res.ok()) return res.error();
    if (toInt64(PQcmdTuples(res->get())) == 0)
      return makeError(ErrorCode::kConflict, record.kind + " " + record.id + " already exists",
                       record.kind);
    record.revision = 1;
    return {};
  }

  Result<void> update(Record& record) override {
    requireWritable("update");
    auto res = conn_.execPrepared(
        "UPDATE records SET project_id = $3, parent_id = $4, load_balancer_id = $5, body = $6,"
        " updated_at = now(), revision = revision + 1 WHERE kind = $1 AND id = $2 RETURNING revision",
        {record.kind, record.id, record.project_id, record.parent_id, record.load_balancer_id,
         record.body});
    if (!res.ok()) return res.error();
    if (PQntuples(res->get()) == 0) return notFound(record.kind, record.id);
    record.revision = toInt64(PQgetvalue(res->get(), 0, 0));
    return {};
  }

  Result<void> remove(std::string_view kind, std::string_view id) override {
    requireWritable("remove");
    auto res = conn_.execPrepared("DELETE FROM records WHERE kind = $1 AND id = $2",
                          {std::string(kind), std::string(id)});
    if (!res.ok()) return res.error();
    if (toInt64(PQcmdTuples(res->get())) == 0) return notFound(kind, id);
    return {};
  }

  Result<void> lockKey(std::string_view key) override {
    requireWritable("lockKey");
    auto res = conn_.execPrepared("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", {std::string(key)});
    if (!res.ok()) return res.error();
    return {};
  }

  // The batch calls: one statement each, arrays in, so a batch costs one round trip
  // however many records it holds (see store.h).
  Result<std::vector<Record>> getMany(std::string_view kind, const std::vector<std::string>& ids) override {
    if (ids.empty()) return std::vector<Record>();
    // COLLATE "C": byte order, the order the SQLite store and callers' std::sort use, so
    // every writer locks a shared set of rows in the same sequence.
    auto res = conn_.execPrepared(
        writable_ ? "SELECT kind, id, project_id, parent_id, load_balancer_id, revision, body FROM records"
                    " WHERE kind = $1 AND id = ANY($2::text[]) ORDER BY id COLLATE \"C\" FOR UPDATE"
                  : "SELECT kind, id, project_id, parent_id, load_balancer_id, revision, body FROM records"
                    " WHERE kind = $1 AND id = ANY($2::text[]) ORDER BY id COLLATE \"C\"",
        {std::string(kind), internal::pgTextArray(ids)});
    if (!res.ok()) return res.error();
    return readRecords(res->get());
  }

  Result<std::vector<Record>> listByLoadBalancers(std::string_view kind,
                                                  const std::vector<std::string>& lb_ids) override {
    if (lb_ids.empty()) return std::vector<Record>();
    return listWhereIn(kind, "load_balancer_id", lb_ids);
  }

  // Records of `kind` whose `column` (a fixed column name, never user input) is one of
  // `values`, in insertion order: one statement for the whole set.
  Result<std::vector<Record>> listWhereIn(std::string_view kind, const char* column,
                                          const std::vector<std::string>& values) {
    AnyOf match = anyOf(column, 2, values);
    auto res = conn_.execPrepared(
        "SELECT kind, id, project_id, parent_id, load_balancer_id, revision, body FROM records WHERE kind = $1 AND " +
            match.sql + " ORDER BY seq",
        {std::string(kind), match.param});
    if (!res.ok()) return res.error();
    return readRecords(res->get());
  }

  Result<void> insertMany(std::vector<Record>& records) override {
    requireWritable("insertMany");
    if (records.empty()) return {};
    if (records.size() == 1) return insert(records.front());
    auto order = byKindAndId(records);
    auto res = conn_.execPrepared(
        "INSERT INTO records (kind, id, project_id, parent_id, load_balancer_id, revision, body)"
        " SELECT k, i, p, pa, lb, 1, b FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],"
        " $6::text[]) AS u(k, i, p, pa, lb, b)"
        " ON CONFLICT (kind, id) DO NOTHING RETURNING kind, id",
        columns(records, order));
    if (!res.ok()) return res.error();
    const int inserted = PQntuples(res->get());
    if (inserted != static_cast<int>(records.size())) {
      std::set<std::pair<std::string, std::string>> done;
      for (int i = 0; i < inserted; ++i) done.emplace(PQgetvalue(res->get(), i, 0), PQgetvalue(res->get(), i, 1));
      for (const auto& r : records)
        if (!done.count({r.kind, r.id}))
          return makeError(ErrorCode::kConflict, r.kind + " " + r.id + " already exists", r.kind);
      return makeError(ErrorCode::kConflict, "a record appears twice in one insertMany", records.front().kind);
    }
    for (auto& r : records) r.revision = 1;
    return {};
  }

  Result<void> updateMany(std::vector<Record>& records) override {
    requireWritable("updateMany");
    if (records.empty()) return {};
    if (records.size() == 1) return update(records.front());
    auto order = byKindAndId(records);
    auto res = conn_.execPrepared(
        "UPDATE records AS r SET project_id = u.p, parent_id = u.pa, load_balancer_id = u.lb, body = u.b,"
        " updated_at = now(), revision = r.revision + 1"
        " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])"
        " AS u(k, i, p, pa, lb, b) WHERE r.kind = u.k AND r.id = u.i RETURNING r.kind, r.id, r.revision",
        columns(records, order));
    if (!res.ok()) return res.error();
    std::map<std::pair<std::string, std::string>, int64_t> revisions;
    for (int i = 0; i < PQntuples(res->get()); ++i)
      revisions[{PQgetvalue(res->get(), i, 0), PQgetvalue(res->get(), i, 1)}] = toInt64(PQgetvalue(res->get(), i, 2));
    for (auto& r : records) {
      auto it = revisions.find({r.kind, r.id});
      if (it == revisions.end()) return notFound(r.kind, r.id);
      r.revision = it->second;
    }
    return {};
  }

  Result<void> lockKeys(const std::vector<std::string>& keys) override {
    requireWritable("lockKeys");
    if (keys.empty()) return {};
    if (keys.size() == 1) return lockKey(keys.front());
    // Taken one after another in byte order of the keys, the order Transaction's default
    // loop takes them in too, so a caller going through a wrapper and one calling this
    // directly agree. The subquery keeps its ORDER BY (OFFSET 0: never flattened).
    auto res = conn_.execPrepared(
        "SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0))) FROM (SELECT DISTINCT u.k COLLATE \"C\" AS k"
        " FROM unnest($1::text[]) AS u(k) ORDER BY 1 OFFSET 0) AS s",
        {internal::pgTextArray(keys)});
    if (!res.ok()) return res.error();
    return {};
  }

  Result<int64_t> enqueueJob(const JobSpec& job) override {
    requireWritable("enqueueJob");
    auto res = conn_.execPrepared(
        "INSERT INTO jobs (kind, payload, serial_key, run_after)"
        " VALUES ($1, $2, $3, clock_timestamp() + $4::bigint * interval '1 millisecond')"
        // Delivered to the listening workers when this transaction commits (never when
        // it rolls back); several in one transaction arrive as one.
        " RETURNING id, pg_notify('banyan_jobs', '')",
        {job.kind, job.payload, job.serial_key,
         std::to_string(std::max<int64_t>(0, job.delay.count()))});
    if (!res.ok()) return res.error();
    return toInt64(PQgetvalue(res->get(), 0, 0));
  }

 private:
  void requireWritable(const char* what) {
    LB_CHECK(writable_, what);  // a write inside Store::read() is a caller bug
  }

  // Indices of records sorted by (kind, id): a batch inserts and updates rows in one
  // fixed order, whatever order the caller built it in.
  static std::vector<size_t> byKindAndId(const std::vector<Record>& records) {
    std::vector<size_t> order(records.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return std::tie(records[a].kind, records[a].id) < std::tie(records[b].kind, records[b].id);
    });
    return order;
  }

  // kind, id, project_id, parent_id, load_balancer_id and body as six text[] parameters.
  static std::vector<std::string> columns(const std::vector<Record>& records, const std::vector<size_t>& order) {
    std::vector<std::string> col[6];
    for (auto& c : col) c.reserve(records.size());
    for (size_t i : order) {
      const Record& r = records[i];
      col[0].push_back(r.kind);
      col[1].push_back(r.id);
      col[2].push_back(r.project_id);
      col[3].push_back(r.parent_id);
      col[4].push_back(r.load_balancer_id);
      col[5].push_back(r.body);
    }
    std::vector<std::string> params;
    params.reserve(6);
    for (const auto& c : col) params.push_back(internal::pgTextArray(c));
    return params;
  }

  Statement getStatement(std::string_view kind, std::string_view id) const {
    std::string sql =
        "SELECT kind, id, project_id, parent_id, load_balancer_id, revision, body FROM records"
        " WHERE kind = $1 AND id = $2";
    if (writable_) sql += " FOR UPDATE";
    return {std::move(sql), {std::string(kind), std::string(id)}};
  }

  static Statement listStatement(const Query& query) {
    Statement st;
    st.sql = "SELECT kind, id, project_id, parent_id, load_balancer_id, revision, body FROM records" +
             where(query, st.params) + " ORDER BY seq";
    return st;
  }

  static Statement pageStatement(const Query& query, const PageSpec& page) {
    LB_CHECK(query.ids.empty(), "listPage takes no id list");
    auto page_st = internal::pageStatement(query, page, '$', " COLLATE \"C\"");
    Statement st{std::move(page_st.sql), {}};
    for (auto slot : page_st.slots) {
      switch (slot) {
        case internal::PageSlot::kKind: st.params.push_back(query.kind); break;
        case internal::PageSlot::kProjectId: st.params.push_back(*query.project_id); break;
        case internal::PageSlot::kParentId: st.params.push_back(*query.parent_id); break;
        case internal::PageSlot::kLoadBalancerId: st.params.push_back(*query.load_balancer_id); break;
        case internal::PageSlot::kName: st.params.push_back(*query.name); break;
        case internal::PageSlot::kAfterId: st.params.push_back(*page.after_id); break;
        case internal::PageSlot::kLimit: st.params.push_back(std::to_string(page.limit)); break;
      }
    }
    return st;
  }

  // The statement's answer: the one sent along with an earlier statement, if it was
  // this statement, else from a round trip of its own.
  Result<Conn::ResultPtr> run(const Statement& st) {
    if (auto sent = conn_.takeAlong(st.sql, st.params)) return std::move(*sent);
    return conn_.execPrepared(st.sql, st.params);
  }
  Result<std::vector<Record>> records(const Statement& st) {
    auto res = run(st);
    if (!res.ok()) return res.error();
    return readRecords(res->get());
  }
  // Only a read sends a statement along (Connection::sendAlong).
  void sendAlong(Statement st) {
    if (!writable_) conn_.sendAlong(std::move(st.sql), std::move(st.params));
  }

  static std::string where(const Query& q, std::vector<std::string>& params) {
    params.push_back(q.kind);
    std::string sql = " WHERE kind = $1";
    auto add = [&](const char* column, const std::string& value) {
      params.push_back(value);
      sql += std::string(" AND ") + column + " = $" + std::to_string(params.size());
    };
    if (q.project_id) add("project_id", *q.project_id);
    if (q.parent_id) add("parent_id", *q.parent_id);
    if (q.load_balancer_id) add("load_balancer_id", *q.load_balancer_id);
    if (q.name) add("name", *q.name);
    if (q.ids.size() == 1) {
      // A point lookup: a plan the primary key serves whatever the plan cache decides.
      params.push_back(q.ids.front());
      sql += " AND id = $" + std::to_string(params.size());
    } else if (!q.ids.empty()) {
      params.push_back(internal::pgTextArray(q.ids));
      sql += " AND id = ANY($" + std::to_string(params.size()) + "::text[])";
    }
    return sql;
  }

  Conn& conn_;
  bool writable_;
};

}  // namespace

PostgresStore::PostgresStore(PostgresOptions options) : options_(std::move(options)) {}

PostgresStore::~PostgresStore() = default;

Result<std::unique_ptr<PostgresStore>> PostgresStore::open(PostgresOptions options) {
  if (options.pool_size < 1) options.pool_size = 1;
  std::unique_ptr<PostgresStore> store(new PostgresStore(std::move(options)));
  auto conn = store->acquire();
  if (!conn.ok()) return conn.error();
  store->release(std::move(*conn));
  return store;
}

Result<std::unique_ptr<PostgresStore::Connection>> PostgresStore::acquire() {
  {
    std::unique_lock<std::mutex> lock(pool_mu_);
    bool open_new = false;
    if (waiters_.empty() && !idle_.empty()) {
      auto conn = std::move(idle_.back());
      idle_.pop_back();
      return conn;
    }
    if (waiters_.empty() && open_ < options_.pool_size) {
      ++open_;
      open_new = true;
    }
    if (!open_new) {
      // Wait in line: release() hands a connection (or a free slot) to the first waiter
      // and wakes only that one.
      Waiter me;
      waiters_.push_back(&me);
      // Bounded: a caller that nests Store calls inside a callback can exhaust the pool,
      // and must get an error rather than hang an API thread forever.
      if (!me.cv.wait_for(lock, kPoolWait, [&] { return me.served; })) {
        waiters_.erase(std::find(waiters_.begin(), waiters_.end(), &me));
        return makeError(ErrorCode::kUnavailable,
                         "all " + std::to_string(options_.pool_size) +
                             " PostgreSQL connections of this store stayed busy",
                         "postgres");
      }
      if (me.conn) return std::move(me.conn);
      // Served with a free slot (a broken connection was dropped): open a new one.
    }
  }
  std::vector<const char*> keys;
  std::vector<const char*> values;
  bool has_timeout = false, has_app = false;
  for (const auto& [k, v] : options_.params) {
    keys.push_back(k.c_str());
    values.push_back(v.c_str());
    has_timeout |= k == "connect_timeout";
    has_app |= k == "application_name";
  }
  if (!has_timeout) {
    keys.push_back("connect_timeout");
    values.push_back("10");
  }
  if (!has_app) {
    keys.push_back("application_name");
    values.push_back("banyan-provider");
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);
  auto conn = std::make_unique<Connection>(PQconnectdbParams(keys.data(), values.data(), 0));
  if (conn->broken()) {
    {
      std::lock_guard<std::mutex> lock(pool_mu_);
      slotFreed();
    }
    std::string context;
    for (const auto& [k, v] : options_.params)
      if (k == "host" || k == "port" || k == "dbname" || k == "user") context += k + "=" + v + " ";
    // libpq's message never contains the password.
    std::string message = std::string("cannot connect to PostgreSQL: ") + PQerrorMessage(conn->raw());
    while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
    return makeError(ErrorCode::kUnavailable, std::move(message), context);
  }
  return conn;
}

void PostgresStore::slotFreed() {
  if (waiters_.empty()) {
    --open_;
    return;
  }
  Waiter* next = waiters_.front();  // the slot passes on: open_ stays the same
  waiters_.pop_front();
  next->served = true;
  next->cv.notify_one();
}

void PostgresStore::release(std::unique_ptr<Connection> conn) {
  std::lock_guard<std::mutex> lock(pool_mu_);
  if (!conn || conn->broken()) {
    slotFreed();
    return;
  }
  conn->clearTx();
  if (waiters_.empty()) {
    idle_.push_back(std::move(conn));
    return;
  }
  Waiter* next = waiters_.front();
  waiters_.pop_front();
  next->conn = std::move(conn);
  next->served = true;
  next->cv.notify_one();
}

Result<void> PostgresStore::runTx(const char* begin_sql,
                                  const std::function<Result<void>(Connection&)>& body, bool read_only) {
  bool reconnected = false;
  // Seeded once per thread: a random_device per transaction showed up in profiles.
  thread_local std::minstd_rand jitter(std::random_device{}());
  Result<void> last = makeError(ErrorCode::kInternal, "no attempt made");
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    auto acquired = acquire();
    if (!acquired.ok()) return acquired.error();
    std::unique_ptr<Connection> conn = std::move(*acquired);
    conn->clearTx();
    if (!conn->finishPending() && !conn->reset()) {
      // The previous user's deferred COMMIT found the connection cut, and it cannot be
      // reopened: like a failed BEGIN below.
      Error e = makeError(ErrorCode::kUnavailable,
                          std::string("postgres connection lost: ") + PQerrorMessage(conn->raw()), "postgres");
      release(std::move(conn));
      return e;
    }
    Result<void> begun;
    if (read_only) conn->deferBegin(begin_sql);
    else begun = conn->command(begin_sql);
    if (!begun.ok() && conn->broken() && !reconnected) {
      // An idle pooled connection can have been cut (server restart, idle timeout).
      reconnected = true;
      LB_WARN("postgres connection broken; reconnecting error=%s", begun.error().message.c_str());
      if (conn->reset()) begun = conn->command(begin_sql);
    }
    if (!begun.ok()) {
      release(std::move(conn));
      return begun;
    }
    Result<void> result;
    try {
      result = body(*conn);
    } catch (...) {
      // Not ours to handle (callers may throw through fn), but the connection must go
      // back clean and its pool slot must not leak.
      if (!conn->broken() && !conn->beginPending()) {
        conn->clearTx();
        (void)conn->command("ROLLBACK");
      }
      conn->abandonBegin();
      release(std::move(conn));
      throw;
    }
    if (conn->txError()) {
      conn->abandonBegin();
      // A statement failed: the transaction is aborted whatever body returned.
      Error error = *conn->txError();
      bool retry = conn->txRetryable();
      bool broken = conn->broken();
      conn->clearTx();
      if (!broken) (void)conn->command("ROLLBACK");
      if (broken && !reconnected) {
        reconnected = true;
        LB_WARN("postgres connection lost in a transaction; retrying error=%s", error.message.c_str());
        if (conn->reset()) {
          release(std::move(conn));
          continue;
        }
      }
      release(std::move(conn));
      if (!retry) return error;
      last = error;
      std::this_thread::sleep_for(std::chrono::milliseconds(1 + jitter() % (5 << attempt)));
      continue;
    }
    if (!result.ok()) {
      if (!conn->beginPending()) (void)conn->command("ROLLBACK");
      conn->abandonBegin();
      release(std::move(conn));
      return result;
    }
    if (read_only) {
      // Nothing to lose: a read-only COMMIT cannot fail in a way the caller could act on.
      if (!conn->beginPending() && !conn->sendCommitDeferred()) (void)conn->reset();
      conn->abandonBegin();
      release(std::move(conn));
      return {};
    }
    Result<void> committed = conn->command("COMMIT");
    bool retry = !committed.ok() && conn->txRetryable();
    if (!committed.ok() && conn->broken()) {
      // The commit may or may not have landed; retrying could apply fn twice.
      release(std::move(conn));
      return makeError(ErrorCode::kUnavailable,
                       "postgres connection lost during COMMIT; outcome unknown", "postgres");
    }
    conn->clearTx();
    release(std::move(conn));
    if (committed.ok()) return {};
    if (!retry) return committed;
    last = committed;
  }
  return makeError(ErrorCode::kUnavailable,
                   "postgres transaction kept failing after retries: " + last.error().message, "postgres");
}

Result<void> PostgresStore::migrate() {
  return runTx("BEGIN", [](Connection& c) -> Result<void> {
    // Two processes starting together must not both create the tables: whoever takes
    // this lock first migrates, the other then finds the work done.
    if (auto r = c.exec("SELECT pg_advisory_xact_lock(hashtextextended('banyan.schema_migrations', 0))");
        !r.ok())
      return r.error();
    if (auto r = c.exec("CREATE TABLE IF NOT EXISTS schema_migrations ("
                        " version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())");
        !r.ok())
      return r.error();
    auto current = c.exec("SELECT coalesce(max(version), 0) FROM schema_migrations");
    if (!current.ok()) return current.error();
    int64_t version = toInt64(PQgetvalue(current->get(), 0, 0));
    for (const Migration& m : migrations()) {
      if (m.version <= version) continue;
      for (const char* sql : m.statements)
        if (auto r = c.exec(sql); !r.ok()) return r.error();
      if (auto r = c.exec("INSERT INTO schema_migrations (version) VALUES ($1)",
                          {std::to_string(m.version)});
          !r.ok())
        return r.error();
      LB_INFO("store schema migrated version=%d backend=postgresql", m.version);
    }
    return {};
  });
}

Result<int> PostgresStore::schemaVersion() {
  int version = 0;
  auto r = runTx("BEGIN READ ONLY", [&](Connection& c) -> Result<void> {
    auto exists = c.exec("SELECT to_regclass('schema_migrations') IS NOT NULL");
    if (!exists.ok()) return exists.error();
    if (std::string_view(PQgetvalue(exists->get(), 0, 0)) != "t") return {};
    auto res = c.exec("SELECT coalesce(max(version), 0) FROM schema_migrations");
    if (!res.ok()) return res.error();
    version = static_cast<int>(toInt64(PQgetvalue(res->get(), 0, 0)));
    return {};
  });
  if (!r.ok()) return r.error();
  return version;
}

Result<void> PostgresStore::read(const std::function<Result<void>(Transaction&)>& fn) {
  return runTx(
      "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
      [&](Connection& c) {
        PostgresTransaction tx(c, /*writable=*/false);
        return fn(tx);
      },
      /*read_only=*/true);
}

Result<void> PostgresStore::write(const std::function<Result<void>(Transaction&)>& fn) {
  return runTx("BEGIN ISOLATION LEVEL READ COMMITTED", [&](Connection& c) {
    PostgresTransaction tx(c, /*writable=*/true);
    return fn(tx);
  });
}

Result<std::optional<Job>> PostgresStore::claimJob(std::string_view worker_id,
                                                   std::chrono::milliseconds lease) {
  std::optional<Job> claimed;
  auto r = runTx("BEGIN ISOLATION LEVEL READ COMMITTED", [&](Connection& c) -> Result<void> {
    claimed.reset();
    std::vector<std::string> skipped;  // serialised candidates whose key is busy
    for (int i = 0; i < kMaxClaimCandidates; ++i) {
      // SKIP LOCKED: a job another process is claiming right now is not waited for.
      auto candidate = c.exec(
          "SELECT j.id, j.serial_key FROM jobs AS j WHERE j.state <> 'done'"
          " AND ((j.state = 'queued' AND j.run_after <= clock_timestamp())"
          "   OR (j.state = 'claimed' AND j.lease_until <= clock_timestamp()))"
          " AND NOT (j.id = ANY($1::bigint[]))"
          " AND (j.serial_key = '' OR ("
          "  NOT EXISTS (SELECT 1 FROM jobs AS o WHERE o.serial_key = j.serial_key AND o.id < j.id"
          "              AND o.state <> 'done')"
          "  AND NOT EXISTS (SELECT 1 FROM jobs AS o WHERE o.serial_key = j.serial_key AND o.id <> j.id"
          "              AND o.state = 'claimed' AND o.lease_until > clock_timestamp())))"
          " ORDER BY j.id LIMIT 1 FOR UPDATE OF j SKIP LOCKED",
          {internal::pgTextArray(skipped)});
      if (!candidate.ok()) return candidate.error();
      if (PQntuples(candidate->get()) == 0) return {};
      std::string id = PQgetvalue(candidate->get(), 0, 0);
      std::string serial_key = PQgetvalue(candidate->get(), 0, 1);
      if (!serial_key.empty()) {
        // The candidate query ran on a snapshot taken before other claimers of this key
        // committed. Serialise claimers per key, then look again with a fresh snapshot
        // (READ COMMITTED: each statement sees what committed before it started).
        if (auto l = c.exec("SELECT pg_advisory_xact_lock(hashtextextended('banyan.job:' || $1, 0))",
                            {serial_key});
            !l.ok())
          return l.error();
        auto free = c.exec(
            "SELECT NOT EXISTS (SELECT 1 FROM jobs AS o WHERE o.serial_key = $2 AND o.id < $1::bigint"
            "                   AND o.state <> 'done')"
            "   AND NOT EXISTS (SELECT 1 FROM jobs AS o WHERE o.serial_key = $2 AND o.id <> $1::bigint"
            "                   AND o.state = 'claimed' AND o.lease_until > clock_timestamp())",
            {id, serial_key});
        if (!free.ok()) return free.error();
        if (std::string_view(PQgetvalue(free->get(), 0, 0)) != "t") {
          skipped.push_back(id);
          continue;
        }
      }
      auto res = c.exec(
          "UPDATE jobs SET state = 'claimed', claimed_by = $2, attempts = attempts + 1,"
          " lease_until = clock_timestamp() + $3::bigint * interval '1 millisecond'"
          " WHERE id = $1::bigint RETURNING id, kind, payload, serial_key, attempts, last_error",
          {id, std::string(worker_id), std::to_string(lease.count())});
      if (!res.ok()) return res.error();
      LB_CHECK(PQntuples(res->get()) == 1, "a job locked FOR UPDATE vanished");
      Job job;
      job.id = toInt64(PQgetvalue(res->get(), 0, 0));
      job.kind = PQgetvalue(res->get(), 0, 1);
      job.payload.assign(PQgetvalue(res->get(), 0, 2), static_cast<size_t>(PQgetlength(res->get(), 0, 2)));
      job.serial_key = PQgetvalue(res->get(), 0, 3);
      job.attempts = static_cast<int>(toInt64(PQgetvalue(res->get(), 0, 4)));
      job.last_error = PQgetvalue(res->get(), 0, 5);
      claimed = std::move(job);
      return {};
    }
    return {};
  });
  if (!r.ok()) return r.error();
  return claimed;
}

namespace {

Result<void> expectOneRow(Result<Conn::ResultPtr>& res, int64_t job_id, std::string_view worker_id) {
  if (!res.ok()) return res.error();
  if (toInt64(PQcmdTuples(res->get())) == 0)
    return makeError(ErrorCode::kConflict,
                     "job " + std::to_string(job_id) + " is no longer claimed by " + std::string(worker_id),
                     "job");
  return {};
}

}  // namespace

Result<void> PostgresStore::renewJob(int64_t job_id, std::string_view worker_id,
                                     std::chrono::milliseconds lease) {
  return runTx("BEGIN", [&](Connection& c) {
    auto res = c.exec(
        "UPDATE jobs SET lease_until = clock_timestamp() + $3::bigint * interval '1 millisecond'"
        " WHERE id = $1::bigint AND state = 'claimed' AND claimed_by = $2",
        {std::to_string(job_id), std::string(worker_id), std::to_string(lease.count())});
    return expectOneRow(res, job_id, worker_id);
  });
}

Result<void> PostgresStore::finishJob(int64_t job_id, std::string_view worker_id) {
  return runTx("BEGIN", [&](Connection& c) {
    auto res = c.exec(
        "UPDATE jobs SET state = 'done', finished_at = clock_timestamp(), lease_until = NULL"
        " WHERE id = $1::bigint AND state = 'claimed' AND claimed_by = $2",
        {std::to_string(job_id), std::string(worker_id)});
    return expectOneRow(res, job_id, worker_id);
  });
}

Result<void> PostgresStore::retryJob(int64_t job_id, std::string_view worker_id,
                                     std::chrono::milliseconds delay, std::string_view error) {
  // A job handed back at once (its worker is stopping) is announced, so another
  // process's idle worker takes it now; a delayed retry is found by polling.
  const char* sql = delay.count() <= 0
                        ? "UPDATE jobs SET state = 'queued', claimed_by = NULL, lease_until = NULL, last_error = $4,"
                          " run_after = clock_timestamp() + $3::bigint * interval '1 millisecond'"
                          " WHERE id = $1::bigint AND state = 'claimed' AND claimed_by = $2"
                          " RETURNING pg_notify('banyan_jobs', '')"
                        : "UPDATE jobs SET state = 'queued', claimed_by = NULL, lease_until = NULL, last_error = $4,"
                          " run_after = clock_timestamp() + $3::bigint * interval '1 millisecond'"
                          " WHERE id = $1::bigint AND state = 'claimed' AND claimed_by = $2";
  return runTx("BEGIN", [&](Connection& c) {
    auto res = c.exec(sql,
        {std::to_string(job_id), std::string(worker_id),
         std::to_string(std::max<int64_t>(0, delay.count())), std::string(error)});
    return expectOneRow(res, job_id, worker_id);
  });
}

// The statements above spell the channel out (they are literals).
static_assert(std::string_view(kJobChannel) == "banyan_jobs");

std::unique_ptr<JobListener> PostgresStore::listenForJobs(JobListenerCallbacks callbacks) {
  PostgresJobListenerOptions options;
  options.params = options_.params;
  return startPostgresJobListener(std::move(options), std::move(callbacks));
}

Result<int64_t> PostgresStore::pendingJobs() {
  int64_t count = 0;
  auto r = runTx("BEGIN READ ONLY", [&](Connection& c) -> Result<void> {
    auto res = c.exec("SELECT count(*) FROM jobs WHERE state <> 'done'");
    if (!res.ok()) return res.error();
    count = toInt64(PQgetvalue(res->get(), 0, 0));
    return {};
  });
  if (!r.ok()) return r.error();
  return count;
}

}  // namespace banyan::provider::store
