#include "health/health_manager.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cinttypes>
#include <ctime>
#include <random>
#include <set>
#include <tuple>
#include <utility>

#include "banyan/common/logging.h"
#include "health/status_rollup.h"

namespace banyan::provider::health {

using common::ErrorCode;
using common::makeError;
using common::Result;
using store::Record;
using store::Transaction;

namespace {

constexpr const char* kAmphora = "amphora";
constexpr const char* kAmphoraHealth = "amphora_health";
constexpr const char* kAmphoraStats = "amphora_stats";
constexpr const char* kListenerStats = "listener_stats";
constexpr const char* kLoadBalancer = "loadbalancer";

using JsonDoc = rapidjson::Document;
using JsonValue = rapidjson::Value;

std::optional<JsonDoc> parseObject(const std::string& text) {
  JsonDoc d;
  d.Parse(text.c_str(), text.size());
  if (d.HasParseError() || !d.IsObject()) return std::nullopt;
  return d;
}

std::string toJson(const JsonValue& v) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  v.Accept(w);
  return std::string(buf.GetString(), buf.GetSize());
}

std::string strOf(const JsonValue& obj, const char* key) {
  auto it = obj.FindMember(key);
  return it != obj.MemberEnd() && it->value.IsString() ? std::string(it->value.GetString(), it->value.GetStringLength())
                                                       : std::string();
}

bool boolOf(const JsonValue& obj, const char* key, bool fallback) {
  auto it = obj.FindMember(key);
  return it != obj.MemberEnd() && it->value.IsBool() ? it->value.GetBool() : fallback;
}

uint64_t u64Of(const JsonValue& obj, const char* key) {
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd()) return 0;
  if (it->value.IsUint64()) return it->value.GetUint64();
  if (it->value.IsInt64()) return it->value.GetInt64() < 0 ? 0 : static_cast<uint64_t>(it->value.GetInt64());
  return 0;
}

int64_t i64Of(const JsonValue& obj, const char* key) {
  auto it = obj.FindMember(key);
  return it != obj.MemberEnd() && it->value.IsInt64() ? it->value.GetInt64() : 0;
}

void setString(JsonDoc& d, const char* key, const std::string& value) {
  auto& a = d.GetAllocator();
  auto it = d.FindMember(key);
  if (it != d.MemberEnd()) {
    it->value.SetString(value.c_str(), static_cast<rapidjson::SizeType>(value.size()), a);
  } else {
    d.AddMember(JsonValue(key, a), JsonValue(value.c_str(), static_cast<rapidjson::SizeType>(value.size()), a), a);
  }
}

// Octavia's columns have onupdate=now: a row update moves updated_at, as the API's own
// writes do (same format, UTC seconds).
void touch(JsonDoc& d, std::chrono::system_clock::time_point now) {
  if (!d.HasMember("updated_at")) return;
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  setString(d, "updated_at", buf);
}

std::string newRequestId() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  uint64_t hi = rng(), lo = rng();
  hi = (hi & 0xFFFFFFFFFFFF0FFFULL) | 0x0000000000004000ULL;  // version 4
  lo = (lo & 0x3FFFFFFFFFFFFFFFULL) | 0x8000000000000000ULL;  // RFC 4122 variant
  char buf[48];
  std::snprintf(buf, sizeof buf, "req-%08x-%04x-%04x-%04x-%012" PRIx64, static_cast<unsigned>(hi >> 32),
                static_cast<unsigned>((hi >> 16) & 0xFFFF), static_cast<unsigned>(hi & 0xFFFF),
                static_cast<unsigned>(lo >> 48), static_cast<uint64_t>(lo & 0xFFFFFFFFFFFFULL));
  return buf;
}

// The amphora's load balancer: the record column, or the body's field (as the API reads it).
std::string loadBalancerOf(const Record& amp, const JsonValue& body) {
  if (!amp.load_balancer_id.empty()) return amp.load_balancer_id;
  return strOf(body, "loadbalancer_id");
}

// A load balancer's records as the roll-up sees them.
struct LoadBalancerState {
  Record lb;
  LoadBalancerView view;
  std::set<std::string> listener_ids;
  std::string project_id;
};

// The records of one load balancer, as listed for the whole batch.
struct LoadBalancerRecords {
  std::vector<const Record*> listeners, pools, members;
};

void buildView(const Record& lb_record, const JsonValue& lb_body, const LoadBalancerRecords& children,
               LoadBalancerState& out) {
  out.lb = lb_record;
  out.project_id = lb_record.project_id;
  out.view = LoadBalancerView{};
  out.view.id = lb_record.id;
  out.view.enabled = boolOf(lb_body, "admin_state_up", true);
  out.view.provisioning_status = strOf(lb_body, "provisioning_status");
  out.view.operating_status = strOf(lb_body, "operating_status");
  for (const Record* r : children.listeners) {
    auto d = parseObject(r->body);
    if (!d || strOf(*d, "provisioning_status") == "DELETED") continue;
    out.view.listeners.push_back({r->id, boolOf(*d, "admin_state_up", true), strOf(*d, "operating_status")});
    out.listener_ids.insert(r->id);
  }
  std::unordered_map<std::string, size_t> pool_index;
  for (const Record* r : children.pools) {
    auto d = parseObject(r->body);
    if (!d || strOf(*d, "provisioning_status") == "DELETED") continue;
    pool_index[r->id] = out.view.pools.size();
    out.view.pools.push_back({r->id, strOf(*d, "operating_status"), {}});
  }
  for (const Record* r : children.members) {
    auto it = pool_index.find(r->parent_id);
    if (it == pool_index.end()) continue;
    auto d = parseObject(r->body);
    if (!d || strOf(*d, "provisioning_status") == "DELETED") continue;
    out.view.pools[it->second].members.push_back({r->id, strOf(*d, "operating_status")});
  }
}

