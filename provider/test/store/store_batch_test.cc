// The store's batch calls (getMany, listByLoadBalancers, insertMany, updateMany,
// lockKeys) against both backends: SQLite in a temp dir and a real PostgreSQL started by
// this binary (a fresh database per test). Each case also runs through a wrapper that
// forwards only the single-record calls, so Transaction's default loops (what a wrapper
// like the API's gets) behave the same as the backends' own statements.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <thread>
#include <tuple>

#include <gtest/gtest.h>

#include "store/store.h"
#include "support/postgres_server.h"

namespace banyan::provider::store {
namespace {

using namespace std::chrono_literals;
using common::ErrorCode;
using testing::PostgresEnvironment;

const auto* const kPostgresEnv = ::testing::AddGlobalTestEnvironment(new PostgresEnvironment);

enum class Kind { kSqlite, kPostgres };
enum class Via { kBackend, kDefaultLoops };

// Forwards the single-record calls only: the batch calls run Transaction's defaults.
class SingleCallsOnly final : public Transaction {
 public:
  explicit SingleCallsOnly(Transaction& inner) : inner_(inner) {}
  Result<std::optional<Record>> get(std::string_view kind, std::string_view id) override {
    return inner_.get(kind, id);
  }
  Result<std::vector<Record>> list(const Query& query) override { return inner_.list(query); }
  Result<int64_t> count(const Query& query) override { return inner_.count(query); }
  Result<std::vector<Record>> listByParents(std::string_view kind,
                                            const std::vector<std::string>& parent_ids) override {
    return inner_.listByParents(kind, parent_ids);
  }
  Result<void> insert(Record& record) override { return inner_.insert(record); }
  Result<void> update(Record& record) override { return inner_.update(record); }
  Result<void> remove(std::string_view kind, std::string_view id) override { return inner_.remove(kind, id); }
  Result<void> lockKey(std::string_view key) override { return inner_.lockKey(key); }
  Result<int64_t> enqueueJob(const JobSpec& job) override { return inner_.enqueueJob(job); }

 private:
  Transaction& inner_;
};

Record makeRecord(std::string kind, std::string id, std::string lb = "", std::string body = "{}",
                  std::string project = "p1", std::string parent = "") {
  Record r;
  r.kind = std::move(kind);
  r.id = std::move(id);
  r.project_id = std::move(project);
  r.parent_id = std::move(parent);
  r.load_balancer_id = std::move(lb);
  r.body = std::move(body);
  return r;
}

std::vector<std::string> idsOf(const std::vector<Record>& records) {
  std::vector<std::string> out;
  for (const auto& r : records) out.push_back(r.id);
  return out;
}

class StoreBatchTest : public ::testing::TestWithParam<std::tuple<Kind, Via>> {
 protected:
  void SetUp() override {
    if (std::get<0>(GetParam()) == Kind::kSqlite) {
      char templ[] = "/tmp/banyan-store-batch-test-XXXXXX";
      ASSERT_NE(::mkdtemp(templ), nullptr);
      dir_ = templ;
      url_ = "sqlite:///" + dir_ + "/banyan.sqlite";
    } else {
      auto created = PostgresEnvironment::freshDatabase("store_batch_test");
      ASSERT_TRUE(created.ok()) << created.error().message;
      url_ = *created;
    }
    store_ = open();
    ASSERT_NE(store_, nullptr);
  }

