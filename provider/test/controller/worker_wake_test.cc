// The worker woken across processes: the API writes through one store (its own
// connections, as `banyan-provider api` on another host would) and a Worker claims
// through another. On PostgreSQL the job's NOTIFY wakes the idle worker long before its
// poll; a dropped LISTEN connection comes back and wakes it again. On SQLite the worker
// polls every WorkerOptions::idle_poll ([controller_worker] job_poll_interval).
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "controller/worker.h"
#include "controller_fixture.h"
#include "support/postgres_server.h"

namespace banyan::provider::controller::testing {
namespace {

using namespace std::chrono_literals;
using provider::testing::PostgresEnvironment;
using Clock = std::chrono::steady_clock;

const auto* const kPostgresEnv = ::testing::AddGlobalTestEnvironment(new PostgresEnvironment);

class WorkerWakeTest : public ControllerFixture {
 protected:
  // Replaces the fixture's store with two on one database: store_ (the API's, also what
  // the fixture's status() reads) and worker_store_ (the worker's).
  void useStores(const std::string& url) {
    auto api_store = store::openStore(url);
    ASSERT_TRUE(api_store.ok()) << api_store.error().message;
    auto worker_store = store::openStore(url);
    ASSERT_TRUE(worker_store.ok()) << worker_store.error().message;
    controller_.reset();
    api_.reset();
    store_ = std::move(*api_store);
    worker_store_ = std::move(*worker_store);
    makeApi();
    controller_ = std::make_unique<Controller>(*worker_store_, compute_, network_, agent_, *pki_,
                                               options_, sleeper_);
  }

  // A started worker that polls every `poll` (notified or not), woken by the store's job
  // channel when it has one.
  void startWorker(std::chrono::milliseconds poll, bool listen) {
    WorkerOptions w;
    w.worker_id = "wake-test";
    w.idle_poll = poll;
    w.notified_poll = poll;
    worker_ = std::make_unique<Worker>(*worker_store_, *controller_, w);
    worker_->start();
    if (!listen) return;
    store::JobListenerCallbacks cb;
    auto* worker = worker_.get();
    cb.on_job = [worker] { worker->wake(); };
    cb.on_connected = [worker](bool up) { worker->setNotified(up); };
    listener_ = worker_store_->listenForJobs(std::move(cb));
    if (!listener_) return;  // SQLite
    ASSERT_TRUE(waitUntil(10s, [&] { return listener_->connected(); })) << "LISTEN did not connect";
    // Let the catch-up wake after connecting pass, so the worker is in its long wait.
    std::this_thread::sleep_for(100ms);
  }

  void TearDown() override {
    listener_.reset();
    if (worker_) worker_->stop();
    worker_.reset();
    ControllerFixture::TearDown();
    worker_store_.reset();
  }

  template <typename Pred>
  static bool waitUntil(std::chrono::milliseconds limit, Pred pred) {
    auto deadline = Clock::now() + limit;
    while (Clock::now() < deadline) {
      if (pred()) return true;
      std::this_thread::sleep_for(2ms);
    }
    return pred();
  }

  // POSTs a load balancer through the API's store; how long until the worker (through
  // its own store) has run its create job and made it ACTIVE, or `limit`.
  std::chrono::milliseconds postAndTimeActive(std::chrono::milliseconds limit) {
    auto start = Clock::now();
    std::string lb = create("/v2/lbaas/loadbalancers", "loadbalancer",
                            std::string("\"vip_subnet_id\":\"") + kVipSubnet + "\"");
    EXPECT_FALSE(lb.empty());
    waitUntil(limit, [&] { return status("loadbalancer", lb) == "ACTIVE"; });
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  }

  std::unique_ptr<store::Store> worker_store_;
  std::unique_ptr<Worker> worker_;
  std::unique_ptr<store::JobListener> listener_;
};

TEST_F(WorkerWakeTest, AJobQueuedByAnotherProcessesApiWakesTheWorkerLongBeforeItsPoll) {
  auto url = PostgresEnvironment::freshDatabase("worker_wake");
  ASSERT_TRUE(url.ok()) << url.error().message;
  useStores(*url);
  startWorker(10s, /*listen=*/true);
  ASSERT_NE(listener_, nullptr);
  auto took = postAndTimeActive(5s);
  EXPECT_LT(took, 1s) << "the worker found the job only by polling";
  std::printf("POST to ACTIVE (worker woken by NOTIFY): %lld ms\n",
              static_cast<long long>(took.count()));
}

TEST_F(WorkerWakeTest, ADroppedListenConnectionIsReestablishedAndWakesTheWorkerAgain) {
  auto url = PostgresEnvironment::freshDatabase("worker_wake");
  ASSERT_TRUE(url.ok()) << url.error().message;
  std::string dbname = url->substr(url->rfind('/') + 1);
  useStores(*url);
  startWorker(10s, /*listen=*/true);
  ASSERT_NE(listener_, nullptr);
  auto killed = PostgresEnvironment::server()->execAsSuperuser(
      "postgres",
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = "
      "'banyan-job-listener' AND datname = '" +
          dbname + "'");
  ASSERT_TRUE(killed.ok()) << killed.error().message;
  ASSERT_TRUE(waitUntil(5s, [&] { return !listener_->connected(); })) << "the loss went unnoticed";
  ASSERT_TRUE(waitUntil(10s, [&] { return listener_->connected(); }))
      << "LISTEN was not re-established";
  std::this_thread::sleep_for(100ms);
  auto took = postAndTimeActive(5s);
  EXPECT_LT(took, 1s) << "after the reconnect the worker found the job only by polling";
}

TEST_F(WorkerWakeTest, OnSqliteAWorkerInAnotherProcessFindsJobsAtItsPollInterval) {
  useStores("sqlite:///" + dir_ + "/shared.sqlite");
  startWorker(100ms, /*listen=*/true);  // SQLite has no channel: listenForJobs is null
  EXPECT_EQ(listener_, nullptr);
  auto took = postAndTimeActive(5s);
  EXPECT_LT(took, 1s);
  worker_->stop();
  worker_.reset();
  // A long interval is honoured: nothing wakes the worker before it.
  startWorker(5s, /*listen=*/false);
  std::this_thread::sleep_for(100ms);  // past its first look
  took = postAndTimeActive(1500ms);
  EXPECT_GE(took, 1500ms) << "the job was taken before the poll interval";
}

}  // namespace
}  // namespace banyan::provider::controller::testing