// Keeps the in-memory view in step with a written change, so the next amphora of the
// same load balancer in this batch rolls up against what is now stored.
void applyToView(LoadBalancerView& view, const StatusChange& c) {
  if (c.kind == "loadbalancer") view.operating_status = c.to;
  for (auto& l : view.listeners)
    if (c.kind == "listener" && l.id == c.id) l.operating_status = c.to;
  for (auto& p : view.pools) {
    if (c.kind == "pool" && p.id == c.id) p.operating_status = c.to;
    for (auto& m : p.members)
      if (c.kind == "member" && m.id == c.id) m.operating_status = c.to;
  }
}

using detail::AmphoraStatsState;
using detail::ListenerCounters;

ListenerCounters countersOf(const JsonValue& obj) {
  return {u64Of(obj, "bytes_in"), u64Of(obj, "bytes_out"), u64Of(obj, "active_connections"),
          u64Of(obj, "total_connections"), u64Of(obj, "request_errors")};
}

void putCounters(JsonValue& obj, const ListenerCounters& c, rapidjson::Document::AllocatorType& a) {
  auto put = [&](const char* key, uint64_t v) {
    obj.RemoveMember(key);
    obj.AddMember(rapidjson::StringRef(key), JsonValue(v), a);
  };
  put("bytes_in", c.bytes_in);
  put("bytes_out", c.bytes_out);
  put("active_connections", c.active_connections);
  put("total_connections", c.total_connections);
  put("request_errors", c.request_errors);
}

AmphoraStatsState parseStatsBody(const JsonValue& d) {
  AmphoraStatsState st;
  st.epoch = u64Of(d, "epoch");
  auto rows = d.FindMember("amphora_stats");
  if (rows != d.MemberEnd() && rows->value.IsArray()) {
    for (const auto& row : rows->value.GetArray())
      if (row.IsObject()) st.totals[strOf(row, "listener_id")] = countersOf(row);
  }
  auto last = d.FindMember("counters");
  if (last != d.MemberEnd() && last->value.IsObject()) {
    for (const auto& m : last->value.GetObject())
      if (m.value.IsObject()) st.last[m.name.GetString()] = countersOf(m.value);
  }
  return st;
}

// The rows are what GET /v2/octavia/amphorae/{id}/stats serves (Octavia's
// get_amphora_stats fields); epoch and counters are ours.
std::string renderStatsBody(const std::string& amp_id, const std::string& lb_id, const AmphoraStatsState& st) {
  JsonDoc d(rapidjson::kObjectType);
  auto& a = d.GetAllocator();
  JsonValue rows(rapidjson::kArrayType);
  for (const auto& [listener_id, c] : st.totals) {
    JsonValue row(rapidjson::kObjectType);
    row.AddMember("id", JsonValue(amp_id.c_str(), a), a);
    row.AddMember("listener_id", JsonValue(listener_id.c_str(), a), a);
    row.AddMember("loadbalancer_id", JsonValue(lb_id.c_str(), a), a);
    row.AddMember("active_connections", JsonValue(c.active_connections), a);
    row.AddMember("bytes_in", JsonValue(c.bytes_in), a);
    row.AddMember("bytes_out", JsonValue(c.bytes_out), a);
    row.AddMember("request_errors", JsonValue(c.request_errors), a);
    row.AddMember("total_connections", JsonValue(c.total_connections), a);
    rows.PushBack(row, a);
  }
  d.AddMember("amphora_stats", rows, a);
  d.AddMember("epoch", JsonValue(st.epoch), a);
  JsonValue counters(rapidjson::kObjectType);
  for (const auto& [listener_id, c] : st.last) {
    JsonValue v(rapidjson::kObjectType);
    putCounters(v, c, a);
    counters.AddMember(JsonValue(listener_id.c_str(), a), v, a);
  }
  d.AddMember("counters", counters, a);
  return toJson(d);
}

