// TCP listeners: bytes both ways, half-close, large transfers, no member.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <memory>
#include <thread>

#include "fixtures.h"

namespace banyan::test {
namespace {

class TcpProxying : public ::testing::Test {
 protected:
  void startProxy(std::vector<MemberSpec> members) {
    proxy_ = std::make_unique<ProxyProcess>(
        simpleConfig(port_, std::move(members), "TCP", "TCP").toJson());
  }

  uint16_t port_ = pickFreePort();
  TestTcpBackend member_{"t1", "127.0.0.61"};
  std::unique_ptr<ProxyProcess> proxy_;
};

TEST_F(TcpProxying, RelaysBytesBothWays) {
  startProxy({memberOf(member_)});
  Fd fd = connectTo("127.0.0.1", port_);
  std::string got;
  ASSERT_TRUE(readAtLeast(fd.get(), got, 3, 3000)) << "no greeting from the member";
  EXPECT_EQ(got, "t1\n");
  for (int i = 0; i < 5; ++i) {
    std::string msg = "message " + std::to_string(i) + "\n";
    sendAll(fd.get(), msg);
    std::string echo;
    ASSERT_TRUE(readAtLeast(fd.get(), echo, msg.size(), 3000));
    EXPECT_EQ(echo, msg);
  }
}

TEST_F(TcpProxying, ClientHalfCloseStillReceivesTheMembersReply) {
  startProxy({memberOf(member_)});
  Fd fd = connectTo("127.0.0.1", port_);
  sendAll(fd.get(), "ping");
  ASSERT_EQ(::shutdown(fd.get(), SHUT_WR), 0);
  // The member writes "bye\n" only once it has seen the FIN the proxy passed on.
  std::string got;
  EXPECT_TRUE(readUntilEof(fd.get(), got, 3000)) << "member's side never closed";
  EXPECT_EQ(got,
            "t1\nping"
            "bye\n");
  ASSERT_EQ(member_.connections().size(), 1u);
  EXPECT_TRUE(member_.connections()[0].saw_eof);
}

TEST_F(TcpProxying, RelaysAMegabyteEachWayIntact) {
  startProxy({memberOf(member_)});
  Fd fd = connectTo("127.0.0.1", port_);
  std::string greeting;
  ASSERT_TRUE(readAtLeast(fd.get(), greeting, 3, 3000));
  std::string payload = patternBody(1 << 20);
  // Write in a thread: the echo flows back while we are still sending.
  std::thread writer([&] { sendAll(fd.get(), payload); });
  std::string echo;
  bool complete = readAtLeast(fd.get(), echo, payload.size(), 10000);
  writer.join();
  ASSERT_TRUE(complete) << "got " << echo.size() << " of " << payload.size();
  EXPECT_TRUE(echo == payload) << "echoed bytes differ";
}

TEST_F(TcpProxying, ManyConcurrentConnectionsAreRelayedIndependently) {
  startProxy({memberOf(member_)});
  std::vector<Fd> fds;
  for (int i = 0; i < 20; ++i) fds.push_back(connectTo("127.0.0.1", port_));
  for (int i = 0; i < 20; ++i) sendAll(fds[i].get(), "conn-" + std::to_string(i) + ";");
  for (int i = 0; i < 20; ++i) {
    std::string expected = "t1\nconn-" + std::to_string(i) + ";";
    std::string got;
    ASSERT_TRUE(readAtLeast(fds[i].get(), got, expected.size(), 3000)) << i;
    EXPECT_EQ(got, expected);
  }
}

TEST_F(TcpProxying, PoolWithoutMembersClosesTheConnection) {
  startProxy({});
  Fd fd = connectTo("127.0.0.1", port_);
  std::string got;
  EXPECT_TRUE(readUntilEof(fd.get(), got, 3000));
  EXPECT_EQ(got, "");
}

TEST_F(TcpProxying, MemberWithAClosedPortClosesTheConnection) {
  MemberSpec closed;
  closed.id = "closed";
  closed.address = "127.0.0.62";
  closed.protocol_port = pickFreePort("127.0.0.62");
  startProxy({closed});
  Fd fd = connectTo("127.0.0.1", port_);
  std::string got;
  EXPECT_TRUE(readUntilEof(fd.get(), got, 3000));
  EXPECT_EQ(got, "");
}

TEST_F(TcpProxying, MemberClosingFirstClosesTheClient) {
  startProxy({memberOf(member_)});
  Fd fd = connectTo("127.0.0.1", port_);
  std::string got;
  ASSERT_TRUE(readAtLeast(fd.get(), got, 3, 3000));
  member_.stop();  // closes the member side of every connection
  EXPECT_TRUE(readUntilEof(fd.get(), got, 3000))
      << "client connection outlived its member connection";
}

}  // namespace
}  // namespace banyan::test
