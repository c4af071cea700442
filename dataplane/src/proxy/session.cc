#include "proxy/session.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "banyan/common/logging.h"
#include "http/forwarded.h"
#include "l7/policy.h"
#include "net/socket.h"
#include "persistence/cookie.h"
#include "proxy/h2_connection.h"
#include "proxy/h2_upstream.h"
#include "proxy/metrics.h"
#include "proxy_protocol/proxy_protocol.h"
#include "tls/tls_io.h"

namespace banyan::dp::proxy {

struct ClientSession::SplicePipe {
  int r = -1;
  int w = -1;
  size_t pending = 0;  // bytes in the pipe not yet written out
  ~SplicePipe() {
    if (r >= 0) ::close(r);
    if (w >= 0) ::close(w);
  }
};

namespace {

// A tunnel direction switches to splice(2) after this many reads in a row that
// each brought at least kBulkRead bytes: a bulk transfer. Request/response
// traffic over TCP (small reads) stays on the buffers, where one recv and one
// send beat two splices per hop.
constexpr uint32_t kSpliceAfterBulkReads = 4;
constexpr size_t kBulkRead = 8192;

using event::Millis;
constexpr size_t kStreamCap = 65536;  // bytes buffered per direction before reading pauses

const char* reasonPhrase(int status) {
  switch (status) {
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 408: return "Request Time-out";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Time-out";
  }
  return "Error";
}

// The body texts follow the stock amphora's error pages, so clients that
// match on them keep working.
std::string errorResponse(int status) {
  const char* detail = "";
  switch (status) {
    case 400: detail = "Your browser sent an invalid request."; break;
    case 403: detail = "Request forbidden by administrative rules."; break;
    case 408: detail = "Your browser didn't send a complete request in time."; break;
    case 502: detail = "The server returned an invalid or incomplete response."; break;
    case 503: detail = "No server is available to handle this request."; break;
    case 504: detail = "The server didn't respond in time."; break;
  }
  char body[256];
  int blen = snprintf(body, sizeof body, "<html><body><h1>%d %s</h1>\n%s\n</body></html>\n",
                      status, reasonPhrase(status), detail);
  char head[256];
  int hlen = snprintf(head, sizeof head,
                      "HTTP/1.1 %d %s\r\ncontent-length: %d\r\ncache-control: no-cache\r\n"
                      "content-type: text/html\r\nconnection: close\r\n\r\n",
                      status, reasonPhrase(status), blen);
  return std::string(head, hlen) + std::string(body, blen);
}

bool ieq(std::string_view a, std::string_view b) { return http::equalsIgnoreCase(a, b); }

// A redirect policy's answer, as HAProxy's `redirect` sends it: no body.
std::string redirectResponse(int status, std::string_view location) {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + reasonPhrase(status) + "\r\n";
  out += "content-length: 0\r\nlocation: ";
  out += location;
  out += "\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n";
  return out;
}

// The Host header without its port, lowercased, as HOST_NAME rules compare it.
std::string hostForMatch(std::string_view host) {
  size_t end = host.size();
  if (!host.empty() && host.front() == '[') {
    size_t close = host.find(']');
    if (close != std::string_view::npos) end = close + 1;
  } else if (size_t colon = host.rfind(':'); colon != std::string_view::npos) {
    end = colon;
  }
  std::string out(host.substr(0, end));
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// The path of a request target, without query string or fragment; an
// absolute-form target ("http://host/p?q") gives "/p".
std::string_view pathOf(std::string_view target) {
  if (target.size() > 7 && (ieq(target.substr(0, 7), "http://") ||
                            (target.size() > 8 && ieq(target.substr(0, 8), "https://")))) {
    size_t start = target.find("://") + 3;
    size_t slash = target.find_first_of("/?#", start);
    if (slash == std::string_view::npos || target[slash] != '/') return "/";
    target = target.substr(slash);
  }
  size_t end = target.find_first_of("?#");
  return end == std::string_view::npos ? target : target.substr(0, end);
}

// The last value of `field` (any case) in a "/C=US/O=Example/CN=client" DN,
// as HAProxy's ssl_c_s_dn(<field>) gives it.
bool dnField(std::string_view dn, std::string_view field, std::string_view* out) {
  bool found = false;
  size_t pos = 0;
  while (pos < dn.size()) {
    if (dn[pos] == '/') ++pos;
    size_t next = dn.find('/', pos);
    std::string_view entry = dn.substr(pos, next == std::string_view::npos ? dn.npos : next - pos);
    size_t eq = entry.find('=');
    if (eq != std::string_view::npos && ieq(entry.substr(0, eq), field)) {
      *out = entry.substr(eq + 1);
      found = true;
    }
    if (next == std::string_view::npos) break;
    pos = next;
  }
  return found;
}

// The last cookie called `name` over every Cookie header of a request.
std::optional<std::string_view> lastRequestCookie(const std::vector<http::Header>& headers,
                                                  std::string_view name) {
  std::optional<std::string_view> found;
  for (const auto& hd : headers) {
    if (!ieq(hd.name, "cookie")) continue;
    if (auto v = persistence::findLastCookie(hd.value, name)) found = v;
  }
  return found;
}

// send(2) for one buffer, sendmsg(2) for two: both skip the VFS layer (and
// its file-position lock) that writev(2) goes through on sockets.
ssize_t sendIov(int fd, iovec* iov, int cnt) {
  if (cnt == 1) return ::send(fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL);
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = static_cast<size_t>(cnt);
  return ::sendmsg(fd, &msg, MSG_NOSIGNAL);
}

// One TLS record's worth of the two buffers, as one SSL_write: a head and the
// start of a body become one record instead of two. The length offered only
// grows between retries (the buffers' fronts stay until written), as OpenSSL
// requires after WANT_READ/WANT_WRITE.
constexpr size_t kTlsRecord = 16384;

tls::IoResult tlsWriteIov(SSL* ssl, iovec* iov, int cnt) {
  size_t total = iov[0].iov_len + (cnt > 1 ? iov[1].iov_len : 0);
  size_t len = std::min(total, kTlsRecord);
  if (cnt == 1 || iov[0].iov_len >= len)
    return tls::write(ssl, static_cast<const char*>(iov[0].iov_base), len);
  thread_local char scratch[kTlsRecord];
  std::memcpy(scratch, iov[0].iov_base, iov[0].iov_len);
  std::memcpy(scratch + iov[0].iov_len, iov[1].iov_base, len - iov[0].iov_len);
  return tls::write(ssl, scratch, len);
}

// X-SSL-* values are certificate text: keep them on one header line.
std::string headerSafe(const std::string& v) {
  std::string out = v;
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  return out;
}

std::string quoted(const std::string& v) { return "\"" + headerSafe(v) + "\""; }

bool sslHeaderSet(const config::InsertHeaders& ins, std::string_view name) {
  if (name.size() < 12 || !ieq(name.substr(0, 6), "x-ssl-")) return false;
  return (ins.ssl_client_verify && ieq(name, "x-ssl-client-verify")) ||
         (ins.ssl_client_has_cert && ieq(name, "x-ssl-client-has-cert")) ||
         (ins.ssl_client_dn && ieq(name, "x-ssl-client-dn")) ||
         (ins.ssl_client_cn && ieq(name, "x-ssl-client-cn")) ||
         (ins.ssl_issuer && ieq(name, "x-ssl-issuer")) ||
         (ins.ssl_client_sha1 && ieq(name, "x-ssl-client-sha1")) ||
         (ins.ssl_client_not_before && ieq(name, "x-ssl-client-not-before")) ||
         (ins.ssl_client_not_after && ieq(name, "x-ssl-client-not-after"));
}

// True when `token` appears in a comma-separated header value.
bool listHas(std::string_view list, std::string_view token) {
  size_t i = 0;
  while (i < list.size()) {
    size_t j = list.find(',', i);
    if (j == std::string_view::npos) j = list.size();
    std::string_view t = list.substr(i, j - i);
    while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.remove_prefix(1);
    while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.remove_suffix(1);
    if (ieq(t, token)) return true;
    i = j + 1;
  }
  return false;
}

// Hop-by-hop fields Banyan never forwards as received (RFC 9110 section 7.6.1).
// Runs for every header of every message: compare only names of a matching length.
bool isHopByHop(std::string_view name) {
  switch (name.size()) {
    case 2: return ieq(name, "te");
    case 7: return ieq(name, "upgrade");
    case 10: return ieq(name, "connection") || ieq(name, "keep-alive");
    case 16: return ieq(name, "proxy-connection");
    default: return false;
  }
}

// Removes a header named by a Connection token (RFC 9110 section 7.6.1).
bool namedByConnection(const std::vector<http::Header>& headers, std::string_view name) {
  for (const auto& h : headers)
    if (ieq(h.name, "connection") && listHas(h.value, name)) return true;
  return false;
}

void appendHeader(std::string& out, std::string_view name, std::string_view value) {
  out.append(name);
  out.append(": ");
  out.append(value);
  out.append("\r\n");
}

// Only sources in proxy_protocol_trusted_cidrs (all, when it is empty) may tell
// Banyan who the client is; anyone else is served as the client it is.
bool trustsProxyHeader(const ListenerRt& listener, const sockaddr_storage& peer) {
  if (listener.proxy_trusted.empty()) return true;
  for (const auto& cidr : listener.proxy_trusted)
    if (net::cidrContains(cidr, peer)) return true;
  return false;
}

}  // namespace

void BodyScan::start(http::BodyKind k, uint64_t length) {
  kind = k;
  left = length;
  ready = 0;
  done = k == http::BodyKind::None || (k == http::BodyKind::ContentLength && length == 0);
  if (k == http::BodyKind::Chunked) chunks.reset();
}

bool BodyScan::scan(const Buffer& src, bool src_eof) {
  if (done) return true;
  switch (kind) {
    case http::BodyKind::None:
      done = true;
      return true;
    case http::BodyKind::ContentLength: {
      uint64_t take = std::min<uint64_t>(src.size() - ready, left);
      ready += take;
      left -= take;
      done = left == 0;
      return true;
    }
    case http::BodyKind::Chunked: {
      auto step = chunks.feed(src.view().substr(ready));
      if (step.status == http::ParseStatus::Invalid) return false;
      ready += step.consumed;
      done = step.status == http::ParseStatus::Done;
      return true;
    }
    case http::BodyKind::UntilClose:
      ready = src.size();
      done = src_eof;
      return true;
  }
  return true;
}

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
  if (!w_.loop().add(fd_, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, this)) {
    close();
    return;
  }
  c_readable_ = true;  // data may already be queued (accept after the first segment)
  if (phase_ == Phase::TcpConnect) {
    if (!attachMember()) return;
  }
  advance();
}

void ClientSession::onEvents(uint32_t events) {
  if (closed_) return;
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) c_readable_ = true;
  if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) c_hup_ = true;
  if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) c_writable_ = true;
  if (ssl_) {
    // TLS may read while writing and write while reading (handshake, alerts).
    if ((events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) && c_read_wants_write_) {
      c_read_wants_write_ = false;
      c_readable_ = true;
    }
    if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) && c_write_wants_read_) {
      c_write_wants_read_ = false;
      c_writable_ = true;
    }
  }
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

