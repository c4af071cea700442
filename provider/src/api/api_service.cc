#include "api/api_service.h"

#include <cstring>

#include "api/api_impl.h"
#include "auth/policy.h"
#include "banyan/common/logging.h"

namespace banyan::provider::api {

const char* const kOwaspSuiteBCiphers =
    "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256:"
    "DHE-RSA-AES256-GCM-SHA384:DHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-SHA256:DHE-RSA-AES128-SHA256:"
    "ECDHE-RSA-AES256-SHA384:ECDHE-RSA-AES128-SHA256";

namespace {

struct Route {
  const char* method;
  const char* pattern;  // segments after /v2 (or /v2.0); "*" captures one segment
  Handler handler;
};

// Octavia's API tree (octavia/api/v2/controllers). Order matters only for readability:
// literal segments never collide with captures because each pattern has fixed length.
const std::vector<Route>& routes() {
  static const std::vector<Route> r = {
      {"GET", "", &Api::v2String},
      {"GET", "lbaas", &Api::v2String},
      {"GET", "octavia", &Api::v2String},
      {"GET", "lbaas/loadbalancers", &Api::lbList},
      {"POST", "lbaas/loadbalancers", &Api::lbCreate},
      {"GET", "lbaas/loadbalancers/*", &Api::lbShow},
      {"PUT", "lbaas/loadbalancers/*", &Api::lbUpdate},
      {"DELETE", "lbaas/loadbalancers/*", &Api::lbDelete},
      {"GET", "lbaas/loadbalancers/*/status", &Api::lbStatus},
      {"GET", "lbaas/loadbalancers/*/statuses", &Api::lbStatus},
      {"GET", "lbaas/loadbalancers/*/stats", &Api::lbStats},
      {"PUT", "lbaas/loadbalancers/*/failover", &Api::lbFailover},
      {"GET", "lbaas/listeners", &Api::listenerList},
      {"POST", "lbaas/listeners", &Api::listenerCreate},
      {"GET", "lbaas/listeners/*", &Api::listenerShow},
      {"PUT", "lbaas/listeners/*", &Api::listenerUpdate},
      {"DELETE", "lbaas/listeners/*", &Api::listenerDelete},
      {"GET", "lbaas/listeners/*/stats", &Api::listenerStats},
      {"GET", "lbaas/pools", &Api::poolList},
      {"POST", "lbaas/pools", &Api::poolCreate},
      {"GET", "lbaas/pools/*", &Api::poolShow},
      {"PUT", "lbaas/pools/*", &Api::poolUpdate},
      {"DELETE", "lbaas/pools/*", &Api::poolDelete},
      {"GET", "lbaas/pools/*/members", &Api::memberList},
      {"POST", "lbaas/pools/*/members", &Api::memberCreate},
      {"PUT", "lbaas/pools/*/members", &Api::memberBatch},
      {"GET", "lbaas/pools/*/members/*", &Api::memberShow},
      {"PUT", "lbaas/pools/*/members/*", &Api::memberUpdate},
      {"DELETE", "lbaas/pools/*/members/*", &Api::memberDelete},
      {"GET", "lbaas/healthmonitors", &Api::hmList},
      {"POST", "lbaas/healthmonitors", &Api::hmCreate},
      {"GET", "lbaas/healthmonitors/*", &Api::hmShow},
      {"PUT", "lbaas/healthmonitors/*", &Api::hmUpdate},
      {"DELETE", "lbaas/healthmonitors/*", &Api::hmDelete},
      {"GET", "lbaas/l7policies", &Api::l7pList},
      {"POST", "lbaas/l7policies", &Api::l7pCreate},
      {"GET", "lbaas/l7policies/*", &Api::l7pShow},
      {"PUT", "lbaas/l7policies/*", &Api::l7pUpdate},
      {"DELETE", "lbaas/l7policies/*", &Api::l7pDelete},
      {"GET", "lbaas/l7policies/*/rules", &Api::l7rList},
      {"POST", "lbaas/l7policies/*/rules", &Api::l7rCreate},
      {"GET", "lbaas/l7policies/*/rules/*", &Api::l7rShow},
      {"PUT", "lbaas/l7policies/*/rules/*", &Api::l7rUpdate},
      {"DELETE", "lbaas/l7policies/*/rules/*", &Api::l7rDelete},
      {"GET", "lbaas/quotas", &Api::quotaList},
      {"GET", "lbaas/quotas/*", &Api::quotaShow},
      {"PUT", "lbaas/quotas/*", &Api::quotaUpdate},
      {"DELETE", "lbaas/quotas/*", &Api::quotaDelete},
      {"GET", "lbaas/quotas/*/default", &Api::quotaDefaults},
      {"GET", "lbaas/providers", &Api::providerList},
      {"GET", "lbaas/providers/*/flavor_capabilities", &Api::providerFlavorCaps},
      {"GET", "lbaas/providers/*/availability_zone_capabilities", &Api::providerAzCaps},
      {"GET", "lbaas/flavors", &Api::flavorList},
      {"POST", "lbaas/flavors", &Api::flavorCreate},
      {"GET", "lbaas/flavors/*", &Api::flavorShow},
      {"PUT", "lbaas/flavors/*", &Api::flavorUpdate},
      {"DELETE", "lbaas/flavors/*", &Api::flavorDelete},
      {"GET", "lbaas/flavorprofiles", &Api::fpList},
      {"POST", "lbaas/flavorprofiles", &Api::fpCreate},
      {"GET", "lbaas/flavorprofiles/*", &Api::fpShow},
      {"PUT", "lbaas/flavorprofiles/*", &Api::fpUpdate},
      {"DELETE", "lbaas/flavorprofiles/*", &Api::fpDelete},
      {"GET", "lbaas/availabilityzones", &Api::azList},
      {"POST", "lbaas/availabilityzones", &Api::azCreate},
      {"GET", "lbaas/availabilityzones/*", &Api::azShow},
      {"PUT", "lbaas/availabilityzones/*", &Api::azUpdate},
      {"DELETE", "lbaas/availabilityzones/*", &Api::azDelete},
      {"GET", "lbaas/availabilityzoneprofiles", &Api::azpList},
      {"POST", "lbaas/availabilityzoneprofiles", &Api::azpCreate},
      {"GET", "lbaas/availabilityzoneprofiles/*", &Api::azpShow},
      {"PUT", "lbaas/availabilityzoneprofiles/*", &Api::azpUpdate},
      {"DELETE", "lbaas/availabilityzoneprofiles/*", &Api::azpDelete},
      {"GET", "networks", &Api::neutronNetworks},
      {"GET", "networks/*", &Api::neutronNetwork},
      {"GET", "subnets", &Api::neutronSubnets},
      {"GET", "subnets/*", &Api::neutronSubnet},
      {"GET", "octavia/amphorae", &Api::ampList},
      {"GET", "octavia/amphorae/*", &Api::ampShow},
      {"DELETE", "octavia/amphorae/*", &Api::ampDelete},
      {"PUT", "octavia/amphorae/*/failover", &Api::ampFailover},
      {"PUT", "octavia/amphorae/*/config", &Api::ampConfig},
      {"GET", "octavia/amphorae/*/stats", &Api::ampStats},
  };
  return r;
}

std::vector<std::string> splitPath(const std::string& path) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    if (end > start) out.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

bool matchRoute(const std::vector<std::string>& pattern, const std::vector<std::string>& segs,
                std::vector<std::string>& args) {
  if (pattern.size() != segs.size()) return false;
  std::vector<std::string> captured;
  for (size_t i = 0; i < segs.size(); ++i) {
    if (pattern[i] == "*") captured.push_back(segs[i]);
    else if (pattern[i] != segs[i]) return false;
  }
  args = std::move(captured);
  return true;
}

common::HttpResponse fault(int status, const std::string& message) {
  JsonDoc d(rapidjson::kObjectType);
  auto& a = d.GetAllocator();
  d.AddMember("faultcode", JsonValue(rapidjson::StringRef(status < 500 ? "Client" : "Server")), a);
  d.AddMember("faultstring", jstr(message, a), a);
  d.AddMember("debuginfo", JsonValue(), a);
  common::HttpResponse r;
  r.status = status;
  r.body = toJson(d);
  return r;
}

}  // namespace

ApiService::ApiService(store::Store& store, auth::Authenticator& authenticator,
                       const auth::Policy& policy, ApiOptions options)
    : impl_(std::make_unique<Api>(store, authenticator, policy, std::move(options))) {}
ApiService::~ApiService() = default;

common::HttpResponse ApiService::handle(const common::HttpRequest& request) {
  return impl_->handle(request);
}

Api::Api(store::Store& store, auth::Authenticator& authenticator, const auth::Policy& policy,
         ApiOptions options)
    : store_(store), authenticator_(authenticator), policy_(policy), opts_(std::move(options)) {
  if (opts_.default_listener_ciphers.empty()) opts_.default_listener_ciphers = kOwaspSuiteBCiphers;
  if (opts_.default_pool_ciphers.empty()) opts_.default_pool_ciphers = kOwaspSuiteBCiphers;
}

common::HttpResponse Api::handle(const common::HttpRequest& request) {
  Call c{request, {}, false, {}, "req-" + newUuid(), {}, {}, false};
  common::HttpResponse resp;
  try {
    std::string path = request.path.empty() ? "/" : request.path;
    // pecan accepts a ".json" extension on any URI.
    if (path.size() > 5 && path.compare(path.size() - 5, 5, ".json") == 0) path.resize(path.size() - 5);
    std::string scheme = request.header("X-Forwarded-Proto").value_or("http");
    std::string host = request.header("Host").value_or("localhost");
    std::string trimmed = path;
    while (trimmed.size() > 1 && trimmed.back() == '/') trimmed.pop_back();
    if (!opts_.api_base_uri.empty()) {
      std::string base = opts_.api_base_uri;
      while (!base.empty() && base.back() == '/') base.pop_back();
      c.path_url = base + trimmed;
    } else {
      c.path_url = scheme + "://" + host + trimmed;
    }
    auto segs = splitPath(path);

    if (segs.empty()) {
      if (request.method != "GET" && request.method != "HEAD") throwApi(405, "Method not allowed");
      resp = rootVersions(c);
    } else if (segs.size() == 1 && segs[0] == "healthcheck") {
      resp = healthcheck(c);
    } else if (segs[0] != "v2" && segs[0] != "v2.0") {
      throwApi(404, "The resource could not be found.");
    } else {
      segs.erase(segs.begin());
      const Route* found = nullptr;
      bool path_known = false;
      // Split once: every request walks the whole table.
      static const std::vector<std::vector<std::string>> kPatterns = [] {
        std::vector<std::vector<std::string>> out;
        for (const auto& r : routes()) out.push_back(splitPath(r.pattern));
        return out;
      }();
      for (size_t ri = 0; ri < routes().size(); ++ri) {
        const Route& r = routes()[ri];
        std::vector<std::string> args;
        if (!matchRoute(kPatterns[ri], segs, args)) continue;
        path_known = true;
        if (request.method == r.method || (request.method == "HEAD" && std::strcmp(r.method, "GET") == 0)) {
          found = &r;
          c.args = std::move(args);
          break;
        }
      }
      if (!found) {
        if (path_known) throwApi(405, "The server could not comply with the request since it is either "
                                      "malformed or otherwise incorrect.");
        throwApi(404, "The resource could not be found.");
      }
      auth::AuthOutcome outcome = authenticator_.authenticate(
          [&request](std::string_view name) { return request.header(name); });
      if (outcome.status == auth::AuthOutcome::Status::kUnavailable) {
        LB_WARN("authentication backend unavailable reason=%s req=%s", outcome.reason.c_str(),
                c.request_id.c_str());
        throwApi(503, "The authentication service is unavailable.");
      }
      if (outcome.status != auth::AuthOutcome::Status::kOk) {
        common::HttpResponse r;
        r.status = 401;
        r.body = R"({"error": {"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}})";
        if (!outcome.www_authenticate.empty())
          r.headers.emplace_back("WWW-Authenticate", outcome.www_authenticate);
        r.headers.emplace_back("x-openstack-request-id", c.request_id);
        return r;
      }
      c.creds = std::move(outcome.credentials);
      if (opts_.noauth && c.creds.project_id.empty()) c.creds.project_id = opts_.noauth_project_id;
      c.is_admin = opts_.noauth || c.creds.is_admin || auth::isAdminContext(policy_, c.creds);
      resp = (this->*(found->handler))(c);
      for (const auto& lb_id : c.settle_lbs) settleLoadBalancer(lb_id);
    }
  } catch (const ApiError& e) {
    if (e.status() >= 500) {
      LB_WARN("request failed status=%d method=%s path=%s req=%s error=%s", e.status(),
              request.method.c_str(), request.path.c_str(), c.request_id.c_str(), e.message().c_str());
    } else {
      LB_DEBUG("request rejected status=%d method=%s path=%s req=%s error=%s", e.status(),
               request.method.c_str(), request.path.c_str(), c.request_id.c_str(), e.message().c_str());
    }
    resp = fault(e.status(), e.message());
  } catch (const std::exception& e) {
    LB_ERROR("unexpected error method=%s path=%s req=%s error=%s", request.method.c_str(),
             request.path.c_str(), c.request_id.c_str(), e.what());
    resp = fault(500, "Internal Server Error");
  }
  if (request.method == "HEAD") resp.body.clear();
  resp.headers.emplace_back("x-openstack-request-id", c.request_id);
  return resp;
}

