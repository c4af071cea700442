// Lists paged by the store (keyset pagination in SQL) against the general in-memory
// path, on SQLite and PostgreSQL: two ApiServices share one real store, one with
// page_in_store (the default) and one without, and every answer of many
// limit/marker/sort/page_reverse/filter/fields combinations must be byte for byte the
// same, status included (400s for bad markers and sort keys too).
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "api/api_service.h"
#include "api/json_util.h"
#include "auth/noauth.h"
#include "auth/policy.h"
#include "store/store.h"
#include "support/postgres_server.h"

namespace banyan::provider::api {
namespace {

using common::Result;
using provider::testing::PostgresEnvironment;

const auto* const kPostgresEnv = ::testing::AddGlobalTestEnvironment(new PostgresEnvironment);

constexpr const char* kSubnet = "5f6a7b8c-1d2e-4f30-8a9b-0c1d2e3f4a5b";

enum class Backend { kSqlite, kPostgres };

std::string backendName(const ::testing::TestParamInfo<Backend>& info) {
  return info.param == Backend::kSqlite ? "Sqlite" : "Postgres";
}

// Forwards everything to the real transaction, the hints and the relation lists included
// (so PostgreSQL answers as in service: a page sent along with its marker's lookup), and
// counts which list call served a request, so the test knows the store path was taken
// (and the general path was not).
class CountingTransaction : public store::Transaction {
 public:
  CountingTransaction(store::Transaction& inner, std::atomic<int>& pages) : inner_(inner), pages_(pages) {}
  Result<std::optional<store::Record>> get(std::string_view kind, std::string_view id) override {
    return inner_.get(kind, id);
  }
  Result<std::vector<store::Record>> list(const store::Query& q) override { return inner_.list(q); }
  Result<int64_t> count(const store::Query& q) override { return inner_.count(q); }
  Result<std::vector<store::Record>> listByParents(std::string_view kind,
                                                   const std::vector<std::string>& ids) override {
    return inner_.listByParents(kind, ids);
  }
  Result<std::vector<store::Record>> listLiveChildIds(const std::vector<std::string>& kinds,
                                                      const std::vector<std::string>& ids) override {
    return inner_.listLiveChildIds(kinds, ids);
  }
  Result<std::vector<store::Record>> listPage(const store::Query& q, const store::PageSpec& page) override {
    ++pages_;
    return inner_.listPage(q, page);
  }
  void prefetchGet(std::string_view kind, std::string_view id) override { inner_.prefetchGet(kind, id); }
  void prefetchList(const store::Query& q) override { inner_.prefetchList(q); }
  void prefetchListPage(const store::Query& q, const store::PageSpec& page) override {
    inner_.prefetchListPage(q, page);
  }
  void prefetchLiveChildIds(const std::vector<std::string>& kinds, const std::vector<std::string>& ids) override {
    inner_.prefetchLiveChildIds(kinds, ids);
  }
  Result<void> insert(store::Record& r) override { return inner_.insert(r); }
  Result<void> update(store::Record& r) override { return inner_.update(r); }
  Result<void> remove(std::string_view kind, std::string_view id) override { return inner_.remove(kind, id); }
  Result<void> lockKey(std::string_view key) override { return inner_.lockKey(key); }
  Result<int64_t> enqueueJob(const store::JobSpec& job) override { return inner_.enqueueJob(job); }

 private:
  store::Transaction& inner_;
  std::atomic<int>& pages_;
};

class CountingStore : public store::Store {
 public:
  explicit CountingStore(store::Store& inner) : inner_(inner) {}
  Result<void> migrate() override { return inner_.migrate(); }
  Result<int> schemaVersion() override { return inner_.schemaVersion(); }
  Result<void> read(const std::function<Result<void>(store::Transaction&)>& fn) override {
    return inner_.read([&](store::Transaction& t) {
      CountingTransaction counting(t, pages);
      return fn(counting);
    });
  }
  Result<void> write(const std::function<Result<void>(store::Transaction&)>& fn) override {
    return inner_.write(fn);
  }
  Result<std::optional<store::Job>> claimJob(std::string_view w, std::chrono::milliseconds l) override {
    return inner_.claimJob(w, l);
  }
  Result<void> renewJob(int64_t id, std::string_view w, std::chrono::milliseconds l) override {
    return inner_.renewJob(id, w, l);
  }
  Result<void> finishJob(int64_t id, std::string_view w) override { return inner_.finishJob(id, w); }
  Result<void> retryJob(int64_t id, std::string_view w, std::chrono::milliseconds d, std::string_view e) override {
    return inner_.retryJob(id, w, d, e);
  }
  Result<int64_t> pendingJobs() override { return inner_.pendingJobs(); }

