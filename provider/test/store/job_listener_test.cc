// Store::listenForJobs on a real PostgreSQL: a job queued on another connection (as
// another process's API would) is announced at once; a rolled-back one never is; a
// dropped LISTEN connection comes back by itself. SQLite has no channel.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>

#include "store/postgres_job_listener.h"
#include "store/store.h"
#include "support/postgres_server.h"

namespace banyan::provider::store {
namespace {

using namespace std::chrono_literals;
using testing::PostgresEnvironment;
using Clock = std::chrono::steady_clock;

// What a listener reported, waited on with bounded waits.
class Recorder {
 public:
  JobListenerCallbacks callbacks() {
    JobListenerCallbacks cb;
    cb.on_job = [this] {
      std::lock_guard<std::mutex> lock(mu_);
      ++jobs_;
      last_job_ = Clock::now();
      cv_.notify_all();
    };
    cb.on_connected = [this](bool up) {
      std::lock_guard<std::mutex> lock(mu_);
      up ? ++ups_ : ++downs_;
      cv_.notify_all();
    };
    return cb;
  }
  // Waits until pred() (under the lock) holds; false after `limit`.
  template <typename Pred>
  bool waitFor(std::chrono::milliseconds limit, Pred pred) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, limit, [&] { return pred(); });
  }
  int jobs() {
    std::lock_guard<std::mutex> lock(mu_);
    return jobs_;
  }
  Clock::time_point lastJob() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_job_;
  }

  std::mutex mu_;
  std::condition_variable cv_;
  int jobs_ = 0, ups_ = 0, downs_ = 0;
  Clock::time_point last_job_{};
};

Result<void> enqueue(Store& store, bool commit) {
  return store.write([&](Transaction& tx) -> Result<void> {
    JobSpec job;
    job.kind = "thing.create";
    job.payload = "{}";
    if (auto id = tx.enqueueJob(job); !id) return id.error();
    if (!commit) return common::makeError(common::ErrorCode::kConflict, "rolled back on purpose");
    return {};
  });
}

class PostgresJobListenerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto url = PostgresEnvironment::freshDatabase("job_listener");
    ASSERT_TRUE(url.ok()) << url.error().message;
    url_ = *url;
    dbname_ = url_.substr(url_.rfind('/') + 1);
    // Two stores, two sets of connections: the API's process and the worker's.
    auto api = openStore(url_);
    ASSERT_TRUE(api.ok()) << api.error().message;
    api_ = std::move(*api);
    auto worker = openStore(url_);
    ASSERT_TRUE(worker.ok()) << worker.error().message;
    worker_ = std::move(*worker);
  }

  // Ends the listener's session from the server side, as a restart or an idle-session
  // killer would. True when a session was terminated.
  bool terminateListener() {
    auto r = PostgresEnvironment::server()->execAsSuperuser(
        "postgres",
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = "
        "'banyan-job-listener' AND datname = '" +
            dbname_ + "'");
    return r.ok();
  }

  std::string url_, dbname_;
  std::unique_ptr<Store> api_, worker_;
};

TEST_F(PostgresJobListenerTest, AJobQueuedOnAnotherConnectionIsAnnouncedAtOnce) {
  Recorder rec;
  auto listener = worker_->listenForJobs(rec.callbacks());
  ASSERT_NE(listener, nullptr);
  ASSERT_TRUE(rec.waitFor(10s, [&] { return rec.ups_ == 1 && rec.jobs_ == 1; }))
      << "the listener did not connect (or did not announce the catch-up after connecting)";
  EXPECT_TRUE(listener->connected());

  // Timed from before the write: the announcement can arrive before the writer has
  // read its COMMIT's answer.
  auto before = Clock::now();
  ASSERT_TRUE(enqueue(*api_, true).ok());
  auto committed = Clock::now();
  ASSERT_TRUE(rec.waitFor(2s, [&] { return rec.jobs_ == 2; })) << "no announcement within 2 s";
  auto latency = std::chrono::duration_cast<std::chrono::microseconds>(rec.lastJob() - before);
  // Far below any poll interval a worker would use as its safety net (1-2 s).
  EXPECT_LT(latency, 250ms) << "write to announcement took " << latency.count() << " us";
  std::printf(
      "enqueue write took %lld us; write start to announcement %lld us\n",
      static_cast<long long>(
          std::chrono::duration_cast<std::chrono::microseconds>(committed - before).count()),
      static_cast<long long>(latency.count()));
}

