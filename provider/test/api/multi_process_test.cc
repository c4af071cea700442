// Several `banyan-provider api` processes on one PostgreSQL (issue 6): two real
// processes (the binary, started and stopped by PID) on a database of a throwaway
// PostgreSQL server, driven concurrently over HTTP. Quotas must hold across processes,
// no update may be lost, nothing may answer 500, every object must end ACTIVE or be
// gone, and a change that meets a PENDING parent gets Octavia's 409.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "api/json_util.h"
#include "banyan/common/http_client.h"
#include "store/store.h"
#include "support/postgres_server.h"

#ifndef BANYAN_PROVIDER_BIN
#error "BANYAN_PROVIDER_BIN must name the banyan-provider binary"
#endif

namespace banyan::provider::api {
namespace {

using provider::testing::PostgresEnvironment;

const auto* const kPostgresEnv = ::testing::AddGlobalTestEnvironment(new PostgresEnvironment);

// The netns driver's default VIP network, which the amphora provider checks.
constexpr const char* kSubnet = "00000000-0000-4000-8000-203000113000";
constexpr auto kRequestTimeout = std::chrono::milliseconds(30000);
constexpr int kDefaultLbQuota = 4;

int freePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  int port = -1;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) == 0)
    port = ntohs(sa.sin_port);
  ::close(fd);
  return port;
}

struct Reply {
  int status = 0;
  std::string body;
  JsonDoc json;
};

// One `banyan-provider api` process: its own config and state dir, a free port, the
// shared database. Stopped by PID (SIGTERM, then SIGKILL); dies with the test thread.
class ProviderProcess {
 public:
  // api_settings: more [api_settings] lines, each ending in a newline.
  ProviderProcess(const std::string& dir, const std::string& database_url, const std::string& api_settings = "")
      : dir_(dir) {
    std::filesystem::create_directories(dir_);
    for (int attempt = 0; attempt < 5 && pid_ < 0; ++attempt) {
      port_ = freePort();
      writeConfig(database_url, api_settings);
      pid_ = spawn();
      if (pid_ > 0 && !waitReady()) stop();
    }
    auto client = common::makeHttpClient();
    if (client.ok()) client_ = std::move(client.value());
  }
  ~ProviderProcess() { stop(); }

