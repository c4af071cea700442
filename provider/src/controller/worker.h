// The controller worker: threads that claim jobs from the database and run them
// (DESIGN.md, data flow step 3). Several workers, in one process or many on one
// PostgreSQL, never run the same job, nor two jobs of one load balancer at once (the
// store's claims and serial keys see to it). A claim is a lease the worker renews after
// every step; a worker that dies loses it and the job goes to the next claimant, which
// resumes it (flows are idempotent).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "banyan/common/result.h"
#include "controller/controller.h"
#include "store/store.h"

namespace banyan::provider::controller {

struct WorkerOptions {
  std::string worker_id;  // unique per process: "<host>:<pid>"
  int threads = 1;        // [controller_worker] workers
  // How long a claim lives without renewal; renewed every third of it while the job
  // runs. A dead worker's job is resumed by another after at most this long.
  std::chrono::milliseconds lease{10000};
  // How often an idle thread looks for work when nothing announces jobs ([controller_
  // worker] job_poll_interval): SQLite shared by several processes, or the PostgreSQL
  // job channel down.
  std::chrono::milliseconds idle_poll{50};
  // The same while the store's job channel is up (job_notify_poll_interval): only a
  // safety net for an announcement lost without the connection noticing.
  std::chrono::milliseconds notified_poll{2000};
  // A job whose runs keep failing to settle (database down) is retried this often with
  // this delay before it is dropped with an error in the log.
  int max_attempts = 20;
  std::chrono::milliseconds retry_delay{2000};
};

class Worker {
 public:
  Worker(store::Store& store, Controller& controller, WorkerOptions options);
  ~Worker();  // stops
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  void start();
  // Asks the threads to stop after their current step, and waits for them. A job
  // stopped mid-flow is handed back to the queue for the next worker.
  void stop();

  // A job was queued: an idle thread looks now instead of at its next poll.
  void wake();
  // Whether jobs are announced (Store::listenForJobs connected): idle threads then poll
  // every notified_poll instead of idle_poll. Takes effect at once.
  void setNotified(bool notified);

  // Claims and runs one job on the calling thread; false when there was none.
  common::Result<bool> runOnce();

  uint64_t jobsDone() const { return done_.load(); }

 private:
  void loop();

  store::Store& store_;
  Controller& controller_;
  WorkerOptions options_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> notified_{false};
  std::mutex idle_mu_;
  std::condition_variable idle_cv_;
  uint64_t wakeups_ = 0;  // under idle_mu_
  std::atomic<uint64_t> done_{0};
  std::vector<std::thread> threads_;
};

}  // namespace banyan::provider::controller