// ---- I/O -------------------------------------------------------------------

bool ClientSession::readClient(size_t cap) {
  if (!c_readable_ || c_eof_ || cin_.size() >= cap) return false;
  if (h2_mode_) {
    // The stream's request body, as HTTP/1.1 bytes the connection decoded.
    if (h2_ == nullptr) {
      c_eof_ = true;
      c_readable_ = false;
      return true;
    }
    size_t want = cap - cin_.size();
    char* p = cin_.writable(std::min<size_t>(want, 4096));
    size_t n = h2_->takeRequest(h2_stream_, p, std::min(cin_.writableSize(), want));
    if (n > 0) {
      cin_.commit(n);
      req_bytes_in_ += n;
      client_act_ = w_.loop().now();
      return true;
    }
    c_readable_ = false;
    cin_.releaseIfEmpty();
    if (h2_->requestEnded(h2_stream_)) {
      c_eof_ = true;
      return true;
    }
    return false;
  }
  if (ssl_ && phase_ == Phase::ProxyHeader) {
    // The PROXY header precedes the TLS handshake: peek at it, so the TLS
    // bytes after it stay in the socket for OpenSSL. stepProxyHeader removes
    // what it consumed.
    cin_.clear();
    char* p = cin_.writable(cap);
    ssize_t n = ::recv(fd_, p, std::min(cin_.writableSize(), cap), MSG_PEEK);
    c_readable_ = false;  // more bytes bring a new edge
    if (n > 0) {
      cin_.commit(static_cast<size_t>(n));
      return true;
    }
    if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
      c_eof_ = true;
      return true;
    }
    cin_.releaseIfEmpty();
    return false;
  }
  size_t want = std::max<size_t>(cap - cin_.size(), 1);
  char* p = cin_.writable(std::min<size_t>(want, 4096));
  size_t room = std::min(cin_.writableSize(), want);
  if (ssl_) {
    tls::IoResult r = tls::read(ssl_, p, room);
    switch (r.status) {
      case tls::IoStatus::kDone:
        cin_.commit(r.bytes);
        bump(lis_counters_->slot(w_.index()).bytes_in, static_cast<uint64_t>(r.bytes));
        req_bytes_in_ += r.bytes;
        client_act_ = w_.loop().now();
        // OpenSSL may hold more of the record, or more records may wait:
        // only a read that cannot progress ends the readable state.
        return true;
      case tls::IoStatus::kWantRead:
        c_readable_ = false;
        cin_.releaseIfEmpty();
        return false;
      case tls::IoStatus::kWantWrite:
        c_readable_ = false;
        c_read_wants_write_ = true;
        cin_.releaseIfEmpty();
        return false;
      case tls::IoStatus::kClosed:
        c_eof_ = true;
        c_readable_ = false;
        cin_.releaseIfEmpty();
        return true;
      case tls::IoStatus::kError:
        break;
    }
    bool handshake_done = SSL_is_init_finished(ssl_);
    if (!handshake_done) bump(lis_counters_->slot(w_.index()).errors);
    termination_ = handshake_done ? "tls_error" : "tls_handshake";
    c_eof_ = true;
    c_readable_ = false;
    close_after_ = true;
    cout_.clear();
    return true;
  }
  ssize_t n = ::recv(fd_, p, room, 0);
  if (n > 0) {
    cin_.commit(static_cast<size_t>(n));
    bump(lis_counters_->slot(w_.index()).bytes_in, static_cast<uint64_t>(n));
    req_bytes_in_ += static_cast<uint64_t>(n);
    client_act_ = w_.loop().now();
    // A short read drained the socket: wait for the next edge.
    if (static_cast<size_t>(n) < room && !c_hup_) c_readable_ = false;
    return true;
  }
  if (n == 0) {
    c_eof_ = true;
    c_readable_ = false;
    cin_.releaseIfEmpty();
    return true;
  }
  if (errno == EAGAIN || errno == EINTR) {
    if (errno == EAGAIN) c_readable_ = false;
    cin_.releaseIfEmpty();
    return false;
  }
  termination_ = "client_reset";
  c_eof_ = true;
  c_readable_ = false;
  close_after_ = true;
  cout_.clear();
  return true;
}

