#include "store/store.h"

#include "store/postgres_store.h"
#include "store/sqlite_store.h"
#include "store/store_url.h"

namespace banyan::provider::store {

Result<std::unique_ptr<Store>> openStore(std::string_view url) {
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
    options.pool_size = parsed->pool_size;
    auto opened = PostgresStore::open(std::move(options));
    if (!opened.ok()) return opened.error();
    store = std::move(*opened);
  }
  if (auto migrated = store->migrate(); !migrated.ok()) return migrated.error();
  return store;
}

}  // namespace banyan::provider::store
