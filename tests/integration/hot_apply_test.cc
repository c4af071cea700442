// Applying new config documents to a running proxy: no request fails while
// 20 documents change weights, members and listeners under load; removed
// members finish their in-flight requests; untouched listeners keep their
// connections.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <memory>
#include <mutex>
#include <thread>

#include "fixtures.h"
#include "http_client.h"

namespace banyan::test {
namespace {

class HotApply : public ::testing::Test {
 protected:
  HotApply() {
    for (int i = 0; i < 5; ++i)
      members_.push_back(std::make_unique<TestHttpBackend>("m" + std::to_string(i + 1),
                                                           "127.0.0." + std::to_string(101 + i)));
  }
  MemberSpec member(int index, int weight = 1) const { return memberOf(*members_[index], weight); }
  ConfigSpec stepConfig(int step) const;

  uint16_t port_ = pickFreePort();
  uint16_t port2_ = pickFreePort();
  std::vector<std::unique_ptr<TestHttpBackend>> members_;
  std::unique_ptr<ProxyProcess> proxy_;
};

// Document `step` of the sequence: weights change every step, m4 and m5 come
// and go, and from step 5 on a second listener (port2) exists.
ConfigSpec HotApply::stepConfig(int step) const {
  uint16_t port = port_, port2 = port2_;
  std::vector<MemberSpec> ms = {member(0, step % 3 + 1), member(1, (step + 1) % 4 + 1),
                                member(2, 2)};
  if (step % 2 == 0) ms.push_back(member(3, 1));
  if (step % 3 == 0) ms.push_back(member(4, 3));
  ConfigSpec c = simpleConfig(port, ms);
  c.generation = 1 + static_cast<uint64_t>(step);
  if (step >= 5) {
    ListenerSpec l2 = c.listeners[0];
    l2.id = "l2";
    l2.protocol_port = port2;
    l2.default_pool_id = "p2";
    c.listeners.push_back(l2);
    PoolSpec p2;
    p2.id = "p2";
    // Member ids are unique within a document: the same test member under another id.
    MemberSpec again = member(4, 1);
    again.id = "m5-l2";
    p2.members = {again};
    c.pools.push_back(p2);
  }
  return c;
}

TEST_F(HotApply, TwentyAppliesUnderLoadFailNoRequest) {
  proxy_ = std::make_unique<ProxyProcess>(stepConfig(0).toJson());

  std::atomic<bool> done{false};
  std::atomic<int> total{0}, failed{0}, reconnects{0};
  std::mutex mu;
  std::vector<std::string> failures;
  auto fail = [&](const std::string& what) {
    ++failed;
    std::lock_guard lock(mu);
    if (failures.size() < 5) failures.push_back(what);
  };
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  auto worker = [&](bool keep_alive, int id) {
    HttpClient client("127.0.0.1", port_);
    for (int n = 0; n < 20000 && !done && Clock::now() < deadline; ++n) {
      try {
        HttpResponse resp;
        if (keep_alive) {
          if (!client.connected()) {
            if (n > 0) ++reconnects;
            client.connect();
          }
          resp = client.get("/load" + std::to_string(id));
        } else {
          resp = fetchOnce("127.0.0.1", port_, "/load" + std::to_string(id));
        }
        ++total;
        if (resp.status != 200)
          fail("status " + std::to_string(resp.status) + " on thread " + std::to_string(id));
      } catch (const std::exception& e) {
        ++total;
        fail(std::string(e.what()) + " on thread " + std::to_string(id));
        client.close();
      }
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) threads.emplace_back(worker, t < 2, t);

  int l2_answers = 0;
  for (int step = 1; step <= 20 && Clock::now() < deadline; ++step) {
    std::this_thread::sleep_for(Millis(50));  // let traffic flow under each document
    ControlResponse resp = proxy_->applyConfig(stepConfig(step).toJson());
    EXPECT_EQ(resp.status, 200) << "step " << step << ": " << resp.body;
    if (step >= 5) {
      std::string error;
      auto r = tryFetchOnce("127.0.0.1", port2_, "/l2", {}, &error);
      if (r && r->status == 200 && r->header("X-Backend") == "m5")
        ++l2_answers;
      else
        ADD_FAILURE() << "new listener l2 did not serve at step " << step << ": " << error;
    }
  }
  std::this_thread::sleep_for(Millis(100));
  done = true;
  for (auto& t : threads) t.join();

  std::string shown;
  for (const auto& f : failures) shown += "\n  " + f;
  EXPECT_EQ(failed.load(), 0) << "of " << total.load() << " requests:" << shown;
  EXPECT_GT(total.load(), 400);
  EXPECT_EQ(l2_answers, 16);
  EXPECT_EQ(proxy_->get("/stats").json()["generation"].GetUint64(), 21u);
  RecordProperty("requests", total.load());
  RecordProperty("keep_alive_reconnects", reconnects.load());
  // Members in the last document all served; m4 (absent at odd steps) too.
  for (int i = 0; i < 4; ++i) EXPECT_GT(members_[i]->requestCount(), 0u) << members_[i]->name();
}

TEST_F(HotApply, RemovedMembersInFlightSlowRequestCompletes) {
  members_[0]->configure([](HttpBackendOptions& o) {
    o.delay_ms = 1000;
    o.delay_path_prefix = "/slow";
  });
  proxy_ = std::make_unique<ProxyProcess>(simpleConfig(port_, {member(0)}).toJson());
  auto slow = std::async(std::launch::async, [&] {
    ConnectOptions o;
    o.timeout_ms = 5000;
    return fetchOnce("127.0.0.1", port_, "/slow", o);
  });
  ASSERT_TRUE(members_[0]->waitForRequests(1, 2000));
  ConfigSpec next = simpleConfig(port_, {member(1)});
  next.generation = 2;
  ControlResponse applied = proxy_->applyConfig(next.toJson());
  ASSERT_EQ(applied.status, 200) << applied.body;
  EXPECT_EQ(fetchOnce("127.0.0.1", port_, "/fast").header("X-Backend"), "m2");
  HttpResponse resp = slow.get();
  EXPECT_EQ(resp.status, 200);
  EXPECT_EQ(resp.header("X-Backend"), "m1");
  EXPECT_EQ(resp.header("X-Request-Path"), "/slow");
}

TEST_F(HotApply, UnchangedListenerKeepsItsOpenConnectionsAcrossApply) {
  ConfigSpec first = simpleConfig(port_, {member(0)});
  proxy_ = std::make_unique<ProxyProcess>(first.toJson());
  HttpClient client("127.0.0.1", port_);
  ASSERT_EQ(client.get("/before").status, 200);
  int fd = client.fd();

  ConfigSpec second = first;
  second.generation = 2;
  ListenerSpec l2 = first.listeners[0];
  l2.id = "l2";
  l2.protocol_port = port2_;
  second.listeners.push_back(l2);
  ControlResponse applied = proxy_->applyConfig(second.toJson());
  ASSERT_EQ(applied.status, 200) << applied.body;

  HttpResponse resp = client.get("/after");
  EXPECT_EQ(resp.status, 200);
  EXPECT_EQ(client.fd(), fd);
  EXPECT_TRUE(client.connected()) << "client connection was closed by the apply";
  EXPECT_EQ(fetchOnce("127.0.0.1", port2_, "/l2").status, 200);
}

TEST_F(HotApply, RemovedListenerStopsListeningAndTheOthersKeepServing) {
  ConfigSpec both = simpleConfig(port_, {member(0)});
  ListenerSpec l2 = both.listeners[0];
  l2.id = "l2";
  l2.protocol_port = port2_;
  both.listeners.push_back(l2);
  proxy_ = std::make_unique<ProxyProcess>(both.toJson());
  ASSERT_EQ(fetchOnce("127.0.0.1", port2_).status, 200);

  ConfigSpec one = simpleConfig(port_, {member(0)});
  one.generation = 2;
  ASSERT_EQ(proxy_->applyConfig(one.toJson()).status, 200);
  EXPECT_TRUE(waitUntil([&] { return !isPortListening(port2_); }, Millis(2000)));
  EXPECT_EQ(fetchOnce("127.0.0.1", port_).status, 200);
}

}  // namespace
}  // namespace banyan::test
