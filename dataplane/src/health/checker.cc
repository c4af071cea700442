#include "health/checker.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "banyan/common/logging.h"
#include "event/loop.h"
#include "health/h2_check.h"
#include "net/socket.h"

namespace banyan::dp::health {

namespace {

using event::EventLoop;
using event::Millis;
using event::TimePoint;
using event::Timer;

constexpr size_t kMaxTransitions = 16;
// The status line is decided within its first 13 bytes; reading a little more
// costs nothing and keeps a single read() for typical responses.
constexpr size_t kReadChunk = 512;
constexpr const char* kOffline = "OFFLINE";

bool isDigit(char c) { return c >= '0' && c <= '9'; }

int64_t unixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// FNV-1a: a stable spread of first probes over the first delay, so the same
// config probes in the same pattern after every restart (easier to reason about).
uint64_t hashId(std::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

const char* monitorName(config::MonitorType t) {
  switch (t) {
    case config::MonitorType::kTcp: return "TCP";
    case config::MonitorType::kHttp: return "HTTP";
    case config::MonitorType::kHttps: return "HTTPS";
    case config::MonitorType::kTlsHello: return "TLS-HELLO";
    case config::MonitorType::kPing: return "PING";
    case config::MonitorType::kUdpConnect: return "UDP-CONNECT";
  }
  return "?";
}

// ICMP echo (RFC 792 / RFC 4443) types and the RFC 1071 checksum.
constexpr uint8_t kIcmpEchoRequest = 8;
constexpr uint8_t kIcmpEchoReply = 0;
constexpr uint8_t kIcmp6EchoRequest = 128;
constexpr uint8_t kIcmp6EchoReply = 129;
constexpr size_t kPingPayload = 16;

uint16_t icmpChecksum(const uint8_t* data, size_t size) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < size; i += 2) sum += static_cast<uint32_t>(data[i] << 8 | data[i + 1]);
  if (size % 2 != 0) sum += static_cast<uint32_t>(data[size - 1] << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

// An ICMP socket for echo requests: the unprivileged "ping socket"
// (SOCK_DGRAM, allowed by net.ipv4.ping_group_range) first, else a raw socket
// (root / CAP_NET_RAW). Sets `raw` to which one it got.
int openPingSocket(int family, bool& raw) {
  int proto =
      family == AF_INET6 ? static_cast<int>(IPPROTO_ICMPV6) : static_cast<int>(IPPROTO_ICMP);
  int fd = ::socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
  raw = false;
  if (fd >= 0) return fd;
  fd = ::socket(family, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
  raw = fd >= 0;
  return fd;
}

// The TLS-HELLO check succeeds once the member's ServerHello is parsed.
void noteServerHello(int write_p, int, int content_type, const void* buf, size_t len, SSL*,
                     void* arg) {
  if (write_p == 0 && content_type == SSL3_RT_HANDSHAKE && len > 0 &&
      static_cast<const uint8_t*>(buf)[0] == SSL3_MT_SERVER_HELLO)
    *static_cast<bool*>(arg) = true;
}

std::string errnoText(const char* what, int err) {
  return std::string(what) + ": " + std::strerror(err);
}

// Where and what a probe sends. Two equal specs probe the same thing, so a
// re-apply that keeps the spec keeps the probe cycle running.
struct ProbeSpec {
  config::MonitorType type = config::MonitorType::kTcp;
  bool target_valid = false;
  sockaddr_storage target{};
  std::string request;  // HTTP only: the full request bytes
  bool tls = false;     // HTTP over TLS: HTTPS monitors, HTTP monitors of tls_enabled pools
  // A tls_enabled pool whose ALPN list has h2: the list offered (wire format),
  // and the request's parts for an HTTP/2 check when the member picks h2.
  std::string alpn;
  std::string method, path, authority;

  bool operator==(const ProbeSpec& o) const {
    if (type != o.type || target_valid != o.target_valid || request != o.request || tls != o.tls ||
        alpn != o.alpn || method != o.method || path != o.path || authority != o.authority)
      return false;
    return !target_valid || net::sameAddress(target, o.target);
  }
};

std::string hostFor(const std::string& address) {
  // An IPv6 literal needs brackets in Host (RFC 9110 §7.2 / RFC 3986 IP-literal).
  if (address.find(':') != std::string::npos) return "[" + address + "]";
  return address;
}

// Checks speak TLS without verifying the member (haproxy `check-ssl verify
// none`; Octavia's HTTPS monitors do not verify, and checks of a tls_enabled
// pool only need the member to answer). One context for the checker thread's life.
SSL_CTX* checkTlsContext() {
  static SSL_CTX* const ctx = [] {
    SSL_CTX* c = SSL_CTX_new(TLS_client_method());
    LB_CHECK(c != nullptr, "OpenSSL can make a client context");
    SSL_CTX_set_verify(c, SSL_VERIFY_NONE, nullptr);
    SSL_CTX_set_options(c, SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    return c;
  }();
  return ctx;
}

ProbeSpec buildSpec(const config::Member& m, const config::HealthMonitor& hm, const config::Pool& pool) {
  ProbeSpec spec;
  // An HTTPS check is an HTTP check over TLS; HTTP checks of a re-encrypting
  // pool use TLS as its traffic does (haproxy checks inherit the server's ssl).
  spec.type = hm.type == config::MonitorType::kHttps ? config::MonitorType::kHttp : hm.type;
  spec.tls = hm.type == config::MonitorType::kHttps ||
             (pool.tls_enabled && hm.type == config::MonitorType::kHttp);
  const std::string& address = m.monitor_address.empty() ? m.address : m.monitor_address;
  uint16_t port = m.monitor_port != 0 ? m.monitor_port : m.protocol_port;
  spec.target_valid = net::parseAddress(address, port, spec.target);
  if (spec.type == config::MonitorType::kHttp) {
    std::string& r = spec.request;
    r = hm.http_method + " " + hm.url_path + " HTTP/" + hm.http_version + "\r\n";
    if (!hm.domain_name.empty())
      r += "Host: " + hm.domain_name + "\r\n";
    else if (hm.http_version == "1.1")  // Host is mandatory in HTTP/1.1 (RFC 9112 §3.2)
      r += "Host: " + hostFor(address) + "\r\n";
    r += "Connection: close\r\nUser-Agent: banyan-health-check\r\n\r\n";
    // A re-encrypting pool offers its ALPN list in checks as in traffic, so a
    // member may answer the check over HTTP/2.
    const auto& alpn = pool.alpn_protocols;
    if (spec.tls && pool.tls_enabled && std::find(alpn.begin(), alpn.end(), "h2") != alpn.end()) {
      for (const std::string& p : alpn) {
        spec.alpn.push_back(static_cast<char>(p.size()));
        spec.alpn += p;
      }
      spec.method = hm.http_method;
      spec.path = hm.url_path;
      spec.authority = hm.domain_name.empty() ? hostFor(address) : hm.domain_name;
    }
  }
  return spec;
}

struct ProbeResult {
  bool ok = false;
  std::string detail;
};

// One probe attempt: connect, (HTTP) send the request and read the status line.
// A fresh object per attempt, destroyed through deleteLater, so readiness events
// already fetched for a finished attempt's fd land on a dead-but-valid object
// and are ignored instead of being mistaken for the next attempt's.
class Probe : public event::Handler, public event::Deletable {
 public:
  using Done = std::function<void(ProbeResult)>;

  Probe(EventLoop& loop, const ProbeSpec& spec, std::vector<uint16_t> expected_codes,
        Millis timeout, Done done)
      : loop_(loop),
        spec_(spec),
        expected_codes_(std::move(expected_codes)),
        timeout_(timeout),
        done_(std::move(done)),
        timer_(loop, [this] { onTimeout(); }) {}

  ~Probe() override {
    closeFd();
    if (ssl_) SSL_free(ssl_);
  }

  // May finish (and call `done`) before returning.
  void start() {
    if (!spec_.target_valid) return finish(false, "invalid monitor address");
    if (spec_.type == config::MonitorType::kUdpConnect) return startUdp();
    if (spec_.type == config::MonitorType::kPing) return startPing();
    fd_ = net::connectTcp(spec_.target);
    if (fd_ < 0) return finish(false, connectFailure(errno));
    if (!loop_.add(fd_, EPOLLOUT, this)) return finish(false, errnoText("epoll_ctl", errno));
    timer_.arm(timeout_);
  }

  // Stops without reporting (the member was removed or its probe changed).
  void abort() {
    finished_ = true;
    timer_.cancel();
    closeFd();
  }

  void onEvents(uint32_t events) override {
    if (finished_) return;
    switch (state_) {
      case State::UdpWaiting:
        return readUdp();
      case State::PingWaiting:
        return readPing();
      case State::Connecting: {
        int err = net::connectError(fd_);
        if (err != 0) return finish(false, connectFailure(err));
        if ((events & (EPOLLERR | EPOLLHUP)) != 0) return finish(false, "connect failed");
        if (spec_.type == config::MonitorType::kTcp) return finish(true, "connected");
        if (spec_.tls || spec_.type == config::MonitorType::kTlsHello) {
          ssl_ = SSL_new(checkTlsContext());
          if (!ssl_ || SSL_set_fd(ssl_, fd_) != 1) return finish(false, "TLS setup failed");
          SSL_set_connect_state(ssl_);
          if (!spec_.alpn.empty() &&
              SSL_set_alpn_protos(ssl_, reinterpret_cast<const unsigned char*>(spec_.alpn.data()),
                                  static_cast<unsigned>(spec_.alpn.size())) != 0)
            return finish(false, "TLS setup failed (ALPN)");
          if (spec_.type == config::MonitorType::kTlsHello) {
            SSL_set_msg_callback(ssl_, noteServerHello);
            SSL_set_msg_callback_arg(ssl_, &server_hello_);
          }
          state_ = State::Handshaking;
          return handshake();
        }
        state_ = State::Writing;
        return writeRequest();
      }
      case State::Handshaking:
        return handshake();
      case State::Writing:
        return writeRequest();
      case State::Reading:
        return readResponse();
    }
  }

 private:
  enum class State { Connecting, Handshaking, Writing, Reading, UdpWaiting, PingWaiting };

  // UDP-CONNECT (Octavia's udp_check.sh, `nc -uzv -w1`): one datagram to the
  // member; an ICMP port unreachable coming back fails the check, silence (or
  // an answer) until the timeout passes it.
  void startUdp() {
    fd_ = net::connectUdp(spec_.target);
    if (fd_ < 0) return finish(false, errnoText("UDP socket", errno));
    if (!loop_.add(fd_, EPOLLIN, this)) return finish(false, errnoText("epoll_ctl", errno));
    state_ = State::UdpWaiting;
    static const char kProbe[] = "X";  // what nc -z sends
    if (::send(fd_, kProbe, 1, MSG_NOSIGNAL) < 0)
      return finish(false, errno == ECONNREFUSED ? "ICMP port unreachable"
                                                 : errnoText("send failed", errno));
    timer_.arm(timeout_);
  }

  void readUdp() {
    char buf[kReadChunk];
    ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
    if (n >= 0) return finish(true, "answered");
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
    finish(false, errno == ECONNREFUSED ? "ICMP port unreachable"
                                        : errnoText("ICMP error", errno));
  }

  // PING: an ICMP echo request; an echo reply within the timeout passes.
  void startPing() {
    int family = spec_.target.ss_family;
    fd_ = openPingSocket(family, raw_);
    if (fd_ < 0)
      return finish(false, errnoText("ICMP socket (ping_group_range or CAP_NET_RAW)", errno));
    static std::atomic<uint16_t> sequence{0};
    seq_ = sequence.fetch_add(1, std::memory_order_relaxed);
    // Raw sockets see every echo reply of the host: our id tells ours apart.
    // Ping sockets get their id from the kernel and only their own replies.
    ident_ = static_cast<uint16_t>(reinterpret_cast<uintptr_t>(this) >> 4);
    uint8_t packet[8 + kPingPayload] = {};
    packet[0] = family == AF_INET6 ? kIcmp6EchoRequest : kIcmpEchoRequest;
    packet[4] = static_cast<uint8_t>(ident_ >> 8);
    packet[5] = static_cast<uint8_t>(ident_);
    packet[6] = static_cast<uint8_t>(seq_ >> 8);
    packet[7] = static_cast<uint8_t>(seq_);
    std::memcpy(packet + 8, "banyan-healthchk", kPingPayload);
    if (family == AF_INET) {  // the kernel sums ICMPv6 itself (it needs the pseudo-header)
      uint16_t sum = icmpChecksum(packet, sizeof packet);
      packet[2] = static_cast<uint8_t>(sum >> 8);
      packet[3] = static_cast<uint8_t>(sum);
    }
    sockaddr_storage to = spec_.target;
    if (family == AF_INET6)
      reinterpret_cast<sockaddr_in6&>(to).sin6_port = 0;
    else
      reinterpret_cast<sockaddr_in&>(to).sin_port = 0;
    if (!loop_.add(fd_, EPOLLIN, this)) return finish(false, errnoText("epoll_ctl", errno));
    state_ = State::PingWaiting;
    if (::sendto(fd_, packet, sizeof packet, 0, reinterpret_cast<const sockaddr*>(&to),
                 net::addressLength(to)) < 0)
      return finish(false, errnoText("ICMP send failed", errno));
    timer_.arm(timeout_);
  }

  void readPing() {
    const bool v6 = spec_.target.ss_family == AF_INET6;
    for (;;) {
      uint8_t buf[1500];
      sockaddr_storage from{};
      socklen_t flen = sizeof from;
      ssize_t n = ::recvfrom(fd_, buf, sizeof buf, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from),
                             &flen);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        return finish(false, errnoText("ICMP error", errno));
      }
      const uint8_t* icmp = buf;
      size_t size = static_cast<size_t>(n);
      if (raw_ && !v6) {  // raw IPv4 sockets deliver the IP header too
        if (size < 20) continue;
        size_t ihl = static_cast<size_t>(buf[0] & 0x0f) * 4;
        if (size < ihl) continue;
        icmp += ihl;
        size -= ihl;
      }
      if (size < 8) continue;
      if (icmp[0] != (v6 ? kIcmp6EchoReply : kIcmpEchoReply)) continue;  // e.g. our own request
      uint16_t seq = static_cast<uint16_t>(icmp[6] << 8 | icmp[7]);
      uint16_t ident = static_cast<uint16_t>(icmp[4] << 8 | icmp[5]);
      if (seq != seq_ || (raw_ && ident != ident_)) continue;
      // Raw sockets: the reply must come from the member (the port is 0 on both).
      if (raw_) {
        sockaddr_storage want = spec_.target;
        if (v6)
          reinterpret_cast<sockaddr_in6&>(want).sin6_port = 0;
        else
          reinterpret_cast<sockaddr_in&>(want).sin_port = 0;
        if (v6) reinterpret_cast<sockaddr_in6&>(from).sin6_port = 0;
        if (!net::sameAddress(from, want)) continue;
      }
      return finish(true, "echo reply");
    }
  }

  // Waits for what OpenSSL asks for; false (and finished) on an error.
  bool tlsWait(int ret, const char* what) {
    int err = SSL_get_error(ssl_, ret);
    ERR_clear_error();
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      uint32_t want = err == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT;
      if (!loop_.modify(fd_, want, this)) finish(false, errnoText("epoll_ctl", errno));
      return true;
    }
    finish(false, what);
    return false;
  }

  void handshake() {
    int r = SSL_do_handshake(ssl_);
    if (spec_.type == config::MonitorType::kTlsHello) {
      // A ServerHello is all TLS-HELLO asks for; what follows (a client
      // certificate request, an alert) does not matter.
      if (r == 1 || server_hello_) {
        ERR_clear_error();
        return finish(true, "ServerHello received");
      }
      tlsWait(r, "no ServerHello (TLS handshake failed)");
      return;
    }
    if (r != 1) {
      tlsWait(r, "TLS handshake failed");
      return;
    }
    if (!spec_.alpn.empty()) {
      const unsigned char* chosen = nullptr;
      unsigned chosen_len = 0;
      SSL_get0_alpn_selected(ssl_, &chosen, &chosen_len);
      if (chosen_len == 2 && std::memcmp(chosen, "h2", 2) == 0) {
        h2_ = std::make_unique<H2Check>(spec_.method, spec_.path, spec_.authority);
        if (!h2_->error().empty()) return finish(false, h2_->error());
      }
    }
    state_ = State::Writing;
    writeRequest();
  }

  static std::string connectFailure(int err) {
    if (err == ECONNREFUSED) return "connect refused";
    return errnoText("connect failed", err);
  }

  void writeRequest() {
    const std::string& request = h2_ ? h2_->output() : spec_.request;
    while (ssl_ && written_ < request.size()) {
      int n = SSL_write(ssl_, request.data() + written_, static_cast<int>(request.size() - written_));
      if (n > 0) {
        written_ += static_cast<size_t>(n);
        continue;
      }
      tlsWait(n, "TLS send failed");
      return;
    }
    while (written_ < request.size()) {
      ssize_t n = ::send(fd_, request.data() + written_, request.size() - written_, MSG_NOSIGNAL);
      if (n > 0) {
        written_ += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;  // wait for EPOLLOUT
      if (n < 0 && errno == EINTR) continue;
      return finish(false, errnoText("send failed", n < 0 ? errno : EPIPE));
    }
    state_ = State::Reading;
    if (!loop_.modify(fd_, EPOLLIN, this)) finish(false, errnoText("epoll_ctl", errno));
  }

  void readResponse() {
    for (;;) {
      char buf[kReadChunk];
      ssize_t n;
      if (ssl_) {
        int r = SSL_read(ssl_, buf, sizeof buf);
        if (r <= 0) {
          int err = SSL_get_error(ssl_, r);
          if (err == SSL_ERROR_ZERO_RETURN) {
            ERR_clear_error();
            return finish(false, "connection closed before status line");
          }
          tlsWait(r, "TLS read failed");
          return;
        }
        n = r;
      } else {
        n = ::read(fd_, buf, sizeof buf);
      }
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        return finish(false, errno == ECONNRESET ? "connection reset"
                                                 : errnoText("read failed", errno));
      }
      if (n == 0) return finish(false, "connection closed before status line");
      int code = 0;
      if (h2_) {
        code = h2_->feed(buf, static_cast<size_t>(n));
        if (code < 0) return finish(false, h2_->error());
        if (code == 0) continue;
      } else {
        response_.append(buf, static_cast<size_t>(n));
        StatusLineParse p = parseStatusLine(response_);
        if (p.status == ParseStatus::NeedMore) continue;
        if (p.status == ParseStatus::Invalid) return finish(false, "invalid status line");
        code = p.code;
      }
      bool ok = std::find(expected_codes_.begin(), expected_codes_.end(), code) != expected_codes_.end();
      return finish(ok, "status " + std::to_string(code) + (h2_ ? " (HTTP/2)" : ""));
    }
  }

  void onTimeout() {
    if (state_ == State::UdpWaiting) return finish(true, "no ICMP port unreachable");
    if (state_ == State::PingWaiting) return finish(false, "no echo reply");
    if (state_ == State::Handshaking && spec_.type == config::MonitorType::kTlsHello)
      return finish(false, "no ServerHello within timeout");
    finish(false, state_ == State::Connecting ? "connect timeout" : "response timeout");
  }

  void closeFd() {
    if (fd_ < 0) return;
    loop_.remove(fd_);
    if (state_ == State::UdpWaiting || state_ == State::PingWaiting) {
      ::close(fd_);  // no connection to reset
      fd_ = -1;
      return;
    }
    // RST instead of FIN: no TIME_WAIT left on our side, which would exhaust
    // ephemeral ports when thousands of members are probed every few seconds
    // (HAProxy closes its check connections the same way).
    net::closeWithReset(fd_);
    fd_ = -1;
  }

  void finish(bool ok, std::string detail) {
    if (finished_) return;
    finished_ = true;
    timer_.cancel();
    closeFd();
    done_(ProbeResult{ok, std::move(detail)});  // may deleteLater(this): touch nothing after
  }

  EventLoop& loop_;
  ProbeSpec spec_;
  std::vector<uint16_t> expected_codes_;
  Millis timeout_;
  Done done_;
  Timer timer_;
  int fd_ = -1;
  SSL* ssl_ = nullptr;
  std::unique_ptr<H2Check> h2_;  // the member picked h2 in the handshake
  State state_ = State::Connecting;
  size_t written_ = 0;
  std::string response_;
  bool finished_ = false;
  bool server_hello_ = false;  // TLS-HELLO
  bool raw_ = false;           // PING over a raw socket
  uint16_t ident_ = 0;
  uint16_t seq_ = 0;
};

struct LastCheck {
  int64_t at_ms = 0;
  bool ok = false;
  std::string detail;
};

struct Transition {
  int64_t at_ms = 0;
  const char* from = "";
  const char* to = "";
  std::string reason;
};

void appendJsonString(std::string& out, std::string_view s) {
  out += '"';
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char esc[8];
          std::snprintf(esc, sizeof esc, "\\u%04x", static_cast<unsigned>(c));
          out += esc;
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

}  // namespace

StatusLineParse parseStatusLine(std::string_view bytes) {
  static constexpr std::string_view kPrefix = "HTTP/1.";
  StatusLineParse out;
  size_t prefix_len = std::min(bytes.size(), kPrefix.size());
  if (bytes.substr(0, prefix_len) != kPrefix.substr(0, prefix_len)) {
    out.status = ParseStatus::Invalid;
    return out;
  }
  // "HTTP/1.x NNN" is 12 bytes; byte 13 must end the code.
  for (size_t i = kPrefix.size(); i < std::min<size_t>(bytes.size(), 13); ++i) {
    char c = bytes[i];
    bool valid = (i == 8) ? c == ' ' : (i == 12) ? (c == ' ' || c == '\r' || c == '\n') : isDigit(c);
    if (!valid) {
      out.status = ParseStatus::Invalid;
      return out;
    }
  }
  if (bytes.size() < 13) return out;  // NeedMore
  out.code = static_cast<uint16_t>((bytes[9] - '0') * 100 + (bytes[10] - '0') * 10 + (bytes[11] - '0'));
  out.status = ParseStatus::Done;
  return out;
}

class HealthChecker::Impl {
 public:
  explicit Impl(HealthRegistry& registry) : registry_(registry) {}

