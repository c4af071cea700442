// ClientSession: lifecycle (accept, TLS hand-off to HTTP/2, events, the
// driver loop, the PROXY header), timers, close and the access log. The
// other concerns live in session_{io,request,upstream,response,tunnel}.cc.
#include "proxy/session.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <ctime>

#include "banyan/common/logging.h"
#include "net/socket.h"
#include "proxy/h2_connection.h"
#include "proxy/h2_upstream.h"
#include "proxy/session_internal.h"
#include "proxy/tls_readiness.h"
#include "proxy_protocol/proxy_protocol.h"
#include "tls/client_hello.h"
#include "tls/tls_io.h"

namespace banyan::dp::proxy {

namespace {

using event::Millis;
using session_detail::kStreamCap;

// How long a TCP/HTTPS listener with SNI policies waits for the ClientHello when
// its timeout_tcp_inspect is 0 (unset).
constexpr Millis kDefaultTcpInspect{5000};

// Only sources in proxy_protocol_trusted_cidrs (all, when it is empty) may tell
// Banyan who the client is; anyone else is served as the client it is.
bool trustsProxyHeader(const ListenerRt& listener, const sockaddr_storage& peer) {
  if (listener.proxy_trusted.empty()) return true;
  for (const auto& cidr : listener.proxy_trusted)
    if (net::cidrContains(cidr, peer)) return true;
  return false;
}

void appendTimestamp(std::string& out) {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t;
  gmtime_r(&ts.tv_sec, &t);
  char buf[96];
  snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", t.tm_year + 1900, t.tm_mon + 1,
           t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, ts.tv_nsec / 1000000);
  out.append(buf);
}

// Request targets are logged with spaces and control bytes escaped so one
// line stays one record.
void appendEscaped(std::string& out, std::string_view s) {
  static const char kHex[] = "0123456789ABCDEF";
  for (unsigned char c : s) {
    if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\') {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
}

}  // namespace

ClientSession::ClientSession(Worker& worker, std::shared_ptr<const Snapshot> snap,
                             const ListenerRt& listener, int fd, const sockaddr_storage& peer,
                             const sockaddr_storage& local)
    : w_(worker),
      snap_(std::move(snap)),
      lis_(&listener),
      lis_counters_(listener.counters),
      http_(listener.http),
      fd_(fd),
      peer_(peer),
      local_(local),
      phase_(Phase::Head),
      timer_(worker.loop(), [this] { onTimer(); }),
      kick_(worker.loop(), [this] { advance(); }) {
  auto now = w_.loop().now();
  since_ = client_act_ = member_act_ = req_start_ = now;
  if (listener.cfg->accept_proxy != config::AcceptProxy::kNone && trustsProxyHeader(listener, peer))
    phase_ = Phase::ProxyHeader;
  else if (!http_)
    phase_ = Phase::TcpConnect;
  if (!http_) req_pool_ = listener.pool;  // until L7 policies pick another
}

ClientSession::ClientSession(Worker& worker, std::shared_ptr<const Snapshot> snap,
                             const ListenerRt& listener, H2Connection& conn, int32_t stream_id,
                             std::string head, SSL* conn_ssl, const sockaddr_storage& peer,
                             const sockaddr_storage& local)
    : ClientSession(worker, std::move(snap), listener, -1, peer, local) {
  phase_ = Phase::Head;
  http_ = true;
  h2_ = &conn;
  h2_stream_ = stream_id;
  h2_mode_ = true;
  ssl_ = conn_ssl;
  alpn_checked_ = true;
  // One request per stream: the session ends with its response.
  close_after_ = true;
  cin_.append(head);
}

ClientSession::~ClientSession() {
  if (io_queued_) w_.loop().forgetIo(this);
  if (h2_waiting_) w_.leaveH2Wait(*this);
  if (h2_mode_) ssl_ = nullptr;  // the connection's
  if (ssl_) SSL_free(ssl_);
  if (up_) up_->destroy();
  if (private_up_) private_up_->destroy();
  if (fd_ >= 0) ::close(fd_);
}

void ClientSession::start() {
  if (h2_mode_) {
    c_readable_ = true;
    advance();
    return;
  }
  auto& slot = lis_counters_->slot(w_.index());
  bump(slot.total_connections);
  bump(slot.active_connections, 1);
  w_.addSession(this);
  if (lis_->tls) {
    ssl_ = lis_->tls->newSsl(fd_);
    if (!ssl_) {
      termination_ = "tls_error";
      close();
      return;
    }
  }
  if (!w_.loop().addSoon(fd_, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, this)) {
    close();
    return;
  }
  c_readable_ = true;  // data may already be queued (accept after the first segment)
  if (phase_ == Phase::TcpConnect) {
    beginTcp();
    if (closed_) return;
  }
  advance();
}

void ClientSession::onEvents(uint32_t events) {
  if (closed_) return;
  if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) c_hup_ = true;
  // The wants-flags are only ever set under TLS (handshake, alerts).
  noteTlsReadiness(events, c_readable_, c_writable_, c_read_wants_write_, c_write_wants_read_);
  advance();
}

