#include "proxy/proxy.h"

#include <fcntl.h>
#include <unistd.h>

#include <condition_variable>
#include <cstring>
#include <fstream>
#include <sstream>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "banyan/common/logging.h"
#include "config/parse.h"
#include "net/socket.h"

namespace banyan::dp::proxy {

using common::Error;
using common::ErrorCode;
using common::makeError;

Proxy::Proxy(size_t workers)
    : listener_counters_(workers),
      member_counters_(workers),
      policy_counters_(workers),
      health_(health_registry_) {
  std::vector<Worker*> raw;
  for (size_t i = 0; i < workers; ++i) {
    workers_.push_back(std::make_unique<Worker>(i, workers));
    raw.push_back(workers_.back().get());
  }
  registerWorkers(raw);
}

Proxy::~Proxy() {
  health_.stop();
  for (auto& w : workers_) {
    w->loop().stop();
    w->join();
  }
  workers_.clear();
  if (access_log_owned_) ::close(access_log_fd_);
}

std::shared_ptr<const Snapshot> Proxy::current() {
  std::lock_guard<std::mutex> lock(snap_mu_);
  return snap_;
}

common::Result<uint64_t> Proxy::applyFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return makeError(ErrorCode::kUnavailable, std::string("cannot read: ") + strerror(errno), path);
  std::stringstream ss;
  ss << in.rdbuf();
  return apply(ss.str());
}