  void TearDown() override {
    store_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  std::unique_ptr<Store> open() {
    auto opened = openStore(url_);
    EXPECT_TRUE(opened.ok()) << opened.error().message;
    return opened.ok() ? std::move(*opened) : nullptr;
  }

  bool postgres() const { return std::get<0>(GetParam()) == Kind::kPostgres; }

  // fn gets the backend's transaction, or the wrapper around it (always when loops).
  Result<void> write(const std::function<Result<void>(Transaction&)>& fn, Store* store = nullptr,
                     bool loops = false) {
    return (store ? *store : *store_).write([&](Transaction& tx) -> Result<void> {
      if (std::get<1>(GetParam()) == Via::kBackend && !loops) return fn(tx);
      SingleCallsOnly wrapped(tx);
      return fn(wrapped);
    });
  }
  Result<void> read(const std::function<Result<void>(Transaction&)>& fn) {
    return store_->read([&](Transaction& tx) -> Result<void> {
      if (std::get<1>(GetParam()) == Via::kBackend) return fn(tx);
      SingleCallsOnly wrapped(tx);
      return fn(wrapped);
    });
  }

  void insert(std::vector<Record> records) {
    auto w = store_->write([&](Transaction& tx) -> Result<void> {
      for (auto& r : records)
        if (auto i = tx.insert(r); !i.ok()) return i;
      return {};
    });
    ASSERT_TRUE(w.ok()) << w.error().message;
  }

  std::optional<Record> get(std::string_view kind, std::string_view id) {
    std::optional<Record> out;
    auto r = store_->read([&](Transaction& tx) -> Result<void> {
      auto g = tx.get(kind, id);
      if (!g.ok()) return g.error();
      out = *g;
      return {};
    });
    EXPECT_TRUE(r.ok()) << r.error().message;
    return out;
  }

  std::string dir_, url_;
  std::unique_ptr<Store> store_;
};

std::string paramName(const ::testing::TestParamInfo<std::tuple<Kind, Via>>& info) {
  return std::string(std::get<0>(info.param) == Kind::kSqlite ? "Sqlite" : "Postgres") +
         (std::get<1>(info.param) == Via::kBackend ? "" : "DefaultLoops");
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreBatchTest,
                         ::testing::Combine(::testing::Values(Kind::kSqlite, Kind::kPostgres),
                                            ::testing::Values(Via::kBackend, Via::kDefaultLoops)),
                         paramName);

TEST_P(StoreBatchTest, GetManyReturnsTheExistingRecordsInIdOrderOnceEach) {
  insert({makeRecord("member", "m-b", "lb1", R"({"n":2})"), makeRecord("member", "m-a", "lb1", R"({"n":1})"),
          makeRecord("member", "m\"q\\", "lb2"), makeRecord("pool", "m-c", "lb1")});
  for (bool in_write : {false, true}) {
    std::vector<Record> got;
    auto fn = [&](Transaction& tx) -> Result<void> {
      auto g = tx.getMany("member", {"m-b", "missing", "m\"q\\", "m-a", "m-b", "m-c"});
      if (!g.ok()) return g.error();
      got = std::move(*g);
      auto none = tx.getMany("member", {});
      if (!none.ok()) return none.error();
      EXPECT_TRUE(none->empty());
      return {};
    };
    auto r = in_write ? write(fn) : read(fn);
    ASSERT_TRUE(r.ok()) << r.error().message;
    // Byte order: '"' (0x22) sorts before '-' (0x2d).
    EXPECT_EQ(idsOf(got), (std::vector<std::string>{"m\"q\\", "m-a", "m-b"})) << "in_write=" << in_write;
    ASSERT_EQ(got.size(), 3u);
    EXPECT_EQ(got[1].body, R"({"n":1})");
    EXPECT_EQ(got[1].load_balancer_id, "lb1");
    EXPECT_EQ(got[1].project_id, "p1");
    EXPECT_EQ(got[1].revision, 1);
  }
}

TEST_P(StoreBatchTest, ListByLoadBalancersReturnsTheRecordsOfEachInInsertionOrder) {
  insert({makeRecord("member", "z1", "lb-1"), makeRecord("member", "a2", "lb-2"), makeRecord("member", "a1", "lb-1"),
          makeRecord("member", "x", "lb-3"), makeRecord("pool", "p", "lb-1"), makeRecord("member", "q", "lb\"4")});
  std::vector<Record> got;
  auto r = read([&](Transaction& tx) -> Result<void> {
    auto l = tx.listByLoadBalancers("member", {"lb-2", "lb-1", "lb\"4", "missing"});
    if (!l.ok()) return l.error();
    got = std::move(*l);
    auto none = tx.listByLoadBalancers("member", {});
    if (!none.ok()) return none.error();
    EXPECT_TRUE(none->empty());
    return {};
  });
  ASSERT_TRUE(r.ok()) << r.error().message;
  std::map<std::string, std::vector<std::string>> by_lb;
  for (const auto& rec : got) by_lb[rec.load_balancer_id].push_back(rec.id);
  EXPECT_EQ(by_lb, (std::map<std::string, std::vector<std::string>>{
                       {"lb-1", {"z1", "a1"}}, {"lb-2", {"a2"}}, {"lb\"4", {"q"}}}));
}

TEST_P(StoreBatchTest, InsertManyWritesEveryColumnAndSetsRevisionOne) {
  // Bodies and columns that need quoting in an array literal or a JSON string.
  std::vector<Record> batch;
  for (int i = 0; i < 1500; ++i)
    batch.push_back(makeRecord("amphora_health", "amp-" + std::to_string(i), i % 2 ? "lb-x" : "",
                               R"({"last_update":)" + std::to_string(i) + R"(,"s":"a\"b\\c\n{,}"})",
                               i % 3 ? "" : "proj \"q\"", "parent,{x}"));
  auto w = write([&](Transaction& tx) { return tx.insertMany(batch); });
  ASSERT_TRUE(w.ok()) << w.error().message;
  for (const auto& r : batch) EXPECT_EQ(r.revision, 1);
  for (int i : {0, 1, 3, 1499}) {
    auto got = get("amphora_health", "amp-" + std::to_string(i));
    ASSERT_TRUE(got.has_value()) << i;
    EXPECT_EQ(got->body, batch[i].body);
    EXPECT_EQ(got->project_id, batch[i].project_id);
    EXPECT_EQ(got->parent_id, "parent,{x}");
    EXPECT_EQ(got->load_balancer_id, batch[i].load_balancer_id);
    EXPECT_EQ(got->revision, 1);
  }
  auto empty = std::vector<Record>();
  EXPECT_TRUE(write([&](Transaction& tx) { return tx.insertMany(empty); }).ok());
}

TEST_P(StoreBatchTest, InsertManyOfAnExistingOrRepeatedIdIsAConflictAndTheCallerRollsBack) {
  insert({makeRecord("amphora_stats", "b")});
  std::vector<Record> batch{makeRecord("amphora_stats", "a"), makeRecord("amphora_stats", "b"),
                            makeRecord("amphora_stats", "c")};
  auto w = write([&](Transaction& tx) { return tx.insertMany(batch); });
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.error().code, ErrorCode::kConflict) << w.error().message;
  EXPECT_FALSE(get("amphora_stats", "a").has_value());
  EXPECT_FALSE(get("amphora_stats", "c").has_value());