void ClientSession::onUpstreamEvents(UpstreamConn& up, uint32_t events) {
  if (&up == private_up_) {
    // Between requests the member has nothing to say: it closed or misbehaved.
    dropPrivateUpstream();
    return;
  }
  if (closed_ || &up != up_) return;
  if (!up.connected) {
    if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
    int err = net::connectError(up.fd);
    if (err != 0 || (events & EPOLLERR)) {
      onConnectFailed(err ? err : ECONNREFUSED);
      if (!closed_) advance();
      return;
    }
    up.connected = true;
    onConnected();
  }
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) up.readable = true;
  if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) up.hup = true;
  if (events & EPOLLOUT) up.writable = true;
  if (up.ssl) {
    if ((events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) && up.tls_read_wants_write) {
      up.tls_read_wants_write = false;
      up.readable = true;
    }
    if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) && up.tls_write_wants_read) {
      up.tls_write_wants_read = false;
      up.writable = true;
    }
  }
  advance();
}

void ClientSession::drain() {
  if (closed_) return;
  // Idle keep-alive connections close now; busy ones after their response.
  if (phase_ == Phase::Head && cin_.empty() && cout_.empty()) {
    close();
    return;
  }
  if (http_) close_after_ = true;
}

void ClientSession::h2Wake(bool readable, bool writable) {
  if (closed_) return;
  if (readable) c_readable_ = true;
  if (writable) c_writable_ = true;
  advance();
}

void ClientSession::h2Detach() { h2_ = nullptr; }

void ClientSession::h2Abort(const char* termination) {
  if (closed_) return;
  termination_ = termination;
  if (w_.accessLog().enabled() && phase_ != Phase::Head && phase_ != Phase::Closing) logAccess();
  close();
}

void ClientSession::handOffToH2() {
  std::string early(cin_.view());
  auto* conn = new H2Connection(w_, snap_, *lis_, lis_counters_, fd_, ssl_, peer_, local_);
  fd_ = -1;
  ssl_ = nullptr;
  closed_ = true;
  timer_.cancel();
  kick_.cancel();
  cin_.clear();
  cout_.clear();
  conn->start(early);  // registers itself before this session leaves the worker's list
  w_.removeSession(this);
  w_.loop().deleteLater(std::unique_ptr<event::Deletable>(this));
}

// ---- the driver --------------------------------------------------------------

