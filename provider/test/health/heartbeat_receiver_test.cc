#include "health/heartbeat_receiver.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <vector>

namespace banyan::provider::health {
namespace {

using common::Heartbeat;

class Sender {
 public:
  explicit Sender(uint16_t port) : fd_(::socket(AF_INET, SOCK_DGRAM, 0)) {
    to_.sin_family = AF_INET;
    to_.sin_port = htons(port);
    to_.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  }
  ~Sender() { ::close(fd_); }
  void send(const std::vector<uint8_t>& bytes) {
    ASSERT_EQ(::sendto(fd_, bytes.data(), bytes.size(), 0, reinterpret_cast<sockaddr*>(&to_), sizeof(to_)),
              static_cast<ssize_t>(bytes.size()));
  }

 private:
  int fd_;
  sockaddr_in to_{};
};

// Collects what the receiver hands over, and waits for a count.
struct Inbox {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Heartbeat> got;
  std::string source;
  void add(const Heartbeat& hb, const std::string& from) {
    std::lock_guard<std::mutex> lock(mu);
    got.push_back(hb);
    source = from;
    cv.notify_all();
  }
  bool waitFor(size_t n, std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, limit, [&] { return got.size() >= n; });
  }
};

Heartbeat beat(const std::string& amp, uint64_t seq) {
  Heartbeat hb;
  hb.amphora_id = amp;
  hb.sequence = seq;
  hb.listeners = {{.id = "l1", .status = "ONLINE", .total_connections = seq}};
  return hb;
}

HeartbeatReceiverOptions opts() {
  HeartbeatReceiverOptions o;
  o.bind_port = 0;
  o.key = "s3cret";
  return o;
}

// Waits until the receiver has looked at n datagrams (accepted or not).
void waitReceived(const HeartbeatReceiver& r, uint64_t n) {
  for (int i = 0; i < 500 && r.counters().received < n; ++i) usleep(10000);
}

TEST(HeartbeatReceiver, HandsOverSignedHeartbeatsWithTheirSource) {
  Inbox inbox;
  auto r = HeartbeatReceiver::start(opts(), [&](const Heartbeat& hb, const std::string& s) { inbox.add(hb, s); });
  ASSERT_TRUE(r) << r.error().message;
  Sender sender((*r)->port());
  sender.send(common::encodeHeartbeat(beat("amp-1", 1), "s3cret"));
  ASSERT_TRUE(inbox.waitFor(1));
  EXPECT_EQ(inbox.got[0], beat("amp-1", 1));
  EXPECT_EQ(inbox.source, "127.0.0.1");
  EXPECT_EQ((*r)->counters().accepted, 1u);
}

TEST(HeartbeatReceiver, CountsAndDropsForgedAndGarbledDatagrams) {
  Inbox inbox;
  auto r = HeartbeatReceiver::start(opts(), [&](const Heartbeat& hb, const std::string& s) { inbox.add(hb, s); });
  ASSERT_TRUE(r);
  Sender sender((*r)->port());
  sender.send(common::encodeHeartbeat(beat("amp-1", 1), "wrong key"));
  sender.send({1, 2, 3});
  auto good = common::encodeHeartbeat(beat("amp-1", 2), "s3cret");
  good[good.size() / 2] ^= 0x40;
  sender.send(good);
  waitReceived(**r, 3);
  auto c = (*r)->counters();
  EXPECT_EQ(c.received, 3u);
  EXPECT_EQ(c.refused, 3u);
  EXPECT_EQ(c.accepted, 0u);
  EXPECT_TRUE(inbox.got.empty());
}

TEST(HeartbeatReceiver, DropsReplayedSequencesButAcceptsARestartedAgentAfterTheGrace) {
  Inbox inbox;
  auto o = opts();
  o.restart_grace = std::chrono::milliseconds(300);
  auto r = HeartbeatReceiver::start(o, [&](const Heartbeat& hb, const std::string& s) { inbox.add(hb, s); });
  ASSERT_TRUE(r);
  Sender sender((*r)->port());
  auto five = common::encodeHeartbeat(beat("amp-1", 5), "s3cret");
  sender.send(five);
  ASSERT_TRUE(inbox.waitFor(1));
  sender.send(five);                                                  // replay
  sender.send(common::encodeHeartbeat(beat("amp-1", 4), "s3cret"));  // out of order
  sender.send(common::encodeHeartbeat(beat("amp-2", 1), "s3cret"));  // another amphora
  ASSERT_TRUE(inbox.waitFor(2));
  waitReceived(**r, 4);
  EXPECT_EQ((*r)->counters().stale, 2u);
  usleep(400000);
  sender.send(common::encodeHeartbeat(beat("amp-1", 1), "s3cret"));  // the agent restarted
  ASSERT_TRUE(inbox.waitFor(3));
  EXPECT_EQ(inbox.got[2].sequence, 1u);
}

// Not a goal check (benchmarks measure goals): prints how fast one receiver thread
// verifies heartbeats, for docs/benchmarks.md. 10,000 amphorae at Octavia's default
// 10 s interval is 1,000 heartbeats per second.
TEST(HeartbeatReceiver, ReportsItsVerificationRate) {
  Inbox inbox;
  std::atomic<uint64_t> handled{0};
  auto r = HeartbeatReceiver::start(opts(), [&](const Heartbeat&, const std::string&) { ++handled; });
  ASSERT_TRUE(r);
  Sender sender((*r)->port());
  constexpr int kCount = 5000;
  std::vector<std::vector<uint8_t>> datagrams;
  for (int i = 0; i < kCount; ++i) datagrams.push_back(common::encodeHeartbeat(beat("amp-" + std::to_string(i), 1), "s3cret"));
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kCount; ++i) {
    sender.send(datagrams[i]);
    if (i % 500 == 499) waitReceived(**r, static_cast<uint64_t>(i + 1));  // stay inside the socket buffer
  }
  waitReceived(**r, kCount);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(handled.load(), static_cast<uint64_t>(kCount));
  std::printf("heartbeat receiver: %d heartbeats in %.3f s = %.0f per second\n", kCount, seconds, kCount / seconds);
}

}  // namespace
}  // namespace banyan::provider::health