  ~Impl() {
    stop();
    // Records cancel their timers and probes against loop_, which outlives them.
    std::lock_guard<std::mutex> lock(mu_);
    order_.clear();
    records_.clear();
  }

  void start() {
    std::lock_guard<std::mutex> lock(thread_mu_);
    if (thread_.joinable()) return;
    thread_ = std::thread([this] { loop_.run(); });
  }

  void stop() {
    std::lock_guard<std::mutex> lock(thread_mu_);
    if (!thread_.joinable()) return;
    loop_.stop();
    thread_.join();
  }

  void apply(std::shared_ptr<const config::Config> config) {
    loop_.post([this, config = std::move(config)] { reconcile(*config); });
  }

  uint64_t probesStarted() const { return probes_started_.load(std::memory_order_relaxed); }

  std::string statusJson() const;

 private:
  // Loop-thread state of one member. Fields read by statusJson() are written
  // under mu_; timers and the probe are loop-only.
  struct Record {
    explicit Record(Impl& impl) : next_probe(impl.loop_, [this, &impl] { impl.startProbe(*this); }) {}

    std::string pool_id;
    std::string member_id;
    std::string address;
    uint16_t protocol_port = 0;
    bool enabled = false;    // member and pool admin_state_up
    bool monitored = false;  // pool has an enabled health monitor
    config::HealthMonitor monitor;
    // Successes to come back up: max_retries, except on UDP pools, where
    // keepalived (Octavia's UDP backend) ignores it and one success is enough.
    uint32_t rise = 3;
    ProbeSpec spec;
    std::shared_ptr<MemberHealth> health;
    uint32_t consecutive_successes = 0;
    uint32_t consecutive_failures = 0;
    std::optional<LastCheck> last_check;
    std::deque<Transition> transitions;

