#include "store/store_internal.h"

#include <rapidjson/document.h>

#include <algorithm>
#include <cstdio>

namespace banyan::provider::store::internal {

std::vector<std::string> sortedUnique(std::vector<std::string> items) {
  std::sort(items.begin(), items.end());
  items.erase(std::unique(items.begin(), items.end()), items.end());
  return items;
}

std::string jsonStringArray(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ',';
    out += '"';
    for (unsigned char c : items[i]) {
      if (c == '"' || c == '\\') {
        out += '\\';
        out += static_cast<char>(c);
      } else if (c < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", c);
        out += buf;
      } else {
        out += static_cast<char>(c);
      }
    }
    out += '"';
  }
  out += ']';
  return out;
}

std::string bodyName(const std::string& body) {
  rapidjson::Document doc;
  doc.Parse(body.data(), body.size());
  if (doc.HasParseError() || !doc.IsObject()) return "";
  auto it = doc.FindMember("name");
  if (it == doc.MemberEnd() || !it->value.IsString()) return "";
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

bool bodyDeleted(const std::string& body) {
  if (body.find("DELETED") == std::string::npos) return false;
  rapidjson::Document doc;
  doc.Parse(body.data(), body.size());
  if (doc.HasParseError() || !doc.IsObject()) return false;
  auto it = doc.FindMember("provisioning_status");
  return it != doc.MemberEnd() && it->value.IsString() && std::string_view(it->value.GetString()) == "DELETED";
}

std::string pgTextArray(const std::vector<std::string>& items) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ',';
    out += '"';
    for (char c : items[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

PageStatement pageStatement(const Query& q, const PageSpec& page, char placeholder, const char* collate) {
  PageStatement st;
  auto param = [&](PageSlot slot) {
    size_t n = 0;
    while (n < st.slots.size() && st.slots[n] != slot) ++n;
    if (n == st.slots.size()) st.slots.push_back(slot);
    return std::string(1, placeholder) + std::to_string(n + 1);
  };
  // The query's filters on one alias of records.
  auto filters = [&](const char* alias) {
    std::string a = alias;
    std::string out = " " + a + ".kind = " + param(PageSlot::kKind);
    if (q.project_id) out += " AND " + a + ".project_id = " + param(PageSlot::kProjectId);
    if (q.parent_id) out += " AND " + a + ".parent_id = " + param(PageSlot::kParentId);
    if (q.load_balancer_id) out += " AND " + a + ".load_balancer_id = " + param(PageSlot::kLoadBalancerId);
    if (q.name) out += " AND " + a + ".name = " + param(PageSlot::kName);
    return out;
  };
  struct Term {
    std::string column;
    bool ascending;
    bool text;
  };
  std::vector<Term> terms;
  for (const auto& o : page.order) {
    const char* column = o.column == SortColumn::kId ? "id" : o.column == SortColumn::kName ? "name" : "project_id";
    terms.push_back({column, o.ascending != page.backward, true});
  }
  terms.push_back({"seq", !page.backward, false});

  st.sql = "SELECT r.kind, r.id, r.project_id, r.parent_id, r.load_balancer_id, r.revision, r.body FROM records AS r";
  st.sql += " WHERE" + filters("r");
  if (page.after_id) {
    // The marker's value of a column: a subquery without outer references, which both
    // databases run once per statement. Its row must pass the query's filters too (a
    // marker of another project gives NULL, so an empty page, as before). A join with the
    // marker's row gave the same rows, but PostgreSQL planned it as a scan of the kind
    // from its first row, the marker's seq a filter on every row up to the page.
    auto marker = [&](const std::string& column) {
      return "(SELECT m." + column + " FROM records AS m WHERE" + filters("m") +
             " AND m.id = " + param(PageSlot::kAfterId) + ")";
    };
    auto compare = [&](const Term& t, const char* op) {
      return "r." + t.column + (t.text ? collate : "") + op + marker(t.column);
    };
    // The first term's bound, not strict: implied by the terms below, and where the
    // index of that column can start.
    const Term& first = terms.front();
    if (terms.size() > 1) st.sql += " AND " + compare(first, first.ascending ? " >= " : " <= ");
    // (k1 > m1) OR (k1 = m1 AND k2 > m2) OR ...: the rows after the marker in a
    // lexicographic order whose terms may run in different directions.
    std::string any;
    for (size_t i = 0; i < terms.size(); ++i) {
      std::string all;
      for (size_t j = 0; j < i; ++j) all += compare(terms[j], " = ") + " AND ";
      all += compare(terms[i], terms[i].ascending ? " > " : " < ");
      any += (i ? " OR (" : "(") + all + ")";
    }
    st.sql += " AND (" + any + ")";
  }
  st.sql += " ORDER BY ";
  for (size_t i = 0; i < terms.size(); ++i) {
    const Term& t = terms[i];
    st.sql += (i ? ", r." : "r.") + t.column + (t.text ? collate : "") + (t.ascending ? " ASC" : " DESC");
  }
  if (page.limit > 0) st.sql += " LIMIT " + param(PageSlot::kLimit);
  return st;
}

}  // namespace banyan::provider::store::internal