void ClientSession::advance() {
  if (h2_wait_over_) resumeAfterH2Wait();
  bool progress = true;
  for (int round = 0; round < 64 && progress && !closed_; ++round) {
    progress = false;
    switch (phase_) {
      case Phase::ProxyHeader:
        progress |= readClient(16 + proxy_protocol::kMaxV2Length);  // v2 header with TLVs
        progress |= stepProxyHeader();
        break;
      case Phase::Head:
        progress |= flushClient();
        if (closed_) return;
        if (!cout_.empty()) break;  // previous response still leaving
        if (close_after_ && cin_.empty()) {
          close();
          return;
        }
        progress |= readClient(lis_->limits.max_head + 1);
        if (ssl_ && !alpn_checked_ && SSL_is_init_finished(ssl_)) {
          alpn_checked_ = true;
          const unsigned char* alpn = nullptr;
          unsigned int alpn_len = 0;
          SSL_get0_alpn_selected(ssl_, &alpn, &alpn_len);
          if (alpn_len == 2 && alpn[0] == 'h' && alpn[1] == '2' && !w_.draining()) {
            handOffToH2();
            return;
          }
        }
        progress |= stepHead();
        break;
      case Phase::Request: {
        progress |= flushUpstream();
        if (!req_.done) {
          progress |= readClient(kStreamCap);
          if (!req_.scan(cin_, c_eof_)) {
            bump(lis_counters_->slot(w_.index()).errors);
            sendError(400, "bad_chunked_request");
            return;
          }
          if (c_eof_ && !req_.done && req_.ready == 0) {
            termination_ = "client_abort";
            close();
            return;
          }
        }
        progress |= flushUpstream();
        progress |= stepResponse();
        if (closed_ || phase_ != Phase::Request) break;
        progress |= flushClient();
        break;
      }
      case Phase::Inspect:
        progress |= stepInspect();
        break;
      case Phase::TcpConnect:
        break;  // waiting for the member
      case Phase::Tunnel:
        progress |= tunnelStep();
        break;
      case Phase::Closing:
        progress |= flushClient();
        if (!closed_ && cout_.empty() && resp_.ready == 0) {
          close();
          return;
        }
        break;
    }
  }
  // Our handshake others wait for picked HTTP/1.1 (h2 and failures settle in
  // the worker): they need not wait for this response.
  if (up_ && up_->h2_lead && !up_->h2_offered) w_.settleH2(*up_);
  if (closed_) return;
  // Still moving after a fair share of work: continue on the next iteration so
  // other connections get their turn. Edge-triggered events will not repeat for
  // bytes already waiting, so this session must come back by itself.
  if (progress) kick_.arm(Millis(0));
  updateTimer();
}

bool ClientSession::stepProxyHeader() {
  if (cin_.empty()) {
    if (c_eof_) close();
    return false;
  }
  proxy_protocol::Accept accept = proxy_protocol::Accept::Any;
  if (lis_->cfg->accept_proxy == config::AcceptProxy::kV1) accept = proxy_protocol::Accept::V1;
  if (lis_->cfg->accept_proxy == config::AcceptProxy::kV2) accept = proxy_protocol::Accept::V2;
  auto r = proxy_protocol::parse(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(cin_.data()), cin_.size()), accept);
  if (r.status == proxy_protocol::ParseStatus::NeedMore) {
    if (c_eof_) close();
    return false;
  }
  if (r.status == proxy_protocol::ParseStatus::Invalid) {
    LB_DEBUG("Refused a connection without a valid PROXY header. listener=%s reason=%s",
             lis_->cfg->id.c_str(), proxy_protocol::parseErrorName(r.error));
    bump(lis_counters_->slot(w_.index()).errors);
    termination_ = "bad_proxy_header";
    close();
    return false;
  }
  if (r.header.has_addresses) {
    peer_ = r.header.source;
    local_ = r.header.destination;
  }
  if (ssl_) {
    // The header was only peeked at: take it off the socket now (it is all
    // queued there), leaving the TLS bytes behind it for OpenSSL.
    char drop[16 + proxy_protocol::kMaxV2Length];
    ssize_t n = ::recv(fd_, drop, std::min(r.consumed, sizeof drop), 0);
    if (n != static_cast<ssize_t>(r.consumed)) {
      termination_ = "bad_proxy_header";
      close();
      return false;
    }
    cin_.clear();
    c_readable_ = true;
  } else {
    cin_.consume(r.consumed);
  }
  since_ = w_.loop().now();
  if (http_) {
    phase_ = Phase::Head;
  } else {
    beginTcp();
  }
  return true;
}

// ---- TCP and HTTPS listeners: SNI routing ---------------------------------------

void ClientSession::beginTcp() {
  since_ = w_.loop().now();
  const l7::PolicySet* policies = lis_->policies;
  if (policies != nullptr && policies->passthroughNeedsHost()) {
    // Hold the first bytes (advance reads them) until the ClientHello is
    // complete, the bytes are not TLS, or the inspect time is over.
    phase_ = Phase::Inspect;
    return;
  }
  // Nothing to inspect: no policy, or none whose answer depends on the bytes.
  // No read, no delay (server-speaks-first protocols keep working).
  routeConnection({});
}