  bool running() const { return pid_ > 0; }
  std::string log() const {
    std::ifstream in(dir_ + "/provider.log");
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  // A new client per call keeps the method usable from many threads at once.
  Reply call(const std::string& method, const std::string& path, const std::string& body = "",
             const std::string& project = "project-a") {
    common::HttpHeaders headers = {{"Accept", "application/json"}, {"X-Project-Id", project}};
    if (!body.empty()) headers.emplace_back("Content-Type", "application/json");
    auto client = common::makeHttpClient();
    Reply out;
    if (!client.ok()) return out;
    auto r = client.value()->request(method, "http://127.0.0.1:" + std::to_string(port_) + path, headers,
                                     body, kRequestTimeout);
    if (!r.ok()) {
      out.body = r.error().message;
      return out;
    }
    out.status = r->status;
    out.body = r->body;
    if (auto doc = parseJson(r->body)) out.json = std::move(*doc);
    return out;
  }

 private:
  void writeConfig(const std::string& database_url, const std::string& api_settings) {
    std::ofstream conf(dir_ + "/provider.conf");
    conf << "[DEFAULT]\nstate_dir = " << dir_ << "\n\n"
         << "[api_settings]\nbind_host = 127.0.0.1\nbind_port = " << port_ << "\nauth_strategy = noauth\n"
         << "enabled_provider_drivers = noop_driver:The no-op driver.,amphora:The Octavia Amphora driver.\n"
         << "default_provider_driver = noop_driver\n"
         << api_settings << "\n"
         << "[database]\nconnection = " << database_url << "\n\n"
         // No test creates more than this in one project except to meet it; with no
         // quota record only the store's quota lock keeps the count (a record's row
         // lock would serialise the creates by itself).
         << "[quotas]\ndefault_load_balancer_quota = " << kDefaultLbQuota << "\n";
  }

  pid_t spawn() {
    std::string conf = dir_ + "/provider.conf";
    std::string logfile = dir_ + "/provider.log";
    pid_t pid = ::fork();
    if (pid != 0) return pid;
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    int fd = ::open(logfile.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    ::execl(BANYAN_PROVIDER_BIN, BANYAN_PROVIDER_BIN, "--config-file", conf.c_str(), "api",
            static_cast<char*>(nullptr));
    ::_exit(127);
  }

  bool waitReady() {
    auto client = common::makeHttpClient();
    if (!client.ok()) return false;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      auto r = client.value()->request("GET", "http://127.0.0.1:" + std::to_string(port_) + "/", {}, "",
                                       std::chrono::milliseconds(1000));
      if (r.ok() && r->status == 200) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 200; ++i) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  std::string dir_;
  int port_ = 0;
  pid_t pid_ = -1;
  std::unique_ptr<common::HttpClient> client_;
};

class MultiProcessApi : public ::testing::Test {
 protected:
  void SetUp() override {
    auto* server = PostgresEnvironment::server();
    ASSERT_NE(server, nullptr);
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    static int runs = 0;  // --gtest_repeat runs a test again on the same server
    std::string db = "mp_" + std::string(info->name()) + "_" + std::to_string(runs++);
    for (char& ch : db) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    auto created = server->createDatabase(db);
    ASSERT_TRUE(created.ok()) << created.error().message;
    url_ = created.value();
    char tmpl[] = "/tmp/banyan-mp-api-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    a_ = std::make_unique<ProviderProcess>(dir_ + "/a", url_);
    b_ = std::make_unique<ProviderProcess>(dir_ + "/b", url_);
    ASSERT_TRUE(a_->running()) << a_->log();
    ASSERT_TRUE(b_->running()) << b_->log();
  }

  void TearDown() override {
    a_.reset();
    b_.reset();
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }

  ProviderProcess& process(int i) { return i % 2 == 0 ? *a_ : *b_; }

  std::string createLb(ProviderProcess& p, const std::string& project, const std::string& extra = "") {
    Reply r = p.call("POST", "/v2/lbaas/loadbalancers",
                     std::string(R"({"loadbalancer":{"vip_subnet_id":")") + kSubnet + "\"" + extra + "}}", project);
    EXPECT_EQ(r.status, 201) << r.body;
    return r.status == 201 ? jstring(r.json["loadbalancer"], "id") : "";
  }

  // Sets a stored load balancer's provisioning status directly, as a controller would.
  void setLbStatus(const std::string& lb_id, const std::string& status) {
    auto store = store::openStore(url_);
    ASSERT_TRUE(store.ok()) << store.error().message;
    auto r = store.value()->write([&](store::Transaction& t) -> common::Result<void> {
      auto got = t.get("loadbalancer", lb_id);
      if (!got.ok()) return got.error();
      store::Record rec = std::move(*got.value());
      auto doc = parseJson(rec.body);
      jsetStr(*doc, "provisioning_status", status, doc->GetAllocator());
      rec.body = toJson(*doc);
      return t.update(rec);
    });
    ASSERT_TRUE(r.ok()) << r.error().message;
  }

  std::string url_;
  std::string dir_;
  std::unique_ptr<ProviderProcess> a_, b_;
};

// Runs fn(i) on n threads at once and joins them.
void concurrently(int n, const std::function<void(int)>& fn) {
  std::vector<std::thread> threads;
  std::atomic<int> ready{0};
  for (int i = 0; i < n; ++i)
    threads.emplace_back([&, i] {
      ready.fetch_add(1);
      while (ready.load() < n) std::this_thread::yield();
      fn(i);
    });
  for (auto& t : threads) t.join();
}

TEST_F(MultiProcessApi, AnObjectCreatedThroughOneProcessIsServedByTheOther) {
  std::string lb = createLb(*a_, "project-a", R"(,"name":"shared")");
  Reply r = b_->call("GET", "/v2/lbaas/loadbalancers/" + lb);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(jstring(r.json["loadbalancer"], "name"), "shared");
  EXPECT_EQ(jstring(r.json["loadbalancer"], "provisioning_status"), "ACTIVE");
}

TEST_F(MultiProcessApi, LoadBalancerQuotaHoldsWhenBothProcessesCreateAtOnce) {
  // The configured default quota (kDefaultLbQuota = 4): no quota record exists.
  std::mutex mu;
  std::map<int, int> statuses;
  concurrently(16, [&](int i) {
    for (int k = 0; k < 2; ++k) {
      Reply r = process(i).call("POST", "/v2/lbaas/loadbalancers",
                                std::string(R"({"loadbalancer":{"vip_subnet_id":")") + kSubnet + "\"}}",
                                "project-q");
      std::lock_guard<std::mutex> lock(mu);
      ++statuses[r.status];
    }
  });
  EXPECT_EQ(statuses[201], 4);
  EXPECT_EQ(statuses[403], 28);
  EXPECT_EQ(statuses.size(), 2u);
  Reply list = b_->call("GET", "/v2/lbaas/loadbalancers?project_id=project-q");
  ASSERT_EQ(list.status, 200);
  ASSERT_EQ(list.json["loadbalancers"].Size(), 4u);
  for (const auto& lb : list.json["loadbalancers"].GetArray()) {
    EXPECT_EQ(jstring(lb, "provisioning_status"), "ACTIVE");
  }
}

TEST_F(MultiProcessApi, MemberQuotaHoldsAcrossPoolsAndProcesses) {
  Reply q = a_->call("PUT", "/v2/lbaas/quotas/project-m", R"({"quota":{"member":5}})");
  ASSERT_EQ(q.status, 202) << q.body;
  // Two load balancers, so the member creates do not queue on one load balancer lock.
  std::vector<std::string> pools;
  for (int i = 0; i < 2; ++i) {
    std::string lb = createLb(*a_, "project-m");
    Reply p = a_->call("POST", "/v2/lbaas/pools",
                       R"({"pool":{"loadbalancer_id":")" + lb + R"(","protocol":"HTTP","lb_algorithm":"ROUND_ROBIN"}})",
                       "project-m");
    ASSERT_EQ(p.status, 201) << p.body;
    pools.push_back(jstring(p.json["pool"], "id"));
  }
  std::mutex mu;
  std::map<int, int> statuses;
  concurrently(8, [&](int i) {
    for (int k = 0; k < 40; ++k) {
      Reply r = process(i).call("POST", "/v2/lbaas/pools/" + pools[i % 2] + "/members",
                                R"({"member":{"address":"192.0.2.)" + std::to_string(10 + i) +
                                    R"(","protocol_port":)" + std::to_string(1000 + k) + "}}",
                                "project-m");
      std::lock_guard<std::mutex> lock(mu);
      ++statuses[r.status];
      if (r.status == 403) return;  // the quota is met: this thread is done
    }
  });
  // 409: the pool's load balancer was PENDING_UPDATE for another member create.
  for (const auto& [status, n] : statuses) {
    EXPECT_TRUE(status == 201 || status == 403 || status == 409) << status;
  }
  EXPECT_EQ(statuses[201], 5);
  int members = 0;
  for (const auto& pool : pools) {
    Reply l = b_->call("GET", "/v2/lbaas/pools/" + pool + "/members", "", "project-m");
    ASSERT_EQ(l.status, 200);
    members += static_cast<int>(l.json["members"].Size());
    for (const auto& m : l.json["members"].GetArray()) {
      EXPECT_EQ(jstring(m, "provisioning_status"), "ACTIVE");
    }
  }
  EXPECT_EQ(members, 5);
}

