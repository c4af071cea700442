#include "store/sqlite_store.h"

#include <sqlite3.h>

#include <filesystem>
#include <iterator>
#include <unordered_map>

#include "banyan/common/logging.h"
#include "store/store_internal.h"

namespace banyan::provider::store {
namespace {

using common::Error;
using common::ErrorCode;
using common::makeError;

// Long enough to ride out another process's migration or a burst of writers, short
// enough that a wedged peer surfaces as kUnavailable instead of a hung API request.
constexpr int kBusyTimeoutMs = 10000;
constexpr int kPageCacheKiB = 32 * 1024;  // per connection, see acquire()

struct Migration {
  int version;
  std::vector<const char*> statements;
};

// The children the API shows (Transaction::listLiveChildIds): the partial index of
// migration 4 and the statement's WHERE term must spell it the same, or SQLite does not
// use the index.
#define BANYAN_SQLITE_LIVE(alias) "coalesce(json_extract(" alias "body, '$.provisioning_status'), '') <> 'DELETED'"

// Append-only: a released migration is never edited, a change is a new version.
const std::vector<Migration>& migrations() {
  static const std::vector<Migration> kMigrations = {
      {1,
       {
           // seq is the rowid: insertion order, never reused (AUTOINCREMENT). (kind, id) is
           // the logical primary key, enforced by the UNIQUE constraint.
           "CREATE TABLE records ("
           " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
           " kind TEXT NOT NULL, id TEXT NOT NULL,"
           " project_id TEXT NOT NULL DEFAULT '', parent_id TEXT NOT NULL DEFAULT '',"
           " load_balancer_id TEXT NOT NULL DEFAULT '',"
           " revision INTEGER NOT NULL, body TEXT NOT NULL,"
           " created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,"
           " UNIQUE (kind, id))",
           "CREATE INDEX records_kind_seq ON records (kind, seq)",
           "CREATE INDEX records_project ON records (kind, project_id, seq)",
           "CREATE INDEX records_parent ON records (kind, parent_id, seq)",
           "CREATE INDEX records_load_balancer ON records (kind, load_balancer_id, seq)",
           // Times are Unix milliseconds from the provider's wall clock.
           "CREATE TABLE jobs ("
           " id INTEGER PRIMARY KEY AUTOINCREMENT,"
           " kind TEXT NOT NULL, payload TEXT NOT NULL, serial_key TEXT NOT NULL DEFAULT '',"
           " state TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued','claimed','done')),"
           " claimed_by TEXT, lease_until INTEGER, run_after INTEGER NOT NULL,"
           " attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT '',"
           " created_at INTEGER NOT NULL, finished_at INTEGER)",
           "CREATE INDEX jobs_open ON jobs (state, id) WHERE state <> 'done'",
           "CREATE INDEX jobs_serial ON jobs (serial_key, id) WHERE state <> 'done'",
       }},
      // The body's name (store.h), computed by SQLite from the body on every write: no
      // writer can forget it, and `?name=` becomes one index search instead of reading
      // and parsing every record of the project. VIRTUAL: only the index stores it.
      {2,
       {
           "ALTER TABLE records ADD COLUMN name TEXT NOT NULL"
           " GENERATED ALWAYS AS (coalesce(json_extract(body, '$.name'), '')) VIRTUAL",
           "CREATE INDEX records_name ON records (kind, name, seq)",
       }},
      // The ids of the children that are not DELETED, per parent, in insertion order: a
      // page's relation lists are answered from this index alone, without reading a row.
      {3,
       {
           "CREATE INDEX records_live_children ON records (kind, parent_id, seq, id) WHERE " BANYAN_SQLITE_LIVE(""),
       }},
      // The same, parent first: a parent's live children of every kind are one search,
      // where version 3's index took one per kind (a load balancer page's listeners and
      // pools: 50 searches instead of 100, about 40 % less time in SQLite).
      {4,
       {
           "DROP INDEX records_live_children",
           "CREATE INDEX records_live_by_parent ON records (parent_id, kind, seq, id) WHERE " BANYAN_SQLITE_LIVE(""),
       }},
  };
  return kMigrations;
}

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

// One handle plus its prepared statements. Used by one thread at a time (pool).
class SqliteStore::Connection {
 public:
  explicit Connection(sqlite3* db) : db_(db) {}
  ~Connection() {
    for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
    sqlite3_close_v2(db_);
  }