common::HttpResponse Api::rootVersions(Call& c) {
  struct V { const char* id; const char* updated; };
  static const V versions[] = {
      {"v2.0", "2016-12-11T00:00:00Z"}, {"v2.1", "2018-04-20T00:00:00Z"},
      {"v2.2", "2018-07-31T00:00:00Z"}, {"v2.3", "2018-12-18T00:00:00Z"},
      {"v2.4", "2018-12-19T00:00:00Z"}, {"v2.5", "2019-01-21T00:00:00Z"},
      {"v2.6", "2019-01-25T00:00:00Z"}, {"v2.7", "2018-01-25T12:00:00Z"},
      {"v2.8", "2019-02-12T00:00:00Z"}, {"v2.9", "2019-03-04T00:00:00Z"},
      {"v2.10", "2019-03-05T00:00:00Z"}, {"v2.11", "2019-06-24T00:00:00Z"},
      {"v2.12", "2019-09-11T00:00:00Z"}, {"v2.13", "2019-09-13T00:00:00Z"},
      {"v2.14", "2019-11-10T00:00:00Z"}, {"v2.15", "2020-03-10T00:00:00Z"},
      {"v2.16", "2020-03-15T00:00:00Z"}, {"v2.17", "2020-04-29T00:00:00Z"},
      {"v2.18", "2020-04-29T01:00:00Z"}, {"v2.19", "2020-05-12T00:00:00Z"},
      {"v2.20", "2020-08-02T00:00:00Z"}, {"v2.21", "2020-09-03T00:00:00Z"},
      {"v2.22", "2020-09-04T00:00:00Z"}, {"v2.23", "2020-09-07T00:00:00Z"},
      {"v2.24", "2020-10-15T00:00:00Z"}, {"v2.25", "2021-10-02T00:00:00Z"},
      {"v2.26", "2022-08-29T00:00:00Z"},
  };
  std::string host_url = c.path_url;
  if (host_url.empty() || host_url.back() != '/') host_url += '/';
  JsonDoc d(rapidjson::kObjectType);
  auto& a = d.GetAllocator();
  JsonValue list(rapidjson::kArrayType);
  const size_t n = sizeof versions / sizeof versions[0];
  for (size_t i = 0; i < n; ++i) {
    JsonValue v(rapidjson::kObjectType);
    v.AddMember("id", JsonValue(rapidjson::StringRef(versions[i].id)), a);
    v.AddMember("status", JsonValue(rapidjson::StringRef(i + 1 == n ? "CURRENT" : "SUPPORTED")), a);
    v.AddMember("updated", JsonValue(rapidjson::StringRef(versions[i].updated)), a);
    JsonValue links(rapidjson::kArrayType);
    JsonValue link(rapidjson::kObjectType);
    link.AddMember("href", jstr(host_url + "v2", a), a);
    link.AddMember("rel", "self", a);
    links.PushBack(std::move(link), a);
    v.AddMember("links", std::move(links), a);
    list.PushBack(std::move(v), a);
  }
  d.AddMember("versions", std::move(list), a);
  return jsonValue(200, d);
}

common::HttpResponse Api::v2String(Call&) {
  common::HttpResponse r;
  r.body = "\"v2\"";
  return r;
}

common::HttpResponse Api::healthcheck(Call& c) {
  if (!opts_.healthcheck_enabled) throwApi(404, "The resource could not be found.");
  if (c.http.method != "GET" && c.http.method != "HEAD") throwApi(405, "Method not allowed");
  // oslo.middleware's healthcheck answers "OK" in text unless JSON is asked for.
  bool bad = false;
  read([&](Txn& t) {
    auto r = t.count(store::Query{kQuota, {}, {}, {}, {}});
    bad = !r.ok();
  });
  common::HttpResponse r;
  r.status = bad ? 503 : 200;
  r.content_type = "text/plain";
  r.body = bad ? "database unavailable" : "OK";
  return r;
}

}  // namespace banyan::provider::api