// Folds heartbeats (oldest first) into an amphora's stats state and adds their deltas to
// lb_deltas. Heartbeat counters are absolute since the proxy's epoch (docs/heartbeat.md).
// Pure.
void advanceStats(AmphoraStatsState& st, bool state_known, const std::vector<common::Heartbeat>& heartbeats,
                  const std::set<std::string>& listener_ids, std::map<std::string, ListenerCounters>& lb_deltas) {
  auto delta = [](uint64_t now_v, uint64_t prev_v) { return now_v > prev_v ? now_v - prev_v : 0; };
  for (const auto& hb : heartbeats) {
    if (state_known && hb.proxy_epoch < st.epoch) continue;  // a late heartbeat of an ended proxy
    if (!state_known || hb.proxy_epoch > st.epoch) {
      // The proxy restarted: its counters start from zero again.
      st.epoch = hb.proxy_epoch;
      st.last.clear();
    }
    state_known = true;
    std::set<std::string> reported;
    for (const auto& l : hb.listeners) {
      if (!listener_ids.count(l.id)) continue;  // not (or no longer) in the database
      reported.insert(l.id);
      ListenerCounters& prev = st.last[l.id];
      ListenerCounters d{delta(l.bytes_in, prev.bytes_in), delta(l.bytes_out, prev.bytes_out), 0,
                         delta(l.total_connections, prev.total_connections),
                         delta(l.request_errors, prev.request_errors)};
      // Counters only grow within an epoch; a smaller one is an older heartbeat that
      // another health process already counted, and its gauge is out of date.
      const bool older = l.bytes_in < prev.bytes_in || l.bytes_out < prev.bytes_out ||
                         l.total_connections < prev.total_connections || l.request_errors < prev.request_errors;
      prev.bytes_in = std::max(prev.bytes_in, l.bytes_in);
      prev.bytes_out = std::max(prev.bytes_out, l.bytes_out);
      prev.total_connections = std::max(prev.total_connections, l.total_connections);
      prev.request_errors = std::max(prev.request_errors, l.request_errors);
      ListenerCounters& total = st.totals[l.id];
      ListenerCounters& lbd = lb_deltas[l.id];
      for (auto [t, x, v] : {std::tuple{&total.bytes_in, &lbd.bytes_in, d.bytes_in},
                             std::tuple{&total.bytes_out, &lbd.bytes_out, d.bytes_out},
                             std::tuple{&total.total_connections, &lbd.total_connections, d.total_connections},
                             std::tuple{&total.request_errors, &lbd.request_errors, d.request_errors}}) {
        *t += v;
        *x += v;
      }
      if (!older) {
        prev.active_connections = l.active_connections;
        total.active_connections = l.active_connections;
      }
    }
    // A listener the proxy no longer runs carries no connections on this amphora.
    if (&hb == &heartbeats.back()) {
      for (auto& [id, total] : st.totals)
        if (!reported.count(id)) total.active_connections = 0;
    }
  }
  // Rows of listeners deleted from the database go with them.
  std::erase_if(st.totals, [&](const auto& kv) { return !listener_ids.count(kv.first); });
  std::erase_if(st.last, [&](const auto& kv) { return !listener_ids.count(kv.first); });
}

// The advisory lock that makes health processes handle an amphora one at a time. Ids
// hash into a fixed number of buckets: a batch of 1,000 amphorae then takes at most
// kAmphoraLockBuckets locks rather than 1,000 (PostgreSQL's shared lock table holds
// max_locks_per_transaction x max_connections entries, 6,400 by default, for everyone).
// FNV-1a: the same in every process and build, which std::hash does not promise.
constexpr uint32_t kAmphoraLockBuckets = 256;

std::string amphoraLockKey(const std::string& amp_id) {
  uint32_t h = 2166136261u;
  for (unsigned char c : amp_id) {
    h ^= c;
    h *= 16777619u;
  }
  return "health:amphora:" + std::to_string(h % kAmphoraLockBuckets);
}

// amphora_health: created on the first heartbeat, then last_update refreshed; busy is
// left as it is (the failover scan owns it). Returns the record to write, if any: none
// when another health process already wrote a later time (never move it back).
std::optional<Record> nextHealth(const Record& amp, const Record* existing, int64_t now_ms) {
  Record rec;
  if (!existing) {
    rec.kind = kAmphoraHealth;
    rec.id = amp.id;
    rec.project_id = amp.project_id;
    rec.load_balancer_id = amp.load_balancer_id;
    rec.body = "{\"last_update\":" + std::to_string(now_ms) + ",\"busy\":false}";
    return rec;
  }
  rec = *existing;
  auto body = parseObject(rec.body);
  if (!body) body = parseObject("{\"busy\":false}");
  if (i64Of(*body, "last_update") >= now_ms && rec.load_balancer_id == amp.load_balancer_id)
    return std::nullopt;
  auto& a = body->GetAllocator();
  body->RemoveMember("last_update");
  body->AddMember("last_update", JsonValue(now_ms), a);
  if (!body->HasMember("busy")) body->AddMember("busy", false, a);
  rec.body = toJson(*body);
  rec.project_id = amp.project_id;
  rec.load_balancer_id = amp.load_balancer_id;
  return rec;
}

// The sum of active_connections per listener over the amphora_stats records of live
// amphorae: `live` holds (load balancer, amphora) pairs of amphorae not DELETED.
void addActive(const std::vector<Record>& all_stats, const std::set<std::pair<std::string, std::string>>& live,
               std::map<std::string, uint64_t>& active) {
  for (const auto& r : all_stats) {
    if (!live.count({r.load_balancer_id, r.id})) continue;
    auto d = parseObject(r.body);
    if (!d) continue;
    auto rows = d->FindMember("amphora_stats");
    if (rows == d->MemberEnd() || !rows->value.IsArray()) continue;
    for (const auto& row : rows->value.GetArray())
      if (row.IsObject()) active[strOf(row, "listener_id")] += u64Of(row, "active_connections");
  }
}

}  // namespace

struct HealthManager::BatchEffects {
  uint64_t unknown = 0;
  uint64_t status_changes = 0;
  uint64_t stats_writes = 0;
  uint64_t handled = 0;
  struct Logged {
    StatusChange change;
    std::string lb_id;
    std::string amphora_id;
  };
  std::vector<Logged> changes;                           // logged once the batch committed
  std::unordered_map<std::string, std::string> lb_of;    // amphora -> load balancer
  std::unordered_map<std::string, CachedStats> stats;    // amphora_stats written
};

HealthManager::HealthManager(store::Store& store, HealthManagerOptions options, Clock clock)
    : store_(store), options_(std::move(options)), clock_(std::move(clock)) {
  LB_CHECK(options_.max_batch > 0, "max_batch must be positive");
}