  sqlite3* db() { return db_; }

  Error error(std::string_view what) {
    int code = sqlite3_errcode(db_);
    std::string message = std::string(what) + ": " + sqlite3_errmsg(db_);
    ErrorCode ec = ErrorCode::kUnavailable;
    if (code == SQLITE_CONSTRAINT) ec = ErrorCode::kConflict;
    if (code == SQLITE_MISUSE || code == SQLITE_RANGE) ec = ErrorCode::kInternal;
    return makeError(ec, std::move(message), "sqlite");
  }

  Result<void> exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string message = std::string("sqlite: ") + (err ? err : "error") + " in: " + sql;
      sqlite3_free(err);
      return makeError(ErrorCode::kUnavailable, std::move(message), "sqlite");
    }
    return {};
  }

  // A prepared statement, reset when the Stmt goes out of scope so the next user of
  // the cached statement starts clean and no read transaction is left open.
  class Stmt {
   public:
    Stmt(Connection& conn, sqlite3_stmt* stmt) : conn_(conn), stmt_(stmt) {}
    ~Stmt() {
      sqlite3_reset(stmt_);
      sqlite3_clear_bindings(stmt_);
    }
    Stmt(const Stmt&) = delete;
    Stmt& operator=(const Stmt&) = delete;

    void bind(int i, std::string_view v) {
      sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    }
    void bind(int i, int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
    // SQLITE_ROW: true; SQLITE_DONE: false; else an error.
    Result<bool> step() {
      int rc = sqlite3_step(stmt_);
      if (rc == SQLITE_ROW) return true;
      if (rc == SQLITE_DONE) return false;
      return conn_.error(sqlite3_sql(stmt_));
    }
    std::string text(int col) {
      auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
      return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, col))) : std::string();
    }
    int64_t int64(int col) { return sqlite3_column_int64(stmt_, col); }

   private:
    Connection& conn_;
    sqlite3_stmt* stmt_;
  };

  Result<std::unique_ptr<Stmt>> prepare(const std::string& sql) {
    auto it = cache_.find(sql);
    if (it == cache_.end()) {
      sqlite3_stmt* stmt = nullptr;
      if (sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT,
                             &stmt, nullptr) != SQLITE_OK)
        return error("prepare " + sql);
      it = cache_.emplace(sql, stmt).first;
    }
    return std::make_unique<Stmt>(*this, it->second);
  }

 private:
  sqlite3* db_;
  std::unordered_map<std::string, sqlite3_stmt*> cache_;
};

namespace {

using Conn = SqliteStore::Connection;

class SqliteTransaction final : public Transaction {
 public:
  SqliteTransaction(Conn& conn, bool writable) : conn_(conn), writable_(writable) {}

  Result<std::optional<Record>> get(std::string_view kind, std::string_view id) override {
    auto stmt = conn_.prepare(
        "SELECT kind, id, project_id, parent_id, load_balancer_id, revision, body"
        " FROM records WHERE kind = ?1 AND id = ?2");
    if (!stmt.ok()) return stmt.error();
    (*stmt)->bind(1, kind);
    (*stmt)->bind(2, id);
    auto row = (*stmt)->step();
    if (!row.ok()) return row.error();
    if (!*row) return std::optional<Record>();
    return std::optional<Record>(readRecord(**stmt));
  }

  Result<std::vector<Record>> list(const Query& query) override {
    auto stmt = prepareQuery(
        "SELECT kind, id, project_id, parent_id, load_balancer_id, revision, body FROM records",
        query, " ORDER BY seq");
    if (!stmt.ok()) return stmt.error();
    return readRecords(**stmt);
  }

