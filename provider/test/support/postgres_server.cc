#include "support/postgres_server.h"

#include <fcntl.h>
#include <grp.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

namespace banyan::provider::testing {
namespace {

using common::ErrorCode;
using common::makeError;
using common::Result;

constexpr const char* kBinDir = "/usr/lib/postgresql/15/bin";

int freePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  int port = -1;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0)
    port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

std::string percentEncode(std::string_view in) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : in) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  if (text.size() > 4000) text = text.substr(text.size() - 4000);
  return text;
}

// Forks and execs argv as (uid, gid) when switch_user, output appended to log_path.
// The child gets death_signal when the thread that forked it exits, so a crashed test
// leaves no server behind.
pid_t spawnChild(const std::vector<std::string>& argv, const std::string& log_path, const std::string& cwd,
                 bool switch_user, uid_t uid, gid_t gid, int death_signal) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid != 0) return pid;
  // Child: only async-signal-safe calls until exec.
  int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd >= 0) {
    ::dup2(fd, 1);
    ::dup2(fd, 2);
  }
  int null_fd = ::open("/dev/null", O_RDONLY);
  if (null_fd >= 0) ::dup2(null_fd, 0);
  if (switch_user) {
    if (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0) ::_exit(125);
  }
  // After the user switch: Linux clears the parent-death signal when the credentials
  // change, so set before setuid() it would be gone by exec. If the parent died before
  // this took effect, we were already reparented and no signal will ever come: leave.
  if (::prctl(PR_SET_PDEATHSIG, death_signal) != 0 || ::getppid() != parent) ::_exit(126);
  if (::chdir(cwd.c_str()) != 0) ::_exit(124);
  ::execv(args[0], args.data());
  ::_exit(127);
}