  std::vector<Record> twice{makeRecord("amphora_stats", "d"), makeRecord("amphora_stats", "d")};
  w = write([&](Transaction& tx) { return tx.insertMany(twice); });
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.error().code, ErrorCode::kConflict) << w.error().message;
  EXPECT_FALSE(get("amphora_stats", "d").has_value());
}

TEST_P(StoreBatchTest, UpdateManyBumpsEachRevisionAndReplacesColumnsAndBody) {
  insert({makeRecord("member", "m1", "lb1", R"({"v":1})"), makeRecord("member", "m2", "lb1", R"({"v":1})"),
          makeRecord("pool", "m1", "lb1", R"({"pool":true})")});
  auto once = write([&](Transaction& tx) -> Result<void> {
    auto g = tx.get("member", "m2");
    if (!g.ok()) return g.error();
    Record r = **g;
    return tx.update(r);
  });
  ASSERT_TRUE(once.ok()) << once.error().message;
  std::vector<Record> batch{makeRecord("member", "m2", "lb2", R"({"v":"two \"2\""})", "p2", "pool-9"),
                            makeRecord("member", "m1", "lb2", R"({"v":"one"})", "p2", "pool-9")};
  auto w = write([&](Transaction& tx) -> Result<void> {
    // Lock first, as the contract asks of writers that share rows.
    auto locked = tx.getMany("member", {"m1", "m2"});
    if (!locked.ok()) return locked.error();
    return tx.updateMany(batch);
  });
  ASSERT_TRUE(w.ok()) << w.error().message;
  EXPECT_EQ(batch[0].revision, 3);  // m2: insert, update, this
  EXPECT_EQ(batch[1].revision, 2);
  auto m2 = get("member", "m2");
  ASSERT_TRUE(m2.has_value());
  EXPECT_EQ(m2->body, R"({"v":"two \"2\""})");
  EXPECT_EQ(m2->load_balancer_id, "lb2");
  EXPECT_EQ(m2->project_id, "p2");
  EXPECT_EQ(m2->parent_id, "pool-9");
  EXPECT_EQ(m2->revision, 3);
  EXPECT_EQ(get("pool", "m1")->body, R"({"pool":true})") << "same id, other kind: untouched";
  EXPECT_EQ(get("pool", "m1")->revision, 1);
}