HealthManager::~HealthManager() { stop(); }

int64_t HealthManager::nowMs() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock_().time_since_epoch()).count();
}

void HealthManager::onHeartbeat(const common::Heartbeat& hb, const std::string& source) {
  heartbeats_.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard lock(queue_mu_);
  auto it = queue_.find(hb.amphora_id);
  if (it == queue_.end()) {
    if (queue_.size() >= options_.max_queued_amphorae) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    queue_.emplace(hb.amphora_id, Queued{{hb}, source});
    return;
  }
  Queued& q = it->second;
  q.source = source;
  if (q.heartbeats.back().proxy_epoch == hb.proxy_epoch) {
    // Only the newest heartbeat matters for status, and its absolute counters include
    // everything the replaced one counted.
    q.heartbeats.back() = hb;
    superseded_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  // A new proxy epoch: keep the last heartbeat of the ended one for its final delta. Four
  // proxy restarts within one flush interval mean something else is wrong; keep it bounded.
  q.heartbeats.push_back(hb);
  if (q.heartbeats.size() > 4) {
    q.heartbeats.erase(q.heartbeats.begin());
    superseded_.fetch_add(1, std::memory_order_relaxed);
  }
}

size_t HealthManager::queued() const {
  std::lock_guard lock(queue_mu_);
  return queue_.size();
}

HealthManagerCounters HealthManager::counters() const {
  HealthManagerCounters c;
  c.heartbeats = heartbeats_.load();
  c.unknown_amphora = unknown_amphora_.load();
  c.status_changes = status_changes_.load();
  c.stats_writes = stats_writes_.load();
  c.failovers_enqueued = failovers_enqueued_.load();
  c.write_errors = write_errors_.load();
  c.superseded = superseded_.load();
  c.dropped = dropped_.load();
  c.written = written_.load();
  return c;
}

void HealthManager::noteDatabaseFailure(const common::Error& error) {
  if (error.code != ErrorCode::kUnavailable) return;
  // Heartbeats could not be recorded while the database was away, so every amphora
  // looks stale for a while; give them one heartbeat_timeout to check in again.
  int64_t until = nowMs() + options_.heartbeat_timeout.count();
  int64_t prev = failover_hold_until_ms_.load();
  while (prev < until && !failover_hold_until_ms_.compare_exchange_weak(prev, until)) {
  }
}

Result<size_t> HealthManager::flush() {
  std::lock_guard flush_lock(flush_mu_);
  std::unordered_map<std::string, Queued> taken;
  {
    std::lock_guard lock(queue_mu_);
    taken.swap(queue_);
  }
  if (taken.empty()) return size_t{0};

  std::vector<BatchItem> items;
  items.reserve(taken.size());
  for (auto& [id, q] : taken) items.push_back({id, std::move(q)});
  // Amphorae of one load balancer land in the same batch (their statuses and
  // active_connections are worked out together); the order also fixes the order in which
  // concurrent health processes lock rows.
  std::sort(items.begin(), items.end(), [&](const BatchItem& a, const BatchItem& b) {
    auto la = lb_of_amphora_.find(a.amphora_id), lb = lb_of_amphora_.find(b.amphora_id);
    const std::string& x = la == lb_of_amphora_.end() ? a.amphora_id : la->second;
    const std::string& y = lb == lb_of_amphora_.end() ? b.amphora_id : lb->second;
    return std::tie(x, a.amphora_id) < std::tie(y, b.amphora_id);
  });

  size_t written = 0;
  std::optional<common::Error> failure;
  for (size_t begin = 0; begin < items.size(); begin += options_.max_batch) {
    size_t end = std::min(items.size(), begin + options_.max_batch);
    std::vector<BatchItem> batch(std::make_move_iterator(items.begin() + begin),
                                 std::make_move_iterator(items.begin() + end));
    BatchEffects effects;
    auto r = writeBatch(batch, effects);
    if (!r.ok()) {
      write_errors_.fetch_add(1, std::memory_order_relaxed);
      noteDatabaseFailure(r.error());
      LB_WARN("heartbeat batch not written heartbeats=%zu error=%s", batch.size(), r.error().message.c_str());
      // The stats cache may describe bodies that were rolled back; it is checked against
      // the stored body before use, so it needs no repair.
      failure = r.error();
      continue;
    }
    written += effects.handled;
    written_.fetch_add(effects.handled, std::memory_order_relaxed);
    unknown_amphora_.fetch_add(effects.unknown, std::memory_order_relaxed);
    status_changes_.fetch_add(effects.status_changes, std::memory_order_relaxed);
    stats_writes_.fetch_add(effects.stats_writes, std::memory_order_relaxed);
    for (auto& [amp, lb] : effects.lb_of) lb_of_amphora_[amp] = lb;
    for (auto& [amp, cached] : effects.stats) stats_cache_[amp] = std::move(cached);
    for (const auto& l : effects.changes) {
      if (l.change.kind == "loadbalancer") {
        LB_INFO("loadbalancer operating status %s -> %s lb=%s amp=%s", l.change.from.c_str(), l.change.to.c_str(),
                l.lb_id.c_str(), l.amphora_id.c_str());
      } else {
        LB_INFO("%s operating status %s -> %s %s=%s lb=%s amp=%s", l.change.kind.c_str(), l.change.from.c_str(),
                l.change.to.c_str(), l.change.kind.c_str(), l.change.id.c_str(), l.lb_id.c_str(),
                l.amphora_id.c_str());
      }
    }
  }
  if (failure) return *failure;
  return written;
}

// One batch, one transaction, a fixed number of statements however many amphorae it
// holds (the store's batch calls): on PostgreSQL a statement per heartbeat was a round
// trip per heartbeat, and the flush waited on the server.
//
// Lock order, as the API's (every write locks a load balancer before any row under it)
// and the controller's (load balancer, its objects, then amphora_health, amphora_stats,
// listener_stats): first, in one call, the lock of every load balancer of the batch and
// the amphorae's buckets; then the status rows that change; then amphora_health,
// amphora_stats and listener_stats rows, each kind in id order.
Result<void> HealthManager::writeBatch(std::vector<BatchItem>& batch, BatchEffects& effects) {
  const auto now = clock_();
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();

  return store_.write([&](Transaction& tx) -> Result<void> {
    effects = BatchEffects{};  // write() may run this again after a serialization failure

    // Which amphorae exist, and under which load balancer (one query, no row locks: the
    // controller locks an amphora row after its load balancer's lock).
    store::Query amp_query;
    amp_query.kind = kAmphora;
    for (const auto& item : batch) amp_query.ids.push_back(item.amphora_id);
    auto amps = tx.list(amp_query);
    if (!amps.ok()) return amps.error();
    std::unordered_map<std::string, const Record*> amp_by_id;
    for (const auto& r : *amps) amp_by_id[r.id] = &r;

    struct Pending {
      const BatchItem* item;
      const Record* amphora;
    };
    std::map<std::string, std::vector<Pending>> by_lb;  // "" holds the spares
    for (const auto& item : batch) {
      auto it = amp_by_id.find(item.amphora_id);
      std::optional<JsonDoc> body = it == amp_by_id.end() ? std::nullopt : parseObject(it->second->body);
      if (!body || strOf(*body, "status") == "DELETED") {
        // Octavia ignores heartbeats of amphorae it does not know (one being deleted, or
        // a stray VM); counted, not logged per heartbeat.
        ++effects.unknown;
        ++effects.handled;
        LB_DEBUG("heartbeat from an unknown amphora amp=%s source=%s", item.amphora_id.c_str(),
                 item.queued.source.c_str());
        continue;
      }
      std::string lb_id = loadBalancerOf(*it->second, *body);
      effects.lb_of[item.amphora_id] = lb_id;
      by_lb[lb_id].push_back({&item, it->second});
    }
    if (by_lb.empty()) return {};

    std::vector<std::string> lb_ids;
    std::vector<std::string> keys;
    for (const auto& [lb_id, pendings] : by_lb) {
      if (!lb_id.empty()) {
        lb_ids.push_back(lb_id);
        keys.push_back("loadbalancer:" + lb_id);
      }
      for (const auto& p : pendings) keys.push_back(amphoraLockKey(p.amphora->id));
    }
    if (auto r = tx.lockKeys(keys); !r.ok()) return r;

    // The load balancers and their listeners, pools and members, read under their locks
    // (READ COMMITTED: each statement sees what committed before it).
    std::vector<Record> lb_records, listeners, pools, members;
    if (!lb_ids.empty()) {
      store::Query lb_query;
      lb_query.kind = kLoadBalancer;
      lb_query.ids = lb_ids;
      auto listed = tx.list(lb_query);
      if (!listed.ok()) return listed.error();
      lb_records = std::move(*listed);
      for (auto [kind, out] : {std::pair{"listener", &listeners}, std::pair{"pool", &pools},
                               std::pair{"member", &members}}) {
        auto children = tx.listByLoadBalancers(kind, lb_ids);
        if (!children.ok()) return children.error();
        *out = std::move(*children);
      }
    }
    std::unordered_map<std::string, LoadBalancerRecords> children_of;
    for (const auto& r : listeners) children_of[r.load_balancer_id].listeners.push_back(&r);
    for (const auto& r : pools) children_of[r.load_balancer_id].pools.push_back(&r);
    for (const auto& r : members) children_of[r.load_balancer_id].members.push_back(&r);
    std::map<std::string, LoadBalancerState> states;  // live load balancers only
    for (const auto& r : lb_records) {
      auto body = parseObject(r.body);
      // Octavia's get_lb_for_health_update finds nothing for an amphora whose load
      // balancer is gone: no health refresh, no status.
      if (!body || strOf(*body, "provisioning_status") == "DELETED") continue;
      buildView(r, *body, children_of[r.id], states[r.id]);
    }

    // Roll-ups in memory: amphorae of one load balancer one after the other against the
    // view as the previous one left it; what is written is each record's final status.
    struct Live {
      const BatchItem* item;
      const Record* amphora;
      LoadBalancerState* state;  // nullptr for a spare
      bool refresh_health;
    };
    std::vector<Live> live;
    struct NetChange {
      std::string to, lb_id, amphora_id;
    };
    std::map<std::pair<std::string, std::string>, NetChange> net;  // (kind, id)
    for (auto& [lb_id, pendings] : by_lb) {
      if (lb_id.empty()) {
        // A spare (READY, no load balancer): nothing to roll up, only alive-ness.
        for (const auto& p : pendings) live.push_back({p.item, p.amphora, nullptr, true});
        continue;
      }
      auto st = states.find(lb_id);
      if (st == states.end()) {
        for (const auto& p : pendings) {
          ++effects.unknown;
          ++effects.handled;
          LB_DEBUG("heartbeat from an amphora of a missing load balancer amp=%s lb=%s",
                   p.item->amphora_id.c_str(), lb_id.c_str());
        }
        continue;
      }
      for (const auto& p : pendings) {
        const auto& heartbeats = p.item->queued.heartbeats;
        RollUp roll = rollUpHeartbeat(st->second.view, heartbeats.back());  // the newest heartbeat only
        for (const auto& c : roll.changes) {
          applyToView(st->second.view, c);
          net[{c.kind, c.id}] = NetChange{c.to, lb_id, p.amphora->id};
        }
        if (!roll.refresh_amphora_health) {
          LB_DEBUG("heartbeat lists %zu listeners, not the expected count; health not refreshed amp=%s lb=%s",
                   heartbeats.back().listeners.size(), p.amphora->id.c_str(), lb_id.c_str());
        }
        live.push_back({p.item, p.amphora, &st->second, roll.refresh_amphora_health});
      }
    }

    // Operating statuses: each changed record read again under its row lock, only
    // operating_status and updated_at changed, written only when it differs.
    if (!net.empty()) {
      std::vector<Record> updates;
      for (const char* kind : {"loadbalancer", "listener", "pool", "member"}) {
        std::vector<std::string> ids;
        for (const auto& [key, c] : net)
          if (key.first == kind) ids.push_back(key.second);
        if (ids.empty()) continue;
        auto rows = tx.getMany(kind, ids);
        if (!rows.ok()) return rows.error();
        for (auto& rec : *rows) {
          const NetChange& c = net.at({kind, rec.id});
          auto body = parseObject(rec.body);
          if (!body) continue;
          std::string stored = strOf(*body, "operating_status");
          if (stored == c.to) continue;  // written meanwhile, or changed and changed back
          setString(*body, "operating_status", c.to);
          touch(*body, now);
          rec.body = toJson(*body);
          effects.changes.push_back({StatusChange{kind, rec.id, stored, c.to}, c.lb_id, c.amphora_id});
          updates.push_back(std::move(rec));
        }
      }
      if (auto w = tx.updateMany(updates); !w.ok()) return w;
      effects.status_changes += updates.size();
    }

    // amphora_health.
    {
      std::vector<std::string> ids;
      for (const auto& l : live)
        if (l.refresh_health) ids.push_back(l.amphora->id);
      auto existing = tx.getMany(kAmphoraHealth, ids);
      if (!existing.ok()) return existing.error();
      std::unordered_map<std::string, const Record*> by_id;
      for (const auto& r : *existing) by_id[r.id] = &r;
      std::vector<Record> inserts, updates;
      for (const auto& l : live) {
        if (!l.refresh_health) continue;
        auto it = by_id.find(l.amphora->id);
        const Record* found = it == by_id.end() ? nullptr : it->second;
        auto next = nextHealth(*l.amphora, found, now_ms);
        if (next) (found ? updates : inserts).push_back(std::move(*next));
      }
      // Under the amphora's lock no other health process creates it, and nothing else
      // does; a conflict fails the batch rather than guess.
      if (auto w = tx.insertMany(inserts); !w.ok()) return w;
      if (auto w = tx.updateMany(updates); !w.ok()) return w;
    }

    // amphora_stats: every queued heartbeat, oldest epoch first, against the counters
    // stored under the amphora's lock, so each delta is counted once.
    std::map<std::string, std::map<std::string, ListenerCounters>> lb_deltas;  // added to listener_stats
    std::vector<std::string> moved_lbs;  // sorted: by_lb's order
    {
      std::vector<std::string> ids;
      for (const auto& l : live)
        if (l.state) ids.push_back(l.amphora->id);
      auto existing = tx.getMany(kAmphoraStats, ids);
      if (!existing.ok()) return existing.error();
      std::unordered_map<std::string, const Record*> by_id;
      for (const auto& r : *existing) by_id[r.id] = &r;
      std::vector<Record> inserts, updates;
      std::vector<std::pair<std::string, CachedStats>> cached;
      for (const auto& l : live) {
        if (!l.state) continue;
        const std::string& amp_id = l.amphora->id;
        const std::string& lb_id = l.state->lb.id;
        auto it = by_id.find(amp_id);
        const Record* stats_rec = it == by_id.end() ? nullptr : it->second;
        std::optional<AmphoraStatsState> stored;
        if (stats_rec) {
          auto c = stats_cache_.find(amp_id);
          if (c != stats_cache_.end() && c->second.body == stats_rec->body) {
            stored = c->second.state;
          } else if (auto d = parseObject(stats_rec->body)) {
            stored = parseStatsBody(*d);
          }
        }
        AmphoraStatsState st = stored.value_or(AmphoraStatsState{});
        auto& deltas = lb_deltas[lb_id];
        advanceStats(st, stored.has_value(), l.item->queued.heartbeats, l.state->listener_ids, deltas);
        if (stored && *stored == st && stats_rec->load_balancer_id == lb_id) continue;
        if (moved_lbs.empty() || moved_lbs.back() != lb_id) moved_lbs.push_back(lb_id);
        Record rec;
        rec.kind = kAmphoraStats;
        rec.id = amp_id;
        rec.project_id = l.amphora->project_id;
        rec.load_balancer_id = lb_id;
        rec.body = renderStatsBody(amp_id, lb_id, st);
        cached.emplace_back(amp_id, CachedStats{rec.body, std::move(st)});
        (stats_rec ? updates : inserts).push_back(std::move(rec));
      }
      if (auto w = tx.insertMany(inserts); !w.ok()) return w;
      if (auto w = tx.updateMany(updates); !w.ok()) return w;
      effects.stats_writes += inserts.size() + updates.size();
      for (auto& [id, c] : cached) effects.stats[id] = std::move(c);
    }

    // listener_stats of the load balancers whose amphora_stats moved: the four counters
    // accumulate the deltas; active_connections is the sum over the load balancer's live
    // amphorae (ACTIVE_STANDBY: in practice the MASTER's; ACTIVE_ACTIVE: all), read after
    // this batch's amphora_stats writes.
    if (!moved_lbs.empty()) {
      auto lb_amps = tx.listByLoadBalancers(kAmphora, moved_lbs);
      if (!lb_amps.ok()) return lb_amps.error();
      std::set<std::pair<std::string, std::string>> live_amps;
      for (const auto& r : *lb_amps) {
        auto d = parseObject(r.body);
        if (d && strOf(*d, "status") != "DELETED") live_amps.emplace(r.load_balancer_id, r.id);
      }
      auto all_stats = tx.listByLoadBalancers(kAmphoraStats, moved_lbs);
      if (!all_stats.ok()) return all_stats.error();
      std::map<std::string, uint64_t> active;  // listener ids are unique across load balancers
      addActive(*all_stats, live_amps, active);

      std::vector<std::string> listener_ids;
      for (const auto& lb_id : moved_lbs)
        for (const auto& id : states.at(lb_id).listener_ids) listener_ids.push_back(id);
      auto existing = tx.getMany(kListenerStats, listener_ids);
      if (!existing.ok()) return existing.error();
      std::unordered_map<std::string, const Record*> by_id;
      for (const auto& r : *existing) by_id[r.id] = &r;
      std::vector<Record> inserts, updates;
      for (const auto& lb_id : moved_lbs) {
        const LoadBalancerState& state = states.at(lb_id);
        const auto& deltas = lb_deltas[lb_id];
        for (const auto& listener_id : state.listener_ids) {
          auto d = deltas.find(listener_id);
          ListenerCounters delta = d == deltas.end() ? ListenerCounters{} : d->second;
          auto it = by_id.find(listener_id);
          const Record* found = it == by_id.end() ? nullptr : it->second;
          std::optional<JsonDoc> body;
          if (found) body = parseObject(found->body);
          ListenerCounters cur = body ? countersOf(*body) : ListenerCounters{};
          ListenerCounters next{cur.bytes_in + delta.bytes_in, cur.bytes_out + delta.bytes_out, active[listener_id],
                                cur.total_connections + delta.total_connections,
                                cur.request_errors + delta.request_errors};
          if (body && next == cur) continue;
          if (!body) body.emplace().SetObject();
          putCounters(*body, next, body->GetAllocator());
          Record rec;
          if (found) {
            rec = *found;
          } else {
            rec.kind = kListenerStats;
            rec.id = listener_id;
            rec.project_id = state.project_id;
            rec.parent_id = lb_id;
            rec.load_balancer_id = lb_id;
          }
          rec.body = toJson(*body);
          (found ? updates : inserts).push_back(std::move(rec));
        }
      }
      if (auto w = tx.insertMany(inserts); !w.ok()) return w;
      if (auto w = tx.updateMany(updates); !w.ok()) return w;
      effects.stats_writes += inserts.size() + updates.size();
    }

    effects.handled += live.size();
    return {};
  });
}

Result<int> HealthManager::failoverStale() {
  std::lock_guard lock(failover_mu_);
  const auto now = clock_();
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  if (now_ms < failover_hold_until_ms_.load()) return 0;
  const int64_t cutoff = now_ms - options_.heartbeat_timeout.count();

  // Candidates from a plain read; each is checked again under its own write transaction,
  // where the busy flag decides between several health processes.
  std::vector<std::string> stale;
  auto scanned = store_.read([&](Transaction& tx) -> Result<void> {
    auto health = tx.list(store::Query{kAmphoraHealth, {}, {}, {}, {}});
    if (!health.ok()) return health.error();
    for (const auto& r : *health) {
      auto d = parseObject(r.body);
      if (d && !boolOf(*d, "busy", false) && i64Of(*d, "last_update") < cutoff) stale.push_back(r.id);
    }
    return {};
  });
  if (!scanned.ok()) {
    write_errors_.fetch_add(1, std::memory_order_relaxed);
    noteDatabaseFailure(scanned.error());
    return scanned.error();
  }
  // Octavia picks stale amphorae in random order, so one that keeps failing does not
  // starve the others of a health process's attention.
  std::shuffle(stale.begin(), stale.end(), std::mt19937_64{std::random_device{}()});

  int enqueued = 0;
  for (const auto& amp_id : stale) {
    struct Outcome {
      bool queued = false;
      std::string lb_id, request_id, skipped;
    } out;
    auto w = store_.write([&](Transaction& tx) -> Result<void> {
      out = Outcome{};
      // Lock order as the API's amphora failover: amphora row, load balancer lock, load
      // balancer row; then the health row.
      auto amp = tx.get(kAmphora, amp_id);
      if (!amp.ok()) return amp.error();
      if (!amp->has_value()) return {};
      auto amp_body = parseObject((*amp)->body);
      if (!amp_body) return {};
      std::string status = strOf(*amp_body, "status");
      // Octavia fails over only amphorae in service; not ones being built or deleted.
      if (status != "ALLOCATED" && status != "READY") return {};
      out.lb_id = loadBalancerOf(**amp, *amp_body);
      std::optional<Record> lb;
      std::optional<JsonDoc> lb_body;
      if (!out.lb_id.empty()) {
        if (auto r = tx.lockKey("loadbalancer:" + out.lb_id); !r.ok()) return r;
        auto got = tx.get(kLoadBalancer, out.lb_id);
        if (!got.ok()) return got.error();
        if (!got->has_value()) return {};
        lb = **got;
        lb_body = parseObject(lb->body);
        if (!lb_body) return {};
      }
      auto health = tx.get(kAmphoraHealth, amp_id);
      if (!health.ok()) return health.error();
      if (!health->has_value()) return {};
      Record health_rec = **health;
      auto health_body = parseObject(health_rec.body);
      if (!health_body) return {};
      // Checked again under the lock: another health process may have taken it, or a
      // heartbeat may have arrived since the scan.
      if (boolOf(*health_body, "busy", false) || i64Of(*health_body, "last_update") >= cutoff) return {};
      if (lb_body) {
        // Octavia's set_status_for_failover: only from ACTIVE or ERROR; an immutable load
        // balancer is skipped this round (its running change ends in a state we act on).
        std::string prov = strOf(*lb_body, "provisioning_status");
        if (prov != "ACTIVE" && prov != "ERROR") {
          out.skipped = prov;
          return {};
        }
        setString(*lb_body, "provisioning_status", "PENDING_UPDATE");
        touch(*lb_body, now);
        lb->body = toJson(*lb_body);
        if (auto r = tx.update(*lb); !r.ok()) return r;
      }
      auto& a = health_body->GetAllocator();
      health_body->RemoveMember("busy");
      health_body->AddMember("busy", true, a);
      health_rec.body = toJson(*health_body);
      if (auto r = tx.update(health_rec); !r.ok()) return r;

      // The payload the API's /amphorae/{id}/failover queues, plus why.
      out.request_id = newRequestId();
      JsonDoc p(rapidjson::kObjectType);
      auto& pa = p.GetAllocator();
      p.AddMember("request_id", JsonValue(out.request_id.c_str(), pa), pa);
      p.AddMember("load_balancer_id", JsonValue(out.lb_id.c_str(), pa), pa);
      p.AddMember("project_id", JsonValue((lb ? lb->project_id : (*amp)->project_id).c_str(), pa), pa);
      p.AddMember("object_id", JsonValue(amp_id.c_str(), pa), pa);
      p.AddMember("cascade", false, pa);
      p.AddMember("changes", JsonValue(rapidjson::kObjectType), pa);
      p.AddMember("reason", "heartbeat timeout", pa);
      store::JobSpec job;
      job.kind = "amphora.failover";
      job.payload = toJson(p);
      job.serial_key = out.lb_id;  // "" for a spare: the worker deletes and replaces it
      if (auto r = tx.enqueueJob(job); !r.ok()) return r.error();
      out.queued = true;
      return {};
    });
    if (!w.ok()) {
      write_errors_.fetch_add(1, std::memory_order_relaxed);
      noteDatabaseFailure(w.error());
      LB_WARN("amphora failover not queued amp=%s error=%s", amp_id.c_str(), w.error().message.c_str());
      if (w.error().code == ErrorCode::kUnavailable) return w.error();
      continue;
    }
    if (!out.skipped.empty()) {
      LB_WARN("stale amphora's load balancer is immutable; failover skipped this round amp=%s lb=%s status=%s",
              amp_id.c_str(), out.lb_id.c_str(), out.skipped.c_str());
    }
    if (!out.queued) continue;
    ++enqueued;
    failovers_enqueued_.fetch_add(1, std::memory_order_relaxed);
    LB_INFO("amphora heartbeat timed out; failover queued amp=%s lb=%s req=%s", amp_id.c_str(), out.lb_id.c_str(),
            out.request_id.c_str());
  }
  return enqueued;
}

void HealthManager::start() {
  std::lock_guard lock(run_mu_);
  if (thread_.joinable()) return;
  stopping_ = false;
  failover_hold_until_ms_.store(std::max(failover_hold_until_ms_.load(), nowMs() + options_.heartbeat_timeout.count()));
  thread_ = std::thread([this] { run(); });
}

void HealthManager::stop() {
  {
    std::lock_guard lock(run_mu_);
    if (!thread_.joinable()) return;
    stopping_ = true;
  }
  run_cv_.notify_all();
  thread_.join();
  auto r = flush();  // what the receiver handed over before it stopped
  if (!r.ok()) LB_WARN("last heartbeat flush failed error=%s", r.error().message.c_str());
}

void HealthManager::run() {
  using Steady = std::chrono::steady_clock;
  auto next_flush = Steady::now() + options_.flush_interval;
  auto next_check = Steady::now() + options_.health_check_interval;
  std::unique_lock lock(run_mu_);
  while (!stopping_) {
    run_cv_.wait_until(lock, std::min(next_flush, next_check), [&] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    auto now = Steady::now();
    if (now >= next_flush) {
      (void)flush();  // failures are counted and logged inside
      next_flush = Steady::now() + options_.flush_interval;
    }
    if (now >= next_check) {
      auto r = failoverStale();
      if (!r.ok()) LB_WARN("stale amphora scan failed error=%s", r.error().message.c_str());
      next_check = Steady::now() + options_.health_check_interval;
    }
    lock.lock();
  }
}

}  // namespace banyan::provider::health