TEST_F(MultiProcessApi, UpdatesOfOneLoadBalancerFromBothProcessesAreNeverLost) {
  std::string lb = createLb(*a_, "project-a");
  // Thread 0 (process a) renames, thread 1 (process b) rewrites the description; each
  // retries on 409 (the other's change still PENDING_UPDATE) until its change lands.
  constexpr int kRounds = 25;
  std::atomic<int> unexpected{0};
  std::string last_name, last_description;
  concurrently(2, [&](int i) {
    for (int k = 0; k < kRounds; ++k) {
      std::string value = (i == 0 ? "name-" : "desc-") + std::to_string(k);
      std::string field = i == 0 ? "name" : "description";
      bool done = false;
      for (int attempt = 0; attempt < 500 && !done; ++attempt) {
        Reply r = process(i).call("PUT", "/v2/lbaas/loadbalancers/" + lb,
                                  R"({"loadbalancer":{")" + field + R"(":")" + value + R"("}})");
        if (r.status == 200) done = true;
        else if (r.status != 409) unexpected.fetch_add(1);
        else std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      if (!done) unexpected.fetch_add(1);
      (i == 0 ? last_name : last_description) = value;
    }
  });
  EXPECT_EQ(unexpected.load(), 0);
  Reply r = b_->call("GET", "/v2/lbaas/loadbalancers/" + lb);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(jstring(r.json["loadbalancer"], "name"), last_name);
  EXPECT_EQ(jstring(r.json["loadbalancer"], "description"), last_description);
  EXPECT_EQ(jstring(r.json["loadbalancer"], "provisioning_status"), "ACTIVE");
}

TEST_F(MultiProcessApi, ChangesUnderAPendingLoadBalancerGet409FromEitherProcess) {
  // The amphora provider queues a job that no worker claims here: the load balancer
  // stays PENDING_CREATE.
  std::string lb = createLb(*a_, "project-a", R"(,"provider":"amphora")");
  std::mutex mu;
  std::map<int, int> statuses;
  concurrently(6, [&](int i) {
    Reply r = process(i).call("POST", "/v2/lbaas/listeners",
                              R"({"listener":{"loadbalancer_id":")" + lb + R"(","protocol":"HTTP","protocol_port":)" +
                                  std::to_string(8000 + i) + "}}");
    std::lock_guard<std::mutex> lock(mu);
    ++statuses[r.status];
    if (r.status == 409) {
      EXPECT_EQ(jstring(r.json, "faultstring"), "Load Balancer " + lb + " is immutable and cannot be updated.");
    }
  });
  EXPECT_EQ(statuses[409], 6);

  // Once ACTIVE, concurrent child changes from both processes: the first takes the load
  // balancer to PENDING_UPDATE, every other one gets 409.
  setLbStatus(lb, "ACTIVE");
  statuses.clear();
  concurrently(10, [&](int i) {
    Reply r = process(i).call("POST", "/v2/lbaas/listeners",
                              R"({"listener":{"loadbalancer_id":")" + lb + R"(","protocol":"HTTP","protocol_port":)" +
                                  std::to_string(9000 + i) + "}}");
    std::lock_guard<std::mutex> lock(mu);
    ++statuses[r.status];
  });
  EXPECT_EQ(statuses[201], 1);
  EXPECT_EQ(statuses[409], 9);
  Reply got = b_->call("GET", "/v2/lbaas/loadbalancers/" + lb);
  EXPECT_EQ(jstring(got.json["loadbalancer"], "provisioning_status"), "PENDING_UPDATE");
  EXPECT_EQ(got.json["loadbalancer"]["listeners"].Size(), 1u);
  auto store = store::openStore(url_);
  ASSERT_TRUE(store.ok());
  auto pending = store.value()->pendingJobs();
  ASSERT_TRUE(pending.ok());
  EXPECT_EQ(pending.value(), 2);  // loadbalancer.create and the one listener.create
}

TEST_F(MultiProcessApi, ConcurrentDeletesOfOneLoadBalancerSucceedOnce) {
  std::string lb = createLb(*a_, "project-a");
  Reply p = a_->call("POST", "/v2/lbaas/pools",
                     R"({"pool":{"loadbalancer_id":")" + lb + R"(","protocol":"HTTP","lb_algorithm":"ROUND_ROBIN"}})");
  ASSERT_EQ(p.status, 201) << p.body;
  std::mutex mu;
  std::map<int, int> statuses;
  concurrently(8, [&](int i) {
    Reply r = process(i).call("DELETE", "/v2/lbaas/loadbalancers/" + lb + "?cascade=true");
    std::lock_guard<std::mutex> lock(mu);
    ++statuses[r.status];
  });
  EXPECT_EQ(statuses[204], 1);
  // The losers saw it PENDING_DELETE (409) or already gone (404).
  EXPECT_EQ(statuses[404] + statuses[409], 7);
  EXPECT_EQ(a_->call("GET", "/v2/lbaas/loadbalancers/" + lb).status, 404);
  EXPECT_EQ(b_->call("GET", "/v2/lbaas/pools/" + jstring(p.json["pool"], "id")).status, 404);
}

TEST_F(MultiProcessApi, ChurnFromBothProcessesEndsWithEveryObjectActiveOrGone) {
  // Shared load balancers, so the threads collide on purpose.
  std::vector<std::string> lbs, pools;
  for (int i = 0; i < 3; ++i) {
    lbs.push_back(createLb(*a_, "project-c"));
    Reply p = b_->call("POST", "/v2/lbaas/pools",
                       R"({"pool":{"loadbalancer_id":")" + lbs.back() +
                           R"(","protocol":"HTTP","lb_algorithm":"ROUND_ROBIN"}})",
                       "project-c");
    ASSERT_EQ(p.status, 201) << p.body;
    pools.push_back(jstring(p.json["pool"], "id"));
  }
  std::mutex mu;
  std::map<int, int> statuses;
  std::vector<std::string> errors;
  concurrently(8, [&](int i) {
    for (int k = 0; k < 15; ++k) {
      ProviderProcess& p = process(i + k);
      const std::string& pool = pools[(i + k) % pools.size()];
      std::vector<Reply> replies;
      Reply m = p.call("POST", "/v2/lbaas/pools/" + pool + "/members",
                       R"({"member":{"address":"192.0.2.)" + std::to_string(10 + i) + R"(","protocol_port":)" +
                           std::to_string(2000 + k) + "}}",
                       "project-c");
      if (m.status == 201) {
        std::string id = jstring(m.json["member"], "id");
        replies.push_back(p.call("PUT", "/v2/lbaas/pools/" + pool + "/members/" + id,
                                 R"({"member":{"weight":7}})", "project-c"));
        if (k % 2 == 0)
          replies.push_back(p.call("DELETE", "/v2/lbaas/pools/" + pool + "/members/" + id, "", "project-c"));
      }
      replies.push_back(std::move(m));
      replies.push_back(p.call("PUT", "/v2/lbaas/loadbalancers/" + lbs[k % lbs.size()],
                               R"({"loadbalancer":{"description":"t)" + std::to_string(i) + R"("}})",
                               "project-c"));
      std::lock_guard<std::mutex> lock(mu);
      for (const auto& r : replies) {
        ++statuses[r.status];
        if (r.status >= 500 || r.status == 0) errors.push_back(std::to_string(r.status) + " " + r.body);
      }
    }
  });
  EXPECT_TRUE(errors.empty()) << errors.front();
  for (const auto& [status, n] : statuses) {
    EXPECT_TRUE(status == 200 || status == 201 || status == 204 || status == 409) << status << " x" << n;
  }
  EXPECT_GT(statuses[201], 0);
  for (size_t i = 0; i < lbs.size(); ++i) {
    Reply lb = a_->call("GET", "/v2/lbaas/loadbalancers/" + lbs[i], "", "project-c");
    EXPECT_EQ(jstring(lb.json["loadbalancer"], "provisioning_status"), "ACTIVE");
    Reply ms = b_->call("GET", "/v2/lbaas/pools/" + pools[i] + "/members", "", "project-c");
    for (const auto& m : ms.json["members"].GetArray()) {
      EXPECT_EQ(jstring(m, "provisioning_status"), "ACTIVE") << jstring(m, "id");
    }
  }
}