bool ClientSession::stepInspect() {
  if (close_after_) {  // the client reset (afterClientRecv)
    close();
    return false;
  }
  auto hello = tls::parseClientHello(cin_.view());
  if (hello.status == tls::ClientHelloStatus::kNeedMore && !c_eof_)
    return readClient(tls::kMaxClientHelloInput);  // progress: parse again next round
  if (hello.status == tls::ClientHelloStatus::kNotTls && !cin_.empty()) {
    LB_DEBUG("No SNI to route on. conn=%s listener=%s reason=%s",
             net::formatAddressPort(peer_).c_str(), lis_->cfg->id.c_str(),
             std::string(tls::clientHelloErrorName(hello.error)).c_str());
  }
  // Not TLS, or the client stopped sending before its ClientHello ended. A
  // complete ClientHello without a server name was read: not a failure.
  if (hello.status != tls::ClientHelloStatus::kDone)
    bump(lis_counters_->slot(w_.index()).sni_inspect_failed);
  routeConnection(hello.has_sni ? std::string_view(hello.sni) : std::string_view());
  return true;
}

void ClientSession::routeConnection(std::string_view sni) {
  since_ = w_.loop().now();
  phase_ = Phase::TcpConnect;
  if (const l7::PolicySet* policies = lis_->policies) {
    l7::MatchInput in;
    in.host = sni;
    in.passthrough = true;
    CounterSlot& lis_slot = lis_counters_->slot(w_.index());
    if (const l7::Policy* policy = policies->match(in)) {
      PolicyCounterSlot& counted = lis_->countersOf(*policy).slot(w_.index());
      bump(counted.matched);
      switch (policy->action) {
        case l7::PolicyAction::kReject:
          // Counted as the HTTP listener's L7 rejects are (request errors).
          bump(counted.rejected);
          bump(lis_slot.errors);
          termination_ = "l7_reject";
          close();
          return;
        case l7::PolicyAction::kRedirectToPool:
          req_pool_ = snap_->findUsablePool(policy->redirect_pool_id);
          if (req_pool_ != nullptr) {
            bump(counted.routed);
            bump(lis_slot.sni_routed);
          }
          break;
        case l7::PolicyAction::kRedirectToUrl:
        case l7::PolicyAction::kRedirectPrefix:
          LB_CHECK(false, "redirect policies never match passthrough traffic");
      }
    } else {
      bump(lis_slot.sni_default);
    }
  }
  // The held bytes stay in cin_: the tunnel sends them first, after the PROXY
  // header of PROXY pools, before reading more (and before any splice).
  attachMember();
}

// ---- close and timers ----------------------------------------------------------

void ClientSession::close() {
  if (closed_) return;
  closed_ = true;
  if (io_queued_) {
    w_.loop().forgetIo(this);
    io_queued_ = io_done_ = 0;
  }
  if (h2_waiting_) {
    w_.leaveH2Wait(*this);
    h2_waiting_ = false;
  }
  if (!http_ && w_.accessLog().enabled()) logAccess();
  releaseUpstream(false);
  dropPrivateUpstream();
  timer_.cancel();
  kick_.cancel();
  if (h2_mode_) {
    // A stream: the connection keeps the socket, the SSL and the connection count.
    if (h2_) h2_->streamDone(h2_stream_);
    h2_ = nullptr;
    ssl_ = nullptr;
    cin_.clear();
    cout_.clear();
    w_.loop().deleteLater(std::unique_ptr<event::Deletable>(this));
    return;
  }
  tls::closeAndFree(ssl_);
  ssl_ = nullptr;
  w_.loop().closeSoon(fd_);  // also leaves the epoll set: the fd is never duplicated
  fd_ = -1;
  cin_.clear();
  cout_.clear();
  auto& slot = lis_counters_->slot(w_.index());
  bump(slot.active_connections, -1);
  w_.connectionClosed(*lis_counters_);
  w_.removeSession(this);
  w_.loop().deleteLater(std::unique_ptr<event::Deletable>(this));
}

