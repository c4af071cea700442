#include "controller/worker.h"

#include <condition_variable>
#include <mutex>

#include "banyan/common/logging.h"

namespace banyan::provider::controller {

Worker::Worker(store::Store& store, Controller& controller, WorkerOptions options)
    : store_(store), controller_(controller), options_(std::move(options)) {}

Worker::~Worker() { stop(); }

void Worker::start() {
  stopping_ = false;
  for (int i = 0; i < std::max(1, options_.threads); ++i) threads_.emplace_back([this] { loop(); });
}

void Worker::wake() {
  {
    std::lock_guard<std::mutex> lock(idle_mu_);
    ++wakeups_;
  }
  idle_cv_.notify_all();
}

void Worker::setNotified(bool notified) {
  if (notified_.exchange(notified) != notified) wake();  // a thread in a long wait re-reads it
}

void Worker::stop() {
  stopping_ = true;
  wake();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

void Worker::loop() {
  while (!stopping_) {
    // Read before looking for work: a wake() from then on ends the idle wait below.
    uint64_t seen;
    {
      std::lock_guard<std::mutex> lock(idle_mu_);
      seen = wakeups_;
    }
    auto ran = runOnce();
    if (!ran) {
      LB_WARN("worker cannot claim jobs error=%s", ran.error().message.c_str());
      std::this_thread::sleep_for(options_.retry_delay);
    } else if (!*ran) {
      std::unique_lock<std::mutex> lock(idle_mu_);
      auto poll = notified_ ? options_.notified_poll : options_.idle_poll;
      idle_cv_.wait_for(lock, poll, [&] { return wakeups_ != seen || stopping_; });
    }
  }
}

common::Result<bool> Worker::runOnce() {
  auto claimed = store_.claimJob(options_.worker_id, options_.lease);
  if (!claimed) return claimed.error();
  if (!claimed->has_value()) return false;
  const store::Job& job = **claimed;
  LB_DEBUG("job claimed job=%lld kind=%s attempt=%d", static_cast<long long>(job.id), job.kind.c_str(),
           job.attempts);
  // The claim is renewed in the background while the job runs (a step may wait for an
  // amphora longer than the lease), so a short lease still lets a restarted or other
  // worker take over a dead worker's job quickly.
  std::atomic<bool> lost{false};
  std::mutex renew_mu;
  std::condition_variable renew_cv;
  bool running = true;
  std::thread renewer([&] {
    std::unique_lock<std::mutex> lock(renew_mu);
    while (!renew_cv.wait_for(lock, options_.lease / 3, [&] { return !running; })) {
      auto renewed = store_.renewJob(job.id, options_.worker_id, options_.lease);
      if (!renewed && renewed.error().code == common::ErrorCode::kConflict) {
        LB_WARN("job claim lost job=%lld kind=%s error=%s", static_cast<long long>(job.id), job.kind.c_str(),
                renewed.error().message.c_str());
        lost = true;
        return;
      }
    }
  });
  FlowHooks hooks;
  // A lost claim means another worker has the job: stop without reverting anything.
  hooks.after_step = [&](std::string_view) { return !stopping_ && !lost; };
  auto outcome = controller_.runJob(job, hooks);
  {
    std::lock_guard<std::mutex> lock(renew_mu);
    running = false;
  }
  renew_cv.notify_all();
  renewer.join();
  if (outcome && *outcome == Controller::Outcome::kDone) {
    if (auto ok = store_.finishJob(job.id, options_.worker_id); !ok) {
      LB_WARN("job finished but not removed job=%lld error=%s", static_cast<long long>(job.id),
              ok.error().message.c_str());
    }
    ++done_;
    return true;
  }
  if (!outcome && job.attempts >= options_.max_attempts) {
    LB_ERROR("job dropped after %d attempts job=%lld kind=%s error=%s", job.attempts,
             static_cast<long long>(job.id), job.kind.c_str(), outcome.error().message.c_str());
    (void)store_.finishJob(job.id, options_.worker_id);
    return true;
  }
  // Interrupted (stopping) or the final status write failed: hand the job back.
  std::string why = outcome ? "interrupted" : outcome.error().message;
  auto delay = outcome ? std::chrono::milliseconds(0) : options_.retry_delay;
  if (auto ok = store_.retryJob(job.id, options_.worker_id, delay, why); !ok) {
    LB_WARN("job could not be handed back job=%lld error=%s", static_cast<long long>(job.id),
            ok.error().message.c_str());
  }
  return true;
}

}  // namespace banyan::provider::controller
