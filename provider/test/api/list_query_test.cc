// Octavia's collection query semantics (list_query.h), table-driven where it helps.
#include "api/list_query.h"

#include <gtest/gtest.h>

#include "api/api_error.h"

namespace banyan::provider::api {
namespace {

using Query = std::vector<std::pair<std::string, std::string>>;

std::vector<JsonDoc> items(const std::vector<std::string>& json_objects) {
  std::vector<JsonDoc> out;
  for (const auto& j : json_objects) out.push_back(std::move(*parseJson(j)));
  return out;
}

std::vector<std::string> ids(const ListPage& page) {
  std::vector<std::string> out;
  for (const auto& i : page.items) out.push_back(jstring(i, "id"));
  return out;
}

std::vector<JsonDoc> five() {
  return items({R"({"id":"a","name":"n1","weight":3,"admin_state_up":true,"tags":["x","y"]})",
                R"({"id":"b","name":"n2","weight":1,"admin_state_up":false,"tags":["x"]})",
                R"({"id":"c","name":"n3","weight":2,"admin_state_up":true,"tags":[]})",
                R"({"id":"d","name":"n1","weight":5,"admin_state_up":true,"tags":["y"]})",
                R"({"id":"e","name":"n5","weight":4,"admin_state_up":false,"tags":["z"]})"});
}

ListPage run(const Query& q, int64_t max_limit = 1000) {
  return applyListParams(five(), parseListParams(q, max_limit), "http://h/v2/x", {}, {});
}

TEST(ListQuery, DefaultOrderIsInsertionOrderWithoutLinks) {
  auto page = run({});
  EXPECT_EQ(ids(page), (std::vector<std::string>{"a", "b", "c", "d", "e"}));
  EXPECT_TRUE(page.links.Empty());
}

TEST(ListQuery, FullPageGetsANextLinkWithTheLastIdAsMarker) {
  auto page = run({{"limit", "2"}});
  EXPECT_EQ(ids(page), (std::vector<std::string>{"a", "b"}));
  ASSERT_EQ(page.links.Size(), 1u);
  EXPECT_EQ(jstring(page.links[0], "rel"), "next");
  EXPECT_EQ(jstring(page.links[0], "href"), "http://h/v2/x?limit=2&marker=b");
}

TEST(ListQuery, MarkerPageHasPreviousAndNextLinks) {
  auto page = run({{"limit", "2"}, {"marker", "b"}, {"sort", "id:asc"}});
  EXPECT_EQ(ids(page), (std::vector<std::string>{"c", "d"}));
  ASSERT_EQ(page.links.Size(), 2u);
  EXPECT_EQ(jstring(page.links[0], "href"), "http://h/v2/x?limit=2&sort=id:asc&marker=c&page_reverse=True");
  EXPECT_EQ(jstring(page.links[1], "href"), "http://h/v2/x?limit=2&sort=id:asc&marker=d");
}

TEST(ListQuery, PageReverseReturnsTheItemsBeforeTheMarker) {
  auto page = run({{"limit", "2"}, {"marker", "d"}, {"page_reverse", "True"}});
  EXPECT_EQ(ids(page), (std::vector<std::string>{"b", "c"}));
}

TEST(ListQuery, LimitIsClampedToTheMaximumAndBelowOneMeansUnlimited) {
  EXPECT_EQ(run({{"limit", "10"}}, 3).items.size(), 3u);
  EXPECT_EQ(run({{"limit", "0"}}, 3).items.size(), 5u);
  EXPECT_EQ(run({{"limit", "infinite"}}, 3).items.size(), 5u);
  EXPECT_EQ(run({}, -1).items.size(), 5u);
}

TEST(ListQuery, SortsBySeveralKeysInEitherDirection) {
  EXPECT_EQ(ids(run({{"sort", "weight:desc"}})), (std::vector<std::string>{"d", "e", "a", "c", "b"}));
  EXPECT_EQ(ids(run({{"sort", "name:asc,weight:desc"}})), (std::vector<std::string>{"d", "a", "b", "c", "e"}));
  EXPECT_EQ(ids(run({{"sort_key", "name,weight"}, {"sort_dir", "asc,desc"}})),
            (std::vector<std::string>{"d", "a", "b", "c", "e"}));
}

TEST(ListQuery, RejectsBadInputWithOctaviasMessages) {
  struct Row {
    Query query;
    std::string message;
  } rows[] = {
      {{{"limit", "abc"}}, "Supplied pagination limit 'abc' is not valid."},
      {{{"sort", "name:sideways"}}, "Supplied sort direction 'sideways' is not valid."},
      {{{"sort", "nope:asc"}}, "Supplied sort key 'nope' is not valid."},
      {{{"marker", "zz"}}, "Supplied pagination marker 'zz' is not valid."},
      {{{"color", "red"}}, "One or more arguments are either duplicate or invalid"},
      {{{"name", "a"}, {"name", "b"}}, "One or more arguments are either duplicate or invalid"},
  };
  for (const auto& row : rows) {
    try {
      run(row.query);
      ADD_FAILURE() << "accepted: " << row.message;
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status(), 400);
      EXPECT_EQ(e.message(), row.message);
    }
  }
}

TEST(ListQuery, FiltersMatchStringsBooleansAndNumbers) {
  EXPECT_EQ(ids(run({{"name", "n1"}})), (std::vector<std::string>{"a", "d"}));
  EXPECT_EQ(ids(run({{"admin_state_up", "False"}})), (std::vector<std::string>{"b", "e"}));
  EXPECT_EQ(ids(run({{"weight", "2"}})), (std::vector<std::string>{"c"}));
}

TEST(ListQuery, TagFiltersFollowAllAnyAndTheirNegations) {
  EXPECT_EQ(ids(run({{"tags", "x,y"}})), (std::vector<std::string>{"a"}));
  EXPECT_EQ(ids(run({{"tags-any", "x"}, {"tags-any", "z"}})), (std::vector<std::string>{"a", "b", "e"}));
  EXPECT_EQ(ids(run({{"not-tags", "x,y"}})), (std::vector<std::string>{"b", "c", "d", "e"}));
  EXPECT_EQ(ids(run({{"not-tags-any", "x,z"}})), (std::vector<std::string>{"c", "d"}));
}

TEST(ListQuery, FieldsKeepOnlyTheAskedKeys) {
  auto page = run({{"fields", "id"}, {"fields", "name"}});
  ASSERT_EQ(page.items.size(), 5u);
  EXPECT_EQ(page.items[0].MemberCount(), 2u);
  EXPECT_TRUE(jhas(page.items[0], "name"));
}

TEST(ListQuery, AliasFilterMatchesIdsInsideAnArrayField) {
  auto list = items({R"({"id":"l1","loadbalancers":[{"id":"lb1"}]})", R"({"id":"l2","loadbalancers":[{"id":"lb2"}]})"});
  auto page = applyListParams(std::move(list), parseListParams({{"loadbalancer_id", "lb2"}}, 1000), "u",
                              {{"loadbalancer_id", "loadbalancers"}}, {});
  EXPECT_EQ(ids(page), (std::vector<std::string>{"l2"}));
}

}  // namespace
}  // namespace banyan::provider::api