void ClientSession::updateTimer() {
  const config::Listener& l = *lis_->cfg;
  Millis client_to(l.timeout_client_data_ms ? l.timeout_client_data_ms : 50000);
  Millis member_to(l.timeout_member_data_ms ? l.timeout_member_data_ms : 50000);
  Millis connect_to(l.timeout_member_connect_ms ? l.timeout_member_connect_ms : 5000);
  event::TimePoint deadline;
  switch (phase_) {
    case Phase::ProxyHeader:
    case Phase::Head:
      deadline = since_ + client_to;
      break;
    case Phase::Inspect:
      deadline = since_ + (l.timeout_tcp_inspect_ms ? Millis(l.timeout_tcp_inspect_ms)
                                                    : kDefaultTcpInspect);
      break;
    case Phase::TcpConnect:
      deadline = since_ + connect_to;
      break;
    case Phase::Request:
      if (h2_waiting_ || (up_ && !up_->connected)) {
        deadline = since_ + connect_to;
      } else {
        deadline = member_act_ + member_to;
        if (!req_.done) deadline = std::min(deadline, client_act_ + client_to);
      }
      break;
    case Phase::Tunnel:
      deadline = std::max(client_act_, member_act_) + std::max(client_to, member_to);
      break;
    case Phase::Closing:
      deadline = client_act_ + client_to;
      break;
  }
  timer_.armAt(deadline);
}

void ClientSession::onTimer() {
  if (closed_) return;
  auto now = w_.loop().now();
  const config::Listener& l = *lis_->cfg;
  Millis client_to(l.timeout_client_data_ms ? l.timeout_client_data_ms : 50000);
  Millis member_to(l.timeout_member_data_ms ? l.timeout_member_data_ms : 50000);
  switch (phase_) {
    case Phase::ProxyHeader:
      termination_ = "client_timeout";
      close();
      return;
    case Phase::Head:
      if (cin_.empty()) {
        close();  // idle keep-alive connection: close silently
      } else {
        bump(lis_counters_->slot(w_.index()).errors);
        sendError(408, "client_timeout");
      }
      return;
    case Phase::Inspect:
      // No complete ClientHello in time (a client that waits for the server
      // to speak first, or a slow one): the SNI sample is missing.
      bump(lis_counters_->slot(w_.index()).sni_inspect_failed);
      routeConnection({});
      if (!closed_) advance();
      return;
    case Phase::TcpConnect:
      onConnectFailed(ETIMEDOUT);
      if (!closed_) advance();
      return;
    case Phase::Request:
      if (h2_waiting_) {
        // The awaited handshake outlasted our connect timeout (a member that
        // accepts but stalls TLS): stop waiting and connect as we would have.
        // Only our own attempts count as failures.
        w_.leaveH2Wait(*this);
        h2_waiting_ = false;
        connectMember(false);
        if (!closed_) advance();
        return;
      }
      if (up_ && !up_->connected) {
        onConnectFailed(ETIMEDOUT);
        if (!closed_) advance();
        return;
      }
      if (now >= member_act_ + member_to) {
        if (member_) bump(member_->counters->slot(w_.index()).errors);
        if (!resp_head_done_) {
          sendError(504, "member_timeout");
        } else {
          termination_ = "member_timeout";
          close();
        }
        return;
      }
      if (!req_.done && now >= client_act_ + client_to) {
        termination_ = "client_timeout";
        if (!resp_head_done_) {
          sendError(408, termination_);
        } else {
          close();
        }
        return;
      }
      break;
    case Phase::Tunnel:
    case Phase::Closing:
      termination_ = "timeout";
      close();
      return;
  }
  updateTimer();
}

// ---- access log ----------------------------------------------------------------

// One access-log line (docs/access-log.md): per request on HTTP listeners,
// per connection on TCP listeners.
void ClientSession::logAccess() {
  std::string line;
  line.reserve(256);
  appendTimestamp(line);
  line.append(" listener=").append(lis_->cfg->id);
  line.append(" client=").append(net::formatAddressPort(peer_));
  if (http_) {
    line.append(" method=");
    appendEscaped(line, log_method_.empty() ? "-" : log_method_);
    line.append(" target=");
    appendEscaped(line, log_target_.empty() ? "-" : log_target_);
    line.append(" status=").append(std::to_string(status_));
  }
  line.append(" bytes_in=").append(std::to_string(req_bytes_in_));
  line.append(" bytes_out=").append(std::to_string(req_bytes_out_ + cout_.size()));
  line.append(" pool=").append(pool_ ? pool_->cfg->id : "-");
  line.append(" member=").append(member_ ? member_->cfg->id : "-");
  auto ms = std::chrono::duration_cast<Millis>(w_.loop().now() - req_start_).count();
  line.append(" duration_ms=").append(std::to_string(ms));
  line.append(" termination=").append(termination_);
  w_.accessLog().line(line);
}

}  // namespace banyan::dp::proxy
