#include "proxy/worker.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <algorithm>
#include <unordered_set>

#include "banyan/common/logging.h"
#include "net/socket.h"
#include "proxy/h2_upstream.h"
#include "proxy/session.h"
#include "proxy/udp_listener.h"

namespace banyan::dp::proxy {
namespace {

constexpr event::Millis kUpstreamIdleTimeout(10000);
constexpr size_t kMaxIdlePerWorker = 4096;
// Keys remembered as HTTP/1.1-only (the SNI, part of the key, comes from
// clients): past this many, the memory starts over.
constexpr size_t kMaxH1Keys = 4096;

std::vector<Worker*> g_workers;  // set once before any worker starts

// Idle member connections are shared only between requests that would have
// opened the same one: same member address, and for TLS the same pool context
// (the key then adds the SNI sent).
std::string upstreamScope(const MemberRt& member, const PoolRt& pool) {
  if (!pool.tls) return member.address_key;
  std::string scope = member.address_key;
  uint64_t serial = pool.tls->serial();
  scope.push_back('\0');
  scope.append(reinterpret_cast<const char*>(&serial), sizeof serial);
  scope.push_back('\0');
  return scope;
}

}  // namespace

void registerWorkers(std::vector<Worker*> workers) { g_workers = std::move(workers); }

// ---- UpstreamConn ------------------------------------------------------------

UpstreamConn::UpstreamConn(Worker& w, int fd_in, std::string key_in, std::string scope_in)
    : worker(w),
      fd(fd_in),
      key(std::move(key_in)),
      scope(std::move(scope_in)),
      idle_timer(w.loop(), [this] {
        // The timer is left armed while a request borrows the connection
        // (re-arming later is O(1)); only an idle connection expires.
        if (owner) return;
        worker.forgetIdle(this);
        destroy();
      }) {}

UpstreamConn::~UpstreamConn() {
  if (ssl) SSL_free(ssl);
  if (fd >= 0) ::close(fd);
}

void UpstreamConn::onEvents(uint32_t events) {
  if (fd < 0) return;
  if (owner) {
    owner->onUpstreamEvents(*this, events);
    return;
  }
  // An idle connection has nothing to say: the member closed it or broke the protocol.
  worker.forgetIdle(this);
  destroy();
}

void UpstreamConn::destroy() {
  if (h2_mode) {
    if (gone) return;
    gone = true;
    if (h2) h2->release(*this);  // cancels the stream unless it finished
    h2 = nullptr;
    owner = nullptr;
    idle_timer.cancel();
    worker.loop().deleteLater(std::unique_ptr<event::Deletable>(this));
    return;
  }
  if (fd < 0) return;
  if (h2_lead) worker.settleH2(*this);  // closed before its handshake told
  tls::closeAndFree(ssl);
  ssl = nullptr;
  worker.loop().closeSoon(fd);  // also leaves the epoll set: the fd is never duplicated
  fd = -1;
  owner = nullptr;
  idle_timer.cancel();
  worker.loop().deleteLater(std::unique_ptr<event::Deletable>(this));
}

// ---- Acceptor ----------------------------------------------------------------

class Acceptor final : public event::Handler, public event::Deletable {
 public:
  Acceptor(Worker& w, int fd, std::string key) : w_(w), fd_(fd), key_(std::move(key)) {
    socklen_t len = sizeof local_;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&local_), &len);
    static const uint8_t kZero[16] = {};
    wildcard_ = local_.ss_family == AF_INET6
                    ? memcmp(&reinterpret_cast<sockaddr_in6&>(local_).sin6_addr, kZero, 16) == 0
                    : reinterpret_cast<sockaddr_in&>(local_).sin_addr.s_addr == INADDR_ANY;
  }
  ~Acceptor() override {
    if (registered_) w_.loop().remove(fd_);
    ::close(fd_);
  }
  bool registerFd() {
    registered_ = w_.loop().add(fd_, EPOLLIN | EPOLLET, this);
    return registered_;
  }
  void unregister() {
    if (registered_) w_.loop().remove(fd_);
    registered_ = false;
  }
  void onEvents(uint32_t) override { acceptAll(); }

  void acceptAll() {
    if (w_.draining() || !registered_) return;
    const auto& snap = w_.snapshot();
    auto it = snap->by_bind.find(key_);
    if (it == snap->by_bind.end()) return;
    const ListenerRt& l = snap->listeners[it->second];
    Counters& counters = *l.counters;
    for (;;) {
      if (counters.shared_active.load(std::memory_order_relaxed) >= l.connection_limit) {
        // At connection_limit: leave further connections in the kernel backlog.
        counters.paused_workers.fetch_or(1ull << (w_.index() % 64));
        if (counters.shared_active.load() >= l.connection_limit) return;
        counters.paused_workers.fetch_and(~(1ull << (w_.index() % 64)));
      }
      sockaddr_storage peer{};
      socklen_t plen = sizeof peer;
      int fd = ::accept4(fd_, reinterpret_cast<sockaddr*>(&peer), &plen,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno != EAGAIN) {
          LB_WARN("accept failed. listener=%s error=%s", l.cfg->id.c_str(), strerror(errno));
          retryLater();
        }
        return;
      }
      if (!l.allows(peer)) {
        // Not from allowed_cidrs: closed before a byte is read (the agent's
        // nftables rules normally drop these before the handshake completes).
        ::close(fd);
        bump(counters.slot(w_.index()).denied_connections);
        continue;
      }
      // The local address is the bound one unless the listener binds a wildcard.
      sockaddr_storage local = local_;
      if (wildcard_) {
        socklen_t llen = sizeof local;
        getsockname(fd, reinterpret_cast<sockaddr*>(&local), &llen);
      }
      counters.shared_active.fetch_add(1, std::memory_order_relaxed);
      auto* s = new ClientSession(w_, snap, l, fd, peer, local);
      s->start();
    }
  }

  // Out of file descriptors or memory: try again shortly instead of spinning.
  void retryLater() {
    if (!retry_) retry_ = std::make_unique<event::Timer>(w_.loop(), [this] { acceptAll(); });
    retry_->arm(event::Millis(100));
  }

 private:
  Worker& w_;
  int fd_;
  std::string key_;
  sockaddr_storage local_{};
  bool wildcard_ = false;
  bool registered_ = false;
  std::unique_ptr<event::Timer> retry_;
};