  Result<std::vector<Record>> listPage(const Query& query, const PageSpec& page) override {
    LB_CHECK(query.ids.empty(), "listPage takes no id list");
    auto st = internal::pageStatement(query, page, '?', "");
    auto stmt = conn_.prepare(st.sql);
    if (!stmt.ok()) return stmt.error();
    auto& s = **stmt;
    for (size_t i = 0; i < st.slots.size(); ++i) {
      int n = static_cast<int>(i + 1);
      switch (st.slots[i]) {
        case internal::PageSlot::kKind: s.bind(n, query.kind); break;
        case internal::PageSlot::kProjectId: s.bind(n, *query.project_id); break;
        case internal::PageSlot::kParentId: s.bind(n, *query.parent_id); break;
        case internal::PageSlot::kLoadBalancerId: s.bind(n, *query.load_balancer_id); break;
        case internal::PageSlot::kName: s.bind(n, *query.name); break;
        case internal::PageSlot::kAfterId: s.bind(n, *page.after_id); break;
        case internal::PageSlot::kLimit: s.bind(n, static_cast<int64_t>(page.limit)); break;
      }
    }
    return readRecords(s);
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
    // Each parent is one search of records_live_by_parent, which holds every column the
    // statement reads; a parent given twice would list its children twice.
    const auto wanted = internal::sortedUnique(kinds);
    auto stmt = conn_.prepare(internal::sqliteLiveChildIdsSql(wanted.size()));
    if (!stmt.ok()) return stmt.error();
    (*stmt)->bind(1, internal::jsonStringArray(internal::sortedUnique(parent_ids)));
    for (size_t i = 0; i < wanted.size(); ++i) (*stmt)->bind(static_cast<int>(i + 2), wanted[i]);
    return readRecords(**stmt);
  }

  // The other batch calls keep Transaction's loops: each statement is a local call here,
  // and BEGIN IMMEDIATE already serialises writers (no lock order to keep).
  Result<std::vector<Record>> listByLoadBalancers(std::string_view kind,
                                                  const std::vector<std::string>& lb_ids) override {
    if (lb_ids.empty()) return std::vector<Record>();
    return listWhereIn(kind, "load_balancer_id", lb_ids);
  }

  // Records of `kind` whose `column` (a fixed column name, never user input) is one of
  // `values`, in insertion order: one statement for the whole set.
  Result<std::vector<Record>> listWhereIn(std::string_view kind, const char* column,
                                          const std::vector<std::string>& values) {
    // The values drive the join (CROSS JOIN keeps that order) and each is one search of
    // the column's index. Written as `column IN (...) ORDER BY seq`, SQLite walked every
    // record of the kind in seq order instead and tested each: the members of 50 pools
    // meant reading all 10,000, two thirds of a 50-item load balancer page's time.
    // The search yields only seqs (the index covers it); `seq IN` then reads the rows in
    // seq order, so no sorter copies every row and body before the first one returns.
    // A value given twice needs no DISTINCT: `seq IN` is a set already (the DISTINCT's
    // temporary b-tree was a fifth of the statement's time).
    auto stmt = conn_.prepare(
        std::string("SELECT kind, id, project_id, parent_id, load_balancer_id, revision, body"
                    " FROM records WHERE seq IN (SELECT r.seq FROM json_each(?2) AS j"
                    " CROSS JOIN records AS r WHERE r.kind = ?1 AND r.") +
        column + " = j.value) ORDER BY seq");
    if (!stmt.ok()) return stmt.error();
    (*stmt)->bind(1, kind);
    (*stmt)->bind(2, internal::jsonStringArray(values));
    return readRecords(**stmt);
  }

  Result<int64_t> count(const Query& query) override {
    auto stmt = prepareQuery("SELECT count(*) FROM records", query, "");
    if (!stmt.ok()) return stmt.error();
    auto row = (*stmt)->step();
    if (!row.ok()) return row.error();
    return (*stmt)->int64(0);
  }

