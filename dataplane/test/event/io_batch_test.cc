// The loop's batched socket I/O (EventLoop::queueIo) against real socket pairs.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "event/loop.h"

namespace banyan::dp::event {
namespace {

// Records what the loop asks and answers; each tag is one operation on `fd`.
class Recorder final : public IoUser {
 public:
  struct Op {
    bool send;
    std::string out;  // bytes to send
    size_t room = 0;  // bytes to receive at most
  };
  int fd = -1;
  std::vector<Op> ops;
  std::vector<std::string> log;  // "prepare N", "done N r", "settled"
  std::vector<char> in = std::vector<char>(4096);
  std::string received;
  bool refuse = false;  // prepareIo answers false

  bool prepareIo(uint32_t tag, IoOp& op) override {
    log.push_back("prepare " + std::to_string(tag));
    if (refuse) return false;
    const Op& o = ops[tag];
    op.fd = fd;
    op.send = o.send;
    if (o.send) {
      op.iov[0] = {const_cast<char*>(o.out.data()), o.out.size()};
    } else {
      op.iov[0] = {in.data(), o.room};
    }
    op.cnt = 1;
    return true;
  }
  bool ioDone(uint32_t tag, ssize_t result) override {
    log.push_back("done " + std::to_string(tag) + " " + std::to_string(result));
    if (!ops[tag].send && result > 0) received.append(in.data(), static_cast<size_t>(result));
    bool first = !unsettled;
    unsettled = true;
    return first;
  }
  void ioSettled() override {
    log.push_back("settled");
    unsettled = false;
  }
  bool unsettled = false;
  ~Recorder() = default;
};

struct Pair {
  int a = -1, b = -1;
  Pair() {
    int fds[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
    a = fds[0];
    b = fds[1];
  }
  ~Pair() {
    ::close(a);
    ::close(b);
  }
};

// The ring is made at the loop's first iteration, on its thread.
bool startBatching(EventLoop& loop) {
  loop.runOnce(Millis(0));
  if (!loop.ioBatching()) {
    ADD_FAILURE() << "io_uring is not available on this kernel";
    return false;
  }
  return true;
}

TEST(IoBatch, AReceiveOnAnEmptySocketAnswersEagainInsteadOfWaiting) {
  EventLoop loop;
  if (!startBatching(loop)) return;
  Pair p;
  Recorder r;
  r.fd = p.a;
  r.ops = {{false, "", 100}};
  loop.queueIo(&r, 0, false);
  loop.runOnce(Millis(0));
  std::vector<std::string> want = {"prepare 0", "done 0 " + std::to_string(-EAGAIN), "settled"};
  EXPECT_EQ(r.log, want);
}

TEST(IoBatch, ReceivesAreDeliveredBeforeSendsAndEachUserSettlesOnce) {
  EventLoop loop;
  if (!startBatching(loop)) return;
  Pair p;
  ASSERT_EQ(::send(p.b, "hello", 5, 0), 5);
  Recorder r;
  r.fd = p.a;
  r.ops = {{true, "world!", 0}, {false, "", 100}};
  loop.queueIo(&r, 0, true);   // the send first
  loop.queueIo(&r, 1, false);  // the receive second
  loop.runOnce(Millis(0));
  std::vector<std::string> want = {"prepare 1", "prepare 0", "done 1 5", "done 0 6", "settled"};
  EXPECT_EQ(r.log, want);
  EXPECT_EQ(r.received, "hello");
  char buf[16];
  EXPECT_EQ(::recv(p.b, buf, sizeof buf, 0), 6);
  EXPECT_EQ(std::string(buf, 6), "world!");
}

TEST(IoBatch, ASendToAFullSocketAnswersEagainAndAShortSendCountsWhatWent) {
  EventLoop loop;
  if (!startBatching(loop)) return;
  Pair p;
  int small = 4096;
  setsockopt(p.a, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  Recorder r;
  r.fd = p.a;
  r.ops = {{true, std::string(1 << 20, 'x'), 0}};
  loop.queueIo(&r, 0, true);
  loop.runOnce(Millis(0));
  ASSERT_EQ(r.log.size(), 3u);
  long first = std::stol(r.log[1].substr(std::strlen("done 0 ")));
  EXPECT_GT(first, 0);
  EXPECT_LT(first, 1 << 20);
  r.log.clear();
  loop.queueIo(&r, 0, true);
  loop.runOnce(Millis(0));
  std::vector<std::string> want = {"prepare 0", "done 0 " + std::to_string(-EAGAIN), "settled"};
  EXPECT_EQ(r.log, want);
}

TEST(IoBatch, AForgottenUserIsNeitherPreparedNorSettled) {
  EventLoop loop;
  if (!startBatching(loop)) return;
  Pair p;
  Recorder r;
  r.fd = p.a;
  r.ops = {{true, "x", 0}};
  loop.queueIo(&r, 0, true);
  loop.forgetIo(&r);
  loop.runOnce(Millis(0));
  EXPECT_TRUE(r.log.empty());
  char buf[4];
  EXPECT_EQ(::recv(p.b, buf, sizeof buf, 0), -1);
  EXPECT_EQ(errno, EAGAIN);
}

TEST(IoBatch, AnOperationItsUserDropsAtPreparationGetsNoResult) {
  EventLoop loop;
  if (!startBatching(loop)) return;
  Pair p;
  Recorder r;
  r.fd = p.a;
  r.refuse = true;
  r.ops = {{true, "x", 0}};
  loop.queueIo(&r, 0, true);
  loop.runOnce(Millis(0));
  std::vector<std::string> want = {"prepare 0"};
  EXPECT_EQ(r.log, want);
}

TEST(IoBatch, HundredsOfOperationsInOneIterationAllComplete) {
  EventLoop loop;
  if (!startBatching(loop)) return;
  // More than the ring's submission queue holds at once.
  std::vector<std::unique_ptr<Pair>> pairs;
  std::vector<std::unique_ptr<Recorder>> users;
  for (int i = 0; i < 700; ++i) {
    pairs.push_back(std::make_unique<Pair>());
    auto r = std::make_unique<Recorder>();
    r->fd = pairs.back()->a;
    r->ops = {{true, "ping" + std::to_string(i), 0}};
    loop.queueIo(r.get(), 0, true);
    users.push_back(std::move(r));
  }
  loop.runOnce(Millis(0));
  for (int i = 0; i < 700; ++i) {
    std::string want = "ping" + std::to_string(i);
    ASSERT_EQ(users[i]->log.size(), 3u) << i;
    EXPECT_EQ(users[i]->log[1], "done 0 " + std::to_string(want.size()));
    char buf[16];
    ssize_t n = ::recv(pairs[i]->b, buf, sizeof buf, 0);
    ASSERT_EQ(n, static_cast<ssize_t>(want.size()));
    EXPECT_EQ(std::string(buf, static_cast<size_t>(n)), want);
  }
}

struct EventRecorder : Handler {
  std::vector<uint32_t> events;
  void onEvents(uint32_t e) override { events.push_back(e); }
};

TEST(IoBatch, ARegistrationInTheBatchDeliversEventsFromTheNextWait) {
  EventLoop loop;
  if (!startBatching(loop)) return;
  Pair p;
  EventRecorder h;
  ASSERT_TRUE(loop.addSoon(p.a, EPOLLIN | EPOLLET, &h));
  loop.runOnce(Millis(0));  // submits the registration
  EXPECT_TRUE(h.events.empty());
  ASSERT_EQ(::send(p.b, "x", 1, 0), 1);
  loop.runOnce(Millis(1000));
  ASSERT_EQ(h.events.size(), 1u);
  EXPECT_TRUE(h.events[0] & EPOLLIN);
}

TEST(IoBatch, AFailedRegistrationReportsAnErrorToItsHandler) {
  EventLoop loop;
  if (!startBatching(loop)) return;
  int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);  // epoll refuses regular files
  ASSERT_GE(devnull, 0);
  EventRecorder h;
  ASSERT_TRUE(loop.addSoon(devnull, EPOLLIN | EPOLLET, &h));
  loop.runOnce(Millis(0));
  ASSERT_EQ(h.events.size(), 1u);
  EXPECT_EQ(h.events[0], static_cast<uint32_t>(EPOLLERR | EPOLLHUP));
  ::close(devnull);
}

TEST(IoBatch, ModifyBeforeTheBatchWentOutRetargetsTheQueuedRegistration) {
  EventLoop loop;
  if (!startBatching(loop)) return;
  Pair p;
  EventRecorder first, second;
  ASSERT_TRUE(loop.addSoon(p.a, EPOLLIN | EPOLLET, &first));
  ASSERT_TRUE(loop.modify(p.a, EPOLLIN | EPOLLET, &second));  // a hand-over in the same iteration
  loop.runOnce(Millis(0));
  ASSERT_EQ(::send(p.b, "x", 1, 0), 1);
  loop.runOnce(Millis(1000));
  EXPECT_TRUE(first.events.empty());
  ASSERT_EQ(second.events.size(), 1u);
}

TEST(IoBatch, RemoveBeforeTheBatchWentOutDropsTheQueuedRegistration) {
  EventLoop loop;
  if (!startBatching(loop)) return;
  Pair p;
  EventRecorder h;
  ASSERT_TRUE(loop.addSoon(p.a, EPOLLIN | EPOLLET, &h));
  loop.remove(p.a);
  loop.runOnce(Millis(0));
  ASSERT_EQ(::send(p.b, "x", 1, 0), 1);
  loop.runOnce(Millis(50));
  EXPECT_TRUE(h.events.empty());
}

TEST(IoBatch, AQueuedCloseHappensAtTheEndOfTheIterationAfterTheWrites) {
  EventLoop loop;
  if (!startBatching(loop)) return;
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
  Recorder r;
  r.fd = fds[0];
  r.ops = {{true, "last words", 0}};
  loop.queueIo(&r, 0, true);
  loop.closeSoon(fds[0]);
  char buf[32];
  EXPECT_EQ(::recv(fds[1], buf, sizeof buf, 0), -1);  // nothing yet, still open
  EXPECT_EQ(errno, EAGAIN);
  loop.runOnce(Millis(0));
  ASSERT_EQ(::recv(fds[1], buf, sizeof buf, 0), 10);
  EXPECT_EQ(std::string(buf, 10), "last words");
  EXPECT_EQ(::recv(fds[1], buf, sizeof buf, 0), 0);  // then the close
  ::close(fds[1]);
}

TEST(IoBatch, WithoutBatchingCloseSoonClosesAtOnce) {
  EventLoop loop;
  loop.disableIoBatching();
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
  loop.closeSoon(fds[0]);
  char buf[4];
  EXPECT_EQ(::recv(fds[1], buf, sizeof buf, 0), 0);
  ::close(fds[1]);
}

TEST(IoBatch, WithBatchingDisabledTheLoopMakesNoRing) {
  EventLoop loop;
  loop.disableIoBatching();
  loop.runOnce(Millis(0));
  EXPECT_FALSE(loop.ioBatching());
}

}  // namespace
}  // namespace banyan::dp::event
