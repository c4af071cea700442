#include "api/list_query.h"

#include <algorithm>
#include <cctype>

#include "api/api_error.h"

namespace banyan::provider::api {
namespace {

std::vector<std::string> splitComma(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(',', start);
    if (end == std::string::npos) end = s.size();
    std::string item = s.substr(start, end - start);
    if (!item.empty()) out.push_back(item);
    start = end + 1;
  }
  return out;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool parseSortDir(const std::string& dir) {
  std::string d = lower(dir);
  if (d == "asc") return true;
  if (d == "desc") return false;
  throwApi(400, "Supplied sort direction '" + d + "' is not valid.");
}

// Orders JSON scalars the way SQL would order the columns: null first, then numbers,
// booleans and strings by value.
int compareJson(const JsonValue* a, const JsonValue* b) {
  bool an = !a || a->IsNull(), bn = !b || b->IsNull();
  if (an || bn) return an == bn ? 0 : (an ? -1 : 1);
  if (a->IsNumber() && b->IsNumber()) {
    double x = a->GetDouble(), y = b->GetDouble();
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  if (a->IsBool() && b->IsBool()) return int(a->GetBool()) - int(b->GetBool());
  std::string x = jscalarText(*a), y = jscalarText(*b);
  return x < y ? -1 : (x > y ? 1 : 0);
}

bool hasTag(const JsonValue& obj, const std::string& tag) {
  for (const auto& t : jstrings(obj, "tags"))
    if (t == tag) return true;
  return false;
}

bool matchesFilter(const JsonValue& obj, const std::string& key, const std::string& want,
                   const std::vector<FilterAlias>& aliases) {
  for (const auto& alias : aliases) {
    if (alias.param != key) continue;
    const JsonValue* arr = jget(obj, alias.array_field);
    if (!arr || !arr->IsArray()) return false;
    for (const auto& item : arr->GetArray())
      if (item.IsObject() && jstring(item, "id") == want) return true;
    return false;
  }
  const JsonValue* v = jget(obj, key);
  if (!v) return false;
  if (v->IsBool()) return v->GetBool() == boolFromString(want);
  if (v->IsNull()) return want.empty() || want == "None" || want == "null";
  if (v->IsArray()) {
    for (const auto& item : v->GetArray())
      if (jscalarText(item) == want) return true;
    return false;
  }
  if (v->IsNumber()) {
    try {
      size_t used = 0;
      double d = std::stod(want, &used);
      return used == want.size() && d == v->GetDouble();
    } catch (const std::exception&) {
      return false;
    }
  }
  return jscalarText(*v) == want;
}

std::string pageParams(const ListParams& p, size_t limit) {
  std::string s = "limit=" + std::to_string(limit);
  if (!p.sort_param.empty()) s += "&sort=" + p.sort_param;
  if (!p.sort_key_param.empty()) s += "&sort_key=" + p.sort_key_param;
  return s;
}

}  // namespace

bool boolFromString(const std::string& s) {
  std::string v = lower(s);
  return v == "1" || v == "t" || v == "true" || v == "on" || v == "y" || v == "yes";
}

ListParams parseListParams(const std::vector<std::pair<std::string, std::string>>& query,
                           int64_t max_limit, const std::set<std::string>& ignored) {
  ListParams p;
  std::optional<std::string> limit_text;
  std::string sort_dir_param;
  for (const auto& [key, value] : query) {
    if (ignored.count(key)) continue;
    if (key == "limit") {
      limit_text = value;
    } else if (key == "marker") {
      p.marker = value;
    } else if (key == "page_reverse") {
      // Octavia compares the text with "True".
      p.page_reverse = value == "True";
    } else if (key == "sort") {
      p.sort_param = value;
    } else if (key == "sort_key") {
      p.sort_key_param = value;
    } else if (key == "sort_dir") {
      sort_dir_param = value;
    } else if (key == "fields") {
      for (auto& f : splitComma(value)) p.fields.push_back(f);
    } else if (key == "tags") {
      for (auto& t : splitComma(value)) p.tags.push_back(t);
    } else if (key == "tags-any") {
      for (auto& t : splitComma(value)) p.tags_any.push_back(t);
    } else if (key == "not-tags") {
      for (auto& t : splitComma(value)) p.not_tags.push_back(t);
    } else if (key == "not-tags-any") {
      for (auto& t : splitComma(value)) p.not_tags_any.push_back(t);
    } else {
      for (const auto& f : p.filters)
        if (f.first == key) throwApi(400, "One or more arguments are either duplicate or invalid");
      p.filters.emplace_back(key, value);
    }
  }

  std::optional<size_t> max;
  if (max_limit > 0) max = static_cast<size_t>(max_limit);
  if (!limit_text) {
    p.limit = max;
  } else if (*limit_text == "infinite") {
    p.limit = std::nullopt;
  } else {
    long long n = 0;
    try {
      size_t used = 0;
      n = std::stoll(*limit_text, &used);
      if (used != limit_text->size()) throw std::invalid_argument("trailing");
    } catch (const std::exception&) {
      throwApi(400, "Supplied pagination limit '" + *limit_text + "' is not valid.");
    }
    if (n < 1) {
      p.limit = std::nullopt;
    } else {
      p.limit = static_cast<size_t>(n);
      if (max && *p.limit > *max) p.limit = max;
    }
  }

  if (!p.sort_param.empty()) {
    for (const auto& item : splitComma(p.sort_param)) {
      size_t colon = item.find(':');
      if (colon == std::string::npos) {
        p.sort.push_back({item, true});
      } else if (item.find(':', colon + 1) != std::string::npos) {
        throwApi(400, "Supplied sort key '" + item + "' is not valid.");
      } else {
        p.sort.push_back({item.substr(0, colon), parseSortDir(item.substr(colon + 1))});
      }
    }
  } else if (!p.sort_key_param.empty()) {
    auto keys = splitComma(p.sort_key_param);
    auto dirs = splitComma(sort_dir_param);
    for (size_t i = 0; i < keys.size(); ++i)
      p.sort.push_back({keys[i], i < dirs.size() ? parseSortDir(dirs[i]) : true});
  }
  return p;
}

ListPage applyListParams(std::vector<JsonDoc> items, const ListParams& params,
                         const std::string& path_url, const std::vector<FilterAlias>& aliases,
                         const std::set<std::string>& known_attributes) {
  auto known = [&](const std::string& key) {
    if (known_attributes.count(key)) return true;
    for (const auto& a : aliases)
      if (a.param == key) return true;
    return !items.empty() && jhas(items.front(), key);
  };
  for (const auto& [key, value] : params.filters)
    if (!known(key)) throwApi(400, "One or more arguments are either duplicate or invalid");
  for (const auto& s : params.sort)
    if (!known(s.key)) throwApi(400, "Supplied sort key '" + s.key + "' is not valid.");

  // Filter; keep the insertion index as the final tie-break (Octavia: created_at, id).
  std::vector<std::pair<size_t, JsonDoc>> kept;
  for (size_t i = 0; i < items.size(); ++i) {
    const JsonDoc& obj = items[i];
    bool ok = true;
    for (const auto& [key, value] : params.filters)
      if (!matchesFilter(obj, key, value, aliases)) { ok = false; break; }
    for (const auto& t : params.tags)
      if (ok && !hasTag(obj, t)) ok = false;
    if (ok && !params.tags_any.empty()) {
      bool any = false;
      for (const auto& t : params.tags_any) any = any || hasTag(obj, t);
      ok = any;
    }
    if (ok && !params.not_tags.empty()) {
      bool all = true;
      for (const auto& t : params.not_tags) all = all && hasTag(obj, t);
      ok = !all;
    }
    if (ok)
      for (const auto& t : params.not_tags_any)
        if (hasTag(obj, t)) { ok = false; break; }
    if (ok) kept.emplace_back(i, std::move(items[i]));
  }

  std::stable_sort(kept.begin(), kept.end(), [&](const auto& a, const auto& b) {
    for (const auto& s : params.sort) {
      int c = compareJson(jget(a.second, s.key), jget(b.second, s.key));
      if (c != 0) return s.ascending ? c < 0 : c > 0;
    }
    return a.first < b.first;
  });

  size_t begin = 0, end = kept.size();
  if (!params.marker.empty()) {
    size_t pos = kept.size();
    for (size_t i = 0; i < kept.size(); ++i)
      if (jstring(kept[i].second, "id") == params.marker ||
          (!jhas(kept[i].second, "id") && jstring(kept[i].second, "name") == params.marker)) {
        pos = i;
        break;
      }
    if (pos == kept.size())
      throwApi(400, "Supplied pagination marker '" + params.marker + "' is not valid.");
    if (params.page_reverse) {
      end = pos;
    } else {
      begin = pos + 1;
    }
  }
  if (params.limit && end - begin > *params.limit) {
    if (params.page_reverse && !params.marker.empty())
      begin = end - *params.limit;
    else
      end = begin + *params.limit;
  }

  auto idOf = [&](size_t i) {
    std::string id = jstring(kept[i].second, "id");
    return id.empty() ? jstring(kept[i].second, "name") : id;  // availability zones
  };
  std::string first_id = begin < end ? idOf(begin) : "";
  std::string last_id = begin < end ? idOf(end - 1) : "";

  ListPage page;
  for (size_t i = begin; i < end; ++i) page.items.push_back(selectFields(std::move(kept[i].second), params.fields));
  page.links = pageLinks(params, path_url, end - begin, first_id, last_id);
  return page;
}

JsonDoc selectFields(JsonDoc src, const std::vector<std::string>& fields) {
  if (fields.empty()) return src;
  JsonDoc sel(rapidjson::kObjectType);
  for (const auto& f : fields) {
    const JsonValue* v = jget(src, f);
    if (v && !jhas(sel, f))
      sel.AddMember(jstr(f, sel.GetAllocator()), JsonValue(*v, sel.GetAllocator()), sel.GetAllocator());
  }
  return sel;
}

JsonDoc pageLinks(const ListParams& params, const std::string& path_url, size_t count,
                  const std::string& first_id, const std::string& last_id) {
  JsonDoc links(rapidjson::kArrayType);
  auto& a = links.GetAllocator();
  if (count > 0 && params.limit) {
    std::string base = path_url + "?" + pageParams(params, *params.limit);
    if (!params.marker.empty()) {
      JsonValue link(rapidjson::kObjectType);
      link.AddMember("href", jstr(base + "&marker=" + first_id + "&page_reverse=True", a), a);
      link.AddMember("rel", "previous", a);
      links.PushBack(std::move(link), a);
    }
    if (count >= *params.limit) {
      JsonValue link(rapidjson::kObjectType);
      link.AddMember("href", jstr(base + "&marker=" + last_id, a), a);
      link.AddMember("rel", "next", a);
      links.PushBack(std::move(link), a);
    }
  }
  return links;
}

}  // namespace banyan::provider::api