    Timer next_probe;
    std::unique_ptr<Probe> probe;
    TimePoint probe_started{};
    bool probing() const { return enabled && monitored; }
  };

  static const char* reportedStatus(const Record& r) {
    if (!r.enabled) return kOffline;
    return memberStatusName(r.health->status.load(std::memory_order_relaxed));
  }

  static void recordTransition(Record& r, const char* from, const char* to, std::string reason) {
    if (std::strcmp(from, to) == 0) return;
    r.transitions.push_back(Transition{unixMs(), from, to, std::move(reason)});
    if (r.transitions.size() > kMaxTransitions) r.transitions.pop_front();
  }

  static std::string addressText(const Record& r) {
    return hostFor(r.address) + ":" + std::to_string(r.protocol_port);
  }

  static void stopProbing(Record& r, EventLoop& loop) {
    r.next_probe.cancel();
    if (r.probe) {
      r.probe->abort();
      loop.deleteLater(std::move(r.probe));
    }
  }

  Millis firstProbeDelay(const Record& r) const {
    uint32_t delay = std::max<uint32_t>(r.monitor.delay_ms, 1);
    return Millis(hashId(r.member_id) % delay);
  }

  void reconcile(const config::Config& config);
  void update(Record& r, const config::Pool& pool, const config::Member& m, bool is_new);
  void startProbe(Record& r);
  void onProbeDone(Record& r, ProbeResult result);

