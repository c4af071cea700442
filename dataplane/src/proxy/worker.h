// A worker thread: one epoll loop, its own SO_REUSEPORT listening sockets, its
// own pool of idle member connections and its own balancer state. Nothing here
// is shared with other workers except the immutable snapshot and the counters.
#pragma once

#include <netinet/in.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "balancer/balancer.h"
#include "event/loop.h"
#include "http/parser.h"
#include "proxy/access_log.h"
#include "proxy/buffer.h"
#include "proxy/snapshot.h"
#include "tls/tls_io.h"

namespace banyan::dp::proxy {

class Worker;
class Session;
class H2UpstreamConn;

// One TCP connection to a member. Owned by the session using it, or by the
// worker's idle pool between requests.
class UpstreamConn final : public event::Handler, public event::Deletable {
 public:
  UpstreamConn(Worker& worker, int fd, std::string key, std::string scope);
  ~UpstreamConn() override;
  void onEvents(uint32_t events) override;
  // Closes now and frees at the end of the iteration.
  void destroy();

  Worker& worker;
  int fd;
  std::string key;    // idle-pool key: scope, plus the SNI for TLS
  std::string scope;  // MemberRt::address_key, plus the pool's TLS context for TLS
  Session* owner = nullptr;
  SSL* ssl = nullptr;  // re-encryption to the member (pool tls_enabled)
  // A TLS read that needs the socket writable, or a write that needs it
  // readable: the other readiness edge resumes it.
  bool tls_read_wants_write = false;
  bool tls_write_wants_read = false;
  Buffer in;
  Buffer out;
  bool connected = false;
  bool readable = false;
  bool writable = false;
  bool eof = false;       // member closed its side
  bool hup = false;       // the member's FIN is queued: read until 0
  bool bulk = false;      // the last read was a large one: read directly (kBatchMaxBytes)
  bool shut_wr = false;   // we sent FIN
  bool reused = false;    // came from the idle pool
  event::Timer idle_timer;
  // HTTP/2 to the member: in h2 mode this object stands for one stream of a
  // shared H2UpstreamConn (fd is -1, ssl null); the session still writes
  // HTTP/1.1 to it and reads HTTP/1.1 back (see h2_upstream.h).
  bool h2_mode = false;
  H2UpstreamConn* h2 = nullptr;  // null once the stream or its connection ended
  uint32_t h2_handle = 0;
  bool h2_refused = false;  // the member never processed the request: resending is safe
  // A new TLS connection offering "h2": the handshake runs before the first
  // write, so an HTTP/1.1 head never reaches a member that chose HTTP/2.
  bool h2_offered = false;
  // This connection's handshake is the one sessions toward its key wait for
  // (Worker::waitH2) until it settles.
  bool h2_lead = false;
  bool gone = false;  // destroy() ran (h2 mode: no socket to tell)
};

// Base of client connections, linked into their worker for draining.
class Session : public event::Deletable {
 public:
  ~Session() override = default;
  virtual void onUpstreamEvents(UpstreamConn& up, uint32_t events) = 0;
  // Graceful stop: finish what is in flight, then close.
  virtual void drain() = 0;
  // A new snapshot was installed (HTTP/2 connections say GOAWAY when their
  // listener is gone; HTTP/1.1 sessions look at each new request instead).
  virtual void snapshotApplied() {}
  // The handshake this session waited for (Worker::waitH2) settled: h2 or
  // not, it now takes a stream or connects as it would have. Called from
  // inside other sessions' calls: the session must only note it.
  virtual void h2WaitOver() {}
  Session* prev = nullptr;
  Session* next = nullptr;
};

class Acceptor;
class UdpListener;

class Worker {
 public:
  Worker(size_t index, size_t worker_count);
  ~Worker();

  void start();
  void join();
  size_t index() const { return index_; }
  event::EventLoop& loop() { return loop_; }

  // Runs on the worker's thread (posted by the Proxy). `fds` maps bind keys of
  // every listener of `snap` to this worker's listening socket for it (UDP
  // listeners' keys start with "udp/", see udpBindKey); sockets
  // of bind keys no longer present are closed. `done` runs once applied.
  void applySnapshot(std::shared_ptr<const Snapshot> snap, std::unordered_map<std::string, int> fds,
                     int access_log_fd, std::function<void()> done);
  // Stops accepting, drains sessions, stops the loop when none is left or at the deadline.
  void beginDrain(event::Millis deadline);

  const std::shared_ptr<const Snapshot>& snapshot() const { return snap_; }

