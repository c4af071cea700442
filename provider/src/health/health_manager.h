// The health manager: turns accepted amphora heartbeats into database state, and
// starts the failover of amphorae whose heartbeats stopped.
//
// Octavia's health manager (controller/healthmanager/health_manager.py and
// amphorae/drivers/health/heartbeat_udp.py) does the same with one thread pool per
// concern; here heartbeats are queued by the receiver thread (onHeartbeat never touches
// the database) and written in batches, one store transaction per batch, by flush().
// A batch costs a fixed number of statements however many amphorae it holds (the
// store's batch calls: getMany, listByLoadBalancers, insertMany, updateMany, lockKeys),
// so on PostgreSQL a flush is a few round trips, not a dozen per heartbeat.
// What is written (docs/health-manager.md):
//   * `amphora_health` (Octavia's amphora_health table): last_update and busy;
//   * operating_status of the load balancer, listeners, pools and members, by
//     rollUpHeartbeat (status_rollup.h), only when it changes;
//   * `amphora_stats` and `listener_stats`: deltas of the absolute counters a heartbeat
//     carries, computed against the last counters stored in the database, so several
//     health processes receiving the same heartbeats count each byte once.
// failoverStale() finds amphorae whose last_update is older than heartbeat_timeout and
// queues an `amphora.failover` job for each, in the same transaction that marks the
// amphora busy and its load balancer PENDING_UPDATE.
//
// Thread safety: every public method may be called from any thread. flush() and
// failoverStale() run one at a time each; start() runs both on one background thread.
// The store is borrowed and must outlive the manager.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "banyan/common/heartbeat.h"
#include "banyan/common/result.h"
#include "store/store.h"

namespace banyan::provider::health {

struct HealthManagerOptions {
  // Octavia's [health_manager] heartbeat_timeout: an amphora silent this long is failed over.
  std::chrono::milliseconds heartbeat_timeout{60000};
  // Octavia's [health_manager] health_check_interval: how often stale amphorae are looked for.
  std::chrono::milliseconds health_check_interval{3000};
  // Heartbeats are written in batches this often (by start()'s thread).
  std::chrono::milliseconds flush_interval{50};
  // At most this many amphorae's heartbeats per write transaction. A batch holds an
  // advisory lock per load balancer until it commits (PostgreSQL's shared lock table
  // has room for 64 x max_connections by default, for every process).
  size_t max_batch = 1000;
  // Unused: a failover is a job the controller workers run, not a thread here. Kept so
  // Octavia's [health_manager] failover_threads has a home.
  int failover_threads = 1;
  // The queue holds the newest heartbeat of at most this many amphorae; heartbeats of
  // further amphorae are dropped (counted) until a flush empties it.
  size_t max_queued_amphorae = 100000;
};

struct HealthManagerCounters {
  uint64_t heartbeats = 0;          // handed to onHeartbeat
  uint64_t unknown_amphora = 0;     // no amphora record (or it, or its LB, is DELETED)
  uint64_t status_changes = 0;      // operating_status writes
  uint64_t stats_writes = 0;        // amphora_stats / listener_stats records written
  uint64_t failovers_enqueued = 0;  // amphora.failover jobs queued
  uint64_t write_errors = 0;        // batches or failover transactions that failed
  uint64_t superseded = 0;          // queued heartbeats replaced by a newer one of the same amphora
  uint64_t dropped = 0;             // refused because the queue was full
  uint64_t written = 0;             // heartbeats whose batch committed
};

namespace detail {
// One listener's counters on one amphora (the shape of a heartbeat's and of listener_stats).
struct ListenerCounters {
  uint64_t bytes_in = 0, bytes_out = 0, active_connections = 0, total_connections = 0, request_errors = 0;
  bool operator==(const ListenerCounters&) const = default;
};
// What an amphora_stats record holds.
struct AmphoraStatsState {
  uint64_t epoch = 0;
  std::map<std::string, ListenerCounters> last;    // absolute counters of the last heartbeat
  std::map<std::string, ListenerCounters> totals;  // cumulative since the amphora's first heartbeat
  bool operator==(const AmphoraStatsState&) const = default;
};
}  // namespace detail

class HealthManager {
 public:
  using Clock = std::function<std::chrono::system_clock::time_point()>;

  HealthManager(store::Store& store, HealthManagerOptions options,
                Clock clock = [] { return std::chrono::system_clock::now(); });
  ~HealthManager();  // stop()
  HealthManager(const HealthManager&) = delete;
  HealthManager& operator=(const HealthManager&) = delete;

  // The HeartbeatReceiver handler: queues the heartbeat; never waits for the database.
  void onHeartbeat(const common::Heartbeat& hb, const std::string& source);

  // Writes every queued heartbeat, one transaction per batch of at most max_batch
  // amphorae. Returns how many heartbeats were handled in committed batches (unknown
  // amphorae included), or the error of a batch that failed (its heartbeats are
  // dropped: the next heartbeat of each amphora carries the same absolute counters).
  common::Result<size_t> flush();

  // Queues an amphora.failover job for every amphora whose last heartbeat is older than
  // heartbeat_timeout (and not already being failed over); returns how many.
  common::Result<int> failoverStale();

  // A thread running flush() every flush_interval and failoverStale() every
  // health_check_interval. Failovers wait one heartbeat_timeout after start(), and after
  // the database was unreachable, so amphorae get a chance to check in first (as Octavia
  // does after a database outage).
  void start();
  void stop();  // joins the thread, then flushes what is still queued

  HealthManagerCounters counters() const;
  size_t queued() const;  // amphorae with a heartbeat waiting

 private:
  struct Queued {
    // The newest heartbeat of each proxy epoch seen since the last flush (usually one):
    // replacing a heartbeat by a newer one of the same epoch loses nothing, but the last
    // counters of an ended epoch are needed to count its final delta.
    std::vector<common::Heartbeat> heartbeats;
    std::string source;
  };
  struct CachedStats {
    std::string body;  // the stored body this state was parsed from (or written as)
    detail::AmphoraStatsState state;
  };
  struct BatchItem {
    std::string amphora_id;
    Queued queued;
  };
  struct BatchEffects;

  common::Result<void> writeBatch(std::vector<BatchItem>& batch, BatchEffects& effects);
  void noteDatabaseFailure(const common::Error& error);
  int64_t nowMs() const;
  void run();

  store::Store& store_;
  const HealthManagerOptions options_;
  const Clock clock_;

  mutable std::mutex queue_mu_;
  std::unordered_map<std::string, Queued> queue_;

  std::mutex flush_mu_;  // one flush() at a time; guards the caches below
  std::unordered_map<std::string, std::string> lb_of_amphora_;  // orders batches by load balancer
  std::unordered_map<std::string, CachedStats> stats_cache_;

  std::mutex failover_mu_;  // one failoverStale() at a time
  std::atomic<int64_t> failover_hold_until_ms_{0};

  std::atomic<uint64_t> heartbeats_{0}, unknown_amphora_{0}, status_changes_{0}, stats_writes_{0},
      failovers_enqueued_{0}, write_errors_{0}, superseded_{0}, dropped_{0}, written_{0};

  std::mutex run_mu_;
  std::condition_variable run_cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace banyan::provider::health