// ---- Worker --------------------------------------------------------------------

Worker::Worker(size_t index, size_t worker_count)
    : index_(index), worker_count_(worker_count), access_log_(loop_, -1) {}

Worker::~Worker() {
  // Sessions and member connections die with the loop; close what is left.
  for (Session* s = sessions_; s;) {
    Session* next = s->next;
    delete s;
    s = next;
  }
  for (auto& [key, conns] : idle_)
    for (UpstreamConn* c : conns) delete c;
  std::vector<H2UpstreamConn*> h2;
  for (auto& [key, conns] : h2_) h2.insert(h2.end(), conns.begin(), conns.end());
  for (H2UpstreamConn* c : h2) c->closeNow();  // frees itself with the loop's deferred list
  acceptors_.clear();
  udp_listeners_.clear();
}

void Worker::start() {
  thread_ = std::thread([this] {
    loop_.run();
    access_log_.flush();
  });
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::applySnapshot(std::shared_ptr<const Snapshot> snap,
                           std::unordered_map<std::string, int> fds, int access_log_fd,
                           std::function<void()> done) {
  snap_ = std::move(snap);
  selectors_.clear();
  std::vector<Acceptor*> fresh;
  for (auto& [key, fd] : fds) {
    if (isUdpBindKey(key)) {
      if (udp_listeners_.count(key)) continue;
      auto u = std::make_unique<UdpListener>(*this, fd, key);
      if (!draining_) u->registerFd();
      udp_listeners_.emplace(key, std::move(u));
      continue;
    }
    if (acceptors_.count(key)) continue;
    auto a = std::make_unique<Acceptor>(*this, fd, key);
    if (!draining_ && a->registerFd()) fresh.push_back(a.get());
    acceptors_.emplace(key, std::move(a));
  }
  for (auto it = acceptors_.begin(); it != acceptors_.end();) {
    if (fds.count(it->first)) {
      ++it;
      continue;
    }
    // An event for it may still be queued in this iteration: free it afterwards.
    it->second->unregister();
    loop_.deleteLater(std::move(it->second));
    it = acceptors_.erase(it);
  }
  for (auto it = udp_listeners_.begin(); it != udp_listeners_.end();) {
    if (fds.count(it->first)) {
      it->second->snapshotApplied();  // flows of members that left end here
      ++it;
      continue;
    }
    it->second->unregister();
    it->second->closeAllFlows();
    loop_.deleteLater(std::move(it->second));
    it = udp_listeners_.erase(it);
  }
  // Idle connections to members that left every pool are closed; busy ones
  // finish their request first (drain).
  // TLS connections are scoped to their pool's context: a new context (new
  // CA, certificate or versions) means new connections.
  std::unordered_set<std::string> keep;
  for (const auto& p : snap_->pools)
    for (const auto& m : p.members) keep.insert(upstreamScope(m, p));
  for (auto it = idle_.begin(); it != idle_.end();) {
    if (!it->second.empty() && keep.count(it->second.front()->scope)) {
      ++it;
      continue;
    }
    for (UpstreamConn* c : it->second) {
      c->owner = nullptr;
      --idle_count_;
      c->destroy();
    }
    it = idle_.erase(it);
  }
  retireH2(false, &keep);
  access_log_.setFd(access_log_fd);
  for (Session* s = sessions_; s;) {
    Session* next = s->next;
    s->snapshotApplied();
    s = next;
  }
  if (done) done();
  for (Acceptor* a : fresh) a->acceptAll();
  // A listener whose limit was raised may accept again.
  resumeAcceptors();
}

int Worker::pickMember(const PoolRt& pool, const sockaddr_storage& client) {
  auto [it, inserted] = selectors_.try_emplace(&pool, pool.algorithm);
  balancer::Selector& sel = it->second;
  views.clear();
  bool lc = pool.algorithm == balancer::Algorithm::LeastConnections;
  for (const auto& m : pool.members) {
    balancer::MemberView v;
    v.id_hash = m.id_hash;
    v.weight = m.cfg->weight;
    v.backup = m.cfg->backup;
    v.usable = m.cfg->admin_state_up && m.health->up();
    v.active = lc ? static_cast<uint32_t>(
                        std::max<int64_t>(0, m.counters->shared_active.load(std::memory_order_relaxed)))
                  : 0;
    views.push_back(v);
  }
  uint64_t hash = 0;
  if (pool.algorithm == balancer::Algorithm::SourceIp)
    hash = balancer::hashSourceAddress(client, false);
  else if (pool.algorithm == balancer::Algorithm::SourceIpPort)
    hash = balancer::hashSourceAddress(client, true);
  return sel.pick(views, hash);
}

UpstreamConn* Worker::takeIdle(const MemberRt& member, const PoolRt& pool, const std::string& sni) {
  auto it = idle_.find(pool.tls ? upstreamScope(member, pool) + sni : member.address_key);
  if (it == idle_.end() || it->second.empty()) return nullptr;
  UpstreamConn* c = it->second.back();
  it->second.pop_back();
  --idle_count_;
  c->reused = true;
  return c;
}

void Worker::putIdle(UpstreamConn* up) {
  if (up->h2_lead) settleH2(*up);
  if (up->h2_mode) {
    up->destroy();  // a finished stream; its connection stays shared
    return;
  }
  if (idle_count_ >= kMaxIdlePerWorker) {
    up->destroy();
    return;
  }
  up->in.clear();
  up->out.clear();
  up->owner = nullptr;
  idle_[up->key].push_back(up);
  ++idle_count_;
  up->idle_timer.arm(kUpstreamIdleTimeout);
}

void Worker::forgetIdle(UpstreamConn* up) {
  auto it = idle_.find(up->key);
  if (it == idle_.end()) return;
  auto& v = it->second;
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] == up) {
      v[i] = v.back();
      v.pop_back();
      --idle_count_;
      return;
    }
  }
}

