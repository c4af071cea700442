#include "proxy/udp_listener.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
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
// Datagrams one recvmmsg(2) or sendmmsg(2) moves: one kernel entry for up to
// this many instead of one each.
constexpr unsigned kBatch = 16;
// Room for the destination address a wildcard socket learns per datagram.
constexpr size_t kPktInfoSpace = CMSG_SPACE(sizeof(in6_pktinfo)) + CMSG_SPACE(sizeof(in_pktinfo));

// The worker thread's datagram slots: kBatch receive buffers of the largest
// datagram, and the headers of one receive batch and one send batch. The
// buffers are left uninitialised, so a page becomes resident only once a
// datagram lands in it (small datagrams touch one page per slot).
struct Slots {
  std::unique_ptr<char[]> data{new char[kBatch * kMaxDatagram]};
  mmsghdr in[kBatch];
  iovec in_iov[kBatch];
  sockaddr_storage in_name[kBatch];
  alignas(cmsghdr) char in_control[kBatch][kPktInfoSpace];
  mmsghdr out[kBatch];
  iovec out_iov[kBatch];
  alignas(cmsghdr) char out_control[CMSG_SPACE(sizeof(in6_pktinfo))];

  char* buf(unsigned i) { return data.get() + size_t{i} * kMaxDatagram; }
  // Readies the receive headers; `from` also asks for the sender and, for a
  // wildcard socket, the address the datagram went to.
  void prepareReceive(bool from) {
    for (unsigned i = 0; i < kBatch; ++i) {
      in_iov[i] = {buf(i), kMaxDatagram};
      msghdr& m = in[i].msg_hdr;
      m = msghdr{};
      m.msg_iov = &in_iov[i];
      m.msg_iovlen = 1;
      if (from) {
        m.msg_name = &in_name[i];
        m.msg_namelen = sizeof in_name[i];
        m.msg_control = in_control[i];
        m.msg_controllen = sizeof in_control[i];
      }
    }
  }
};

Slots& slots() {
  thread_local Slots s;
  return s;
}

bool isWildcard(const sockaddr_storage& a) {
  static const uint8_t kZero[16] = {};
  if (a.ss_family == AF_INET6)
    return memcmp(&reinterpret_cast<const sockaddr_in6&>(a).sin6_addr, kZero, 16) == 0;
  return reinterpret_cast<const sockaddr_in&>(a).sin_addr.s_addr == INADDR_ANY;
}

// The address a wildcard socket's datagram was sent to (IP_PKTINFO).
sockaddr_storage destinationOf(msghdr& msg) {
  sockaddr_storage local{};
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
  return local;
}

// The control message that makes a wildcard socket send from `local` (the
// address the client sent to); 0 when the socket's own address will do.
size_t sourceControl(char* control, bool wildcard, const sockaddr_storage& local,
                     const sockaddr_storage& to) {
  if (!wildcard || local.ss_family != to.ss_family) return 0;
  cmsghdr* c = reinterpret_cast<cmsghdr*>(control);
  if (to.ss_family == AF_INET6) {
    c->cmsg_level = IPPROTO_IPV6;
    c->cmsg_type = IPV6_PKTINFO;
    c->cmsg_len = CMSG_LEN(sizeof(in6_pktinfo));
    in6_pktinfo info{};
    info.ipi6_addr = reinterpret_cast<const sockaddr_in6&>(local).sin6_addr;
    memcpy(CMSG_DATA(c), &info, sizeof info);
    return CMSG_SPACE(sizeof(in6_pktinfo));
  }
  c->cmsg_level = IPPROTO_IP;
  c->cmsg_type = IP_PKTINFO;
  c->cmsg_len = CMSG_LEN(sizeof(in_pktinfo));
  in_pktinfo info{};
  info.ipi_spec_dst = reinterpret_cast<const sockaddr_in&>(local).sin_addr;
  memcpy(CMSG_DATA(c), &info, sizeof info);
  return CMSG_SPACE(sizeof(in_pktinfo));
}