  HealthRegistry& registry_;
  EventLoop loop_;  // declared before records_: records cancel their timers on it
  std::mutex thread_mu_;
  std::thread thread_;
  std::atomic<uint64_t> probes_started_{0};

  mutable std::mutex mu_;
  std::unordered_map<std::string, std::unique_ptr<Record>> records_;  // by member id
  std::vector<Record*> order_;                                         // config order
};

void HealthChecker::Impl::reconcile(const config::Config& config) {
  std::lock_guard<std::mutex> lock(mu_);
  std::unordered_map<std::string, std::unique_ptr<Record>> next;
  std::vector<Record*> order;
  for (const config::Pool& pool : config.pools) {
    for (const config::Member& m : pool.members) {
      if (next.count(m.id) != 0) {
        // The document promises unique ids; health is keyed by them, so a
        // duplicate could only be checked by clobbering the first one's status.
        LB_WARN("Duplicate member id, not health checked twice. pool=%s member=%s",
                pool.id.c_str(), m.id.c_str());
        continue;
      }
      std::unique_ptr<Record> rec;
      auto old = records_.find(m.id);
      if (old != records_.end() && old->second->pool_id == pool.id) {
        rec = std::move(old->second);
        records_.erase(old);
      }
      bool is_new = !rec;
      if (is_new) {
        rec = std::make_unique<Record>(*this);
        rec->pool_id = pool.id;
        rec->member_id = m.id;
        rec->health = registry_.get(m.id);
      }
      update(*rec, pool, m, is_new);
      order.push_back(rec.get());
      next.emplace(m.id, std::move(rec));
    }
  }
  for (auto& [id, rec] : records_) stopProbing(*rec, loop_);  // removed members
  records_ = std::move(next);
  order_ = std::move(order);
}

void HealthChecker::Impl::update(Record& r, const config::Pool& pool, const config::Member& m,
                                 bool is_new) {
  const char* before = is_new ? memberStatusName(r.health->status.load(std::memory_order_relaxed))
                              : reportedStatus(r);
  bool was_probing = !is_new && r.probing();
  bool was_monitored = !is_new && r.monitored;
  const uint32_t old_delay = r.monitor.delay_ms;

  r.address = m.address;
  r.protocol_port = m.protocol_port;
  r.enabled = m.admin_state_up && pool.admin_state_up;
  r.monitored = pool.health_monitor.has_value() && pool.health_monitor->admin_state_up;

  std::string reason;
  if (!r.monitored) {
    stopProbing(r, loop_);
    r.consecutive_successes = r.consecutive_failures = 0;
    // A disabled member's health is left as is: the proxy excludes it anyway.
    if (r.enabled) r.health->status.store(MemberStatus::NoMonitor, std::memory_order_relaxed);
    reason = r.enabled ? "no health monitor" : "admin_state_up=false";
  } else {
    ProbeSpec spec = buildSpec(m, *pool.health_monitor, pool);
    bool spec_changed = !was_monitored || !(spec == r.spec);
    r.monitor = *pool.health_monitor;
    r.rise = pool.protocol == config::PoolProtocol::kUdp ? 1 : r.monitor.max_retries;
    r.spec = std::move(spec);
    if (!r.enabled) {
      stopProbing(r, loop_);
      reason = "admin_state_up=false";
    } else if (is_new || !was_monitored) {
      // HAProxy starts servers up; they fall after max_retries_down failures.
      r.consecutive_successes = r.consecutive_failures = 0;
      r.health->status.store(MemberStatus::Up, std::memory_order_relaxed);
      r.next_probe.arm(firstProbeDelay(r));
      reason = "health monitor enabled";
    } else if (spec_changed || !was_probing) {
      // New target or request: earlier counts said nothing about it. The status
      // is kept so a monitor edit does not flap traffic.
      stopProbing(r, loop_);
      if (spec_changed) r.consecutive_successes = r.consecutive_failures = 0;
      r.next_probe.arm(firstProbeDelay(r));
      reason = was_probing ? "health monitor changed" : "admin_state_up=true";
    } else if (r.monitor.delay_ms < old_delay && r.next_probe.armed()) {
      TimePoint sooner = loop_.now() + Millis(r.monitor.delay_ms);
      if (sooner < r.next_probe.deadline()) r.next_probe.armAt(sooner);
    }
  }
  const char* after = reportedStatus(r);
  recordTransition(r, before, after, reason);
  if (std::strcmp(before, after) != 0)
    LB_DEBUG("Member health status changed by config. pool=%s member=%s from=%s to=%s reason=%s",
             r.pool_id.c_str(), r.member_id.c_str(), before, after, reason.c_str());
}

void HealthChecker::Impl::startProbe(Record& r) {
  if (!r.probing() || r.probe) return;
  probes_started_.fetch_add(1, std::memory_order_relaxed);
  r.probe_started = loop_.now();
  r.probe = std::make_unique<Probe>(loop_, r.spec, r.monitor.expected_codes,
                                    Millis(std::max<uint32_t>(r.monitor.timeout_ms, 1)),
                                    [this, &r](ProbeResult result) { onProbeDone(r, std::move(result)); });
  r.probe->start();
}

void HealthChecker::Impl::onProbeDone(Record& r, ProbeResult result) {
  // The probe is still on the stack: it dies at the end of the loop iteration.
  loop_.deleteLater(std::move(r.probe));
  const TimePoint now = loop_.now();

  MemberStatus status = r.health->status.load(std::memory_order_relaxed);
  MemberStatus next = status;
  {
    std::lock_guard<std::mutex> lock(mu_);
    r.last_check = LastCheck{unixMs(), result.ok, result.detail};
    if (result.ok) {
      ++r.consecutive_successes;
      r.consecutive_failures = 0;
      if (status == MemberStatus::Down && r.consecutive_successes >= r.rise)
        next = MemberStatus::Up;
    } else {
      ++r.consecutive_failures;
      r.consecutive_successes = 0;
      if (status != MemberStatus::Down && r.consecutive_failures >= r.monitor.max_retries_down)
        next = MemberStatus::Down;
    }
    if (next != status) {
      r.health->status.store(next, std::memory_order_relaxed);
      recordTransition(r, memberStatusName(status), memberStatusName(next), result.detail);
    }
  }
  if (next != status) {
    LB_INFO("Member %s. pool=%s member=%s address=%s reason=%s",
            next == MemberStatus::Down ? "went down" : "came up", r.pool_id.c_str(),
            r.member_id.c_str(), addressText(r).c_str(), result.detail.c_str());
  }
  // Probes start `delay` apart; a probe slower than that (timeout > delay) is
  // followed by the next one at once rather than overlapping it.
  TimePoint due = std::max(r.probe_started + Millis(r.monitor.delay_ms), now);
  r.next_probe.armAt(due);
}

std::string HealthChecker::Impl::statusJson() const {
  std::string out = "{\"members\":[";
  std::lock_guard<std::mutex> lock(mu_);
  bool first = true;
  for (const Record* r : order_) {
    if (!first) out += ',';
    first = false;
    out += "{\"pool_id\":";
    appendJsonString(out, r->pool_id);
    out += ",\"member_id\":";
    appendJsonString(out, r->member_id);
    out += ",\"address\":";
    appendJsonString(out, r->address);
    out += ",\"protocol_port\":" + std::to_string(r->protocol_port);
    out += ",\"monitor\":";
    appendJsonString(out, r->monitored ? monitorName(r->monitor.type) : "none");
    out += ",\"status\":";
    appendJsonString(out, reportedStatus(*r));
    out += ",\"consecutive_successes\":" + std::to_string(r->consecutive_successes);
    out += ",\"consecutive_failures\":" + std::to_string(r->consecutive_failures);
    out += ",\"last_check\":";
    if (r->last_check) {
      out += "{\"at_ms\":" + std::to_string(r->last_check->at_ms);
      out += r->last_check->ok ? ",\"ok\":true" : ",\"ok\":false";
      out += ",\"detail\":";
      appendJsonString(out, r->last_check->detail);
      out += '}';
    } else {
      out += "null";
    }
    out += ",\"transitions\":[";
    bool first_t = true;
    for (const Transition& t : r->transitions) {
      if (!first_t) out += ',';
      first_t = false;
      out += "{\"at_ms\":" + std::to_string(t.at_ms) + ",\"from\":";
      appendJsonString(out, t.from);
      out += ",\"to\":";
      appendJsonString(out, t.to);
      out += ",\"reason\":";
      appendJsonString(out, t.reason);
      out += '}';
    }
    out += "]}";
  }
  out += "]}";
  return out;
}

HealthChecker::HealthChecker(HealthRegistry& registry)
    : impl_(std::make_unique<Impl>(registry)) {}
HealthChecker::~HealthChecker() = default;
void HealthChecker::start() { impl_->start(); }
void HealthChecker::stop() { impl_->stop(); }
void HealthChecker::apply(std::shared_ptr<const config::Config> config) {
  impl_->apply(std::move(config));
}
std::string HealthChecker::statusJson() const { return impl_->statusJson(); }
uint64_t HealthChecker::probesStarted() const { return impl_->probesStarted(); }

}  // namespace banyan::dp::health