  std::atomic<int> pages{0};

 private:
  store::Store& inner_;
};

struct Answer {
  int status = 0;
  std::string body;
};

class ApiPagingTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    std::string url;
    if (GetParam() == Backend::kSqlite) {
      char tmpl[] = "/tmp/banyan-api-paging-XXXXXX";
      ASSERT_NE(::mkdtemp(tmpl), nullptr);
      dir_ = tmpl;
      url = "sqlite:///" + dir_ + "/banyan.sqlite";
    } else {
      auto created = PostgresEnvironment::freshDatabase("api_paging");
      ASSERT_TRUE(created.ok()) << created.error().message;
      url = *created;
    }
    auto opened = store::openStore(url);
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    store_ = std::move(*opened);
    paged_store_ = std::make_unique<CountingStore>(*store_);
    general_store_ = std::make_unique<CountingStore>(*store_);
    authenticator_ = auth::makeNoauthAuthenticator();
    auto policy = auth::makeOctaviaPolicy("", true);
    ASSERT_TRUE(policy.ok()) << policy.error().message;
    policy_ = std::move(*policy);
    ApiOptions o;
    o.enabled_provider_drivers = {{"noop_driver", "The no-op driver."}};
    o.default_provider_driver = "noop_driver";
    o.noauth_project_id = "p-default";
    paged_ = std::make_unique<ApiService>(*paged_store_, *authenticator_, *policy_, o);
    o.page_in_store = false;
    general_ = std::make_unique<ApiService>(*general_store_, *authenticator_, *policy_, o);
  }

