#include "store/postgres_job_listener.h"

#include <fcntl.h>
#include <libpq-fe.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "banyan/common/logging.h"

namespace banyan::provider::store {
namespace {

using Clock = std::chrono::steady_clock;

void quiet(void*, const char*) {}

std::string trimmed(const char* message) {
  std::string m = message ? message : "";
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
  return m;
}

class PostgresJobListener final : public JobListener {
 public:
  PostgresJobListener(PostgresJobListenerOptions options, JobListenerCallbacks callbacks)
      : options_(std::move(options)), callbacks_(std::move(callbacks)) {
    int fds[2];
    LB_CHECK(::pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0,
             "a pipe for the job listener's stop signal");
    stop_read_ = fds[0];
    stop_write_ = fds[1];
    thread_ = std::thread([this] { run(); });
  }

  ~PostgresJobListener() override {
    stopping_ = true;
    char byte = 1;
    // The pipe is non-blocking and read by no one else: one byte always fits.
    (void)!::write(stop_write_, &byte, 1);
    thread_.join();
    ::close(stop_read_);
    ::close(stop_write_);
  }

  bool connected() const override { return connected_.load(); }

 private:
  enum class Wait { kReady, kStopped, kTimeout };

  // Waits until fd is ready for events, the listener is stopped, or the deadline.
  Wait waitFor(int fd, short events, Clock::time_point deadline) {
    while (!stopping_) {
      pollfd fds[2] = {{stop_read_, POLLIN, 0}, {fd, events, 0}};
      int nfds = fd >= 0 ? 2 : 1;
      auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return Wait::kTimeout;
      int n = ::poll(fds, nfds, static_cast<int>(std::min<int64_t>(left, 60000)));
      if (n < 0 && errno != EINTR) return Wait::kTimeout;
      if (fds[0].revents != 0) return Wait::kStopped;
      if (n > 0 && nfds == 2 && fds[1].revents != 0) return Wait::kReady;
    }
    return Wait::kStopped;
  }

  // Opens the connection without blocking the stop signal (PQconnectStartParams and
  // PQconnectPoll); null when it fails or the listener stops. error says why.
  PGconn* connect(std::string& error) {
    std::vector<const char*> keys, values;
    bool has_timeout = false, has_app = false, has_keepalives = false;
    for (const auto& [k, v] : options_.params) {
      keys.push_back(k.c_str());
      values.push_back(v.c_str());
      has_timeout |= k == "connect_timeout";
      has_app |= k == "application_name";
      has_keepalives |= k.rfind("keepalives", 0) == 0;
    }
    if (!has_app) {
      keys.push_back("application_name");
      values.push_back("banyan-job-listener");
    }
    if (!has_keepalives) {
      // The connection is idle for hours: only TCP keepalives notice a peer that
      // vanished without a FIN (host lost, a firewall forgetting the flow).
      for (auto [k, v] :
           {std::pair{"keepalives", "1"}, std::pair{"keepalives_idle", "30"},
            std::pair{"keepalives_interval", "10"}, std::pair{"keepalives_count", "3"}}) {
        keys.push_back(k);
        values.push_back(v);
      }
    }
    keys.push_back(nullptr);
    values.push_back(nullptr);
    auto deadline = Clock::now() + std::chrono::seconds(10);
    if (has_timeout) {
      for (const auto& [k, v] : options_.params)
        if (k == "connect_timeout")
          deadline = Clock::now() + std::chrono::seconds(std::max(1, std::atoi(v.c_str())));
    }
    PGconn* conn = PQconnectStartParams(keys.data(), values.data(), 0);
    if (conn == nullptr) {
      error = "out of memory";
      return nullptr;
    }
    PQsetNoticeProcessor(conn, quiet, nullptr);
    PostgresPollingStatusType status = PGRES_POLLING_WRITING;
    while (PQstatus(conn) != CONNECTION_BAD) {
      if (status == PGRES_POLLING_OK) return conn;
      if (status == PGRES_POLLING_FAILED) break;
      short events = status == PGRES_POLLING_READING ? POLLIN : POLLOUT;
      Wait w = waitFor(PQsocket(conn), events, deadline);
      if (w == Wait::kStopped) {
        PQfinish(conn);
        return nullptr;
      }
      if (w == Wait::kTimeout) {
        error = "timeout while connecting";
        PQfinish(conn);
        return nullptr;
      }
      status = PQconnectPoll(conn);
    }
    error = trimmed(PQerrorMessage(conn));
    PQfinish(conn);
    return nullptr;
  }

