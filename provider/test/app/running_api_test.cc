// A running `banyan-provider api`, as the process it is:
// - `[DEFAULT] http_io_threads` sizes the HTTP library's I/O pool: the process has
//   exactly that many more threads when the option grows, and the API answers on the
//   smallest pool;
// - its allocations go to the allocator it was built with (jemalloc by default).
#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

namespace {

uint16_t freePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// The status code of GET / on 127.0.0.1:port, 0 when nothing answers.
int getRoot(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  int status = 0;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    std::string req = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if (::send(fd, req.data(), req.size(), 0) == static_cast<ssize_t>(req.size())) {
      char buf[64] = {};
      if (::recv(fd, buf, sizeof buf - 1, MSG_WAITALL) > 12) status = std::atoi(buf + 9);
    }
  }
  ::close(fd);
  return status;
}

size_t threadsOf(pid_t pid) {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task")) ++n;
  return n;
}

class RunningApi : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/banyan-running-api-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  // Starts `api` with the given pool size and waits until it answers; its port.
  uint16_t start(int io_threads) {
    uint16_t port = freePort();
    std::string conf = dir_ + "/provider-" + std::to_string(io_threads) + ".conf";
    std::ofstream(conf) << "[DEFAULT]\nstate_dir = " << dir_ << "/state-" << io_threads
                        << "\nhttp_io_threads = " << io_threads << "\n[api_settings]\nbind_port = " << port
                        << "\nhandler_threads = 4\n";
    pid_ = ::fork();
    if (pid_ == 0) {
      std::string log = dir_ + "/provider.log";
      FILE* f = std::freopen(log.c_str(), "a", stderr);
      (void)f;
      ::execl(BANYAN_PROVIDER_BIN, BANYAN_PROVIDER_BIN, "--config-file", conf.c_str(), "api", nullptr);
      ::_exit(127);
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      if (getRoot(port) == 200) return port;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << "banyan-provider api did not answer on port " << port;
    return 0;
  }
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int status = 0;
    for (int i = 0; i < 200 && ::waitpid(pid_, &status, WNOHANG) == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (::waitpid(pid_, &status, WNOHANG) == 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
    }
    pid_ = -1;
  }
  std::string log() const {
    std::ifstream in(dir_ + "/provider.log");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  std::string dir_;
  pid_t pid_ = -1;
};

TEST_F(RunningApi, TheOptionSetsHowManyThreadsTheHttpLibraryRunsOn) {
  uint16_t port = start(2);
  ASSERT_NE(port, 0);
  // Requests from several clients at once are all answered by the two I/O threads.
  std::atomic<int> answered{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 8; ++c)
    clients.emplace_back([&] {
      for (int i = 0; i < 10; ++i) answered += getRoot(port) == 200;
    });
  for (auto& t : clients) t.join();
  EXPECT_EQ(answered.load(), 80);
  size_t small = threadsOf(pid_);
  stop();
  ASSERT_NE(start(7), 0);
  size_t large = threadsOf(pid_);
  EXPECT_EQ(large - small, 5u) << "threads with 2 I/O threads: " << small << ", with 7: " << large;
}

TEST_F(RunningApi, AllocatesWithTheAllocatorItWasBuiltWith) {
  const std::string expected = BANYAN_PROVIDER_ALLOCATOR;
  if (expected.empty()) GTEST_SKIP() << "a sanitizer or fuzz build: the sanitizer's allocator serves malloc";
  ASSERT_NE(start(2), 0);
  // The provider names the library its malloc resolves to, for every library in it.
  const std::string text = log();
  const auto at = text.find("memory allocator: ");
  ASSERT_NE(at, std::string::npos) << text;
  const std::string line = text.substr(at, text.find('\n', at) - at);
  EXPECT_NE(line.find(expected), std::string::npos) << line;
}

}  // namespace
