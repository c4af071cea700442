// Helpers shared by the two backends; not part of the store's interface.
#pragma once

#include <string>
#include <vector>

#include "store/store.h"

namespace banyan::provider::store::internal {

// The items sorted, each once.
std::vector<std::string> sortedUnique(std::vector<std::string> items);

// ["a","b"] with JSON string escaping (SQLite's json_each takes the ids filter this way).
std::string jsonStringArray(const std::vector<std::string>& items);

// The body's top-level "name" as both databases' `name` column holds it: the string, or
// "" when the body has no name, a null one or is not a JSON object. For the in-memory
// paths (Transaction's defaults); a non-string name never passes the API's validation.
std::string bodyName(const std::string& body);

// Whether the body's top-level "provisioning_status" is "DELETED" (the backends' live
// children index and statement test the same). Bodies without the word are not parsed.
bool bodyDeleted(const std::string& body);

// {"a","b"}: a PostgreSQL text[] literal, every element quoted and escaped.
std::string pgTextArray(const std::vector<std::string>& items);

// The one statement of Transaction::listPage, for both backends: the records of q in
// page's order after the marker record (its values read by subqueries, its row selected
// by the query's filters too), limited; the plans of both backends are tested to start
// the index at the marker. Parameters are numbered in order of first use (PostgreSQL
// needs $1..$n without gaps); slots[i] says which value parameter i+1 takes.
enum class PageSlot { kKind, kProjectId, kParentId, kLoadBalancerId, kName, kAfterId, kLimit };
struct PageStatement {
  std::string sql;
  std::vector<PageSlot> slots;
};
// placeholder: '?' (SQLite) or '$' (PostgreSQL). collate follows every text comparison
// and ORDER BY term of a sort column ("" for SQLite's default BINARY, " COLLATE \"C\"").
// Sort columns are at most a handful and come from an enum, so the distinct statements
// stay few enough for each connection's statement cache.
PageStatement pageStatement(const Query& q, const PageSpec& page, char placeholder, const char* collate);

}  // namespace banyan::provider::store::internal
