#include "proxy/udp_listener.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <vector>

#include "balancer/mix64.h"
#include "banyan/common/logging.h"
#include "net/socket.h"
#include "proxy/worker.h"

namespace banyan::dp::proxy {
namespace {

// The largest UDP payload (IPv4: 65535 - 8 - 20).
constexpr size_t kMaxDatagram = 65536;
// Datagrams read per readiness edge before yielding to other sockets.
constexpr int kReadBudget = 256;

char* scratch() {
  thread_local std::vector<char> buf(kMaxDatagram);
  return buf.data();
}

bool isWildcard(const sockaddr_storage& a) {
  static const uint8_t kZero[16] = {};
  if (a.ss_family == AF_INET6)
    return memcmp(&reinterpret_cast<const sockaddr_in6&>(a).sin6_addr, kZero, 16) == 0;
  return reinterpret_cast<const sockaddr_in&>(a).sin_addr.s_addr == INADDR_ANY;
}

// Sends from `local` (a wildcard socket's datagram went to that address) or
// from the socket's own address.
ssize_t sendFrom(int fd, bool wildcard, const sockaddr_storage& local, const char* data,
                 size_t size, const sockaddr_storage& to) {
  iovec iov{const_cast<char*>(data), size};
  msghdr msg{};
  msg.msg_name = const_cast<sockaddr_storage*>(&to);
  msg.msg_namelen = net::addressLength(to);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(in6_pktinfo))] = {};
  if (wildcard && local.ss_family == to.ss_family) {
    msg.msg_control = control;
    cmsghdr* c = reinterpret_cast<cmsghdr*>(control);
    if (to.ss_family == AF_INET6) {
      msg.msg_controllen = CMSG_SPACE(sizeof(in6_pktinfo));
      c->cmsg_level = IPPROTO_IPV6;
      c->cmsg_type = IPV6_PKTINFO;
      c->cmsg_len = CMSG_LEN(sizeof(in6_pktinfo));
      in6_pktinfo info{};
      info.ipi6_addr = reinterpret_cast<const sockaddr_in6&>(local).sin6_addr;
      memcpy(CMSG_DATA(c), &info, sizeof info);
    } else {
      msg.msg_controllen = CMSG_SPACE(sizeof(in_pktinfo));
      c->cmsg_level = IPPROTO_IP;
      c->cmsg_type = IP_PKTINFO;
      c->cmsg_len = CMSG_LEN(sizeof(in_pktinfo));
      in_pktinfo info{};
      info.ipi_spec_dst = reinterpret_cast<const sockaddr_in&>(local).sin_addr;
      memcpy(CMSG_DATA(c), &info, sizeof info);
    }
  }
  return ::sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
}

}  // namespace

FlowKey FlowKey::of(const sockaddr_storage& addr) {
  FlowKey k;
  if (addr.ss_family == AF_INET6) {
    const auto& a = reinterpret_cast<const sockaddr_in6&>(addr);
    k.bytes[0] = 6;
    memcpy(k.bytes + 1, &a.sin6_port, 2);
    memcpy(k.bytes + 3, &a.sin6_addr, 16);
    k.size = 19;
  } else {
    const auto& a = reinterpret_cast<const sockaddr_in&>(addr);
    k.bytes[0] = 4;
    memcpy(k.bytes + 1, &a.sin_port, 2);
    memcpy(k.bytes + 3, &a.sin_addr, 4);
    k.size = 7;
  }
  return k;
}

size_t FlowKeyHash::operator()(const FlowKey& k) const {
  uint64_t h = k.size;
  for (size_t i = 0; i < k.size; i += 8) {
    uint64_t word = 0;
    memcpy(&word, k.bytes + i, std::min<size_t>(8, k.size - i));
    h = balancer::mix64(h ^ word);
  }
  return static_cast<size_t>(h);
}

// ---- UdpFlow -------------------------------------------------------------------

UdpFlow::UdpFlow(UdpListener& l, int fd_in, const FlowKey& key_in)
    : listener(l), fd(fd_in), key(key_in), idle_timer(l.w_.loop(), [this] {
        // Re-armed by every datagram (O(1) to a later deadline): it fires only
        // after timeout_client_data without traffic either way.
        listener.closeFlow(this, true);
      }) {}

UdpFlow::~UdpFlow() {
  if (fd >= 0) ::close(fd);
}

void UdpFlow::onEvents(uint32_t) {
  if (fd < 0) return;
  listener.relayToClient(*this);
}

// ---- UdpListener ---------------------------------------------------------------

UdpListener::UdpListener(Worker& w, int fd, std::string key)
    : w_(w), fd_(fd), key_(std::move(key)) {
  sockaddr_storage local{};
  socklen_t len = sizeof local;
  if (getsockname(fd_, reinterpret_cast<sockaddr*>(&local), &len) == 0)
    wildcard_ = isWildcard(local);
}