TEST_F(PostgresJobListenerTest, ARolledBackJobIsNeverAnnounced) {
  Recorder rec;
  auto listener = worker_->listenForJobs(rec.callbacks());
  ASSERT_TRUE(rec.waitFor(10s, [&] { return rec.ups_ == 1 && rec.jobs_ == 1; }));
  ASSERT_FALSE(enqueue(*api_, false).ok());
  EXPECT_FALSE(rec.waitFor(300ms, [&] { return rec.jobs_ > 1; }));
  // A committed one after it still is (the channel works; the rollback was the reason).
  ASSERT_TRUE(enqueue(*api_, true).ok());
  EXPECT_TRUE(rec.waitFor(2s, [&] { return rec.jobs_ == 2; }));
}

TEST_F(PostgresJobListenerTest, ADroppedListenConnectionIsReestablished) {
  Recorder rec;
  auto listener = worker_->listenForJobs(rec.callbacks());
  ASSERT_TRUE(rec.waitFor(10s, [&] { return rec.ups_ == 1; }));
  ASSERT_TRUE(terminateListener());
  ASSERT_TRUE(rec.waitFor(5s, [&] { return rec.downs_ == 1; })) << "the loss went unnoticed";
  ASSERT_TRUE(rec.waitFor(10s, [&] { return rec.ups_ == 2; })) << "the listener did not come back";
  EXPECT_TRUE(listener->connected());
  int before = rec.jobs();  // the catch-up announcement after reconnecting is in here
  ASSERT_TRUE(enqueue(*api_, true).ok());
  EXPECT_TRUE(rec.waitFor(2s, [&] { return rec.jobs_ > before; }))
      << "no announcement after the reconnect";
}

TEST_F(PostgresJobListenerTest, AHandedBackJobIsAnnouncedSoAnotherWorkerTakesIt) {
  Recorder rec;
  auto listener = worker_->listenForJobs(rec.callbacks());
  ASSERT_TRUE(rec.waitFor(10s, [&] { return rec.ups_ == 1 && rec.jobs_ == 1; }));
  ASSERT_TRUE(enqueue(*api_, true).ok());
  ASSERT_TRUE(rec.waitFor(2s, [&] { return rec.jobs_ == 2; }));
  auto claimed = api_->claimJob("stopping-worker", 10s);
  ASSERT_TRUE(claimed.ok() && claimed->has_value());
  ASSERT_TRUE(api_->retryJob((*claimed)->id, "stopping-worker", 0ms, "interrupted").ok());
  EXPECT_TRUE(rec.waitFor(2s, [&] { return rec.jobs_ == 3; }));
  // A delayed retry is not announced: it is not claimable yet.
  claimed = api_->claimJob("failing-worker", 10s);
  ASSERT_TRUE(claimed.ok() && claimed->has_value());
  ASSERT_TRUE(api_->retryJob((*claimed)->id, "failing-worker", 60s, "database down").ok());
  EXPECT_FALSE(rec.waitFor(300ms, [&] { return rec.jobs_ > 3; }));
}

TEST(PostgresJobListener, AListenerWithoutAServerRetriesAndStopsPromptly) {
  // Port 1 on loopback refuses at once: the listener is in its reconnect loop.
  PostgresJobListenerOptions options;
  options.params = {{"host", "127.0.0.1"}, {"port", "1"}, {"dbname", "none"}, {"user", "none"}};
  options.min_backoff = 20ms;
  options.max_backoff = 200ms;
  Recorder rec;
  auto listener = startPostgresJobListener(options, rec.callbacks());
  std::this_thread::sleep_for(300ms);  // several attempts
  EXPECT_FALSE(listener->connected());
  EXPECT_EQ(rec.ups_, 0);
  auto start = Clock::now();
  listener.reset();
  EXPECT_LT(Clock::now() - start, 500ms);
}

TEST_F(PostgresJobListenerTest, DestroyingAConnectedListenerIsPrompt) {
  Recorder rec;
  auto listener = worker_->listenForJobs(rec.callbacks());
  ASSERT_TRUE(rec.waitFor(10s, [&] { return rec.ups_ == 1; }));
  auto start = Clock::now();
  listener.reset();
  EXPECT_LT(Clock::now() - start, 500ms);
  EXPECT_EQ(rec.downs_, 0);  // a stop is not a loss
}

TEST(SqliteJobListener, SqliteHasNoJobChannel) {
  char tmpl[] = "/tmp/banyan-listen-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  {
    auto s = openStore(std::string("sqlite:///") + tmpl + "/db.sqlite");
    ASSERT_TRUE(s.ok()) << s.error().message;
    EXPECT_EQ((*s)->listenForJobs({}), nullptr);
  }
  std::filesystem::remove_all(tmpl);
}

}  // namespace
}  // namespace banyan::provider::store
