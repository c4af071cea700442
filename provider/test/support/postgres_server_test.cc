// PostgresServer dies with the test process that started it: a test binary that crashes
// (or is killed by ctest's timeout) must not leave a postmaster, its children or its
// shared memory behind on a machine shared by many test runs.
#include "support/postgres_server.h"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace banyan::provider::testing {
namespace {

struct Proc {
  pid_t pid;
  unsigned long long start_time;  // /proc/<pid>/stat field 22: tells a reused PID apart
};

// state, ppid and start time of /proc/<pid>/stat; false when the process is gone.
bool readStat(pid_t pid, char& state, pid_t& ppid, unsigned long long& start_time) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!std::getline(in, text)) return false;
  auto paren = text.rfind(')');
  if (paren == std::string::npos) return false;
  std::istringstream fields(text.substr(paren + 2));
  std::string field;
  for (int i = 3; i <= 22 && fields >> field; ++i) {
    if (i == 3) state = field[0];
    if (i == 4) ppid = static_cast<pid_t>(std::stol(field));
    if (i == 22) start_time = std::stoull(field);
  }
  return true;
}

// The process and every process whose parent it is.
std::vector<Proc> processTree(pid_t root) {
  std::vector<Proc> out;
  char state = 0;
  pid_t ppid = 0;
  unsigned long long start = 0;
  if (readStat(root, state, ppid, start)) out.push_back({root, start});
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    pid_t pid = static_cast<pid_t>(std::stol(name));
    if (readStat(pid, state, ppid, start) && ppid == root) out.push_back({pid, start});
  }
  return out;
}

std::vector<pid_t> stillRunning(const std::vector<Proc>& procs) {
  std::vector<pid_t> left;
  for (const auto& p : procs) {
    char state = 0;
    pid_t ppid = 0;
    unsigned long long start = 0;
    if (readStat(p.pid, state, ppid, start) && start == p.start_time && state != 'Z' && state != 'X')
      left.push_back(p.pid);
  }
  return left;
}

// SysV shared memory segments created by `creator` (/proc/sysvipc/shm: shmid, cpid columns).
std::vector<std::string> sysvSegments(pid_t creator) {
  std::ifstream in("/proc/sysvipc/shm");
  std::string line;
  std::getline(in, line);
  std::vector<std::string> header;
  {
    std::istringstream h(line);
    for (std::string col; h >> col;) header.push_back(col);
  }
  std::vector<std::string> out;
  while (std::getline(in, line)) {
    std::istringstream row(line);
    std::vector<std::string> cols;
    for (std::string col; row >> col;) cols.push_back(col);
    std::string shmid, cpid;
    for (size_t i = 0; i < header.size() && i < cols.size(); ++i) {
      if (header[i] == "shmid") shmid = cols[i];
      if (header[i] == "cpid") cpid = cols[i];
    }
    if (creator == 0 || cpid == std::to_string(creator)) out.push_back(shmid);
  }
  return out;
}

// The /dev/shm/PostgreSQL.* files (dynamic shared memory) mapped into pid.
std::vector<std::string> dsmFiles(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/maps");
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) {
    auto at = line.find("/dev/shm/PostgreSQL.");
    if (at == std::string::npos) continue;
    std::string path = line.substr(at);
    if (std::find(out.begin(), out.end(), path) == out.end()) out.push_back(path);
  }
  return out;
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : " ") + i;
  return out;
}

TEST(PostgresServerDeath, KillingTheProcessThatStartedItStopsThePostmasterItsChildrenAndItsSharedMemory) {
  int report[2];
  ASSERT_EQ(::pipe(report), 0);
  pid_t starter = ::fork();
  ASSERT_GE(starter, 0);
  if (starter == 0) {
    // The "test process" that will crash: starts a server, says where it is, waits.
    ::close(report[0]);
    auto server = PostgresServer::start();
    std::string line = server.ok() ? std::to_string((*server)->pid()) + " " + (*server)->dir() + "\n"
                                   : "0 " + server.error().message + "\n";
    (void)!::write(report[1], line.data(), line.size());
    while (true) ::pause();
  }
  ::close(report[1]);
  std::string line;
  pollfd pfd{report[0], POLLIN, 0};
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (line.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    if (::poll(&pfd, 1, 200) <= 0) continue;
    char buf[512];
    ssize_t n = ::read(report[0], buf, sizeof buf);
    if (n <= 0) break;
    line.append(buf, static_cast<size_t>(n));
  }
  ::close(report[0]);
  pid_t postmaster = 0;
  std::string dir;
  {
    std::istringstream in(line);
    in >> postmaster;
    std::getline(in >> std::ws, dir);
  }
  std::vector<Proc> procs;
  std::vector<std::string> segments, dsm;
  if (postmaster > 0) {
    procs = processTree(postmaster);
    segments = sysvSegments(postmaster);
    dsm = dsmFiles(postmaster);
  }

  ::kill(starter, SIGKILL);  // no destructor, no atexit: only the kernel acts now
  ::waitpid(starter, nullptr, 0);
  ASSERT_GT(postmaster, 0) << "the child did not start a server: " << line;

  auto t0 = std::chrono::steady_clock::now();
  while (!stillRunning(procs).empty() && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5))
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  auto took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::vector<pid_t> left = stillRunning(procs);
  if (!left.empty()) {
    // The check below fails; still leave nothing behind. SIGQUIT first: it frees the memory.
    ::kill(postmaster, SIGQUIT);
    std::this_thread::sleep_for(std::chrono::seconds(3));
    for (pid_t pid : stillRunning(procs)) ::kill(pid, SIGKILL);
  }
  std::vector<std::string> segments_left, dsm_left;
  std::vector<std::string> all_segments = sysvSegments(0);
  for (const auto& s : segments)
    if (std::find(all_segments.begin(), all_segments.end(), s) != all_segments.end()) segments_left.push_back(s);
  for (const auto& f : dsm)
    if (std::filesystem::exists(f)) dsm_left.push_back(f);
  std::error_code ec;
  if (!dir.empty() && dir.rfind("/tmp/banyan-pg-", 0) == 0) std::filesystem::remove_all(dir, ec);

  EXPECT_GE(procs.size(), 3u) << "a postmaster and its background processes";
  EXPECT_EQ(segments.size(), 1u) << "the postmaster's SysV segment";
  EXPECT_FALSE(dsm.empty()) << "the dynamic shared memory control segment";
  EXPECT_TRUE(left.empty()) << left.size() << " of " << procs.size() << " processes still ran after 5 s";
  std::printf("postmaster and %zu children gone %.2f s after the starter was killed\n", procs.size() - 1, took);
  EXPECT_TRUE(segments_left.empty()) << "SysV segments left: " << join(segments_left);
  EXPECT_TRUE(dsm_left.empty()) << "/dev/shm files left: " << join(dsm_left);
}

}  // namespace
}  // namespace banyan::provider::testing