// Sends `count` prepared datagrams with as few sendmmsg(2) calls as the socket
// allows. One that fails (a full buffer, an ICMP error reported now) is
// dropped, as a full link would drop it, and `dropped(i)` hears of it; the
// ones after it are still tried.
template <typename Dropped>
void sendBatch(int fd, mmsghdr* msgs, unsigned count, Dropped&& dropped) {
  unsigned next = 0;
  while (next < count) {
    int n = ::sendmmsg(fd, msgs + next, count - next, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      next += static_cast<unsigned>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    dropped(next);
    ++next;
  }
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
  Slots& s = slots();
  for (int budget = kReadBudget; budget > 0;) {
    s.prepareReceive(true);
    int n = ::recvmmsg(fd_, s.in, kBatch, MSG_DONTWAIT, nullptr);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      // An unconnected socket reports little else (ENOMEM): try again soon.
      LB_DEBUG("UDP receive failed. listener_bind=%s error=%s", key_.c_str(), strerror(errno));
      break;
    }
    for (int i = 0; i < n; ++i) {
      sockaddr_storage local = wildcard_ ? destinationOf(s.in[i].msg_hdr) : sockaddr_storage{};
      onDatagram(s.buf(static_cast<unsigned>(i)), s.in[i].msg_len, s.in_name[i], local);
    }
    flushToMember();
    // A short batch emptied the socket: the next datagram brings a new edge.
    if (static_cast<unsigned>(n) < kBatch) return;
    budget -= n;
  }
  // Budget spent (or a transient error): the edge is consumed, so come back
  // on a zero-delay timer after the other ready sockets had their turn.
  if (!resume_) resume_ = std::make_unique<event::Timer>(w_.loop(), [this] { receiveAll(); });
  resume_->arm(event::Millis(0));
}

void UdpListener::onDatagram(char* data, size_t size, const sockaddr_storage& client,
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
  queueToMember(flow, data, size);
}

// Consecutive datagrams of one flow go to its member in one sendmmsg(2).
void UdpListener::queueToMember(UdpFlow* flow, char* data, size_t size) {
  if (pending_flow_ != flow) flushToMember();
  Slots& s = slots();
  s.out_iov[pending_] = {data, size};
  msghdr& m = s.out[pending_].msg_hdr;
  m = msghdr{};
  m.msg_iov = &s.out_iov[pending_];
  m.msg_iovlen = 1;
  pending_flow_ = flow;
  ++pending_;
}

void UdpListener::flushToMember() {
  if (pending_ == 0) return;
  UdpFlow* flow = pending_flow_;
  Slots& s = slots();
  CounterSlot& ms = flow->member_counters->slot(w_.index());
  // A full socket buffer drops the datagram, as a full link would; an ICMP
  // error from the member (ECONNREFUSED) is reported on a later call.
  sendBatch(flow->fd, s.out, pending_, [&](unsigned i) {
    ms.bytes_out.store(ms.bytes_out.load(std::memory_order_relaxed) - s.out_iov[i].iov_len,
                       std::memory_order_relaxed);
    bump(ms.errors);
  });
  pending_ = 0;
  pending_flow_ = nullptr;
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
  if (flow == pending_flow_) flushToMember();
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
  Slots& s = slots();
  for (int budget = kReadBudget; budget > 0;) {
    s.prepareReceive(false);
    int n = ::recvmmsg(flow.fd, s.in, kBatch, MSG_DONTWAIT, nullptr);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      // ECONNREFUSED and friends: an ICMP error from the member, consumed by
      // this call; datagrams behind it are still to be read.
      bump(flow.member_counters->slot(w_.index()).errors);
      --budget;
      continue;
    }
    size_t control_len = sourceControl(s.out_control, wildcard_, flow.local, flow.client);
    CounterSlot& ms = flow.member_counters->slot(w_.index());
    std::atomic<uint64_t>& out = flow.listener_counters->slot(w_.index()).bytes_out;
    for (unsigned i = 0; i < static_cast<unsigned>(n); ++i) {
      size_t size = s.in[i].msg_len;
      bump(ms.bytes_in, size);
      // Counted before the send: once the client has the datagram, the stats
      // already show it.
      bump(out, size);
      s.out_iov[i] = {s.buf(i), size};
      msghdr& m = s.out[i].msg_hdr;
      m = msghdr{};
      m.msg_name = &flow.client;
      m.msg_namelen = net::addressLength(flow.client);
      m.msg_iov = &s.out_iov[i];
      m.msg_iovlen = 1;
      if (control_len != 0) {
        m.msg_control = s.out_control;
        m.msg_controllen = control_len;
      }
    }
    flow.idle_timer.arm(flow.idle_timeout);
    sendBatch(fd_, s.out, static_cast<unsigned>(n), [&](unsigned i) {  // dropped
      out.store(out.load(std::memory_order_relaxed) - s.out_iov[i].iov_len, std::memory_order_relaxed);
    });
    if (static_cast<unsigned>(n) < kBatch) return;
    budget -= n;
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
