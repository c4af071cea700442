#include "persistence/stick_table.h"

#include <algorithm>

#include "banyan/common/logging.h"

namespace banyan::dp::persistence {

StickTable::StickTable(const StickTableOptions& options) : options_(options) {
  LB_CHECK(options_.max_entries > 0, "a stick table holds at least one entry");
  LB_CHECK(options_.max_key_length > 0, "stick table keys are at least one byte");
}

std::string_view StickTable::clip(std::string_view key) const {
  return key.substr(0, std::min(key.size(), options_.max_key_length));
}

bool StickTable::expired(const Entry& e, TimePoint now) const {
  return options_.idle_timeout.count() > 0 && now - e.last_used >= options_.idle_timeout;
}

void StickTable::erase(List::iterator it) {
  map_.erase(std::string_view(it->key));
  lru_.erase(it);
}

void StickTable::expire(TimePoint now) {
  // The list is in recency order and the timeout is uniform, so the expired
  // entries are exactly a run at the tail.
  while (!lru_.empty() && expired(lru_.back(), now)) {
    erase(std::prev(lru_.end()));
    ++counters_.expirations;
  }
}

std::optional<std::string_view> StickTable::lookup(std::string_view key, TimePoint now) {
  ++counters_.lookups;
  expire(now);
  auto it = map_.find(clip(key));
  if (it == map_.end()) return std::nullopt;
  List::iterator node = it->second;
  node->last_used = now;
  lru_.splice(lru_.begin(), lru_, node);
  ++counters_.hits;
  return std::string_view(node->member_id);
}

void StickTable::store(std::string_view key, std::string_view member_id, TimePoint now) {
  expire(now);
  key = clip(key);
  auto it = map_.find(key);
  if (it != map_.end()) {
    List::iterator node = it->second;
    node->member_id.assign(member_id);
    node->last_used = now;
    lru_.splice(lru_.begin(), lru_, node);
    return;
  }
  if (map_.size() >= options_.max_entries) {
    erase(std::prev(lru_.end()));
    ++counters_.evictions;
  }
  lru_.push_front(Entry{std::string(key), std::string(member_id), now});
  map_.emplace(std::string_view(lru_.front().key), lru_.begin());
}

size_t StickTable::forgetMember(std::string_view member_id) {
  size_t n = 0;
  for (auto it = lru_.begin(); it != lru_.end();) {
    auto next = std::next(it);
    if (it->member_id == member_id) {
      erase(it);
      ++n;
    }
    it = next;
  }
  return n;
}

void StickTable::clear() {
  map_.clear();
  lru_.clear();
}

SharedStickTable::SharedStickTable(const StickTableOptions& options, size_t shards)
    : max_key_length_(options.max_key_length) {
  LB_CHECK(shards > 0, "a shared stick table has at least one shard");
  StickTableOptions per_shard = options;
  per_shard.max_entries = std::max<size_t>(1, (options.max_entries + shards - 1) / shards);
  for (size_t i = 0; i < shards; ++i) shards_.push_back(std::make_unique<Shard>(per_shard));
}

SharedStickTable::Shard& SharedStickTable::shardFor(std::string_view key) {
  // Hash the clipped key: keys the table treats as equal must meet in one shard.
  key = key.substr(0, std::min(key.size(), max_key_length_));
  return *shards_[std::hash<std::string_view>{}(key) % shards_.size()];
}

std::optional<std::string> SharedStickTable::lookup(std::string_view key, TimePoint now) {
  Shard& s = shardFor(key);
  std::lock_guard<std::mutex> lock(s.mu);
  auto member = s.table.lookup(key, now);
  if (!member) return std::nullopt;
  return std::string(*member);
}

void SharedStickTable::store(std::string_view key, std::string_view member_id, TimePoint now) {
  Shard& s = shardFor(key);
  std::lock_guard<std::mutex> lock(s.mu);
  s.table.store(key, member_id, now);
}

size_t SharedStickTable::forgetMember(std::string_view member_id) {
  size_t n = 0;
  for (auto& s : shards_) {
    std::lock_guard<std::mutex> lock(s->mu);
    n += s->table.forgetMember(member_id);
  }
  return n;
}

void SharedStickTable::expire(TimePoint now) {
  for (auto& s : shards_) {
    std::lock_guard<std::mutex> lock(s->mu);
    s->table.expire(now);
  }
}

size_t SharedStickTable::size() const {
  size_t n = 0;
  for (const auto& s : shards_) {
    std::lock_guard<std::mutex> lock(s->mu);
    n += s->table.size();
  }
  return n;
}

StickTableCounters SharedStickTable::counters() const {
  StickTableCounters total;
  for (const auto& s : shards_) {
    std::lock_guard<std::mutex> lock(s->mu);
    const StickTableCounters& c = s->table.counters();
    total.lookups += c.lookups;
    total.hits += c.hits;
    total.evictions += c.evictions;
    total.expirations += c.expirations;
  }
  return total;
}

}  // namespace banyan::dp::persistence
