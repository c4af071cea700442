// Helpers shared by the two backends; not part of the store's interface.
#pragma once

#include <string>
#include <vector>

namespace banyan::provider::store::internal {

// ["a","b"] with JSON string escaping (SQLite's json_each takes the ids filter this way).
std::string jsonStringArray(const std::vector<std::string>& items);

// {"a","b"}: a PostgreSQL text[] literal, every element quoted and escaped.
std::string pgTextArray(const std::vector<std::string>& items);

}  // namespace banyan::provider::store::internal