  // LISTEN, sent without blocking the stop signal. False when it failed or stopping.
  bool listen(PGconn* conn, std::string& error) {
    std::string sql = std::string("LISTEN ") + kJobChannel;
    if (PQsendQuery(conn, sql.c_str()) != 1) {
      error = trimmed(PQerrorMessage(conn));
      return false;
    }
    auto deadline = Clock::now() + std::chrono::seconds(10);
    while (true) {
      if (PQflush(conn) < 0 || PQconsumeInput(conn) != 1) {
        error = trimmed(PQerrorMessage(conn));
        return false;
      }
      if (!PQisBusy(conn)) break;
      Wait w = waitFor(PQsocket(conn), POLLIN, deadline);
      if (w == Wait::kStopped) return false;
      if (w == Wait::kTimeout) {
        error = "timeout waiting for LISTEN";
        return false;
      }
    }
    bool ok = true;
    while (PGresult* res = PQgetResult(conn)) {
      if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        ok = false;
        error = trimmed(PQresultErrorMessage(res));
      }
      PQclear(res);
    }
    return ok;
  }

  // Delivers notifications until the connection breaks (error says how) or stop.
  void serve(PGconn* conn, std::string& error) {
    while (!stopping_) {
      // No deadline: the socket turns readable on a notification, on the server's
      // goodbye, and on a keepalive failure.
      Wait w = waitFor(PQsocket(conn), POLLIN, Clock::time_point::max());
      if (w == Wait::kStopped) return;
      if (PQconsumeInput(conn) != 1) {
        error = trimmed(PQerrorMessage(conn));
        return;
      }
      bool any = false;
      while (PGnotify* n = PQnotifies(conn)) {
        any = true;
        PQfreemem(n);
      }
      // Anything else the server sends here is the error before it closes the session.
      while (!PQisBusy(conn)) {
        PGresult* res = PQgetResult(conn);
        if (res == nullptr) break;
        PQclear(res);
      }
      if (any && callbacks_.on_job) callbacks_.on_job();
      if (PQstatus(conn) != CONNECTION_OK) {
        error = trimmed(PQerrorMessage(conn));
        return;
      }
    }
  }

  void run() {
    auto backoff = options_.min_backoff;
    bool outage_logged = false;  // one warning per outage, however many attempts it takes
    while (!stopping_) {
      std::string error;
      PGconn* conn = connect(error);
      if (conn != nullptr && listen(conn, error)) {
        if (outage_logged)
          LB_INFO("job notifications restored channel=%s", kJobChannel);
        else
          LB_DEBUG("listening for jobs channel=%s", kJobChannel);
        outage_logged = false;
        backoff = options_.min_backoff;
        connected_ = true;
        if (callbacks_.on_connected) callbacks_.on_connected(true);
        // Jobs queued while nobody listened were announced to no one.
        if (callbacks_.on_job) callbacks_.on_job();
        serve(conn, error);
        connected_ = false;
        if (!stopping_ && callbacks_.on_connected) callbacks_.on_connected(false);
      }
      if (conn != nullptr) PQfinish(conn);
      if (stopping_) break;
      if (!outage_logged) {
        LB_WARN(
            "job notifications lost; workers poll until the connection is back channel=%s error=%s",
            kJobChannel, error.empty() ? "connection closed" : error.c_str());
        outage_logged = true;
      }
      if (waitFor(-1, 0, Clock::now() + backoff) == Wait::kStopped) break;
      backoff = std::min(backoff * 2, options_.max_backoff);
    }
  }

  PostgresJobListenerOptions options_;
  JobListenerCallbacks callbacks_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> connected_{false};
  int stop_read_ = -1;
  int stop_write_ = -1;
  std::thread thread_;
};

}  // namespace

std::unique_ptr<JobListener> startPostgresJobListener(PostgresJobListenerOptions options,
                                                      JobListenerCallbacks callbacks) {
  return std::make_unique<PostgresJobListener>(std::move(options), std::move(callbacks));
}

}  // namespace banyan::provider::store
