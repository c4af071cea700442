// Session-persistence tables: a bounded map from a client key (masked source
// address, application cookie value) to the member id the client sticks to, as
// HAProxy's stick tables keep. Pure: the caller passes the time in.
//
// Entries are keyed and valued by member *id*, never by a member's index in a
// pool, so persistence survives a config apply that keeps the member. The
// caller checks the returned member still exists and is usable; if not, it
// picks another and store()s it (HAProxy's `option redispatch`).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace banyan::dp::persistence {

using TimePoint = std::chrono::steady_clock::time_point;

struct StickTableOptions {
  // HAProxy's `stick-table size`; Octavia renders haproxy_stick_size = 10k.
  size_t max_entries = 10000;
  // An entry unused this long is gone. Zero: entries never expire and leave only
  // by LRU eviction, as Octavia's HAProxy stick tables (rendered without
  // `expire`). UDP pools use persistence_timeout (Octavia default 360 s).
  std::chrono::milliseconds idle_timeout{0};
  // Longer keys are cut to this length (HAProxy `type string len 64`), so two
  // values sharing their first 64 bytes share an entry.
  size_t max_key_length = 64;
};

struct StickTableCounters {
  uint64_t lookups = 0;
  uint64_t hits = 0;
  uint64_t evictions = 0;    // dropped because the table was full (least recently used)
  uint64_t expirations = 0;  // dropped after idle_timeout
};

// One table, single-threaded: a worker owns it (see SharedStickTable to share).
// Both lookup() and store() refresh an entry's recency and idle timer; both also
// drop expired entries, so memory stays bounded without a timer. O(1) amortised.
class StickTable {
 public:
  explicit StickTable(const StickTableOptions& options);

  // The member `key` sticks to; refreshes the entry. Empty if none or expired.
  // The view is valid until the next non-const call.
  std::optional<std::string_view> lookup(std::string_view key, TimePoint now);
  // Sticks `key` to `member_id` (replacing any previous member).
  void store(std::string_view key, std::string_view member_id, TimePoint now);
  // Drops every entry pointing at `member_id` (member deleted); returns how many.
  size_t forgetMember(std::string_view member_id);
  // Drops entries idle past the timeout.
  void expire(TimePoint now);
  void clear();

  size_t size() const { return map_.size(); }
  const StickTableCounters& counters() const { return counters_; }
  const StickTableOptions& options() const { return options_; }

 private:
  struct Entry {
    std::string key;
    std::string member_id;
    TimePoint last_used;
  };
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using List = std::list<Entry>;  // most recently used first

  std::string_view clip(std::string_view key) const;
  bool expired(const Entry& e, TimePoint now) const;
  void erase(List::iterator it);

  StickTableOptions options_;
  List lru_;
  // Keys view the strings held by list nodes, which never move.
  std::unordered_map<std::string_view, List::iterator, Hash> map_;
  StickTableCounters counters_;
};

// A StickTable shared by all workers: the key space is split over shards, each
// behind its own mutex, so workers rarely contend. Use it when a client's
// connections can land on different workers (SO_REUSEPORT hashes the 4-tuple,
// source port included): with per-worker tables a client reaching a second
// worker could be sent to another member, breaking SOURCE_IP and APP_COOKIE
// persistence. max_entries is split evenly over the shards.
class SharedStickTable {
 public:
  explicit SharedStickTable(const StickTableOptions& options, size_t shards = 16);

  std::optional<std::string> lookup(std::string_view key, TimePoint now);
  void store(std::string_view key, std::string_view member_id, TimePoint now);
  size_t forgetMember(std::string_view member_id);
  void expire(TimePoint now);
  size_t size() const;
  StickTableCounters counters() const;

 private:
  struct Shard {
    explicit Shard(const StickTableOptions& o) : table(o) {}
    mutable std::mutex mu;
    StickTable table;
  };
  Shard& shardFor(std::string_view key);

  size_t max_key_length_;
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace banyan::dp::persistence
