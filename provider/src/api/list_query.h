// Octavia's collection query semantics (octavia/api/common/pagination.py): limit, marker,
// page_reverse, sort / sort_key+sort_dir, fields, attribute filters and tag filters, and
// the next/previous links. Pure: works on already rendered JSON objects, no I/O.
// Errors are thrown as ApiError (400) with Octavia's messages.
#pragma once

#include <cstddef>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "api/json_util.h"

namespace banyan::provider::api {

struct SortKey {
  std::string key;
  bool ascending = true;
};

struct ListParams {
  std::optional<size_t> limit;  // nullopt: unlimited
  std::string marker;
  bool page_reverse = false;
  std::vector<SortKey> sort;         // as asked; the default order is appended when used
  std::string sort_param;            // raw "sort" and "sort_key" values, echoed in links
  std::string sort_key_param;
  std::vector<std::string> fields;   // empty: every field
  std::vector<std::pair<std::string, std::string>> filters;  // attribute = value
  std::vector<std::string> tags, tags_any, not_tags, not_tags_any;
};

// Parses the query. max_limit <= 0 means "infinite". Parameters in `ignored` are left for
// the caller (e.g. "cascade"); everything else that is not a pagination/sort/field/tag
// parameter becomes an attribute filter.
ListParams parseListParams(const std::vector<std::pair<std::string, std::string>>& query,
                           int64_t max_limit, const std::set<std::string>& ignored = {});

// A filter parameter whose value lives elsewhere in the rendered object, e.g. the
// listener filter "loadbalancer_id" that matches loadbalancers[*].id.
struct FilterAlias {
  std::string param;
  std::string array_field;  // field holding [{"id": ...}]
};

struct ListPage {
  std::vector<JsonDoc> items;
  JsonDoc links;  // array of {"href", "rel"}
};

// Filters, sorts and pages items (given in insertion order, which stands in for created_at
// ties), selects fields and builds the links. path_url is the absolute URL of the
// collection without a query (e.g. "http://host:9876/v2.0/lbaas/loadbalancers").
// known_attributes: filter/sort keys that are valid even when no item is listed.
ListPage applyListParams(std::vector<JsonDoc> items, const ListParams& params,
                         const std::string& path_url, const std::vector<FilterAlias>& aliases,
                         const std::set<std::string>& known_attributes);

// The pieces applyListParams ends with, for a page cut elsewhere (the store):
// ?fields= on one object (the object itself when fields is empty), and Octavia's
// next/previous links of a page of count items whose first and last ids are given
// (previous when a marker was given, next when the page is full).
JsonDoc selectFields(JsonDoc obj, const std::vector<std::string>& fields);
JsonDoc pageLinks(const ListParams& params, const std::string& path_url, size_t count,
                  const std::string& first_id, const std::string& last_id);

// oslo's bool_from_string (strict=False): "1", "t", "true", "on", "y", "yes" are true.
bool boolFromString(const std::string& s);

}  // namespace banyan::provider::api