bool ClientSession::readUpstream(size_t cap) {
  UpstreamConn* up = up_;
  if (!up || !up->connected || !up->readable || up->eof || up->in.size() >= cap) return false;
  size_t want = cap - up->in.size();
  char* p = up->in.writable(std::min<size_t>(want, 4096));
  size_t room = std::min(up->in.writableSize(), want);
  if (up->h2_mode) {
    // A stream of an HTTP/2 member connection: its response as HTTP/1.1 bytes.
    bool ended = up->h2 == nullptr;
    size_t n = ended ? 0 : up->h2->takeResponse(*up, p, room, &ended);
    if (n > 0) {
      up->in.commit(n);
      resp_bytes_ += n;
      if (member_) bump(member_->counters->slot(w_.index()).bytes_out, static_cast<uint64_t>(n));
      member_act_ = w_.loop().now();
      return true;
    }
    up->readable = false;
    if (!ended) return false;
    if (up->h2) up->h2_refused = up->h2->refused(*up);
    up->eof = true;
    return true;
  }
  if (up->ssl) {
    tls::IoResult r = tls::read(up->ssl, p, room);
    switch (r.status) {
      case tls::IoStatus::kDone:
        up->in.commit(r.bytes);
        resp_bytes_ += r.bytes;
        if (member_) bump(member_->counters->slot(w_.index()).bytes_out, static_cast<uint64_t>(r.bytes));
        member_act_ = w_.loop().now();
        return true;
      case tls::IoStatus::kWantRead:
        up->readable = false;
        return false;
      case tls::IoStatus::kWantWrite:
        up->readable = false;
        up->tls_read_wants_write = true;
        return false;
      case tls::IoStatus::kClosed:
      case tls::IoStatus::kError:
        up->eof = true;
        up->readable = false;
        return true;
    }
  }
  ssize_t n = ::recv(up->fd, p, room, 0);
  if (n > 0) {
    up->in.commit(static_cast<size_t>(n));
    resp_bytes_ += static_cast<uint64_t>(n);
    if (member_) bump(member_->counters->slot(w_.index()).bytes_out, static_cast<uint64_t>(n));
    member_act_ = w_.loop().now();
    if (static_cast<size_t>(n) < room && !up->hup) up->readable = false;
    return true;
  }
  if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
    up->eof = true;
    up->readable = false;
    return true;
  }
  if (errno == EAGAIN) up->readable = false;
  return false;
}

// Writes cout_ then the forwardable prefix of the member's buffer.
bool ClientSession::flushClient() {
  if (!c_writable_ || closed_) return false;
  size_t body = (up_ && (phase_ == Phase::Request || phase_ == Phase::Tunnel || phase_ == Phase::Closing))
                    ? resp_.ready
                    : 0;
  if (cout_.empty() && body == 0) return false;
  if (h2_mode_) return flushStream(body);
  iovec iov[2];
  int cnt = 0;
  if (!cout_.empty()) iov[cnt++] = {const_cast<char*>(cout_.data()), cout_.size()};
  if (body) iov[cnt++] = {const_cast<char*>(up_->in.data()), body};
  size_t done = 0;
  if (ssl_) {
    tls::IoResult r = tlsWriteIov(ssl_, iov, cnt);
    if (r.status == tls::IoStatus::kWantWrite) {
      c_writable_ = false;
      return false;
    }
    if (r.status == tls::IoStatus::kWantRead) {
      c_writable_ = false;
      c_write_wants_read_ = true;
      return false;
    }
    if (r.status != tls::IoStatus::kDone) {
      termination_ = "client_reset";
      close();
      return false;
    }
    done = r.bytes;
  } else {
    ssize_t n = sendIov(fd_, iov, cnt);
    if (n < 0) {
      if (errno == EAGAIN) {
        c_writable_ = false;
        return false;
      }
      if (errno == EINTR) return false;
      termination_ = "client_reset";
      close();
      return false;
    }
    done = static_cast<size_t>(n);
  }
  bump(lis_counters_->slot(w_.index()).bytes_out, done);
  req_bytes_out_ += done;
  client_act_ = w_.loop().now();
  size_t from_out = std::min(done, cout_.size());
  cout_.consume(from_out);
  size_t from_body = done - from_out;
  if (from_body) {
    up_->in.consume(from_body);
    resp_.ready -= from_body;
  }
  if (!ssl_ && done < (iov[0].iov_len + (cnt > 1 ? iov[1].iov_len : 0))) c_writable_ = false;
  cout_.releaseIfEmpty();
  return true;
}

