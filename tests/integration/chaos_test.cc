// Misbehaving clients, many at once: partial heads, resets, garbage, aborted
// bodies, pipelines nobody reads, upgrades cut short. The proxy must keep
// serving, leak no connection (active counts return to zero), and exit 0 on
// SIGTERM (checked by ProxyProcess). Bounded in count and time; the seed is
// fixed so a failure replays.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "fixtures.h"
#include "http_client.h"

namespace banyan::test {
namespace {

class Chaos : public ::testing::Test {
 protected:
  uint16_t port_ = pickFreePort();
  TestHttpBackend fast_{"fast", "127.0.0.31"};
  TestHttpBackend slow_{"slow", "127.0.0.32"};
  TestHttpBackend closer_{"closer", "127.0.0.33"};
  std::unique_ptr<ProxyProcess> proxy_;
};

// One misbehaviour, picked at random; every socket read has a short timeout.
void misbehave(uint16_t port, std::mt19937& rng) {
  const std::string get = "GET /c HTTP/1.1\r\nHost: chaos\r\n\r\n";
  ConnectOptions o;
  o.timeout_ms = 300;
  Fd fd = tryConnect("127.0.0.1", port, o);
  if (!fd.valid()) return;
  std::string sink;
  switch (rng() % 10) {
    case 0:  // a few keep-alive requests, read properly
      for (int i = 0; i < 3; ++i) {
        sendAll(fd.get(), get);
        readSome(fd.get(), sink, 300);
      }
      break;
    case 1:  // half a head, then a reset
      sendAll(fd.get(), "GET /c HTTP/1.1\r\nHo");
      abortiveClose(fd);
      break;
    case 2:  // half a head, then a clean close
      sendAll(fd.get(), "POST /c HTTP/1.1\r\nHost: chaos\r\nContent-Le");
      break;
    case 3: {  // garbage
      std::string junk(1 + rng() % 300, '\0');
      for (auto& c : junk) c = static_cast<char>(rng());
      sendAll(fd.get(), junk);
      readSome(fd.get(), sink, 100);
      break;
    }
    case 4:  // a body promised and cut short
      sendAll(fd.get(), "POST /c HTTP/1.1\r\nHost: chaos\r\nContent-Length: 100000\r\n\r\nabc");
      if (rng() % 2) abortiveClose(fd);
      break;
    case 5:  // chunked body split at random points
      sendAll(fd.get(), "POST /c HTTP/1.1\r\nHost: chaos\r\nTransfer-Encoding: chunked\r\n\r\n");
      sendAll(fd.get(), "5\r\nhel");
      sendAll(fd.get(), "lo\r\n0\r\n\r\n");
      readSome(fd.get(), sink, 300);
      break;
    case 6: {  // a pipeline nobody reads, then a reset
      std::string many;
      for (int i = 0; i < 50; ++i) many += get;
      sendAll(fd.get(), many);
      abortiveClose(fd);
      break;
    }
    case 7:  // upgrade, a few bytes, gone
      sendAll(fd.get(),
              "GET /ws HTTP/1.1\r\nHost: chaos\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
      readSome(fd.get(), sink, 200);
      sendAll(fd.get(), "frame");
      if (rng() % 2) abortiveClose(fd);
      break;
    case 8:  // connect and leave
      if (rng() % 2) abortiveClose(fd);
      break;
    case 9:  // request to the slow member, then leave before the answer
      sendAll(fd.get(), "GET /slow HTTP/1.1\r\nHost: chaos\r\n\r\n");
      readSome(fd.get(), sink, 50);
      abortiveClose(fd);
      break;
  }
}

TEST_F(Chaos, MisbehavingClientsLeaveTheProxyServingAndLeakNothing) {
  slow_.configure([](HttpBackendOptions& o) {
    o.delay_ms = 400;
    o.delay_path_prefix = "/slow";
  });
  closer_.configure([](HttpBackendOptions& o) { o.close_after_response = true; });
  ConfigSpec c = simpleConfig(port_, {memberOf(fast_), memberOf(slow_), memberOf(closer_)});
  c.listener("l1").timeout_client_data = 1000;
  c.listener("l1").timeout_member_data = 1000;
  proxy_ = std::make_unique<ProxyProcess>(c.toJson());

  constexpr int kThreads = 4;
  constexpr int kActionsPerThread = 400;
  const auto deadline = Clock::now() + Millis(15000);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([this, t, deadline] {
      std::mt19937 rng(1234 + t);
      for (int i = 0; i < kActionsPerThread && Clock::now() < deadline; ++i) misbehave(port_, rng);
    });
  }
  for (auto& th : threads) th.join();

  // Still serving.
  HttpResponse resp = HttpClient("127.0.0.1", port_).get("/after");
  EXPECT_EQ(resp.status, 200);
  // Every client connection and every member assignment was released.
  EXPECT_TRUE(waitUntil(
      [&] { return statValue(*proxy_, "listeners", "l1", "active_connections") == 0; },
      Millis(5000)))
      << "listener active_connections=" << *statValue(*proxy_, "listeners", "l1", "active_connections");
  for (const char* m : {"fast", "slow", "closer"}) {
    EXPECT_TRUE(waitUntil(
        [&] { return statValue(*proxy_, "members", m, "active_connections") == 0; }, Millis(5000)))
        << m;
  }
}

// Removing a listener while connections keep arriving on it: its socket goes
// away between two loop iterations, and an event for it may still be queued.
TEST_F(Chaos, ListenerRemovedAndRestoredUnderConnectionLoadKeepsTheProxyUp) {
  const uint16_t other_port = pickFreePort();
  ConfigSpec with_both = simpleConfig(port_, {memberOf(fast_)});
  with_both.workers = 1;
  ListenerSpec second = with_both.listener("l1");
  second.id = "l2";
  second.protocol_port = other_port;
  with_both.listeners.push_back(second);
  ConfigSpec with_one = simpleConfig(port_, {memberOf(fast_)});
  with_one.workers = 1;
  proxy_ = std::make_unique<ProxyProcess>(with_both.toJson());

  std::atomic<bool> stop{false};
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&stop, other_port] {
      const auto deadline = Clock::now() + Millis(20000);
      for (int i = 0; i < 100000 && !stop && Clock::now() < deadline; ++i) {
        ConnectOptions o;
        o.timeout_ms = 200;
        Fd fd = tryConnect("127.0.0.1", other_port, o);
        if (!fd.valid()) continue;  // refused while the listener is away
        try {
          sendAll(fd.get(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
          std::string answer;
          readSome(fd.get(), answer, 200);
        } catch (const std::exception&) {
          // Reset: the connection was queued on the listener when it was removed.
        }
      }
    });
  }
  std::string failure;  // the client threads must be joined whatever happens here
  try {
    for (int i = 0; i < 50 && failure.empty(); ++i) {
      ConfigSpec& next = i % 2 == 0 ? with_one : with_both;
      next.generation = static_cast<uint64_t>(i + 2);
      ControlResponse resp = proxy_->put("/config", next.toJson());
      if (resp.status != 200) failure = "apply " + std::to_string(i) + ": " + resp.body;
    }
  } catch (const std::exception& e) {
    failure = e.what();  // the control socket went away: the proxy died
  }
  stop = true;
  for (auto& th : clients) th.join();
  ASSERT_TRUE(failure.empty()) << failure;
  EXPECT_TRUE(proxy_->running());
  EXPECT_EQ(HttpClient("127.0.0.1", port_).get("/after").status, 200);
}

}  // namespace
}  // namespace banyan::test
