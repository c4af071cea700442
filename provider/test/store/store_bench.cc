// Times the store's hot paths on both backends: 1,000 load balancers and 10,000
// members inserted, then get/list/count the way the API serves GET requests.
// Not a ctest. Usage: provider_store_bench [--sqlite-only] [--postgres-url URL]
// (without a URL it starts a throwaway PostgreSQL like the tests do).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>

#include "banyan/common/logging.h"
#include "store/store.h"
#include "support/postgres_server.h"

namespace {

using banyan::common::Result;
using namespace banyan::provider::store;
using Clock = std::chrono::steady_clock;

constexpr int kLoadBalancers = 1000;
constexpr int kMembersPerLb = 10;
constexpr int kProjects = 10;

std::string lbId(int i) { return "lb-" + std::to_string(i); }

struct Timer {
  Clock::time_point start = Clock::now();
  double ms() const { return std::chrono::duration<double, std::milli>(Clock::now() - start).count(); }
};

void report(const char* backend, const char* what, int ops, double ms) {
  std::printf("%-10s %-44s %7d ops %10.1f ms %10.1f us/op\n", backend, what, ops, ms, ms * 1000.0 / ops);
}

bool check(const Result<void>& r, const char* what) {
  if (r.ok()) return true;
  std::fprintf(stderr, "%s failed: %s\n", what, r.error().message.c_str());
  return false;
}

bool bench(const char* backend, Store& store) {
  std::string body(600, 'x');  // about the size of an Octavia member/LB document
  body = "{\"pad\":\"" + body + "\"}";
  Timer insert_lbs;
  for (int i = 0; i < kLoadBalancers; ++i) {
    auto r = store.write([&](Transaction& tx) -> Result<void> {
      Record lb{.kind = "loadbalancer", .id = lbId(i), .project_id = "project-" + std::to_string(i % kProjects),
                .parent_id = "", .load_balancer_id = lbId(i), .body = body};
      if (auto l = tx.lockKey("quota:" + lb.project_id); !l.ok()) return l;
      if (auto c = tx.count({.kind = "loadbalancer", .project_id = lb.project_id}); !c.ok()) return c.error();
      if (auto w = tx.insert(lb); !w.ok()) return w;
      auto j = tx.enqueueJob({.kind = "loadbalancer.create", .payload = "{}", .serial_key = lb.id});
      if (!j.ok()) return j.error();
      return {};
    });
    if (!check(r, "insert load balancer")) return false;
  }
  report(backend, "insert LB (+quota lock, count, job), 1 tx each", kLoadBalancers, insert_lbs.ms());

  Timer insert_members;
  for (int i = 0; i < kLoadBalancers; ++i) {
    auto r = store.write([&](Transaction& tx) -> Result<void> {
      for (int m = 0; m < kMembersPerLb; ++m) {
        Record member{.kind = "member", .id = lbId(i) + "-m" + std::to_string(m),
                      .project_id = "project-" + std::to_string(i % kProjects),
                      .parent_id = "pool-" + std::to_string(i), .load_balancer_id = lbId(i), .body = body};
        if (auto w = tx.insert(member); !w.ok()) return w;
      }
      return {};
    });
    if (!check(r, "insert members")) return false;
  }
  report(backend, "insert 10 members per tx", kLoadBalancers * kMembersPerLb, insert_members.ms());

  std::mt19937 rng(42);
  constexpr int kGets = 5000;
  Timer gets;
  for (int i = 0; i < kGets; ++i) {
    int lb = static_cast<int>(rng() % kLoadBalancers);
    auto r = store.read([&](Transaction& tx) -> Result<void> {
      auto g = tx.get("member", lbId(lb) + "-m" + std::to_string(rng() % kMembersPerLb));
      if (!g.ok()) return g.error();
      if (!g->has_value()) return banyan::common::makeError(banyan::common::ErrorCode::kNotFound, "missing");
      return {};
    });
    if (!check(r, "get")) return false;
  }
  report(backend, "get member by id, 1 read tx each", kGets, gets.ms());

  constexpr int kLists = 2000;
  Timer lists;
  for (int i = 0; i < kLists; ++i) {
    auto r = store.read([&](Transaction& tx) -> Result<void> {
      auto l = tx.list({.kind = "member", .parent_id = "pool-" + std::to_string(rng() % kLoadBalancers)});
      if (!l.ok()) return l.error();
      return l->size() == kMembersPerLb ? Result<void>() : banyan::common::makeError(
                                                               banyan::common::ErrorCode::kInternal, "count");
    });
    if (!check(r, "list by pool")) return false;
  }
  report(backend, "list 10 members of a pool", kLists, lists.ms());

  constexpr int kProjectLists = 100;
  Timer project_lists;
  for (int i = 0; i < kProjectLists; ++i) {
    auto r = store.read([&](Transaction& tx) -> Result<void> {
      auto l = tx.list({.kind = "loadbalancer", .project_id = "project-" + std::to_string(i % kProjects)});
      if (!l.ok()) return l.error();
      return {};
    });
    if (!check(r, "list by project")) return false;
  }
  report(backend, "list 100 LBs of a project", kProjectLists, project_lists.ms());

  constexpr int kCounts = 2000;
  Timer counts;
  for (int i = 0; i < kCounts; ++i) {
    auto r = store.read([&](Transaction& tx) -> Result<void> {
      auto c = tx.count({.kind = "member", .load_balancer_id = lbId(static_cast<int>(rng() % kLoadBalancers))});
      if (!c.ok()) return c.error();
      return {};
    });
    if (!check(r, "count")) return false;
  }
  report(backend, "count members of an LB", kCounts, counts.ms());

  constexpr int kFullLists = 10;
  Timer full;
  for (int i = 0; i < kFullLists; ++i) {
    auto r = store.read([&](Transaction& tx) -> Result<void> {
      auto l = tx.list({.kind = "member"});
      if (!l.ok()) return l.error();
      return l->size() == kLoadBalancers * kMembersPerLb
                 ? Result<void>()
                 : banyan::common::makeError(banyan::common::ErrorCode::kInternal, "size");
    });
    if (!check(r, "list all")) return false;
  }
  report(backend, "list all 10,000 members", kFullLists, full.ms());

  Timer claims;
  int claimed = 0;
  for (int i = 0; i < kLoadBalancers; ++i) {
    auto j = store.claimJob("bench", std::chrono::seconds(60));
    if (!j.ok() || !j->has_value()) break;
    if (!check(store.finishJob((*j)->id, "bench"), "finish")) return false;
    ++claimed;
  }
  report(backend, "claim + finish a job", claimed, claims.ms());
  return claimed == kLoadBalancers;
}

}  // namespace