  void TearDown() override {
    paged_.reset();
    general_.reset();
    store_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  static Answer call(ApiService& api, const std::string& method, const std::string& target,
                     const std::string& body = "", const std::string& project = "") {
    common::HttpRequest r;
    r.method = method;
    size_t q = target.find('?');
    r.path = target.substr(0, q);
    r.raw_path = r.path;
    if (q != std::string::npos) {
      r.query = target.substr(q + 1);
      size_t start = 0;
      while (start <= r.query.size()) {
        size_t end = r.query.find('&', start);
        if (end == std::string::npos) end = r.query.size();
        std::string item = r.query.substr(start, end - start);
        size_t eq = item.find('=');
        if (!item.empty())
          r.query_params.emplace_back(item.substr(0, eq), eq == std::string::npos ? "" : item.substr(eq + 1));
        start = end + 1;
      }
    }
    r.headers = {{"Host", "api.test:9876"}, {"Accept", "application/json"}};
    if (!project.empty()) r.headers.emplace_back("X-Project-Id", project);
    if (!body.empty()) r.headers.emplace_back("Content-Type", "application/json");
    r.body = body;
    r.peer_address = "127.0.0.1";
    auto resp = api.handle(r);
    return {resp.status, resp.body};
  }

  // A load balancer with one listener, its default pool and `members` members.
  std::string createGraph(const std::string& project, const std::string& name, int members) {
    std::string m;
    for (int i = 0; i < members; ++i)
      m += std::string(i ? "," : "") + R"({"address":"192.0.2.)" + std::to_string(10 + i) +
           R"(","protocol_port":80,"name":"m)" + std::to_string(i) + "\"}";
    std::string body = std::string(R"({"loadbalancer":{"vip_subnet_id":")") + kSubnet + R"(","name":")" + name +
                       R"(","listeners":[{"protocol":"HTTP","protocol_port":80,"default_pool":{"protocol":"HTTP",)"
                       R"("name":"pool-)" + name + R"(","lb_algorithm":"ROUND_ROBIN","members":[)" +
                       m + "]}}]}}";
    Answer a = call(*general_, "POST", "/v2/lbaas/loadbalancers", body, project);
    EXPECT_EQ(a.status, 201) << a.body;
    auto doc = parseJson(a.body);
    return doc ? jstring((*doc)["loadbalancer"], "id") : "";
  }

  // Marks a stored object DELETED, as the controller leaves it until housekeeping.
  void markDeleted(const char* kind, const std::string& id) {
    auto w = store_->write([&](store::Transaction& t) -> Result<void> {
      auto got = t.get(kind, id);
      if (!got.ok()) return got.error();
      EXPECT_TRUE(got->has_value()) << kind << " " << id;
      store::Record rec = **got;
      auto doc = parseJson(rec.body);
      jsetStr(*doc, "provisioning_status", "DELETED", doc->GetAllocator());
      rec.body = toJson(*doc);
      return t.update(rec);
    });
    ASSERT_TRUE(w.ok()) << w.error().message;
  }

  std::vector<std::string> idsOf(const std::string& collection_path, const std::string& key) {
    Answer a = call(*general_, "GET", collection_path + "?limit=infinite");
    EXPECT_EQ(a.status, 200) << a.body;
    std::vector<std::string> out;
    auto doc = parseJson(a.body);
    if (!doc) return out;
    for (const auto& item : (*doc)[key.c_str()].GetArray()) out.push_back(jstring(item, "id"));
    return out;
  }

  // Every combination on one collection; returns how many were compared.
  int compareAll(const std::string& path, const std::vector<std::string>& markers,
                 const std::vector<std::string>& filters, const std::vector<std::string>& sorts) {
    int compared = 0;
    for (const auto& filter : filters)
      for (const auto& sort : sorts)
        for (const char* limit : {"", "limit=1", "limit=2", "limit=5", "limit=infinite"})
          for (const char* reverse : {"", "page_reverse=True"})
            for (const auto& marker : markers) {
              if (*reverse && marker.empty() && *limit && std::string(limit) != "limit=2") continue;
              std::string query;
              for (const std::string& part :
                   {filter, sort, std::string(limit), std::string(reverse), marker.empty() ? "" : "marker=" + marker})
                if (!part.empty()) query += (query.empty() ? "?" : "&") + part;
              Answer want = call(*general_, "GET", path + query);
              Answer got = call(*paged_, "GET", path + query);
              EXPECT_EQ(got.status, want.status) << path + query << "\n" << got.body << "\n" << want.body;
              EXPECT_EQ(got.body, want.body) << path + query;
              if (got.body != want.body) return compared;  // one diff says enough
              ++compared;
            }
    return compared;
  }

  std::string dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<CountingStore> paged_store_;
  std::unique_ptr<CountingStore> general_store_;
  std::unique_ptr<auth::Authenticator> authenticator_;
  std::unique_ptr<auth::Policy> policy_;
  std::unique_ptr<ApiService> paged_;
  std::unique_ptr<ApiService> general_;
};

INSTANTIATE_TEST_SUITE_P(Backends, ApiPagingTest, ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         backendName);

TEST_P(ApiPagingTest, StorePagesEqualTheGeneralPathForEveryLimitMarkerSortAndFilter) {
  // Projects whose byte order differs from a locale's ("P-c" sorts before "p-a").
  const std::vector<std::string> projects = {"p-b", "p-a", "P-c"};
  std::vector<std::string> lbs;
  for (int i = 0; i < 10; ++i) lbs.push_back(createGraph(projects[i % 3], "lb" + std::to_string(i % 4), i % 3 == 0 ? 3 : 1));
  // DELETED objects stay in the store (the amphora flow's housekeeping removes them
  // later) and must be skipped, also when they fill a page the store cut.
  markDeleted("loadbalancer", lbs[2]);
  markDeleted("loadbalancer", lbs[3]);
  markDeleted("loadbalancer", lbs[7]);
  std::vector<std::string> listeners = idsOf("/v2/lbaas/listeners", "listeners");
  std::vector<std::string> pools = idsOf("/v2/lbaas/pools", "pools");
  ASSERT_EQ(listeners.size(), 10u);
  markDeleted("listener", listeners[4]);
  std::string pool = pools[0];
  std::vector<std::string> members = idsOf("/v2/lbaas/pools/" + pool + "/members", "members");
  ASSERT_EQ(members.size(), 3u);
  markDeleted("member", members[1]);

  const std::vector<std::string> sorts = {"",
                                          "sort=id",
                                          "sort=id:desc",
                                          "sort=project_id",
                                          "sort=project_id:desc,id",
                                          "sort_key=project_id&sort_dir=desc",
                                          "sort_key=id,project_id&sort_dir=desc,asc",
                                          "sort=project_id:asc,name",
                                          "sort=name:desc,id",
                                          "sort=created_at",  // a body field: general path
                                          "sort=bogus"};      // 400 on both
  auto markersOf = [&](const std::vector<std::string>& ids, const std::string& foreign) {
    std::vector<std::string> m = {"", "nope", foreign};
    for (const auto& id : ids) m.push_back(id);
    return m;
  };
  std::vector<std::string> lb_markers = markersOf(idsOf("/v2/lbaas/loadbalancers", "loadbalancers"), listeners[0]);
  lb_markers.push_back(lbs[3]);  // DELETED: not a valid marker
  int compared = 0;
  compared += compareAll("/v2/lbaas/loadbalancers", lb_markers,
                         {"", "project_id=p-a", "project_id=nobody", "fields=id,name,listeners", "name=lb1",
                          "project_id=p-b&name=lb0", "name=nobody"},
                         sorts);
  std::vector<std::string> l_markers = markersOf(idsOf("/v2/lbaas/listeners", "listeners"), lbs[0]);
  l_markers.push_back(listeners[4]);
  compared += compareAll("/v2/lbaas/listeners", l_markers,
                         {"", "loadbalancer_id=" + lbs[1], "project_id=P-c&loadbalancer_id=" + lbs[2]},
                         {"", "sort=id:desc", "sort=project_id:desc,id", "sort=name"});
  compared += compareAll("/v2/lbaas/pools", markersOf(pools, members[0]), {"", "project_id=p-b"},
                         {"", "sort=project_id", "sort=id:desc"});
  std::vector<std::string> m_markers = markersOf(members, pool);
  m_markers.push_back(members[1]);
  compared += compareAll("/v2/lbaas/pools/" + pool + "/members", m_markers, {"", "project_id=p-b"},
                         {"", "sort=id", "sort=project_id:desc"});
  compared += compareAll("/v2/lbaas/pools/" + pool + "/members", m_markers, {"name=m2", "name=m0&project_id=p-b"},
                         {"", "sort=name:desc"});
  EXPECT_GT(compared, 2000);
  // The comparison means something only if the paged service really took the store
  // path, and the general one never did.
  EXPECT_GT(paged_store_->pages.load(), compared / 3);
  EXPECT_EQ(general_store_->pages.load(), 0);
}

TEST_P(ApiPagingTest, FollowingNextLinksWalksTheWholeListAndPreviousLinksWalkBack) {
  const std::vector<std::string> projects = {"p-b", "p-a", "P-c", "p-a"};
  for (int i = 0; i < 11; ++i) createGraph(projects[i % 4], "lb", 0);
  for (const std::string sort : {"", "&sort=project_id:desc", "&sort=id"}) {
    Answer full = call(*general_, "GET", "/v2/lbaas/loadbalancers?limit=infinite" + sort);
    auto full_doc = parseJson(full.body);
    ASSERT_TRUE(full_doc);
    std::vector<std::string> want;
    for (const auto& item : (*full_doc)["loadbalancers"].GetArray()) want.push_back(jstring(item, "id"));
    ASSERT_EQ(want.size(), 11u);

    const std::string base = "http://api.test:9876";
    std::vector<std::string> walked;
    std::string next = "/v2/lbaas/loadbalancers?limit=3" + sort;
    std::vector<std::string> pages;
    for (int guard = 0; !next.empty() && guard < 10; ++guard) {
      pages.push_back(next);
      Answer a = call(*paged_, "GET", next);
      ASSERT_EQ(a.status, 200) << a.body;
      EXPECT_EQ(a.body, call(*general_, "GET", next).body) << next;
      auto doc = parseJson(a.body);
      for (const auto& item : (*doc)["loadbalancers"].GetArray()) walked.push_back(jstring(item, "id"));
      next.clear();
      for (const auto& link : (*doc)["loadbalancers_links"].GetArray())
        if (jstring(link, "rel") == "next") next = jstring(link, "href").substr(base.size());
    }
    EXPECT_EQ(walked, want) << sort;
    // 11 items, pages of 3: four pages, the last one short (no next link).
    EXPECT_EQ(pages.size(), 4u);

    // Back from the last page: each previous link gives the page before it.
    std::string prev = pages.back();
    std::vector<std::string> back;
    for (int guard = 0; !prev.empty() && guard < 10; ++guard) {
      Answer a = call(*paged_, "GET", prev);
      ASSERT_EQ(a.status, 200) << a.body;
      auto doc = parseJson(a.body);
      std::vector<std::string> ids;
      for (const auto& item : (*doc)["loadbalancers"].GetArray()) ids.push_back(jstring(item, "id"));
      back.insert(back.begin(), ids.begin(), ids.end());
      prev.clear();
      for (const auto& link : (*doc)["loadbalancers_links"].GetArray())
        if (jstring(link, "rel") == "previous") prev = jstring(link, "href").substr(base.size());
    }
    EXPECT_EQ(back, want) << sort;
  }
}

}  // namespace
}  // namespace banyan::provider::api
