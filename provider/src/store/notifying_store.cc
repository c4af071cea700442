#include "store/notifying_store.h"

namespace banyan::provider::store {
namespace {

class CountingTransaction : public Transaction {
 public:
  explicit CountingTransaction(Transaction& inner) : inner_(inner) {}
  Result<std::optional<Record>> get(std::string_view kind, std::string_view id) override {
    return inner_.get(kind, id);
  }
  Result<std::vector<Record>> list(const Query& query) override { return inner_.list(query); }
  Result<std::vector<Record>> listByParents(std::string_view kind,
                                            const std::vector<std::string>& parent_ids) override {
    return inner_.listByParents(kind, parent_ids);
  }
  Result<std::vector<Record>> listLiveChildIds(const std::vector<std::string>& kinds,
                                               const std::vector<std::string>& parent_ids) override {
    return inner_.listLiveChildIds(kinds, parent_ids);
  }
  void prefetchLiveChildIds(const std::vector<std::string>& kinds,
                            const std::vector<std::string>& parent_ids) override {
    inner_.prefetchLiveChildIds(kinds, parent_ids);
  }
  void prefetchGet(std::string_view kind, std::string_view id) override { inner_.prefetchGet(kind, id); }
  void prefetchList(const Query& query) override { inner_.prefetchList(query); }
  void prefetchListPage(const Query& query, const PageSpec& page) override { inner_.prefetchListPage(query, page); }
  Result<int64_t> count(const Query& query) override { return inner_.count(query); }
  Result<std::vector<Record>> listPage(const Query& query, const PageSpec& page) override {
    return inner_.listPage(query, page);
  }
  Result<std::vector<Record>> getMany(std::string_view kind, const std::vector<std::string>& ids) override {
    return inner_.getMany(kind, ids);
  }
  Result<std::vector<Record>> listByLoadBalancers(std::string_view kind,
                                                  const std::vector<std::string>& lb_ids) override {
    return inner_.listByLoadBalancers(kind, lb_ids);
  }
  Result<void> insertMany(std::vector<Record>& records) override { return inner_.insertMany(records); }
  Result<void> updateMany(std::vector<Record>& records) override { return inner_.updateMany(records); }
  Result<void> lockKeys(const std::vector<std::string>& keys) override { return inner_.lockKeys(keys); }
  Result<void> insert(Record& record) override { return inner_.insert(record); }
  Result<void> update(Record& record) override { return inner_.update(record); }
  Result<void> remove(std::string_view kind, std::string_view id) override { return inner_.remove(kind, id); }
  Result<void> lockKey(std::string_view key) override { return inner_.lockKey(key); }
  Result<int64_t> enqueueJob(const JobSpec& job) override {
    auto r = inner_.enqueueJob(job);
    if (r.ok()) queued_ = true;
    return r;
  }
  bool queued() const { return queued_; }

 private:
  Transaction& inner_;
  bool queued_ = false;
};

class NotifyingStore : public Store {
 public:
  NotifyingStore(Store& inner, std::function<void()> on_job) : inner_(inner), on_job_(std::move(on_job)) {}

  Result<void> migrate() override { return inner_.migrate(); }
  Result<int> schemaVersion() override { return inner_.schemaVersion(); }
  Result<void> read(const std::function<Result<void>(Transaction&)>& fn) override { return inner_.read(fn); }
  Result<void> write(const std::function<Result<void>(Transaction&)>& fn) override {
    bool queued = false;
    // A retried attempt starts over: only the attempt that committed counts.
    auto r = inner_.write([&](Transaction& tx) {
      CountingTransaction counting(tx);
      auto result = fn(counting);
      queued = counting.queued();
      return result;
    });
    if (r.ok() && queued && on_job_) on_job_();
    return r;
  }
  Result<std::optional<Job>> claimJob(std::string_view worker_id, std::chrono::milliseconds lease) override {
    return inner_.claimJob(worker_id, lease);
  }
  Result<void> renewJob(int64_t job_id, std::string_view worker_id, std::chrono::milliseconds lease) override {
    return inner_.renewJob(job_id, worker_id, lease);
  }
  Result<void> finishJob(int64_t job_id, std::string_view worker_id) override {
    return inner_.finishJob(job_id, worker_id);
  }
  Result<void> retryJob(int64_t job_id, std::string_view worker_id, std::chrono::milliseconds delay,
                        std::string_view error) override {
    return inner_.retryJob(job_id, worker_id, delay, error);
  }
  Result<int64_t> pendingJobs() override { return inner_.pendingJobs(); }
  std::unique_ptr<JobListener> listenForJobs(JobListenerCallbacks callbacks) override {
    return inner_.listenForJobs(std::move(callbacks));
  }

 private:
  Store& inner_;
  std::function<void()> on_job_;
};

}  // namespace

std::unique_ptr<Store> makeNotifyingStore(Store& inner, std::function<void()> on_job) {
  return std::make_unique<NotifyingStore>(inner, std::move(on_job));
}

}  // namespace banyan::provider::store