common::Result<uint64_t> Proxy::apply(std::string document) {
  std::lock_guard<std::mutex> lock(apply_mu_);
  auto parsed = config::parseConfig(document);
  if (!parsed.ok()) return parsed.error();
  auto cfg = std::make_shared<const config::Config>(std::move(parsed).value());
  if (started_ && cfg->settings.workers != 0 && cfg->settings.workers != workers_.size())
    LB_WARN("settings.workers changes only at start; keeping the running count. running=%zu "
            "requested=%u",
            workers_.size(), cfg->settings.workers);

  // TLS material first: a certificate that does not load, does not match its
  // key or has expired refuses the document before anything changes.
  TlsMaterial tls;
  tls_.setTicketRotation(std::chrono::seconds(cfg->settings.tls_ticket_key_rotation_s));
  tls.listeners.resize(cfg->listeners.size());
  tls.pools.resize(cfg->pools.size());
  for (size_t li = 0; li < cfg->listeners.size(); ++li) {
    const auto& l = cfg->listeners[li];
    if (!l.admin_state_up || !l.terminatesTls()) continue;
    auto ctx = tls_.serverContext(l, "/listeners/" + std::to_string(li));
    if (!ctx) return ctx.error();
    tls.listeners[li] = std::move(ctx).value();
  }
  for (size_t pi = 0; pi < cfg->pools.size(); ++pi) {
    const auto& p = cfg->pools[pi];
    if (!p.tls_enabled) continue;
    auto ctx = tls_.clientContext(p, "/pools/" + std::to_string(pi));
    if (!ctx) return ctx.error();
    tls.pools[pi] = std::move(ctx).value();
  }

  // Open sockets for bind addresses that are new; keep the others untouched
  // so their accept queues never drop a connection.
  std::unordered_map<std::string, std::vector<int>> fresh;
  std::unordered_map<std::string, bool> wanted;
  auto abandon = [&fresh] {
    for (auto& [k, fds] : fresh)
      for (int fd : fds) ::close(fd);
  };
  for (size_t li = 0; li < cfg->listeners.size(); ++li) {
    const auto& l = cfg->listeners[li];
    if (!l.admin_state_up) continue;
    std::vector<std::string> addrs{l.address};
    addrs.insert(addrs.end(), l.additional_addresses.begin(), l.additional_addresses.end());
    for (const auto& a : addrs) {
      sockaddr_storage ss;
      if (!net::parseAddress(a, l.protocol_port, ss)) {
        abandon();
        return makeError(ErrorCode::kInvalidArgument, "not an IP address: " + a,
                         "/listeners/" + std::to_string(li) + "/address");
      }
      const bool udp = l.protocol == config::ListenerProtocol::kUdp;
      std::string key = udp ? udpBindKey(ss) : bindKey(ss);
      wanted[key] = true;
      if (listen_fds_.count(key) || fresh.count(key)) continue;
      std::vector<int> fds;
      for (size_t w = 0; w < workers_.size(); ++w) {
        int fd = udp ? net::bindUdp(ss) : net::listenTcp(ss, SOMAXCONN);
        if (fd < 0) {
          int e = errno;
          for (int f : fds) ::close(f);
          abandon();
          return makeError(ErrorCode::kUnavailable,
                           "cannot " + std::string(udp ? "bind " : "listen on ") + key + ": " +
                               strerror(e),
                           "/listeners/" + std::to_string(li) + "/protocol_port");
        }
        fds.push_back(fd);
      }
      fresh.emplace(key, std::move(fds));
    }
  }

  // Access log target.
  int log_fd = access_log_fd_;
  bool log_owned = access_log_owned_;
  const std::string& target = cfg->settings.access_log;
  if (target != access_log_target_ || !started_) {
    if (target.empty()) {
      log_fd = -1, log_owned = false;
    } else if (target == "stderr") {
      log_fd = 2, log_owned = false;
    } else if (target == "stdout") {
      log_fd = 1, log_owned = false;
    } else {
      log_fd = ::open(target.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
      if (log_fd < 0) {
        int e = errno;
        abandon();
        return makeError(ErrorCode::kUnavailable,
                         "cannot open access log " + target + ": " + strerror(e),
                         "/settings/access_log");
      }
      log_owned = true;
    }
  }

  for (auto& [k, fds] : fresh) listen_fds_.emplace(k, std::move(fds));
  for (auto it = listen_fds_.begin(); it != listen_fds_.end();) {
    if (!wanted.count(it->first))
      it = listen_fds_.erase(it);  // each worker closes its own socket
    else
      ++it;
  }

  auto snap = buildSnapshot(cfg, std::move(document), ++serial_, health_registry_,
                            listener_counters_, member_counters_, &tls, &persistence_,
                            &policy_counters_);

  std::mutex mu;
  std::condition_variable cv;
  size_t pending = workers_.size();
  for (size_t w = 0; w < workers_.size(); ++w) {
    std::unordered_map<std::string, int> fds;
    for (auto& [k, v] : listen_fds_) fds.emplace(k, v[w]);
    Worker* worker = workers_[w].get();
    auto done = [&] {
      std::lock_guard<std::mutex> g(mu);
      if (--pending == 0) cv.notify_all();
    };
    if (started_) {
      worker->loop().post([worker, snap, fds = std::move(fds), log_fd, done]() mutable {
        worker->applySnapshot(snap, std::move(fds), log_fd, done);
      });
    } else {
      worker->applySnapshot(snap, std::move(fds), log_fd, done);
    }
  }
  {
    std::unique_lock<std::mutex> g(mu);
    cv.wait(g, [&] { return pending == 0; });
  }
  if (access_log_owned_ && access_log_fd_ != log_fd) ::close(access_log_fd_);
  access_log_fd_ = log_fd;
  access_log_owned_ = log_owned;
  access_log_target_ = target;
  {
    std::lock_guard<std::mutex> g(snap_mu_);
    snap_ = snap;
  }
  health_.apply(cfg);
  health_registry_.collect();
  listener_counters_.collect();
  member_counters_.collect();
  policy_counters_.collect();
  LB_INFO("Config applied. generation=%llu listeners=%zu pools=%zu",
          static_cast<unsigned long long>(cfg->generation), cfg->listeners.size(),
          cfg->pools.size());
  return cfg->generation;
}

void Proxy::start() {
  std::lock_guard<std::mutex> lock(apply_mu_);
  for (auto& w : workers_) w->start();
  health_.start();
  started_ = true;
}

void Proxy::drainAndStop() {
  auto snap = current();
  event::Millis deadline(snap ? snap->config->settings.drain_timeout_ms : 30000);
  LB_INFO("Draining. workers=%zu deadline_ms=%lld", workers_.size(),
          static_cast<long long>(deadline.count()));
  for (auto& w : workers_) {
    Worker* worker = w.get();
    worker->loop().post([worker, deadline] { worker->beginDrain(deadline); });
  }
  for (auto& w : workers_) w->join();
  health_.stop();
}

namespace {

void writeCounters(rapidjson::Writer<rapidjson::StringBuffer>& w, const CounterTotals& c,
                   const char* errors_key) {
  w.Key("bytes_in");
  w.Uint64(c.bytes_in);
  w.Key("bytes_out");
  w.Uint64(c.bytes_out);
  w.Key("active_connections");
  w.Int64(c.active_connections);
  w.Key("total_connections");
  w.Uint64(c.total_connections);
  w.Key(errors_key);
  w.Uint64(c.errors);
}

void writeListenerL7Counters(rapidjson::Writer<rapidjson::StringBuffer>& w, const CounterTotals& c) {
  w.Key("l7_default");
  w.Uint64(c.l7_default);
  w.Key("sni_routed");
  w.Uint64(c.sni_routed);
  w.Key("sni_default");
  w.Uint64(c.sni_default);
  w.Key("sni_inspect_failed");
  w.Uint64(c.sni_inspect_failed);
}

}  // namespace

std::string Proxy::statsJson() {
  auto snap = current();
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartObject();
  w.Key("generation");
  w.Uint64(snap ? snap->config->generation : 0);
  w.Key("listeners");
  w.StartArray();
  if (snap) {
    for (const auto& l : snap->config->listeners) {
      w.StartObject();
      w.Key("id");
      w.String(l.id.c_str());
      CounterTotals totals = listener_counters_.get(l.id)->sum();
      writeCounters(w, totals, "request_errors");
      writeListenerL7Counters(w, totals);
      w.EndObject();
    }
  }
  w.EndArray();
  w.Key("members");
  w.StartArray();
  if (snap) {
    for (const auto& p : snap->config->pools) {
      for (const auto& m : p.members) {
        w.StartObject();
        w.Key("id");
        w.String(m.id.c_str());
        w.Key("pool_id");
        w.String(p.id.c_str());
        writeCounters(w, member_counters_.get(m.id)->sum(), "response_errors");
        w.EndObject();
      }
    }
  }
  w.EndArray();
  // Policies of running listeners, keyed by policy id (Octavia's are UUIDs).
  w.Key("l7policies");
  w.StartObject();
  if (snap) {
    for (const auto& l : snap->listeners) {
      for (const auto& ps : l.policy_stats) {
        PolicyCounterTotals t = ps.counters->sum();
        w.Key(ps.cfg->id.c_str());
        w.StartObject();
        w.Key("listener_id");
        w.String(l.cfg->id.c_str());
        w.Key("action");
        std::string_view action = l7::policyActionName(ps.cfg->action);
        w.String(action.data(), static_cast<rapidjson::SizeType>(action.size()));
        w.Key("matched");
        w.Uint64(t.matched);
        w.Key("rejected");
        w.Uint64(t.rejected);
        w.Key("redirected");
        w.Uint64(t.redirected);
        w.Key("routed");
        w.Uint64(t.routed);
        w.EndObject();
      }
    }
  }
  w.EndObject();
  w.EndObject();
  return sb.GetString();
}

std::string Proxy::healthJson() const { return health_.statusJson(); }

std::string Proxy::configDocument() {
  auto snap = current();
  return snap ? snap->document : "{}";
}

}  // namespace banyan::dp::proxy