  Result<void> insert(Record& record) override {
    requireWritable("insert");
    auto stmt = conn_.prepare(
        "INSERT INTO records (kind, id, project_id, parent_id, load_balancer_id, revision, body,"
        " created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?7, ?7)"
        " ON CONFLICT (kind, id) DO NOTHING");
    if (!stmt.ok()) return stmt.error();
    auto& s = **stmt;
    s.bind(1, record.kind);
    s.bind(2, record.id);
    s.bind(3, record.project_id);
    s.bind(4, record.parent_id);
    s.bind(5, record.load_balancer_id);
    s.bind(6, record.body);
    s.bind(7, nowMs());
    auto row = s.step();
    if (!row.ok()) return row.error();
    if (sqlite3_changes(conn_.db()) == 0)
      return makeError(ErrorCode::kConflict, record.kind + " " + record.id + " already exists",
                       record.kind);
    record.revision = 1;
    return {};
  }

  Result<void> update(Record& record) override {
    requireWritable("update");
    auto stmt = conn_.prepare(
        "UPDATE records SET project_id = ?3, parent_id = ?4, load_balancer_id = ?5, body = ?6,"
        " updated_at = ?7, revision = revision + 1 WHERE kind = ?1 AND id = ?2 RETURNING revision");
    if (!stmt.ok()) return stmt.error();
    auto& s = **stmt;
    s.bind(1, record.kind);
    s.bind(2, record.id);
    s.bind(3, record.project_id);
    s.bind(4, record.parent_id);
    s.bind(5, record.load_balancer_id);
    s.bind(6, record.body);
    s.bind(7, nowMs());
    auto row = s.step();
    if (!row.ok()) return row.error();
    if (!*row) return notFound(record.kind, record.id);
    record.revision = s.int64(0);
    // Drain so the statement completes before the Stmt resets it.
    auto done = s.step();
    if (!done.ok()) return done.error();
    return {};
  }

  Result<void> remove(std::string_view kind, std::string_view id) override {
    requireWritable("remove");
    auto stmt = conn_.prepare("DELETE FROM records WHERE kind = ?1 AND id = ?2");
    if (!stmt.ok()) return stmt.error();
    (*stmt)->bind(1, kind);
    (*stmt)->bind(2, id);
    auto row = (*stmt)->step();
    if (!row.ok()) return row.error();
    if (sqlite3_changes(conn_.db()) == 0) return notFound(kind, id);
    return {};
  }

  Result<void> lockKey(std::string_view) override {
    requireWritable("lockKey");
    // BEGIN IMMEDIATE already holds the database's single write lock.
    return {};
  }

  Result<int64_t> enqueueJob(const JobSpec& job) override {
    requireWritable("enqueueJob");
    auto stmt = conn_.prepare(
        "INSERT INTO jobs (kind, payload, serial_key, run_after, created_at)"
        " VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id");
    if (!stmt.ok()) return stmt.error();
    int64_t now = nowMs();
    auto& s = **stmt;
    s.bind(1, job.kind);
    s.bind(2, job.payload);
    s.bind(3, job.serial_key);
    s.bind(4, now + std::max<int64_t>(0, job.delay.count()));
    s.bind(5, now);
    auto row = s.step();
    if (!row.ok()) return row.error();
    int64_t id = s.int64(0);
    auto done = s.step();
    if (!done.ok()) return done.error();
    return id;
  }

 private:
  void requireWritable(const char* what) {
    LB_CHECK(writable_, what);  // a write inside Store::read() is a caller bug
  }

  static Error notFound(std::string_view kind, std::string_view id) {
    return makeError(ErrorCode::kNotFound, std::string(kind) + " " + std::string(id) + " not found",
                     std::string(kind));
  }

  static Record readRecord(Conn::Stmt& s) {
    Record r;
    r.kind = s.text(0);
    r.id = s.text(1);
    r.project_id = s.text(2);
    r.parent_id = s.text(3);
    r.load_balancer_id = s.text(4);
    r.revision = s.int64(5);
    r.body = s.text(6);
    return r;
  }

  // Every remaining row of a statement, as records.
  static Result<std::vector<Record>> readRecords(Conn::Stmt& s) {
    std::vector<Record> out;
    while (true) {
      auto row = s.step();
      if (!row.ok()) return row.error();
      if (!*row) break;
      out.push_back(readRecord(s));
    }
    return out;
  }