// Unless the URL sizes it, the PostgreSQL pool has a connection for every API handler
// thread: a read is answered while every write thread holds a connection, each write
// waiting for the load balancer's lock (held here as another process's write would).
// With the former fixed pool of eight, the ten writes took all eight connections and
// the read waited for the lock's release.
TEST_F(MultiProcessApi, AReadIsAnsweredWhileEveryWriteThreadHoldsAConnection) {
  ProviderProcess p(dir_ + "/c", url_, "handler_threads = 2\nwrite_handler_threads = 10\n");
  ASSERT_TRUE(p.running()) << p.log();
  const std::string lb = createLb(p, "project-a");
  ASSERT_FALSE(lb.empty());
  auto holder_store = store::openStore(url_);
  ASSERT_TRUE(holder_store.ok()) << holder_store.error().message;
  std::promise<void> locked, release;
  std::shared_future<void> released = release.get_future().share();
  std::thread holder([&] {
    auto r = holder_store.value()->write([&](store::Transaction& t) -> common::Result<void> {
      auto got = t.lockKey("loadbalancer:" + lb);
      locked.set_value();
      released.wait();
      return got;
    });
    EXPECT_TRUE(r.ok()) << r.error().message;
  });
  locked.get_future().wait();
  std::vector<std::thread> writers;
  std::atomic<int> writes_answered{0};
  for (int i = 0; i < 10; ++i)
    writers.emplace_back([&, i] {
      Reply r = p.call("PUT", "/v2/lbaas/loadbalancers/" + lb,
                       R"({"loadbalancer":{"description":"w)" + std::to_string(i) + R"("}})");
      if (r.status != 0) ++writes_answered;
    });
  // Long enough for every write to take its thread and connection and reach the lock.
  std::this_thread::sleep_for(std::chrono::seconds(2));
  auto read = std::async(std::launch::async, [&] { return p.call("GET", "/v2/lbaas/loadbalancers/" + lb); });
  const bool read_in_time = read.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
  release.set_value();
  holder.join();
  for (auto& t : writers) t.join();
  ASSERT_TRUE(read_in_time) << "the read waited for the writes' lock";
  Reply r = read.get();
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(writes_answered.load(), 10);
}

}  // namespace
}  // namespace banyan::provider::api
