#include "store/store.h"

#include <algorithm>
#include <tuple>

#include "store/postgres_store.h"
#include "store/sqlite_store.h"
#include "store/store_internal.h"
#include "store/store_url.h"

namespace banyan::provider::store {

namespace {

using internal::sortedUnique;

// Records in (kind, id) order, as the PostgreSQL statements write them: one row order
// for every writer, whichever implementation it goes through.
std::vector<Record*> byKindAndId(std::vector<Record>& records) {
  std::vector<Record*> order;
  order.reserve(records.size());
  for (auto& r : records) order.push_back(&r);
  std::sort(order.begin(), order.end(),
            [](const Record* a, const Record* b) { return std::tie(a->kind, a->id) < std::tie(b->kind, b->id); });
  return order;
}

}  // namespace

Result<std::vector<Record>> Transaction::getMany(std::string_view kind, const std::vector<std::string>& ids) {
  std::vector<Record> out;
  for (const auto& id : sortedUnique(ids)) {
    auto got = get(kind, id);
    if (!got.ok()) return got.error();
    if (got->has_value()) out.push_back(std::move(**got));
  }
  return out;
}

Result<std::vector<Record>> Transaction::listLiveChildIds(const std::vector<std::string>& kinds,
                                                          const std::vector<std::string>& parent_ids) {
  std::vector<Record> out;
  for (const auto& kind : sortedUnique(kinds)) {
    auto listed = listByParents(kind, parent_ids);
    if (!listed.ok()) return listed.error();
    for (auto& r : *listed) {
      if (internal::bodyDeleted(r.body)) continue;
      Record ids;
      ids.kind = std::move(r.kind);
      ids.id = std::move(r.id);
      ids.parent_id = std::move(r.parent_id);
      out.push_back(std::move(ids));
    }
  }
  return out;
}

Result<std::vector<Record>> Transaction::listByLoadBalancers(std::string_view kind,
                                                             const std::vector<std::string>& lb_ids) {
  std::vector<Record> out;
  for (const auto& lb_id : sortedUnique(lb_ids)) {
    Query q;
    q.kind = std::string(kind);
    q.load_balancer_id = lb_id;
    auto listed = list(q);
    if (!listed.ok()) return listed.error();
    for (auto& r : *listed) out.push_back(std::move(r));
  }
  return out;
}

Result<std::vector<Record>> Transaction::listPage(const Query& query, const PageSpec& page) {
  auto listed = list(query);
  if (!listed.ok()) return listed.error();
  std::vector<Record>& all = *listed;
  // The sort keys of every record, computed once (a name is parsed out of the body).
  std::vector<std::pair<std::vector<std::string>, Record*>> keyed;
  keyed.reserve(all.size());
  for (auto& r : all) {
    std::vector<std::string> keys;
    for (const auto& o : page.order)
      keys.push_back(o.column == SortColumn::kId     ? r.id
                     : o.column == SortColumn::kName ? internal::bodyName(r.body)
                                                     : r.project_id);
    keyed.emplace_back(std::move(keys), &r);
  }
  // Insertion order is list()'s order, so a stable sort keeps it as the tie-break.
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& a, const auto& b) {
    for (size_t i = 0; i < page.order.size(); ++i) {
      int c = a.first[i].compare(b.first[i]);
      if (c != 0) return page.order[i].ascending ? c < 0 : c > 0;
    }
    return false;
  });
  std::vector<Record> sorted;
  sorted.reserve(all.size());
  for (auto& [keys, r] : keyed) sorted.push_back(std::move(*r));
  all = std::move(sorted);
  if (page.backward) std::reverse(all.begin(), all.end());
  size_t begin = 0;
  if (page.after_id) {
    auto it = std::find_if(all.begin(), all.end(), [&](const Record& r) { return r.id == *page.after_id; });
    if (it == all.end()) return std::vector<Record>();
    begin = static_cast<size_t>(it - all.begin()) + 1;
  }
  size_t end = all.size();
  if (page.limit > 0) end = std::min(end, begin + page.limit);
  std::vector<Record> out;
  out.reserve(end - begin);
  for (size_t i = begin; i < end; ++i) out.push_back(std::move(all[i]));
  return out;
}

Result<void> Transaction::insertMany(std::vector<Record>& records) {
  for (Record* r : byKindAndId(records))
    if (auto w = insert(*r); !w.ok()) return w;
  return {};
}

Result<void> Transaction::updateMany(std::vector<Record>& records) {
  for (Record* r : byKindAndId(records))
    if (auto w = update(*r); !w.ok()) return w;
  return {};
}

Result<void> Transaction::lockKeys(const std::vector<std::string>& keys) {
  for (const auto& key : sortedUnique(keys))
    if (auto r = lockKey(key); !r.ok()) return r;
  return {};
}

std::unique_ptr<JobListener> Store::listenForJobs(JobListenerCallbacks) { return nullptr; }

Result<std::unique_ptr<Store>> openStore(std::string_view url, int default_pool_size) {
  auto parsed = parseStoreUrl(url);
  if (!parsed.ok()) return parsed.error();
  std::unique_ptr<Store> store;
  if (parsed->backend == Backend::kSqlite) {
    auto opened = SqliteStore::open(parsed->sqlite_path);
    if (!opened.ok()) return opened.error();
    store = std::move(*opened);
  } else {
    PostgresOptions options;
    options.params = std::move(parsed->pg_params);
    options.pool_size = parsed->pool_size.value_or(default_pool_size);
    auto opened = PostgresStore::open(std::move(options));
    if (!opened.ok()) return opened.error();
    store = std::move(*opened);
  }
  if (auto migrated = store->migrate(); !migrated.ok()) return migrated.error();
  return store;
}

}  // namespace banyan::provider::store