UpstreamConn* Worker::connectTo(const MemberRt& member, const PoolRt& pool, const std::string& sni,
                                bool allow_h2) {
  int fd = net::connectTcp(member.address);
  if (fd < 0) return nullptr;
  std::string scope = upstreamScope(member, pool);
  auto* c = new UpstreamConn(*this, fd, pool.tls ? scope + sni : scope, scope);
  if (pool.tls) {
    c->ssl = pool.tls->newSsl(fd, sni);
    if (!c->ssl) {
      delete c;
      errno = ENOMEM;
      return nullptr;
    }
    if (pool.h2 && allow_h2) {
      c->h2_offered = true;
    } else if (pool.h2 && !tls::setAlpn(c->ssl, pool.http1_alpn)) {
      delete c;
      errno = ENOMEM;
      return nullptr;
    }
  }
  if (!loop_.add(fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, c)) {
    int e = errno;
    delete c;
    errno = e;
    return nullptr;
  }
  // The first handshake offering h2 toward the key: others may wait for it (waitH2).
  if (c->h2_offered && !draining_ && !h1_keys_.count(c->key) && !h2_pending_.count(c->key)) {
    c->h2_lead = true;
    h2_pending_[c->key].lead = c;
  }
  return c;
}

UpstreamConn* Worker::takeH2(const MemberRt& member, const PoolRt& pool, const std::string& sni,
                             bool head_request, bool http10) {
  if (!pool.h2 || draining_) return nullptr;
  auto it = h2_.find(upstreamScope(member, pool) + sni);
  if (it == h2_.end()) return nullptr;
  for (H2UpstreamConn* c : it->second) {
    if (!c->canOpen()) continue;
    auto* up = new UpstreamConn(*this, -1, c->key(), c->scope());
    up->reused = true;
    c->attach(*up, head_request, http10);
    return up;
  }
  return nullptr;
}