TEST_P(StoreBatchTest, UpdateManyOfAMissingRecordIsNotFoundAndTheCallerRollsBack) {
  insert({makeRecord("member", "m1", "lb1", R"({"v":1})")});
  std::vector<Record> batch{makeRecord("member", "m1", "lb1", R"({"v":2})"), makeRecord("member", "gone")};
  auto w = write([&](Transaction& tx) { return tx.updateMany(batch); });
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.error().code, ErrorCode::kNotFound) << w.error().message;
  EXPECT_EQ(get("member", "m1")->body, R"({"v":1})");
  EXPECT_EQ(get("member", "m1")->revision, 1);
}

TEST_P(StoreBatchTest, GetManyInAWriteLocksTheRowsUntilCommit) {
  insert({makeRecord("member", "a", "", "0"), makeRecord("member", "b", "", "0")});
  auto second = open();
  ASSERT_NE(second, nullptr);
  // The first writer reads both rows with getMany, waits, then writes them from what it
  // read; the second increments b meanwhile. A lost update would leave b at 1.
  std::atomic<bool> holding{false};
  std::thread first([&] {
    auto w = write([&](Transaction& tx) -> Result<void> {
      auto rows = tx.getMany("member", {"a", "b"});
      if (!rows.ok()) return rows.error();
      holding = true;
      std::this_thread::sleep_for(300ms);
      for (auto& r : *rows) r.body = std::to_string(std::stoi(r.body) + 1);
      return tx.updateMany(*rows);
    });
    EXPECT_TRUE(w.ok()) << w.error().message;
  });
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!holding && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
  auto w = write(
      [&](Transaction& tx) -> Result<void> {
        auto g = tx.get("member", "b");
        if (!g.ok()) return g.error();
        Record r = **g;
        r.body = std::to_string(std::stoi(r.body) + 1);
        return tx.update(r);
      },
      second.get());
  first.join();
  EXPECT_TRUE(w.ok()) << w.error().message;
  EXPECT_EQ(get("member", "a")->body, "1");
  EXPECT_EQ(get("member", "b")->body, "2");
}

// Writers lock overlapping key sets, each listed in its own order, then increment one
// counter per key. Were the keys taken in the caller's order, PostgreSQL would find
// deadlocks and write() would rerun the victims: every attempt must commit first time.
// One writer goes through the default loop while the others call the backend, so the
// two implementations must agree on the order.
TEST_P(StoreBatchTest, LockKeysOfOverlappingSetsFromTwoStoresNeverDeadlockAndSerialise) {
  const std::vector<std::string> names{"loadbalancer:1", "loadbalancer:2", "health:amphora:7", "k\"4"};
  std::vector<Record> counters;
  for (const auto& n : names) counters.push_back(makeRecord("counter", n, "", "0"));
  insert(counters);
  auto second = open();
  ASSERT_NE(second, nullptr);
  constexpr int kThreads = 4;
  constexpr int kRounds = 40;
  std::atomic<int> attempts{0}, failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Store* store = t % 2 ? second.get() : store_.get();
      for (int i = 0; i < kRounds; ++i) {
        // Three of the four keys, rotated and reversed by thread.
        std::vector<std::string> keys;
        for (int k = 0; k < 3; ++k) keys.push_back(names[(t + i + k) % names.size()]);
        if (t % 2) std::reverse(keys.begin(), keys.end());
        auto w = write(
            [&](Transaction& tx) -> Result<void> {
              ++attempts;
              if (auto l = tx.lockKeys(keys); !l.ok()) return l;
              for (const auto& k : keys) {
                // Unlocked read, then write: exact only because the key serialises us.
                Query q;
                q.kind = "counter";
                q.ids = {k};
                auto l = tx.list(q);
                if (!l.ok()) return l.error();
                if (l->size() != 1) return common::makeError(ErrorCode::kInternal, "counter missing", k);
                Record r = l->front();
                r.body = std::to_string(std::stoi(r.body) + 1);
                std::this_thread::sleep_for(1ms);
                if (auto u = tx.update(r); !u.ok()) return u;
              }
              return {};
            },
            store, /*loops=*/t == 1);
        if (!w.ok()) {
          ++failures;
          ADD_FAILURE() << w.error().message;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(attempts.load(), kThreads * kRounds) << "a deadlock victim was rerun";
  int total = 0;
  for (const auto& n : names) total += std::stoi(get("counter", n)->body);
  EXPECT_EQ(total, kThreads * kRounds * 3);
}

}  // namespace
}  // namespace banyan::provider::store