  // The WHERE clause depends only on which filters are set, so at most 32 distinct
  // statements exist and all are cached; ids travel as one JSON array parameter.
  Result<std::unique_ptr<Conn::Stmt>> prepareQuery(const char* head, const Query& q,
                                                   const char* tail) {
    std::string sql = head;
    // Several ids: each is a point lookup on UNIQUE (kind, id), driven by the id list
    // ahead of records, as in listWhereIn (an `id IN (...)` test walked the whole kind).
    if (q.ids.size() > 1) {
      static constexpr std::string_view kRecords = " records";
      LB_CHECK(std::string_view(sql).ends_with(" FROM records"), "query heads end with FROM records");
      sql.insert(sql.size() - kRecords.size(), " (SELECT DISTINCT value FROM json_each(?5)) AS j CROSS JOIN");
    }
    sql += " WHERE kind = ?1";
    if (q.project_id) sql += " AND project_id = ?2";
    if (q.parent_id) sql += " AND parent_id = ?3";
    if (q.load_balancer_id) sql += " AND load_balancer_id = ?4";
    if (q.name) sql += " AND name = ?6";
    if (q.ids.size() == 1) sql += " AND id = ?5";
    else if (!q.ids.empty()) sql += " AND id = j.value";
    sql += tail;
    auto stmt = conn_.prepare(sql);
    if (!stmt.ok()) return stmt.error();
    auto& s = **stmt;
    s.bind(1, q.kind);
    if (q.project_id) s.bind(2, *q.project_id);
    if (q.parent_id) s.bind(3, *q.parent_id);
    if (q.load_balancer_id) s.bind(4, *q.load_balancer_id);
    if (q.name) s.bind(6, *q.name);
    if (q.ids.size() == 1) s.bind(5, q.ids.front());
    else if (!q.ids.empty()) s.bind(5, internal::jsonStringArray(q.ids));
    return stmt;
  }

  Conn& conn_;
  bool writable_;
};

}  // namespace

std::string internal::sqliteLiveChildIdsSql(size_t kinds) {
  LB_CHECK(kinds > 0, "at least one kind");
  // `+r.kind` keeps the kinds out of the index search: each is one more search there,
  // while the parent's few children of other kinds cost a step each.
  std::string sql =
      "SELECT r.kind, r.id, '', r.parent_id, '', 0, '' FROM json_each(?1) AS j CROSS JOIN records AS r"
      " WHERE r.parent_id = j.value AND +r.kind IN (";
  for (size_t i = 0; i < kinds; ++i) sql += (i ? ", ?" : "?") + std::to_string(i + 2);
  return sql + ") AND " BANYAN_SQLITE_LIVE("r.");
}

SqliteStore::SqliteStore(std::string path) : path_(std::move(path)) {}

SqliteStore::~SqliteStore() = default;

Result<std::unique_ptr<SqliteStore>> SqliteStore::open(const std::string& path) {
  // Without memory statistics SQLite's allocations take no process-wide mutex: with
  // them, every malloc and free of every connection locked the same one (a twentieth of
  // a page of fifty load balancers went to that lock). Only possible before SQLite
  // initialises, so once, before the first connection of the process.
  static const int memstatus_rc = [] {
    int rc = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    if (rc != SQLITE_OK) LB_WARN("sqlite keeps its memory statistics error=%s", sqlite3_errstr(rc));
    return rc;
  }();
  (void)memstatus_rc;
  std::filesystem::path p(path);
  if (p.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(p.parent_path(), ec);
    if (ec)
      return makeError(ErrorCode::kUnavailable,
                       "cannot create the database directory: " + ec.message(),
                       p.parent_path().string());
  }
  std::unique_ptr<SqliteStore> store(new SqliteStore(path));
  // The first connection switches the file to WAL (a persistent property of the file).
  auto conn = store->acquire();
  if (!conn.ok()) return conn.error();
  if (auto r = (*conn)->exec("PRAGMA journal_mode=WAL"); !r.ok()) return r.error();
  store->release(std::move(*conn));
  return store;
}