UdpListener::~UdpListener() {
  if (registered_) w_.loop().remove(fd_);
  // Flows left here belong to a worker being destroyed: nothing is queued for them.
  for (auto& [k, f] : flows_) delete f;
  flows_.clear();
  ::close(fd_);
}

bool UdpListener::registerFd() {
  registered_ = w_.loop().add(fd_, EPOLLIN | EPOLLET, this);
  return registered_;
}

void UdpListener::unregister() {
  if (registered_) w_.loop().remove(fd_);
  registered_ = false;
}

void UdpListener::onEvents(uint32_t) { receiveAll(); }

void UdpListener::receiveAll() {
  if (!registered_) return;
  char* buf = scratch();
  for (int i = 0; i < kReadBudget; ++i) {
    sockaddr_storage client{};
    iovec iov{buf, kMaxDatagram};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(in6_pktinfo)) + CMSG_SPACE(sizeof(in_pktinfo))];
    msghdr msg{};
    msg.msg_name = &client;
    msg.msg_namelen = sizeof client;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = ::recvmsg(fd_, &msg, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      // An unconnected socket reports little else (ENOMEM): try again soon.
      LB_DEBUG("UDP receive failed. listener_bind=%s error=%s", key_.c_str(), strerror(errno));
      break;
    }
    sockaddr_storage local{};
    if (wildcard_) {
      for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
          in_pktinfo info;
          memcpy(&info, CMSG_DATA(c), sizeof info);
          local.ss_family = AF_INET;
          reinterpret_cast<sockaddr_in&>(local).sin_addr = info.ipi_addr;
        } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
          in6_pktinfo info;
          memcpy(&info, CMSG_DATA(c), sizeof info);
          local.ss_family = AF_INET6;
          reinterpret_cast<sockaddr_in6&>(local).sin6_addr = info.ipi6_addr;
        }
      }
    }
    onDatagram(buf, static_cast<size_t>(n), client, local);
  }
  // Budget spent (or a transient error): the edge is consumed, so come back
  // on a zero-delay timer after the other ready sockets had their turn.
  if (!resume_) resume_ = std::make_unique<event::Timer>(w_.loop(), [this] { receiveAll(); });
  resume_->arm(event::Millis(0));
}