void Worker::adoptH2(UpstreamConn* up, bool head_request, bool http10) {
  auto* c = new H2UpstreamConn(*this, up->fd, up->ssl, up->key, up->scope);
  up->fd = -1;
  up->ssl = nullptr;
  up->h2_offered = false;
  up->reused = false;
  h2_[c->key()].push_back(c);
  c->attach(*up, head_request, http10);
  h1_keys_.erase(c->key());
  // Waiters take their streams on their next turn: even if start() fails
  // (they then find no connection and open their own).
  if (up->h2_lead) settleH2(*up);
  c->start();  // on failure it closed, and `up` reads the end
}

bool Worker::waitH2(const MemberRt& member, const PoolRt& pool, const std::string& sni,
                    Session& s) {
  if (!pool.tls || !pool.h2 || draining_ || h2_pending_.empty()) return false;
  auto it = h2_pending_.find(upstreamScope(member, pool) + sni);
  if (it == h2_pending_.end() || it->second.waiters.size() >= kMaxH2Waiters) return false;
  LB_CHECK(!h2_waiting_.count(&s), "a session waits for one handshake at a time");
  it->second.waiters.push_back(&s);
  h2_waiting_.emplace(&s, it->first);
  return true;
}

void Worker::leaveH2Wait(Session& s) {
  auto it = h2_waiting_.find(&s);
  if (it == h2_waiting_.end()) return;
  auto p = h2_pending_.find(it->second);
  if (p != h2_pending_.end()) {
    auto& v = p->second.waiters;
    v.erase(std::remove(v.begin(), v.end(), &s), v.end());
  }
  h2_waiting_.erase(it);
}

