// Parsing of the Octavia-style ([database] connection) URLs that openStore() accepts.
// Kept apart from the backends so the grammar can be tested without a database.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "banyan/common/result.h"

namespace banyan::provider::store {

enum class Backend { kSqlite, kPostgres };

struct StoreUrl {
  Backend backend = Backend::kSqlite;
  // kSqlite: the database file, as written after "sqlite:///" (absolute or relative).
  std::string sqlite_path;
  // kPostgres: libpq connection keywords (host, port, dbname, user, password, and any
  // query options libpq knows, such as sslmode), percent-decoded, in URL order.
  std::vector<std::pair<std::string, std::string>> pg_params;
  // kPostgres: "?pool_size=N" (ours, not libpq's): connections kept per store; none
  // when the URL does not say (openStore() then takes its caller's default).
  std::optional<int> pool_size;
};

// Accepts sqlite:////abs/path, sqlite:///rel/path, postgresql://user:pw@host:port/db?opt=v
// (also postgres:// and postgresql+psycopg2://). Errors are kInvalidArgument and say
// what is wrong without echoing the password.
common::Result<StoreUrl> parseStoreUrl(std::string_view url);

// "%41" -> "A"; false on a malformed escape.
bool percentDecode(std::string_view in, std::string& out);

}  // namespace banyan::provider::store