int main(int argc, char** argv) {
  bool sqlite_only = false;
  std::string pg_url;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--sqlite-only") == 0) sqlite_only = true;
    else if (std::strcmp(argv[i], "--postgres-url") == 0 && i + 1 < argc) pg_url = argv[++i];
    else {
      std::fprintf(stderr, "usage: %s [--sqlite-only] [--postgres-url URL]\n", argv[0]);
      return 2;
    }
  }
  banyan::common::setLogLevel(banyan::common::LogLevel::kWarning);
  bool ok = true;
  {
    char templ[] = "/tmp/banyan-store-bench-XXXXXX";
    if (::mkdtemp(templ) == nullptr) return 1;
    auto store = openStore(std::string("sqlite:///") + templ + "/banyan.sqlite");
    if (!store.ok()) {
      std::fprintf(stderr, "sqlite: %s\n", store.error().message.c_str());
      return 1;
    }
    ok &= bench("sqlite", **store);
    store->reset();
    std::filesystem::remove_all(templ);
  }
  if (!sqlite_only) {
    std::unique_ptr<banyan::provider::testing::PostgresServer> server;
    if (pg_url.empty()) {
      auto started = banyan::provider::testing::PostgresServer::start();
      if (!started.ok()) {
        std::fprintf(stderr, "postgres: %s\n", started.error().message.c_str());
        return 1;
      }
      server = std::move(*started);
      pg_url = server->url();
    }
    auto store = openStore(pg_url);
    if (!store.ok()) {
      std::fprintf(stderr, "postgresql: %s\n", store.error().message.c_str());
      return 1;
    }
    ok &= bench("postgresql", **store);
  }
  return ok ? 0 : 1;
}