Result<std::unique_ptr<SqliteStore::Connection>> SqliteStore::acquire() {
  {
    std::lock_guard<std::mutex> lock(pool_mu_);
    if (!idle_.empty()) {
      auto conn = std::move(idle_.back());
      idle_.pop_back();
      return conn;
    }
  }
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path_.c_str(), &db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  auto conn = std::make_unique<Connection>(db);  // closes db even when open failed
  if (rc != SQLITE_OK) return makeError(ErrorCode::kUnavailable,
                                        std::string("cannot open the database: ") +
                                            (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc)),
                                        path_);
  sqlite3_busy_timeout(db, kBusyTimeoutMs);
  sqlite3_extended_result_codes(db, 0);
  // FULL: an accepted API request (its record and job) must survive a power cut.
  if (auto r = conn->exec("PRAGMA synchronous=FULL"); !r.ok()) return r.error();
  // Each connection keeps up to kPageCacheKiB of pages: with SQLite's default 2 MiB a
  // list of a thousand load balancers spends most of its time in pread(). The file is
  // not mapped (mmap_size): in WAL mode a connection drops its map whenever another
  // wrote since its last read, and the munmap (a TLB shootdown on every CPU) and the
  // refaults made a request of the mixed benchmark cost 1.75 ms of CPU instead of 0.95.
  if (auto r = conn->exec(("PRAGMA cache_size=-" + std::to_string(kPageCacheKiB)).c_str());
      !r.ok())
    return r.error();
  return conn;
}

void SqliteStore::release(std::unique_ptr<Connection> conn) {
  // A connection left inside a transaction (a failed ROLLBACK) is not reused.
  if (!sqlite3_get_autocommit(conn->db())) return;
  std::lock_guard<std::mutex> lock(pool_mu_);
  idle_.push_back(std::move(conn));
}

Result<void> SqliteStore::runWrite(const std::function<Result<void>(Connection&)>& fn) {
  std::lock_guard<std::mutex> write_lock(write_mu_);
  auto conn = acquire();
  if (!conn.ok()) return conn.error();
  Connection& c = **conn;
  if (auto r = c.exec("BEGIN IMMEDIATE"); !r.ok()) {
    release(std::move(*conn));
    return r.error();
  }
  Result<void> result;
  try {
    result = fn(c);
  } catch (...) {
    // Callers may throw through fn: roll back and return the connection, then rethrow.
    (void)c.exec("ROLLBACK");
    release(std::move(*conn));
    throw;
  }
  if (result.ok()) {
    if (auto r = c.exec("COMMIT"); !r.ok()) result = r.error();
  }
  if (!sqlite3_get_autocommit(c.db())) (void)c.exec("ROLLBACK");
  release(std::move(*conn));
  return result;
}

Result<void> SqliteStore::migrate() {
  return runWrite([](Connection& c) -> Result<void> {
    if (auto r = c.exec("CREATE TABLE IF NOT EXISTS schema_migrations ("
                        " version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)");
        !r.ok())
      return r;
    auto stmt = c.prepare("SELECT coalesce(max(version), 0) FROM schema_migrations");
    if (!stmt.ok()) return stmt.error();
    auto row = (*stmt)->step();
    if (!row.ok()) return row.error();
    int64_t current = (*stmt)->int64(0);
    stmt->reset();  // finishes the read before the DDL below
    for (const Migration& m : migrations()) {
      if (m.version <= current) continue;
      for (const char* sql : m.statements)
        if (auto r = c.exec(sql); !r.ok()) return r;
      auto ins = c.prepare("INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)");
      if (!ins.ok()) return ins.error();
      (*ins)->bind(1, static_cast<int64_t>(m.version));
      (*ins)->bind(2, nowMs());
      if (auto r = (*ins)->step(); !r.ok()) return r.error();
      LB_INFO("store schema migrated version=%d backend=sqlite", m.version);
    }
    return {};
  });
}