  // Member selection; -1 when no member can take traffic.
  int pickMember(const PoolRt& pool, const sockaddr_storage& client);
  // An idle connection to the member, or nullptr. `sni` (TLS pools) is the
  // server name the connection must have been opened with.
  UpstreamConn* takeIdle(const MemberRt& member, const PoolRt& pool, const std::string& sni);
  void putIdle(UpstreamConn* up);
  void forgetIdle(UpstreamConn* up);
  // A new connection (TLS when the pool re-encrypts, sending `sni`). `allow_h2`:
  // the request may go over HTTP/2, so a pool that allows "h2" offers it.
  UpstreamConn* connectTo(const MemberRt& member, const PoolRt& pool, const std::string& sni,
                          bool allow_h2 = false);
  // A stream on a shared HTTP/2 connection to the member with room for one
  // more, or nullptr. The stream comes as an UpstreamConn in h2 mode.
  UpstreamConn* takeH2(const MemberRt& member, const PoolRt& pool, const std::string& sni,
                       bool head_request, bool http10);
  // `up` is a new TLS connection whose handshake selected "h2": its socket
  // becomes a shared HTTP/2 connection and `up` its first stream.
  void adoptH2(UpstreamConn* up, bool head_request, bool http10);
  // The HTTP/2 connection closed: it leaves the pool.
  void h2Closed(H2UpstreamConn* conn);
  // HTTP/2 member connections of this worker (tests and stats read it).
  size_t h2Connections() const;
  // Coalescing of the first HTTP/2 connection: a session about to connect to
  // `member` for a request HTTP/2 may carry waits, instead, for a handshake
  // offering h2 toward the same key already under way on this worker (true:
  // `s` waits, and hears h2WaitOver once it settled). False when there is none,
  // or it has kMaxH2Waiters waiting already.
  bool waitH2(const MemberRt& member, const PoolRt& pool, const std::string& sni, Session& s);
  // `s` stops waiting (closed, or its connect timeout passed). No-op if it does not wait.
  void leaveH2Wait(Session& s);
  // The handshake of `up` (h2_lead) ended: with h2 (adopted), with another
  // protocol (h2_offered cleared), or not at all (destroyed). Wakes its waiters.
  void settleH2(UpstreamConn& up);
  static constexpr size_t kMaxH2Waiters = 100;

  void addSession(Session* s);
  void removeSession(Session* s);
  bool draining() const { return draining_; }
  AccessLog& accessLog() { return access_log_; }
  // Connection-limit bookkeeping: a listener paused on this worker resumes
  // when a connection of it closes anywhere.
  void connectionClosed(Counters& listener_counters);
  void resumeAcceptors();
  // Worker-local scratch: member views for pickMember, parsed heads (their
  // views point into a session's buffer and never outlive one call).
  std::vector<balancer::MemberView> views;
  http::RequestHead req_scratch;
  http::ResponseHead resp_scratch;
  std::string head_scratch;

 private:
  friend class Acceptor;
  size_t index_;
  size_t worker_count_;
  event::EventLoop loop_;
  std::thread thread_;
  std::shared_ptr<const Snapshot> snap_;
  std::unordered_map<std::string, std::unique_ptr<Acceptor>> acceptors_;
  // UDP listener sockets by bind key ("udp/..."), each with its client flows.
  std::unordered_map<std::string, std::unique_ptr<UdpListener>> udp_listeners_;
  std::unordered_map<const PoolRt*, balancer::Selector> selectors_;
  std::unordered_map<std::string, std::vector<UpstreamConn*>> idle_;
  // Live HTTP/2 member connections by the same key, busy or not.
  std::unordered_map<std::string, std::vector<H2UpstreamConn*>> h2_;
  void retireH2(bool all, const std::unordered_set<std::string>* keep);
  // Handshakes offering h2 whose outcome sessions wait for, one per key.
  struct H2Handshake {
    UpstreamConn* lead = nullptr;
    std::vector<Session*> waiters;
  };
  std::unordered_map<std::string, H2Handshake> h2_pending_;
  std::unordered_map<Session*, std::string> h2_waiting_;  // waiter -> key
  // Keys whose last handshake offering h2 picked another protocol: nobody
  // waits for their handshakes (an HTTP/1.1 connection is not shared).
  std::unordered_set<std::string> h1_keys_;
  size_t idle_count_ = 0;
  Session* sessions_ = nullptr;
  size_t session_count_ = 0;
  bool draining_ = false;
  AccessLog access_log_;
  std::unique_ptr<event::Timer> drain_timer_;
};

// All workers, so a closing connection can wake acceptors paused elsewhere.
void registerWorkers(std::vector<Worker*> workers);

}  // namespace banyan::dp::proxy