// Waits for pid to exit within timeout; returns its wait status, or -1 on timeout.
int waitExit(pid_t pid, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0) return 0;  // not our child any more: nothing to wait for
    if (std::chrono::steady_clock::now() >= deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace

Result<std::unique_ptr<PostgresServer>> PostgresServer::start() {
  std::unique_ptr<PostgresServer> server(new PostgresServer());
  if (auto r = server->boot(); !r.ok()) return r.error();  // the destructor cleans up
  return server;
}

Result<void> PostgresServer::boot() {
  char templ[] = "/tmp/banyan-pg-XXXXXX";
  if (::mkdtemp(templ) == nullptr)
    return makeError(ErrorCode::kUnavailable, std::string("mkdtemp: ") + std::strerror(errno));
  dir_ = templ;
  if (::geteuid() == 0) {
    // PostgreSQL refuses to run as root.
    struct passwd* pw = ::getpwnam("postgres");
    if (pw == nullptr) return makeError(ErrorCode::kUnavailable, "no 'postgres' user on this machine");
    run_uid_ = pw->pw_uid;
    run_gid_ = pw->pw_gid;
    switch_user_ = true;
    if (::chown(dir_.c_str(), run_uid_, run_gid_) != 0)
      return makeError(ErrorCode::kUnavailable, std::string("chown: ") + std::strerror(errno), dir_);
  } else {
    superuser_ = ::getpwuid(::geteuid()) ? ::getpwuid(::geteuid())->pw_name : "postgres";
  }
  const std::string log = dir_ + "/postgres.log";
  const std::string data = dir_ + "/data";

  pid_t initdb = spawnChild({std::string(kBinDir) + "/initdb", "-D", data, "-U", superuser_,
                             "--auth-local=trust", "--auth-host=scram-sha-256", "-N", "-E", "UTF8",
                             "--locale=C"},
                            log, dir_, switch_user_, run_uid_, run_gid_, SIGKILL);
  if (initdb < 0) return makeError(ErrorCode::kUnavailable, "fork failed");
  int status = waitExit(initdb, std::chrono::seconds(120));
  if (status == -1) {
    ::kill(initdb, SIGKILL);
    (void)waitExit(initdb, std::chrono::seconds(5));
    return makeError(ErrorCode::kUnavailable, "initdb timed out", log);
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return makeError(ErrorCode::kUnavailable, "initdb failed:\n" + readFile(log), log);

  // The port is free when picked but another process may take it before postgres binds;
  // then postgres exits at once and we try another.
  for (int attempt = 0; attempt < 5; ++attempt) {
    port_ = freePort();
    if (port_ <= 0) return makeError(ErrorCode::kUnavailable, "no free TCP port on 127.0.0.1");
    // SIGQUIT when the test dies: the postmaster's immediate shutdown, which stops its
    // children and removes its shared memory (SysV segment, /dev/shm/PostgreSQL.*).
    // SIGKILL would end the processes too (the children notice their postmaster is
    // gone) but leave the shared memory behind (tests/e2e/pg_death_test.py shows both).
    pid_ = spawnChild({std::string(kBinDir) + "/postgres", "-D", data, "-p", std::to_string(port_),
                       "-h", "127.0.0.1", "-k", dir_, "-c", "fsync=off", "-c", "synchronous_commit=off",
                       "-c", "full_page_writes=off", "-c", "shared_buffers=16MB", "-c",
                       "max_connections=200", "-c", "logging_collector=off", "-c",
                       "log_min_messages=warning", "-c", "max_wal_size=256MB", "-c",
                       "dynamic_shared_memory_type=posix"},
                      log, dir_, switch_user_, run_uid_, run_gid_, SIGQUIT);
    if (pid_ < 0) return makeError(ErrorCode::kUnavailable, "fork failed");
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    const std::string conninfo = superuserConninfo("postgres");
    bool ready = false, exited = false;
    while (std::chrono::steady_clock::now() < deadline) {
      if (PQping(conninfo.c_str()) == PQPING_OK) {
        ready = true;
        break;
      }
      int st = 0;
      if (::waitpid(pid_, &st, WNOHANG) == pid_) {
        exited = true;
        pid_ = -1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    if (ready) break;
    if (!exited) {
      stop();
      return makeError(ErrorCode::kUnavailable, "postgres did not become ready:\n" + readFile(log), log);
    }
    if (attempt == 4)
      return makeError(ErrorCode::kUnavailable, "postgres exited at start:\n" + readFile(log), log);
  }

  PGconn* conn = PQconnectdb(superuserConninfo("postgres").c_str());
  std::unique_ptr<PGconn, decltype(&PQfinish)> guard(conn, &PQfinish);
  if (PQstatus(conn) != CONNECTION_OK)
    return makeError(ErrorCode::kUnavailable, std::string("superuser connect: ") + PQerrorMessage(conn));
  char* literal = PQescapeLiteral(conn, password_.c_str(), password_.size());
  std::string create_role = "CREATE ROLE " + user_ + " LOGIN CREATEDB PASSWORD " + literal;
  PQfreemem(literal);
  for (const std::string& sql : {create_role, "CREATE DATABASE " + database_ + " OWNER " + user_}) {
    std::unique_ptr<PGresult, decltype(&PQclear)> res(PQexec(conn, sql.c_str()), &PQclear);
    if (PQresultStatus(res.get()) != PGRES_COMMAND_OK)
      return makeError(ErrorCode::kUnavailable, std::string("setup SQL failed: ") + PQerrorMessage(conn));
  }
  return {};
}

std::string PostgresServer::superuserConninfo(std::string_view dbname) const {
  return "host=" + dir_ + " port=" + std::to_string(port_) + " user=" + superuser_ +
         " dbname=" + std::string(dbname) + " connect_timeout=5";
}

std::string PostgresServer::url(std::string_view dbname) const {
  return "postgresql://" + percentEncode(user_) + ":" + percentEncode(password_) + "@127.0.0.1:" +
         std::to_string(port_) + "/" + percentEncode(dbname);
}

Result<void> PostgresServer::execAsSuperuser(std::string_view dbname, std::string_view sql) {
  PGconn* conn = PQconnectdb(superuserConninfo(dbname).c_str());
  std::unique_ptr<PGconn, decltype(&PQfinish)> guard(conn, &PQfinish);
  if (PQstatus(conn) != CONNECTION_OK)
    return makeError(ErrorCode::kUnavailable, std::string("superuser connect: ") + PQerrorMessage(conn));
  std::unique_ptr<PGresult, decltype(&PQclear)> res(PQexec(conn, std::string(sql).c_str()), &PQclear);
  ExecStatusType status = PQresultStatus(res.get());
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
    return makeError(ErrorCode::kUnavailable, PQerrorMessage(conn), std::string(sql));
  return {};
}

Result<std::string> PostgresServer::createDatabase(std::string_view name) {
  if (name.empty()) return makeError(ErrorCode::kInvalidArgument, "empty database name");
  for (char c : name)
    if (!(std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) ||
          c == '_'))
      return makeError(ErrorCode::kInvalidArgument, "database names are [a-z0-9_]+", std::string(name));
  if (auto r = execAsSuperuser("postgres", "CREATE DATABASE " + std::string(name) + " OWNER " + user_);
      !r.ok())
    return r.error();
  return url(name);
}

void PostgresServer::stop() {
  if (pid_ > 0) {
    // SIGINT is PostgreSQL's fast shutdown: abort sessions, checkpoint, exit.
    ::kill(pid_, SIGINT);
    if (waitExit(pid_, std::chrono::seconds(20)) == -1) {
      ::kill(pid_, SIGKILL);
      (void)waitExit(pid_, std::chrono::seconds(5));
    }
    pid_ = -1;
  }
}

PostgresServer::~PostgresServer() {
  stop();
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

std::unique_ptr<PostgresServer> PostgresEnvironment::server_;
std::string PostgresEnvironment::start_error_;

void PostgresEnvironment::SetUp() {}

void PostgresEnvironment::TearDown() { server_.reset(); }

PostgresServer* PostgresEnvironment::server() {
  // Started on first use, so a run filtered to tests that need no PostgreSQL (ctest runs
  // one test per process) pays nothing; a failed start is not retried by every test.
  if (!server_ && start_error_.empty()) {
    auto started = PostgresServer::start();
    if (started.ok()) {
      server_ = std::move(*started);
    } else {
      start_error_ = started.error().message;
    }
  }
  if (!server_) ADD_FAILURE() << "PostgreSQL test server did not start: " << start_error_;
  return server_.get();
}

common::Result<std::string> PostgresEnvironment::freshDatabase(std::string_view prefix) {
  PostgresServer* s = server();
  if (!s) return common::makeError(common::ErrorCode::kUnavailable, "PostgreSQL test server did not start");
  static std::atomic<int> counter{0};
  return s->createDatabase(std::string(prefix) + "_" + std::to_string(::getpid()) + "_" +
                           std::to_string(counter++));
}

}  // namespace banyan::provider::testing