void Worker::settleH2(UpstreamConn& up) {
  if (!up.h2_lead) return;
  up.h2_lead = false;
  auto it = h2_pending_.find(up.key);
  LB_CHECK(it != h2_pending_.end() && it->second.lead == &up, "a lead handshake is pending");
  std::vector<Session*> waiters = std::move(it->second.waiters);
  h2_pending_.erase(it);
  if (!up.h2_mode && !up.h2_offered) {
    // The member picked HTTP/1.1: later requests connect without waiting.
    if (h1_keys_.size() >= kMaxH1Keys) h1_keys_.clear();
    h1_keys_.insert(up.key);
  }
  for (Session* s : waiters) {
    h2_waiting_.erase(s);
    s->h2WaitOver();
  }
}

void Worker::h2Closed(H2UpstreamConn* conn) {
  auto it = h2_.find(conn->key());
  if (it == h2_.end()) return;
  auto& v = it->second;
  v.erase(std::remove(v.begin(), v.end(), conn), v.end());
  if (v.empty()) h2_.erase(it);
}

size_t Worker::h2Connections() const {
  size_t n = 0;
  for (const auto& [key, conns] : h2_) n += conns.size();
  return n;
}

// HTTP/2 connections to members that left (or all, when draining) take no new
// streams and close once their streams finished.
void Worker::retireH2(bool all, const std::unordered_set<std::string>* keep) {
  std::vector<H2UpstreamConn*> retire;
  for (auto& [key, conns] : h2_)
    for (H2UpstreamConn* c : conns)
      if (all || !keep || !keep->count(c->scope())) retire.push_back(c);
  for (H2UpstreamConn* c : retire) c->retire();
}

void Worker::addSession(Session* s) {
  s->prev = nullptr;
  s->next = sessions_;
  if (sessions_) sessions_->prev = s;
  sessions_ = s;
  ++session_count_;
}

void Worker::removeSession(Session* s) {
  if (s->prev) s->prev->next = s->next;
  else if (sessions_ == s) sessions_ = s->next;
  if (s->next) s->next->prev = s->prev;
  s->prev = s->next = nullptr;
  --session_count_;
  if (draining_ && session_count_ == 0) loop_.stop();
}

void Worker::connectionClosed(Counters& listener_counters) {
  listener_counters.shared_active.fetch_sub(1, std::memory_order_relaxed);
  uint64_t paused = listener_counters.paused_workers.exchange(0);
  if (!paused) return;
  for (Worker* w : g_workers) {
    if (!(paused & (1ull << (w->index() % 64)))) continue;
    if (w == this)
      resumeAcceptors();
    else
      w->loop().post([w] { w->resumeAcceptors(); });
  }
}

void Worker::resumeAcceptors() {
  for (auto& [key, a] : acceptors_) a->acceptAll();
}

void Worker::beginDrain(event::Millis deadline) {
  draining_ = true;
  // Stop accepting but keep the sockets open: closing a SO_REUSEPORT socket
  // would reset connections still queued on it.
  for (auto& [key, a] : acceptors_) a->unregister();
  // UDP has nothing in flight worth finishing: flows end with the drain.
  for (auto& [key, u] : udp_listeners_) {
    u->unregister();
    u->closeAllFlows();
  }
  for (auto& [key, conns] : idle_)
    for (UpstreamConn* c : conns) {
      c->owner = nullptr;
      c->destroy();
    }
  idle_.clear();
  idle_count_ = 0;
  retireH2(true, nullptr);
  for (Session* s = sessions_; s;) {
    Session* next = s->next;
    s->drain();
    s = next;
  }
  if (session_count_ == 0) {
    loop_.stop();
    return;
  }
  drain_timer_ = std::make_unique<event::Timer>(loop_, [this] { loop_.stop(); });
  drain_timer_->arm(deadline);
}

}  // namespace banyan::dp::proxy