Result<int> SqliteStore::schemaVersion() {
  auto conn = acquire();
  if (!conn.ok()) return conn.error();
  Result<int> out = 0;
  {
    auto stmt = (*conn)->prepare(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'");
    if (!stmt.ok()) {
      out = stmt.error();
    } else if (auto row = (*stmt)->step(); !row.ok()) {
      out = row.error();
    } else if ((*stmt)->int64(0) > 0) {
      stmt->reset();
      auto v = (*conn)->prepare("SELECT coalesce(max(version), 0) FROM schema_migrations");
      if (!v.ok()) {
        out = v.error();
      } else if (auto vrow = (*v)->step(); !vrow.ok()) {
        out = vrow.error();
      } else {
        out = static_cast<int>((*v)->int64(0));
      }
    }
  }
  release(std::move(*conn));
  return out;
}

Result<void> SqliteStore::read(const std::function<Result<void>(Transaction&)>& fn) {
  auto conn = acquire();
  if (!conn.ok()) return conn.error();
  Connection& c = **conn;
  // A deferred transaction in WAL mode reads one snapshot and takes no write lock.
  if (auto r = c.exec("BEGIN"); !r.ok()) {
    release(std::move(*conn));
    return r;
  }
  Result<void> result;
  try {
    SqliteTransaction tx(c, /*writable=*/false);
    result = fn(tx);
  } catch (...) {
    (void)c.exec("ROLLBACK");
    release(std::move(*conn));
    throw;
  }
  (void)c.exec("COMMIT");
  if (!sqlite3_get_autocommit(c.db())) (void)c.exec("ROLLBACK");
  release(std::move(*conn));
  return result;
}

Result<void> SqliteStore::write(const std::function<Result<void>(Transaction&)>& fn) {
  return runWrite([&](Connection& c) {
    SqliteTransaction tx(c, /*writable=*/true);
    return fn(tx);
  });
}

namespace {

// The oldest claimable job's id. A serialised job also waits for every older unfinished
// job of its key and for any live claim on its key (a newer job can hold one when an
// older enqueue committed late, which SQLite's serial writers make impossible here but
// a shared definition keeps both backends alike).
Result<std::optional<int64_t>> findClaimable(Conn& c, int64_t now) {
  auto stmt = c.prepare(
      "SELECT id FROM jobs AS j WHERE"
      " ((j.state = 'queued' AND j.run_after <= ?1) OR (j.state = 'claimed' AND j.lease_until <= ?1))"
      " AND (j.serial_key = '' OR ("
      "  NOT EXISTS (SELECT 1 FROM jobs AS o WHERE o.serial_key = j.serial_key AND o.id < j.id"
      "              AND o.state <> 'done')"
      "  AND NOT EXISTS (SELECT 1 FROM jobs AS o WHERE o.serial_key = j.serial_key AND o.id <> j.id"
      "              AND o.state = 'claimed' AND o.lease_until > ?1)))"
      " ORDER BY j.id LIMIT 1");
  if (!stmt.ok()) return stmt.error();
  (*stmt)->bind(1, now);
  auto row = (*stmt)->step();
  if (!row.ok()) return row.error();
  if (!*row) return std::optional<int64_t>();
  return std::optional<int64_t>((*stmt)->int64(0));
}

}  // namespace

Result<std::optional<Job>> SqliteStore::claimJob(std::string_view worker_id,
                                                 std::chrono::milliseconds lease) {
  {
    // Idle workers poll often: look without the write lock first, so polling never
    // queues behind (or delays) API writes when there is nothing to do.
    auto conn = acquire();
    if (!conn.ok()) return conn.error();
    auto found = findClaimable(**conn, nowMs());
    release(std::move(*conn));
    if (!found.ok()) return found.error();
    if (!found->has_value()) return std::optional<Job>();
  }
  std::optional<Job> claimed;
  auto r = runWrite([&](Connection& c) -> Result<void> {
    int64_t now = nowMs();
    auto found = findClaimable(c, now);
    if (!found.ok()) return found.error();
    if (!found->has_value()) return {};
    int64_t id = **found;
    auto stmt = c.prepare(
        "UPDATE jobs SET state = 'claimed', claimed_by = ?2, lease_until = ?3, attempts = attempts + 1"
        " WHERE id = ?1 RETURNING id, kind, payload, serial_key, attempts, last_error");
    if (!stmt.ok()) return stmt.error();
    auto& s = **stmt;
    s.bind(1, id);
    s.bind(2, worker_id);
    s.bind(3, now + lease.count());
    auto row = s.step();
    if (!row.ok()) return row.error();
    LB_CHECK(*row, "a job selected inside the write lock vanished");
    Job job;
    job.id = s.int64(0);
    job.kind = s.text(1);
    job.payload = s.text(2);
    job.serial_key = s.text(3);
    job.attempts = static_cast<int>(s.int64(4));
    job.last_error = s.text(5);
    if (auto done = s.step(); !done.ok()) return done.error();
    claimed = std::move(job);
    return {};
  });
  if (!r.ok()) return r.error();
  return claimed;
}

namespace {

// Runs an UPDATE of one job (?1) owned by worker_id (?2); kConflict when the claim is
// gone (finished, retried, or reclaimed by another worker after the lease ran out).
Result<void> updateOwnedJob(Conn& c, const char* sql, int64_t job_id, std::string_view worker_id,
                            const std::function<void(Conn::Stmt&)>& bind_rest) {
  auto stmt = c.prepare(sql);
  if (!stmt.ok()) return stmt.error();
  (*stmt)->bind(1, job_id);
  (*stmt)->bind(2, worker_id);
  bind_rest(**stmt);
  if (auto row = (*stmt)->step(); !row.ok()) return row.error();
  if (sqlite3_changes(c.db()) == 0)
    return makeError(ErrorCode::kConflict,
                     "job " + std::to_string(job_id) + " is no longer claimed by " + std::string(worker_id),
                     "job");
  return {};
}

}  // namespace

Result<void> SqliteStore::renewJob(int64_t job_id, std::string_view worker_id,
                                   std::chrono::milliseconds lease) {
  return runWrite([&](Connection& c) {
    return updateOwnedJob(
        c, "UPDATE jobs SET lease_until = ?3 WHERE id = ?1 AND state = 'claimed' AND claimed_by = ?2",
        job_id, worker_id, [&](Conn::Stmt& s) { s.bind(3, nowMs() + lease.count()); });
  });
}

Result<void> SqliteStore::finishJob(int64_t job_id, std::string_view worker_id) {
  return runWrite([&](Connection& c) {
    return updateOwnedJob(c,
                          "UPDATE jobs SET state = 'done', finished_at = ?3, lease_until = NULL"
                          " WHERE id = ?1 AND state = 'claimed' AND claimed_by = ?2",
                          job_id, worker_id, [&](Conn::Stmt& s) { s.bind(3, nowMs()); });
  });
}

Result<void> SqliteStore::retryJob(int64_t job_id, std::string_view worker_id,
                                   std::chrono::milliseconds delay, std::string_view error) {
  return runWrite([&](Connection& c) {
    return updateOwnedJob(c,
                          "UPDATE jobs SET state = 'queued', claimed_by = NULL, lease_until = NULL,"
                          " run_after = ?3, last_error = ?4 WHERE id = ?1 AND state = 'claimed'"
                          " AND claimed_by = ?2",
                          job_id, worker_id, [&](Conn::Stmt& s) {
                            s.bind(3, nowMs() + std::max<int64_t>(0, delay.count()));
                            s.bind(4, error);
                          });
  });
}

Result<int64_t> SqliteStore::pendingJobs() {
  auto conn = acquire();
  if (!conn.ok()) return conn.error();
  Result<int64_t> out = int64_t{0};
  {
    auto stmt = (*conn)->prepare("SELECT count(*) FROM jobs WHERE state <> 'done'");
    if (!stmt.ok()) {
      out = stmt.error();
    } else if (auto row = (*stmt)->step(); !row.ok()) {
      out = row.error();
    } else {
      out = (*stmt)->int64(0);
    }
  }
  release(std::move(*conn));
  return out;
}

}  // namespace banyan::provider::store
