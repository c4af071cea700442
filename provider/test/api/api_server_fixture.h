// Starts the real API (ApiService behind common::HttpServer on a free loopback port, a
// SQLite store in a per-test temp dir, or with BANYAN_API_TEST_POSTGRES a fresh database
// of the test binary's PostgreSQL server) and talks to it over HTTP.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include "api/api_service.h"
#include "api/json_util.h"
#include "auth/noauth.h"
#include "auth/policy.h"
#include "banyan/common/http_client.h"
#include "banyan/common/http_server.h"
#include "store/store.h"
#ifdef BANYAN_API_TEST_POSTGRES
#include <unistd.h>

#include <atomic>

#include "support/postgres_server.h"
#endif

namespace banyan::provider::api::testing {

// A test double for the RBAC tests: credentials straight from headers, never an admin
// context unless the policy says so (the noauth authenticator always is one).
class HeaderAuthenticator : public auth::Authenticator {
 public:
  auth::AuthOutcome authenticate(const auth::HeaderLookup& h) override {
    auth::AuthOutcome out;
    out.status = auth::AuthOutcome::Status::kOk;
    out.credentials.project_id = h("X-Project-Id").value_or("");
    out.credentials.user_id = "user-" + out.credentials.project_id;
    std::string roles = h("X-Roles").value_or("");
    size_t start = 0;
    while (start < roles.size()) {
      size_t end = roles.find(',', start);
      if (end == std::string::npos) end = roles.size();
      if (end > start) out.credentials.roles.push_back(roles.substr(start, end - start));
      start = end + 1;
    }
    return out;
  }
};

struct Reply {
  int status = 0;
  std::string body;
  std::string request_id;
  JsonDoc json;
};

class ApiServer {
 public:
  explicit ApiServer(ApiOptions options, bool rbac = false) {
    char tmpl[] = "/tmp/banyan-api-test-XXXXXX";
    dir_ = mkdtemp(tmpl);
#ifdef BANYAN_API_TEST_POSTGRES
    static std::atomic<int> databases{0};
    auto* pg = provider::testing::PostgresEnvironment::server();
    if (pg == nullptr) throw std::runtime_error("no PostgreSQL server for the test");
    auto db = pg->createDatabase("api_" + std::to_string(::getpid()) + "_" + std::to_string(databases++));
    if (!db.ok()) throw std::runtime_error("createDatabase: " + db.error().message);
    auto store = store::openStore(db.value());
#else
    auto store = store::openStore("sqlite:///" + dir_ + "/banyan.sqlite");
#endif
    if (!store.ok()) throw std::runtime_error("openStore: " + store.error().message);
    store_ = std::move(store.value());
    if (rbac) {
      authenticator_ = std::make_unique<HeaderAuthenticator>();
      options.noauth = false;
    } else {
      authenticator_ = auth::makeNoauthAuthenticator();
    }
    auto policy = auth::makeOctaviaPolicy("", !rbac);
    if (!policy.ok()) throw std::runtime_error("policy: " + policy.error().message);
    policy_ = std::move(policy.value());
    service_ = std::make_unique<ApiService>(*store_, *authenticator_, *policy_, std::move(options));
    common::HttpServerOptions http;
    auto server = common::startHttpServer(http, [this](const common::HttpRequest& r) { return service_->handle(r); });
    if (!server.ok()) throw std::runtime_error("server: " + server.error().message);
    server_ = std::move(server.value());
    auto client = common::makeHttpClient();
    if (!client.ok()) throw std::runtime_error("client: " + client.error().message);
    client_ = std::move(client.value());
  }
  ~ApiServer() {
    server_->stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  std::string base() const { return "http://127.0.0.1:" + std::to_string(server_->port()); }
  store::Store& store() { return *store_; }

  Reply call(const std::string& method, const std::string& path, const std::string& body = "",
             common::HttpHeaders headers = {}) {
    headers.emplace_back("Accept", "application/json");
    if (!body.empty()) headers.emplace_back("Content-Type", "application/json");
    auto r = client_->request(method, base() + path, headers, body, std::chrono::milliseconds(10000));
    Reply out;
    if (!r.ok()) {
      ADD_FAILURE() << method << " " << path << ": " << r.error().message;
      return out;
    }
    out.status = r->status;
    out.body = r->body;
    out.request_id = r->header("x-openstack-request-id").value_or("");
    auto doc = parseJson(r->body);
    if (doc) out.json = std::move(*doc);
    return out;
  }

 private:
  std::string dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<auth::Authenticator> authenticator_;
  std::unique_ptr<auth::Policy> policy_;
  std::unique_ptr<ApiService> service_;
  std::unique_ptr<common::HttpServer> server_;
  std::unique_ptr<common::HttpClient> client_;
};

inline ApiOptions noopOptions() {
  ApiOptions o;
  o.enabled_provider_drivers = {{"noop_driver", "The no-op driver."}, {"amphora", "The Octavia Amphora driver."}};
  o.default_provider_driver = "noop_driver";
  o.noauth_project_id = "project-a";
  return o;
}

}  // namespace banyan::provider::api::testing