// Stream mode: hands cout_ then the forwardable body to the HTTP/2
// connection, which takes what fits in the stream's buffer.
bool ClientSession::flushStream(size_t body) {
  if (h2_ == nullptr) {
    termination_ = "client_reset";
    close();
    return false;
  }
  bool invalid = false;
  bool full = false;
  size_t done = 0;
  if (!cout_.empty()) {
    size_t n = h2_->pushResponse(h2_stream_, cout_.view(), &invalid);
    full = n < cout_.size();
    cout_.consume(n);
    done += n;
  }
  if (!full && !invalid && body) {
    size_t n = h2_->pushResponse(h2_stream_, std::string_view(up_->in.data(), body), &invalid);
    full = n < body;
    up_->in.consume(n);
    resp_.ready -= n;
    done += n;
  }
  if (invalid) {
    // Nothing HTTP/2 can carry (a 101 without an upgrade asked for).
    if (member_) bump(member_->counters->slot(w_.index()).errors);
    termination_ = "bad_response";
    close();
    return false;
  }
  if (full) c_writable_ = false;  // h2Wake(writable) comes when the client's window opens
  req_bytes_out_ += done;
  if (done) client_act_ = w_.loop().now();
  cout_.releaseIfEmpty();
  return done > 0;
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

// Writes the member's out buffer (heads Banyan built) then the forwardable
// prefix of the client's buffer.
bool ClientSession::flushUpstream() {
  UpstreamConn* up = up_;
  if (!up || !up->connected || !up->writable) return false;
  if (up->h2_mode) return flushH2Upstream();
  if (up->h2_offered) {
    // The member picks HTTP/2 or HTTP/1.1 in the handshake: finish it first.
    tls::IoResult r = tls::handshake(up->ssl);
    if (r.status == tls::IoStatus::kWantWrite) {
      up->writable = false;
      return false;
    }
    if (r.status == tls::IoStatus::kWantRead) {
      up->writable = false;
      up->tls_write_wants_read = true;
      return false;
    }
    if (r.status != tls::IoStatus::kDone) {
      LB_DEBUG("TLS to a member failed. member=%s", member_ ? member_->cfg->id.c_str() : "-");
      up->eof = true;
      up->readable = true;
      up->writable = false;
      return true;
    }
    up->h2_offered = false;
    if (tls::alpnProtocol(up->ssl) == "h2") {
      w_.adoptH2(up, req_head_method_, req_minor_ == 0);
      return true;
    }
  }
  size_t body = (phase_ == Phase::Request || phase_ == Phase::Tunnel) ? req_.ready : 0;
  if (up->out.empty() && body == 0) return false;
  iovec iov[2];
  int cnt = 0;
  if (!up->out.empty()) iov[cnt++] = {const_cast<char*>(up->out.data()), up->out.size()};
  if (body) iov[cnt++] = {const_cast<char*>(cin_.data()), body};
  size_t done = 0;
  if (up->ssl) {
    tls::IoResult r = tlsWriteIov(up->ssl, iov, cnt);
    if (r.status == tls::IoStatus::kWantWrite) {
      up->writable = false;
      return false;
    }
    if (r.status == tls::IoStatus::kWantRead) {
      up->writable = false;
      up->tls_write_wants_read = true;
      return false;
    }
    if (r.status != tls::IoStatus::kDone) {
      // Handshake refused (bad certificate, no common version) or reset.
      LB_DEBUG("TLS to a member failed. member=%s", member_ ? member_->cfg->id.c_str() : "-");
      up->eof = true;
      up->readable = true;
      up->writable = false;
      return true;
    }
    done = r.bytes;
  } else {
    ssize_t n = sendIov(up->fd, iov, cnt);
    if (n < 0) {
      if (errno == EAGAIN) {
        up->writable = false;
        return false;
      }
      if (errno == EINTR) return false;
      up->eof = true;  // the member reset: reading will tell the rest
      up->readable = true;
      up->writable = false;
      return true;
    }
    done = static_cast<size_t>(n);
  }
  if (member_) bump(member_->counters->slot(w_.index()).bytes_in, done);
  member_act_ = w_.loop().now();
  size_t from_out = std::min(done, up->out.size());
  up->out.consume(from_out);
  size_t from_body = done - from_out;
  if (from_body) {
    cin_.consume(from_body);
    req_.ready -= from_body;
  }
  if (!up->ssl && done < (iov[0].iov_len + (cnt > 1 ? iov[1].iov_len : 0))) up->writable = false;
  up->out.releaseIfEmpty();
  return true;
}

// A stream of an HTTP/2 member connection takes the head Banyan built, then
// the forwardable prefix of the client's buffer, as HTTP/1.1 bytes.
bool ClientSession::flushH2Upstream() {
  UpstreamConn* up = up_;
  if (up->h2 == nullptr) {
    up->readable = true;  // the connection ended: reading tells the rest
    return false;
  }
  size_t body = phase_ == Phase::Request ? req_.ready : 0;
  if (up->out.empty() && body == 0) return false;
  bool invalid = false;
  bool full = false;
  size_t done = 0;
  if (!up->out.empty()) {
    size_t n = up->h2->pushRequest(*up, up->out.view(), &invalid);
    up->out.consume(n);
    done += n;
    full = !up->out.empty();
  }
  if (!full && !invalid && body) {
    size_t n = up->h2->pushRequest(*up, std::string_view(cin_.data(), body), &invalid);
    cin_.consume(n);
    req_.ready -= n;
    done += n;
    full = n < body;
  }
  if (invalid) {
    // Nothing HTTP/2 can carry: answered as a member that closed (502), never resent.
    up->reused = false;
    up->h2_refused = false;
    up->h2->release(*up);
    up->eof = true;
    up->readable = true;
    up->writable = false;
    return true;
  }
  if (full) up->writable = false;  // EPOLLOUT comes when the member's window opens
  if (done) {
    if (member_) bump(member_->counters->slot(w_.index()).bytes_in, done);
    member_act_ = w_.loop().now();
  }
  up->out.releaseIfEmpty();
  return done > 0;
}

// ---- the driver --------------------------------------------------------------

void ClientSession::advance() {
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
    phase_ = Phase::TcpConnect;
    attachMember();
  }
  return true;
}

bool ClientSession::stepHead() {
  if (cin_.empty()) {
    // Idle keep-alive connections hold no buffer memory.
    cin_.releaseIfEmpty();
    if (c_eof_) close();
    return false;
  }
  http::RequestHead& req = w_.req_scratch;
  auto r = http::parseRequestHead(cin_.view(), lis_->limits, req);
  if (r.status == http::ParseStatus::NeedMore) {
    if (c_eof_) {
      termination_ = "client_abort";
      close();
    }
    return false;
  }
  if (r.status == http::ParseStatus::Invalid) {
    LB_DEBUG("Refused a request. listener=%s reason=%s", lis_->cfg->id.c_str(),
             http::parseErrorName(r.error));
    bump(lis_counters_->slot(w_.index()).errors);
    sendError(400, http::parseErrorName(r.error));
    return false;
  }
  startRequest(r.consumed);
  return true;
}

bool ClientSession::resolveListener() {
  // A new request uses the newest config; a connection whose listener was
  // removed finishes on the snapshot it started on and then closes.
  const auto& current = w_.snapshot();
  if (current && current.get() != snap_.get()) {
    if (const ListenerRt* l = current->findListener(lis_->cfg->id)) {
      snap_ = current;
      lis_ = l;
    } else {
      close_after_ = true;
    }
  }
  return true;
}