void UdpListener::onDatagram(const char* data, size_t size, const sockaddr_storage& client,
                             const sockaddr_storage& local) {
  const auto& snap = w_.snapshot();
  auto lit = snap->by_bind.find(key_);
  if (lit == snap->by_bind.end()) return;
  const ListenerRt& l = snap->listeners[lit->second];
  FlowKey key = FlowKey::of(client);
  UdpFlow* flow = nullptr;
  if (auto it = flows_.find(key); it != flows_.end()) {
    flow = it->second;
    if (!flow->member_health->up()) {
      // The member went down: its flows end and the client is balanced again.
      closeFlow(flow, false);
      flow = nullptr;
    }
  }
  if (flow == nullptr) {
    if (!l.allows(client)) return;  // not in allowed_cidrs: dropped silently
    flow = openFlow(l, key, client, local);
    if (flow == nullptr) {
      bump(l.counters->slot(w_.index()).errors);
      return;
    }
  }
  bump(flow->listener_counters->slot(w_.index()).bytes_in, size);
  flow->idle_timer.arm(flow->idle_timeout);
  std::atomic<uint64_t>& out = flow->member_counters->slot(w_.index()).bytes_out;
  bump(out, size);  // before the send, as relayToClient
  if (::send(flow->fd, data, size, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
    // A full socket buffer drops the datagram, as a full link would; an ICMP
    // error from the member (ECONNREFUSED) is reported on a later call.
    out.store(out.load(std::memory_order_relaxed) - size, std::memory_order_relaxed);
    bump(flow->member_counters->slot(w_.index()).errors);
  }
}

UdpFlow* UdpListener::openFlow(const ListenerRt& l, const FlowKey& key,
                               const sockaddr_storage& client, const sockaddr_storage& local) {
  if (l.pool == nullptr) return nullptr;
  Counters& lc = *l.counters;
  if (lc.shared_active.load(std::memory_order_relaxed) >= l.connection_limit) return nullptr;
  const PoolRt& pool = *l.pool;
  const MemberRt* member = nullptr;
  const PersistenceRt* persist = pool.persistence.get();
  persistence::SourceIpKey pkey;
  if (persist != nullptr && persist->table) {
    pkey = persistence::sourceIpKey(client, persist->granularity);
    if (pkey.size != 0) {
      if (auto id = persist->table->lookup(pkey.view(), w_.loop().now()))
        member = pool.usableMember(*id);
    }
  }
  if (member == nullptr) {
    int index = w_.pickMember(pool, client);
    if (index < 0) return nullptr;
    member = &pool.members[static_cast<size_t>(index)];
    if (persist != nullptr && persist->table && pkey.size != 0)
      persist->table->store(pkey.view(), member->cfg->id, w_.loop().now());
  }
  int fd = net::connectUdp(member->address);
  if (fd < 0) {
    LB_DEBUG("UDP flow to member failed. member=%s error=%s", member->cfg->id.c_str(),
             strerror(errno));
    return nullptr;
  }
  auto* flow = new UdpFlow(*this, fd, key);
  if (!w_.loop().add(fd, EPOLLIN | EPOLLET, flow)) {
    delete flow;
    return nullptr;
  }
  flow->client = client;
  flow->local = local;
  flow->member_id = member->cfg->id;
  flow->member_address_key = member->address_key;
  flow->member_health = member->health;
  flow->member_counters = member->counters;
  flow->listener_counters = l.counters;
  if (persist != nullptr && pkey.size != 0) {
    flow->persistence = persist->table;
    flow->persistence_key = pkey;
  }
  flow->idle_timeout = event::Millis(l.cfg->timeout_client_data_ms);
  flows_.emplace(key, flow);

  CounterSlot& ls = lc.slot(w_.index());
  bump(ls.total_connections);
  bump(ls.active_connections, 1);
  lc.shared_active.fetch_add(1, std::memory_order_relaxed);
  CounterSlot& ms = member->counters->slot(w_.index());
  bump(ms.total_connections);
  bump(ms.active_connections, 1);
  member->counters->shared_active.fetch_add(1, std::memory_order_relaxed);
  return flow;
}

void UdpListener::closeFlow(UdpFlow* flow, bool remember) {
  flows_.erase(flow->key);
  if (remember && flow->persistence)
    flow->persistence->store(flow->persistence_key.view(), flow->member_id, w_.loop().now());
  bump(flow->listener_counters->slot(w_.index()).active_connections, -1);
  flow->listener_counters->shared_active.fetch_sub(1, std::memory_order_relaxed);
  bump(flow->member_counters->slot(w_.index()).active_connections, -1);
  flow->member_counters->shared_active.fetch_sub(1, std::memory_order_relaxed);
  flow->idle_timer.cancel();
  ::close(flow->fd);  // also leaves the epoll set
  flow->fd = -1;
  w_.loop().deleteLater(std::unique_ptr<event::Deletable>(flow));
}

void UdpListener::relayToClient(UdpFlow& flow) {
  char* buf = scratch();
  for (int i = 0; i < kReadBudget; ++i) {
    ssize_t n = ::recv(flow.fd, buf, kMaxDatagram, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      // ECONNREFUSED and friends: an ICMP error from the member, consumed by
      // this call; datagrams behind it are still to be read.
      bump(flow.member_counters->slot(w_.index()).errors);
      continue;
    }
    size_t size = static_cast<size_t>(n);
    bump(flow.member_counters->slot(w_.index()).bytes_in, size);
    flow.idle_timer.arm(flow.idle_timeout);
    // Counted before the send: once the client has the datagram, the stats
    // already show it.
    std::atomic<uint64_t>& out = flow.listener_counters->slot(w_.index()).bytes_out;
    bump(out, size);
    if (sendFrom(fd_, wildcard_, flow.local, buf, size, flow.client) < 0)  // dropped
      out.store(out.load(std::memory_order_relaxed) - size, std::memory_order_relaxed);
  }
  // More than a budget's worth queued: finish after the other ready sockets
  // had their turn (the timer dies with the flow).
  if (!flow.resume)
    flow.resume = std::make_unique<event::Timer>(w_.loop(), [&flow] {
      if (flow.fd >= 0) flow.listener.relayToClient(flow);
    });
  flow.resume->arm(event::Millis(0));
}

void UdpListener::snapshotApplied() {
  const auto& snap = w_.snapshot();
  auto lit = snap->by_bind.find(key_);
  if (lit == snap->by_bind.end()) {
    closeAllFlows();
    return;
  }
  const ListenerRt& l = snap->listeners[lit->second];
  std::vector<UdpFlow*> doomed;
  for (auto& [k, f] : flows_) {
    bool keep = false;
    if (l.pool != nullptr) {
      for (const auto& m : l.pool->members) {
        if (m.cfg->id == f->member_id && m.address_key == f->member_address_key) {
          keep = m.cfg->admin_state_up;
          break;
        }
      }
    }
    if (!keep) doomed.push_back(f);
  }
  for (UdpFlow* f : doomed) closeFlow(f, false);
}

void UdpListener::closeAllFlows() {
  std::vector<UdpFlow*> all;
  all.reserve(flows_.size());
  for (auto& [k, f] : flows_) all.push_back(f);
  for (UdpFlow* f : all) closeFlow(f, false);
}

}  // namespace banyan::dp::proxy