void ClientSession::startRequest(size_t head_length) {
  const http::RequestHead& req = w_.req_scratch;
  resolveListener();
  if (ssl_ && !tls_facts_) {
    // The handshake is done once a request arrived.
    tls_facts_ = true;
    sni_ = tls::serverName(ssl_);
  }
  req_start_ = w_.loop().now();
  req_bytes_in_ = head_length;  // the head; body bytes are counted as they arrive
  req_bytes_out_ = 0;
  resp_bytes_ = 0;
  status_ = 0;
  termination_ = "-";
  attempts_ = 0;
  resp_head_done_ = false;
  member_counted_ = false;
  req_head_method_ = req.method == "HEAD";
  req_minor_ = req.version_minor;
  req_keep_alive_ = req.flags.keep_alive && !close_after_;
  req_upgrade_ = req.flags.has_upgrade && req.flags.connection_upgrade;
  bump(lis_counters_->slot(w_.index()).requests);
  if (w_.accessLog().enabled()) {
    log_method_.assign(req.method);
    log_target_.assign(req.target.substr(0, 1024));
  }
  if (lis_->prometheus) {
    answerScrape(head_length);
    return;
  }
  if (!routeRequest()) return;
  const PersistenceRt* persist = req_pool_ ? req_pool_->persistence.get() : nullptr;
  const bool strip_member_cookie =
      persist != nullptr && persist->type == config::PersistenceType::kHttpCookie;

  // Build the head the member receives.
  const config::InsertHeaders& ins = lis_->cfg->insert_headers;
  std::string& h = up_head_;
  h.clear();
  h.append(req.method);
  h.push_back(' ');
  h.append(req.target);
  h.append(req.version_minor == 0 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n");
  bool named_tokens = false;
  for (const auto& hd : req.headers)
    if (ieq(hd.name, "connection") && !hd.value.empty()) named_tokens = true;
  std::string xff, fwd;
  for (const auto& hd : req.headers) {
    if (isHopByHop(hd.name)) {
      // "TE: trailers" says the client takes trailers: HTTP/2 members (gRPC)
      // want to hear it (RFC 9113 section 8.2.2). Pools without "h2" never
      // forward it (it is hop-by-hop in HTTP/1.1).
      if (hd.name.size() == 2 && req_pool_ && req_pool_->h2 && listHas(hd.value, "trailers"))
        appendHeader(h, "TE", "trailers");
      continue;
    }
    if (named_tokens && namedByConnection(req.headers, hd.name)) continue;
    if (ins.x_forwarded_for && ieq(hd.name, "x-forwarded-for")) {
      if (!xff.empty()) xff.append(", ");
      xff.append(hd.value);
      continue;
    }
    if (ins.forwarded && ieq(hd.name, "forwarded")) {
      if (!fwd.empty()) fwd.append(", ");
      fwd.append(hd.value);
      continue;
    }
    if (ins.x_forwarded_port && ieq(hd.name, "x-forwarded-port")) continue;
    if (ins.x_forwarded_proto && ieq(hd.name, "x-forwarded-proto")) continue;
    // Banyan sets the enabled X-SSL-* itself (haproxy set-header): a client's
    // own value of those never reaches the member.
    if (ssl_ && ins.anySsl() && sslHeaderSet(ins, hd.name)) continue;
    if (strip_member_cookie && ieq(hd.name, "cookie")) {
      // HAProxy `cookie ... indirect`: the member never sees the LB's cookie.
      std::string rest = persistence::removeCookie(hd.value, persistence::kMemberCookieName);
      if (!rest.empty()) appendHeader(h, hd.name, rest);
      continue;
    }
    appendHeader(h, hd.name, hd.value);
  }
  if (ins.x_forwarded_for) {
    if (!xff.empty()) xff.append(", ");
    xff.append(http::addressText(peer_));
    appendHeader(h, "X-Forwarded-For", xff);
  }
  if (ins.x_forwarded_port) {
    char port[8];
    snprintf(port, sizeof port, "%u", static_cast<unsigned>(lis_->cfg->protocol_port));
    appendHeader(h, "X-Forwarded-Port", port);
  }
  const char* proto = ssl_ ? "https" : "http";
  if (ins.x_forwarded_proto) appendHeader(h, "X-Forwarded-Proto", proto);
  if (ssl_ && ins.anySsl()) appendSslHeaders(h);
  if (ins.forwarded) {
    if (!fwd.empty()) fwd.append(", ");
    fwd.append(http::forwardedElement(peer_, local_, proto));
    appendHeader(h, "Forwarded", fwd);
  }
  if (req_upgrade_) {
    for (const auto& hd : req.headers)
      if (ieq(hd.name, "upgrade")) appendHeader(h, hd.name, hd.value);
    h.append("Connection: upgrade\r\n");
  } else if (req.version_minor == 0) {
    // Keep the member connection reusable even for HTTP/1.0 clients.
    h.append("Connection: keep-alive\r\n");
  }
  h.append("\r\n");

  cin_.consume(head_length);
  req_.start(req.body, req.content_length);
  resp_.start(http::BodyKind::None, 0);
  resp_.done = false;
  phase_ = Phase::Request;
  since_ = w_.loop().now();
  member_act_ = since_;
  if (!attachMember()) return;
}

bool ClientSession::routeRequest() {
  const http::RequestHead& req = w_.req_scratch;
  req_pool_ = lis_->pool;
  req_cookie_.clear();
  insert_cookie_ = false;
  if (lis_->policies != nullptr) {
    std::string host = hostForMatch(req.host);
    auto headers = [&req](std::string_view name, size_t index, std::string_view* out) {
      for (const auto& hd : req.headers) {
        if (!ieq(hd.name, name)) continue;
        if (index-- == 0) {
          *out = hd.value;
          return true;
        }
      }
      return false;
    };
    auto cookies = [&req](std::string_view name, size_t index, std::string_view* out) {
      for (const auto& hd : req.headers) {
        if (!ieq(hd.name, "cookie")) continue;
        persistence::CookieIterator it(hd.value);
        std::string_view n, v;
        while (it.next(&n, &v)) {
          if (n != name) continue;
          if (index-- == 0) {
            *out = v;
            return true;
          }
        }
      }
      return false;
    };
    l7::MatchInput in;
    in.host = host;
    in.path = pathOf(req.target);
    in.headers = l7::makeLookup(headers);
    in.cookies = l7::makeLookup(cookies);
    if (ssl_) {
      if (!cert_) cert_ = std::make_unique<tls::ClientCertInfo>(tls::clientCertInfo(ssl_));
      in.tls = true;
      in.has_client_cert = cert_->has_cert;
      in.verify_result = cert_->verify;
    }
    std::string_view dn = cert_ ? std::string_view(cert_->dn) : std::string_view();
    auto dn_lookup = [dn](std::string_view name, size_t index, std::string_view* out) {
      return index == 0 && dnField(dn, name, out);
    };
    in.client_dn = l7::makeLookup(dn_lookup);
    if (const l7::Policy* policy = lis_->policies->match(in)) {
      switch (policy->action) {
        case l7::PolicyAction::kReject:
          bump(lis_counters_->slot(w_.index()).errors);
          sendError(403, "l7_reject");
          return false;
        case l7::PolicyAction::kRedirectToUrl:
        case l7::PolicyAction::kRedirectPrefix: {
          std::string location =
              l7::buildRedirectLocation(*policy, ssl_ ? "https" : "http", req.host, req.target);
          sendLocal(policy->redirect_http_code,
                    redirectResponse(policy->redirect_http_code, location), "l7_redirect");
          return false;
        }
        case l7::PolicyAction::kRedirectToPool:
          req_pool_ = snap_->findUsablePool(policy->redirect_pool_id);
          break;
      }
    }
  }
  const PersistenceRt* persist = req_pool_ ? req_pool_->persistence.get() : nullptr;
  if (persist == nullptr) return true;
  if (persist->type == config::PersistenceType::kHttpCookie) {
    if (auto token = lastRequestCookie(req.headers, persistence::kMemberCookieName)) {
      if (auto member = persist->codec->decode(*token)) req_cookie_ = std::move(*member);
    }
  } else if (persist->type == config::PersistenceType::kAppCookie) {
    if (auto value = lastRequestCookie(req.headers, persist->cookie_name); value && !value->empty())
      req_cookie_.assign(*value);
  }
  return true;
}

// The member the client sticks to, if it can take traffic; null otherwise
// (the balancer picks, and rememberMember records the choice).
const MemberRt* ClientSession::persistentMember() {
  const PersistenceRt* persist = pool_->persistence.get();
  if (persist == nullptr) return nullptr;
  switch (persist->type) {
    case config::PersistenceType::kSourceIp: {
      persistence::SourceIpKey key = persistence::sourceIpKey(peer_, persist->granularity);
      if (key.size == 0) return nullptr;
      auto id = persist->table->lookup(key.view(), w_.loop().now());
      return id ? pool_->usableMember(*id) : nullptr;
    }
    case config::PersistenceType::kHttpCookie:
      if (!http_ || req_cookie_.empty()) return nullptr;
      return pool_->usableMember(req_cookie_);
    case config::PersistenceType::kAppCookie: {
      if (!http_ || req_cookie_.empty()) return nullptr;
      auto id = persist->table->lookup(req_cookie_, w_.loop().now());
      return id ? pool_->usableMember(*id) : nullptr;
    }
  }
  return nullptr;
}

void ClientSession::rememberMember(const MemberRt& member) {
  const PersistenceRt* persist = pool_->persistence.get();
  if (persist == nullptr) return;
  if (persist->type == config::PersistenceType::kSourceIp) {
    persistence::SourceIpKey key = persistence::sourceIpKey(peer_, persist->granularity);
    if (key.size != 0) persist->table->store(key.view(), member.cfg->id, w_.loop().now());
  } else if (persist->type == config::PersistenceType::kHttpCookie) {
    insert_cookie_ = http_;
  }
  // APP_COOKIE learns from the member's response (stepResponse).
}

// Picks a member and gets a connection to it (idle or new). Handles "no
// member" itself. False when the session ended or errored out.
bool ClientSession::attachMember() {
  pool_ = http_ ? req_pool_ : lis_->pool;
  member_ = nullptr;
  int idx = -1;
  if (pool_) {
    // Persistence on the first attempt only: a redispatch after a failed
    // connect goes to the balancer (`option redispatch`).
    const MemberRt* sticky = attempts_ == 0 ? persistentMember() : nullptr;
    if (sticky) {
      idx = static_cast<int>(sticky - pool_->members.data());
    } else {
      idx = w_.pickMember(*pool_, peer_);
      if (idx >= 0) rememberMember(pool_->members[static_cast<size_t>(idx)]);
    }
  }
  if (idx < 0) {
    termination_ = "no_member";
    if (http_) {
      sendError(503, termination_);
    } else {
      close();
    }
    return false;
  }
  member_ = &pool_->members[static_cast<size_t>(idx)];
  if (!member_counted_) {
    auto& slot = member_->counters->slot(w_.index());
    bump(slot.total_connections);
    bump(slot.active_connections, 1);
    member_->counters->shared_active.fetch_add(1, std::memory_order_relaxed);
    member_counted_ = true;
  }
  UpstreamConn* idle = nullptr;
  if (pool_->send_proxy_v1 || pool_->send_proxy_v2) {
    if (private_up_ && private_up_->key == member_->address_key) {
      idle = private_up_;  // already told the member who this client is
      private_up_ = nullptr;
    } else {
      dropPrivateUpstream();
    }
  } else if (http_) {
    // A member that speaks HTTP/2 takes the request as one more stream on a
    // shared connection; an HTTP/1.1 one on an idle connection.
    if (pool_->h2 && !req_upgrade_)
      idle = w_.takeH2(*member_, *pool_, sni_, req_head_method_, req_minor_ == 0);
    if (!idle) idle = w_.takeIdle(*member_, *pool_, sni_);
  }
  if (idle) {
    up_ = idle;
    up_->owner = this;
    onConnected();
    return true;
  }
  connectMember();
  return !closed_;
}

void ClientSession::connectMember() {
  ++attempts_;
  // HTTP/2 carries neither upgrades nor a connection-wide PROXY header.
  bool allow_h2 = http_ && !req_upgrade_ && !pool_->send_proxy_v1 && !pool_->send_proxy_v2;
  up_ = w_.connectTo(*member_, *pool_, sni_, allow_h2);
  since_ = w_.loop().now();
  if (!up_) {
    onConnectFailed(errno);
    return;
  }
  up_->owner = this;
}

void ClientSession::onConnected() {
  UpstreamConn* up = up_;
  member_act_ = w_.loop().now();
  if (!up->reused) {
    if (pool_->send_proxy_v1)
      up->out.append(proxy_protocol::encodeV1(peer_, local_));
    else if (pool_->send_proxy_v2)
      up->out.append(proxy_protocol::encodeV2(peer_, local_));
  }
  if (http_) {
    up->out.append(up_head_);
  } else {
    phase_ = Phase::Tunnel;
    req_.start(http::BodyKind::UntilClose, 0);
    resp_.start(http::BodyKind::UntilClose, 0);
  }
  up->writable = true;
}

void ClientSession::onConnectFailed(int err) {
  if (member_) bump(member_->counters->slot(w_.index()).errors);
  LB_DEBUG("Member connection failed. listener=%s member=%s error=%s", lis_->cfg->id.c_str(),
           member_ ? member_->cfg->id.c_str() : "-", strerror(err));
  if (up_) {
    up_->destroy();
    up_ = nullptr;
  }
  uint32_t retries = snap_->config->settings.member_connect_retries;
  if (attempts_ <= retries) {
    // Redispatch: the next attempt may pick another member (`option redispatch`).
    if (member_counted_ && member_) {
      bump(member_->counters->slot(w_.index()).active_connections, -1);
      member_->counters->shared_active.fetch_sub(1, std::memory_order_relaxed);
      member_counted_ = false;
    }
    attachMember();  // counts the next attempt when it connects
    return;
  }
  termination_ = "member_connect";
  if (http_) {
    sendError(502, termination_);
  } else {
    close();
  }
}

bool ClientSession::retryOnFreshConnection() {
  // A reused member connection closed before answering: the member timed it
  // out as we picked it. Safe to resend when nothing of a body was consumed.
  // An HTTP/2 stream the member refused (REFUSED_STREAM, above GOAWAY's
  // last-stream-id) was not processed: as safe to resend.
  if (!up_ || (!up_->reused && !up_->h2_refused) || resp_bytes_ != 0 ||
      req_.kind != http::BodyKind::None)
    return false;
  up_->destroy();
  up_ = nullptr;
  connectMember();
  return !closed_;
}

bool ClientSession::stepResponse() {
  UpstreamConn* up = up_;
  if (!up || !up->connected) return false;
  bool progress = false;
  if (!resp_head_done_) {
    progress |= readUpstream(lis_->limits.max_head + 1);
    if (up->in.empty() && up->eof) {
      if (retryOnFreshConnection()) return true;
      bump(member_->counters->slot(w_.index()).errors);
      sendError(502, "member_closed");
      return false;
    }
    if (up->in.empty()) return progress;
    http::ResponseHead& resp = w_.resp_scratch;
    auto r = http::parseResponseHead(up->in.view(), lis_->limits,
                                     req_head_method_ ? "HEAD" : "GET", resp);
    if (r.status == http::ParseStatus::NeedMore) {
      if (up->eof) {
        bump(member_->counters->slot(w_.index()).errors);
        sendError(502, "member_truncated");
      }
      return progress;
    }
    if (r.status == http::ParseStatus::Invalid) {
      LB_DEBUG("Member sent an invalid response. member=%s reason=%s", member_->cfg->id.c_str(),
               http::parseErrorName(r.error));
      bump(member_->counters->slot(w_.index()).errors);
      sendError(502, "bad_response");
      return false;
    }
    if (resp.status >= 100 && resp.status < 200 && resp.status != 101) {
      // Interim response (100 Continue, 103 Early Hints): relay as received.
      cout_.append(up->in.view().substr(0, r.consumed));
      up->in.consume(r.consumed);
      return true;
    }
    status_ = resp.status;
    bump(lis_counters_->slot(w_.index()).responses[responseClass(resp.status)]);
    if (member_) bump(member_->counters->slot(w_.index()).responses[responseClass(resp.status)]);
    if (resp.status == 101) {
      if (!req_upgrade_) {
        sendError(502, "bad_response");
        return false;
      }
      cout_.append(up->in.view().substr(0, r.consumed));
      up->in.consume(r.consumed);
      resp_head_done_ = true;
      phase_ = Phase::Tunnel;
      req_.start(http::BodyKind::UntilClose, 0);
      resp_.start(http::BodyKind::UntilClose, 0);
      if (w_.accessLog().enabled()) logAccess();
      return true;
    }
    bool keep = req_keep_alive_ && !close_after_ && !w_.draining() &&
                resp.body != http::BodyKind::UntilClose;
    resp_reusable_ = resp.flags.keep_alive && resp.body != http::BodyKind::UntilClose;
    // Status line as received, then the headers without hop-by-hop ones.
    std::string_view raw = up->in.view();
    size_t eol = raw.find("\r\n");
    cout_.append(raw.substr(0, eol + 2));
    bool named_tokens = false;
    for (const auto& hd : resp.headers)
      if (ieq(hd.name, "connection")) named_tokens = true;
    std::string& head = w_.head_scratch;
    head.clear();
    bool hsts = !lis_->hsts.empty();
    for (const auto& hd : resp.headers) {
      if (isHopByHop(hd.name)) continue;
      if (named_tokens && namedByConnection(resp.headers, hd.name)) continue;
      if (hsts && ieq(hd.name, "strict-transport-security")) continue;
      appendHeader(head, hd.name, hd.value);
    }
    // Octavia `http-response set-header Strict-Transport-Security`.
    if (hsts) appendHeader(head, "Strict-Transport-Security", lis_->hsts);
    if (const PersistenceRt* persist = pool_->persistence.get()) {
      if (persist->type == config::PersistenceType::kHttpCookie && insert_cookie_) {
        appendHeader(head, "Set-Cookie",
                     persistence::buildSetCookie(persistence::kMemberCookieName,
                                                 persist->codec->encode(member_->cfg->id),
                                                 ssl_ != nullptr));
        // HAProxy's `nocache`: shared caches must not hand this client's
        // member cookie to others.
        bool has_cache_control = false;
        for (const auto& hd : resp.headers)
          if (ieq(hd.name, "cache-control")) has_cache_control = true;
        if (!has_cache_control) appendHeader(head, "Cache-Control", "private");
      } else if (persist->type == config::PersistenceType::kAppCookie) {
        // `stick store-response res.cook(<name>)`: the last one wins.
        for (const auto& hd : resp.headers) {
          if (!ieq(hd.name, "set-cookie")) continue;
          auto pair = persistence::parseSetCookie(hd.value);
          if (pair && pair->name == persist->cookie_name && !pair->value.empty())
            persist->table->store(pair->value, member_->cfg->id, w_.loop().now());
        }
      }
    }
    cout_.append(head);
    if (!keep) {
      cout_.append("Connection: close\r\n\r\n");
      close_after_ = true;
    } else if (req_minor_ == 0) {
      cout_.append("Connection: keep-alive\r\n\r\n");
    } else {
      cout_.append("\r\n");
    }
    up->in.consume(r.consumed);
    resp_.start(resp.body, resp.content_length);
    resp_head_done_ = true;
    progress = true;
  }
  progress |= readUpstream(kStreamCap);
  if (!resp_.scan(up->in, up->eof)) {
    termination_ = "bad_chunked_response";
    close();
    return false;
  }
  if (!resp_.done && up->eof && resp_.ready == 0) {
    termination_ = "member_abort";
    bump(member_->counters->slot(w_.index()).errors);
    close();
    return false;
  }
  progress |= flushClient();
  if (closed_) return false;
  if (resp_.complete()) {
    finishResponse();
    return true;
  }
  return progress;
}

void ClientSession::finishResponse() {
  if (w_.accessLog().enabled() && status_ != 101) logAccess();
  // Bytes OpenSSL decrypted but nobody read would be taken for the next
  // response: such a connection is not reused.
  bool reusable = resp_reusable_ && req_.complete() && up_ && !up_->eof && up_->in.empty() &&
                  (!up_->ssl || SSL_pending(up_->ssl) == 0);
  if (!req_.complete()) close_after_ = true;  // the rest of the body cannot be skipped safely
  if ((pool_->send_proxy_v1 || pool_->send_proxy_v2) && reusable && !close_after_) {
    // A member connection that carried a PROXY header speaks for this client
    // only: keep it for this client's next request, never pool it for others.
    private_up_ = up_;
    private_up_->reused = true;
    up_ = nullptr;
    releaseUpstream(false);  // the member counters
  } else {
    releaseUpstream(reusable && !pool_->send_proxy_v1 && !pool_->send_proxy_v2);
  }
  pool_ = nullptr;
  member_ = nullptr;
  if (h2_mode_ && h2_) h2_->endResponse(h2_stream_);
  phase_ = close_after_ ? Phase::Closing : Phase::Head;
  since_ = w_.loop().now();
  if (up_head_.capacity() > 4096) std::string().swap(up_head_);
}

void ClientSession::dropPrivateUpstream() {
  if (!private_up_) return;
  private_up_->destroy();
  private_up_ = nullptr;
}

void ClientSession::releaseUpstream(bool reusable) {
  if (member_counted_ && member_) {
    bump(member_->counters->slot(w_.index()).active_connections, -1);
    member_->counters->shared_active.fetch_sub(1, std::memory_order_relaxed);
    member_counted_ = false;
  }
  if (!up_) return;
  UpstreamConn* up = up_;
  up_ = nullptr;
  up->owner = nullptr;
  if (reusable && !w_.draining())
    w_.putIdle(up);
  else
    up->destroy();
}

bool ClientSession::tunnelStep() {
  bool progress = false;
  UpstreamConn* up = up_;
  if (!up) {
    close();
    return false;
  }
  auto makePipe = [] {
    auto p = std::make_unique<SplicePipe>();
    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return std::unique_ptr<SplicePipe>();
    p->r = fds[0];
    p->w = fds[1];
    return p;
  };
  // splice(2) moves raw socket bytes: never under TLS on either side.
  bool plain = !ssl_ && !up->ssl;
  if (plain && !c2m_ && c2m_bulk_ >= kSpliceAfterBulkReads && cin_.empty() && up->out.empty())
    c2m_ = makePipe();
  if (plain && !m2c_ && m2c_bulk_ >= kSpliceAfterBulkReads && up->in.empty() && cout_.empty())
    m2c_ = makePipe();
  if (c2m_) {
    progress |= spliceStep(*c2m_, true);
  } else {
    size_t before = cin_.size();
    progress |= readClient(kStreamCap);
    size_t got = cin_.size() - std::min(before, cin_.size());
    if (got) c2m_bulk_ = got >= kBulkRead ? c2m_bulk_ + 1 : 0;
    req_.ready = cin_.size();
  }
  if (m2c_) {
    progress |= spliceStep(*m2c_, false);
  } else {
    size_t before = up->in.size();
    progress |= readUpstream(kStreamCap);
    size_t got = up->in.size() - std::min(before, up->in.size());
    if (got) m2c_bulk_ = got >= kBulkRead ? m2c_bulk_ + 1 : 0;
    resp_.ready = up->in.size();
  }
  progress |= flushUpstream();
  progress |= flushClient();
  if (closed_ || up_ != up) return false;
  bool c2m_empty = !c2m_ || c2m_->pending == 0;
  bool m2c_empty = !m2c_ || m2c_->pending == 0;
  // Half-close: pass each FIN on once everything before it was delivered.
  if (c_eof_ && cin_.empty() && c2m_empty && up->out.empty() && !up->shut_wr && up->connected) {
    shutdownUpstreamWrite(*up);
    progress = true;
  }
  if (up->eof && up->in.empty() && m2c_empty && cout_.empty() && !c_shut_wr_) {
    shutdownClientWrite();
    progress = true;
  }
  if (c_shut_wr_ && up->shut_wr) {
    close();
    return false;
  }
  return progress;
}

// Moves one direction of a tunnel through its pipe: first what the pipe
// holds, then, once it is empty, the next bytes from the source socket.
bool ClientSession::spliceStep(SplicePipe& pipe, bool to_member) {
  UpstreamConn* up = up_;
  int src = to_member ? fd_ : up->fd;
  int dst = to_member ? up->fd : fd_;
  bool& src_readable = to_member ? c_readable_ : up->readable;
  bool& src_eof = to_member ? c_eof_ : up->eof;
  bool& dst_writable = to_member ? up->writable : c_writable_;
  bool progress = false;
  for (int i = 0; i < 4; ++i) {
    if (pipe.pending && dst_writable) {
      ssize_t n = ::splice(pipe.r, nullptr, dst, nullptr, pipe.pending, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n > 0) {
        pipe.pending -= static_cast<size_t>(n);
        progress = true;
        if (to_member) {
          if (member_) bump(member_->counters->slot(w_.index()).bytes_in, static_cast<uint64_t>(n));
          member_act_ = w_.loop().now();
        } else {
          bump(lis_counters_->slot(w_.index()).bytes_out, static_cast<uint64_t>(n));
          req_bytes_out_ += static_cast<uint64_t>(n);
          client_act_ = w_.loop().now();
        }
      } else if (n < 0 && errno == EAGAIN) {
        dst_writable = false;
      } else if (n < 0 && errno != EINTR) {
        termination_ = to_member ? "member_abort" : "client_reset";
        close();
        return false;
      }
    }
    if (pipe.pending || !src_readable || src_eof) break;
    ssize_t n = ::splice(src, nullptr, pipe.w, nullptr, 65536, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n > 0) {
      pipe.pending = static_cast<size_t>(n);
      progress = true;
      if (to_member) {
        bump(lis_counters_->slot(w_.index()).bytes_in, static_cast<uint64_t>(n));
        req_bytes_in_ += static_cast<uint64_t>(n);
        client_act_ = w_.loop().now();
      } else {
        if (member_) bump(member_->counters->slot(w_.index()).bytes_out, static_cast<uint64_t>(n));
        member_act_ = w_.loop().now();
      }
    } else if (n == 0) {
      src_eof = true;
      src_readable = false;
      progress = true;
    } else if (errno == EAGAIN) {
      src_readable = false;
    } else if (errno != EINTR) {
      src_eof = true;
      src_readable = false;
      progress = true;
    }
  }
  return progress;
}

// Half-close: TLS says so with close_notify before the FIN.
void ClientSession::shutdownClientWrite() {
  if (ssl_) tls::shutdownQuietly(ssl_);
  ::shutdown(fd_, SHUT_WR);
  c_shut_wr_ = true;
}

void ClientSession::shutdownUpstreamWrite(UpstreamConn& up) {
  if (up.ssl) tls::shutdownQuietly(up.ssl);
  ::shutdown(up.fd, SHUT_WR);
  up.shut_wr = true;
}

// Octavia's X-SSL-* headers (haproxy ssl_c_* fetches; quoted ones with %{+Q}).
// A value that does not exist (no client certificate) is sent as "".
void ClientSession::appendSslHeaders(std::string& h) {
  const config::InsertHeaders& ins = lis_->cfg->insert_headers;
  if (!cert_) cert_ = std::make_unique<tls::ClientCertInfo>(tls::clientCertInfo(ssl_));
  const tls::ClientCertInfo& c = *cert_;
  if (ins.ssl_client_verify) appendHeader(h, "X-SSL-Client-Verify", std::to_string(c.verify));
  if (ins.ssl_client_has_cert) appendHeader(h, "X-SSL-Client-Has-Cert", c.has_cert ? "1" : "0");
  if (ins.ssl_client_dn) appendHeader(h, "X-SSL-Client-DN", quoted(c.dn));
  if (ins.ssl_client_cn) appendHeader(h, "X-SSL-Client-CN", quoted(c.cn));
  if (ins.ssl_issuer) appendHeader(h, "X-SSL-Issuer", quoted(c.issuer_dn));
  if (ins.ssl_client_sha1) appendHeader(h, "X-SSL-Client-SHA1", quoted(c.sha1));
  if (ins.ssl_client_not_before) appendHeader(h, "X-SSL-Client-Not-Before", quoted(c.not_before));
  if (ins.ssl_client_not_after) appendHeader(h, "X-SSL-Client-Not-After", quoted(c.not_after));
}

// Answers the request in flight with an error page, logs it, and closes the
// connection once the page is out.
void ClientSession::sendError(int status, const char* termination) {
  sendLocal(status, errorResponse(status), termination);
}

void ClientSession::sendLocal(int status, std::string response, const char* termination) {
  termination_ = termination;
  status_ = status;
  bump(lis_counters_->slot(w_.index()).responses[responseClass(status)]);
  releaseUpstream(false);
  cout_.clear();
  cout_.append(response);
  if (w_.accessLog().enabled()) logAccess();  // bytes_out counts the page
  resp_.start(http::BodyKind::None, 0);
  close_after_ = true;
  phase_ = Phase::Closing;
  since_ = client_act_ = w_.loop().now();
  flushClient();
  if (!closed_ && cout_.empty()) close();
}

// PROMETHEUS listeners: the request is answered here, never by a member.
// GET/HEAD of any path gets the metrics, as Octavia's prometheus-proxy answers
// every GET (scrapers ask for /metrics); other methods 405. Keep-alive is kept
// unless the request carried a body (not read: the connection closes after).
void ClientSession::answerScrape(size_t head_length) {
  const http::RequestHead& req = w_.req_scratch;
  const bool head = req.method == "HEAD";
  int status = 200;
  std::string body;
  if (req.method != "GET" && !head) {
    status = 405;
    body = "Method Not Allowed\n";
  } else {
    body = renderMetrics(*snap_, readHostUsage());
  }
  cin_.consume(head_length);
  const bool keep = req_keep_alive_ && req.body == http::BodyKind::None && !w_.draining();
  std::string out = "HTTP/1.1 " + std::to_string(status) +
                    (status == 200 ? " OK" : " Method Not Allowed") +
                    "\r\ncontent-length: " + std::to_string(body.size()) +
                    "\r\ncache-control: no-cache\r\n" +
                    (status == 200 ? "content-type: text/plain; version=0.0.4; charset=utf-8\r\n"
                                   : "content-type: text/plain\r\n");
  if (status == 405) out += "allow: GET, HEAD\r\n";
  if (!lis_->hsts.empty()) out += "strict-transport-security: " + lis_->hsts + "\r\n";
  out += keep ? "\r\n" : "connection: close\r\n\r\n";
  if (!head) out += body;
  status_ = status;
  bump(lis_counters_->slot(w_.index()).responses[responseClass(status)]);
  cout_.append(out);
  if (w_.accessLog().enabled()) logAccess();
  since_ = client_act_ = w_.loop().now();
  if (!keep) {
    close_after_ = true;
    resp_.start(http::BodyKind::None, 0);
    phase_ = Phase::Closing;
  }
  flushClient();
}

void ClientSession::close() {
  if (closed_) return;
  closed_ = true;
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
  ::close(fd_);  // also leaves the epoll set: the fd is never duplicated
  fd_ = -1;
  cin_.clear();
  cout_.clear();
  auto& slot = lis_counters_->slot(w_.index());
  bump(slot.active_connections, -1);
  w_.connectionClosed(*lis_counters_);
  w_.removeSession(this);
  w_.loop().deleteLater(std::unique_ptr<event::Deletable>(this));
}

// ---- timers ------------------------------------------------------------------

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
    case Phase::TcpConnect:
      deadline = since_ + connect_to;
      break;
    case Phase::Request:
      if (up_ && !up_->connected) {
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
    case Phase::TcpConnect:
      onConnectFailed(ETIMEDOUT);
      if (!closed_) advance();
      return;
    case Phase::Request:
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

namespace {
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
