// cpprestsdk behind the plain structs of http_server.h. Everything cpprest and boost
// stays in this file. IPv6 addresses are served through an in-process relay: see
// Ipv6Relay for why.
#include "banyan/common/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <cctype>
#include <cstring>
#include <strings.h>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>
#include <unordered_map>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <cpprest/http_listener.h>
#include <pplx/threadpool.h>
#include <cpprest/uri.h>
#include <openssl/ssl.h>

#include "banyan/common/logging.h"

namespace banyan::common {

namespace http = web::http;

std::optional<std::string> HttpRequest::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key.size() == name.size() &&
        std::equal(key.begin(), key.end(), name.begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) ==
                 std::tolower(static_cast<unsigned char>(b));
        })) {
      return value;
    }
  }
  return std::nullopt;
}

namespace {

// A free port for the cpprestsdk listener: it cannot report the port it bound when given
// 0. The short race with another process taking it is handled by retrying open(). A host
// name is probed on the loopback address. IPv4 only: an IPv6 address is bound by the
// relay (see Ipv6Relay), whose own socket reports the port the kernel picked.
Result<uint16_t> pickFreePort(const std::string& address) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return makeError(ErrorCode::kUnavailable, std::string("socket: ") + std::strerror(errno));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  if (::inet_pton(AF_INET, address.c_str(), &sa.sin_addr) != 1) sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(sa);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), len) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
    int err = errno;
    ::close(fd);
    return makeError(ErrorCode::kUnavailable, std::string("bind: ") + std::strerror(err), address);
  }
  ::close(fd);
  return ntohs(sa.sin_port);
}

Result<std::string> readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return makeError(ErrorCode::kUnavailable, "cannot read file", path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// The PEM material a TLS listener serves, read once per start/reload so a handshake
// never touches the disk.
struct TlsMaterial {
  std::string cert_chain;
  std::string key;
  std::string client_ca;
};

Result<TlsMaterial> loadTls(const HttpServerTls& tls) {
  TlsMaterial m;
  auto cert = readFile(tls.cert_file);
  if (!cert) return cert.error();
  auto key = readFile(tls.key_file);
  if (!key) return key.error();
  m.cert_chain = std::move(cert.value());
  m.key = std::move(key.value());
  if (!tls.client_ca_file.empty()) {
    auto ca = readFile(tls.client_ca_file);
    if (!ca) return ca.error();
    m.client_ca = std::move(ca.value());
  }
  // Check now that the material is usable, so a bad rotation is refused instead of
  // failing every later handshake.
  try {
    boost::asio::ssl::context ctx(boost::asio::ssl::context::tls_server);
    ctx.use_certificate_chain(boost::asio::buffer(m.cert_chain));
    ctx.use_private_key(boost::asio::buffer(m.key), boost::asio::ssl::context::pem);
    if (SSL_CTX_check_private_key(ctx.native_handle()) != 1) {
      return makeError(ErrorCode::kInvalidArgument, "private key does not match the certificate", tls.key_file);
    }
    if (!m.client_ca.empty()) ctx.add_certificate_authority(boost::asio::buffer(m.client_ca));
  } catch (const std::exception& e) {
    std::string why = e.what();
    // OpenSSL reports a key of another certificate as "key values mismatch".
    if (why.find("mismatch") != std::string::npos) {
      return makeError(ErrorCode::kInvalidArgument, "private key does not match the certificate", tls.key_file);
    }
    return makeError(ErrorCode::kInvalidArgument, "TLS material refused: " + why, tls.cert_file);
  }
  return m;
}

namespace asio = boost::asio;
using asio::ip::tcp;

// Why an IPv6 address is served through a relay.
//
// cpprestsdk 2.10.18 (Debian 12's; 2.10.19, the last release, changes nothing here)
// cannot bind an IPv6 literal. Its asio listener (http_server_asio.cpp) turns the
// listener URI into the string uri.host() + ":" + port and hostport_listener splits that
// string again at its *first* colon: "http://[::1]:9443" gives host "[" and service
// ":1]:9443" ("resolve: Service not found"); the bracket-free "http://::1:9443", which
// web::uri also parses, gives host "" and service ":1:9443". Whatever the URI, the host
// that reaches the resolver has no colon: an IPv4 literal or a name. The ways around
// that inside cpprestsdk were weighed and refused:
// - Its wildcard "+" (cpprestsdk#446) resolves with getaddrinfo(NULL) *without*
//   AI_PASSIVE: it binds whichever loopback address gai.conf sorts first ([::1] with
//   glibc's default table), never "::" and never another address.
// - A host name that resolves to the literal needs /etc/hosts or a DNS server: system
//   state a daemon must not own.
// - Putting our own socket on cpprestsdk's descriptor (dup2) loses asio's epoll
//   registration; steering with nftables or BPF is host-wide state.
// So an IPv6 address gets its own socket here (dual-stack for "::" where the kernel
// allows), and each accepted connection is spliced byte for byte to the cpprestsdk
// listener on 127.0.0.1:<free port>. cpprestsdk stays the one HTTP implementation; the
// cost is one copy per byte on one thread, which control-plane traffic does not notice.
// - TLS: bytes go through untouched, so the handshake, client-certificate verification
//   included, is still cpprestsdk's; the relay never sees plaintext.
// - Peer address: every relayed connection leaves from its own loopback source address
//   (127.1.0.1 upward; all of 127/8 is local) and the relay keeps source -> client, so
//   handlers see the real client ("2001:db8::7"; an IPv4 client of "::" as "127.0.0.1",
//   not "::ffff:127.0.0.1").
// - Exposure: local processes can reach the loopback port, as they can reach the IPv6
//   address itself. A request that did not come through the relay is refused with 403
//   before the handler (and TLS still demands its client certificate first), so the
//   port is no way around the configured address. A local process that binds the source
//   address of a live relayed connection could borrow that client's peer_address;
//   peer_address names the client in logs, it is not an access control.
class Ipv6Relay {
 public:
  // Binds and listens, so port() is known (port 0: the kernel picks, without the probe
  // race of pickFreePort); connections wait in the backlog until run().
  static Result<std::unique_ptr<Ipv6Relay>> listen(const asio::ip::address_v6& address, uint16_t port) {
    auto relay = std::unique_ptr<Ipv6Relay>(new Ipv6Relay());
    boost::system::error_code ec;
    tcp::endpoint endpoint(address, port);
    std::string where = "[" + address.to_string() + "]:" + std::to_string(port);
    relay->acceptor_.open(tcp::v6(), ec);
    if (ec) return makeError(ErrorCode::kUnavailable, "cannot listen: IPv6 socket: " + ec.message(), where);
    relay->acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    if (address.is_unspecified()) {
      // "::" means every address, IPv4 included, as Octavia's bind_host = :: does; set
      // explicitly because net.ipv6.bindv6only may default it the other way. A kernel
      // without dual-stack refuses, and "::" then serves IPv6 only.
      relay->acceptor_.set_option(asio::ip::v6_only(false), ec);
      if (ec) LB_WARN("http server on [::] serves IPv6 only error=%s", ec.message().c_str());
    }
    relay->acceptor_.bind(endpoint, ec);
    if (!ec) relay->acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return makeError(ErrorCode::kUnavailable, "cannot listen: " + ec.message(), where);
    relay->port_ = relay->acceptor_.local_endpoint(ec).port();
    if (ec) return makeError(ErrorCode::kUnavailable, "cannot listen: " + ec.message(), where);
    return relay;
  }

  ~Ipv6Relay() { stop(); }

  uint16_t port() const { return port_; }

  // Starts accepting; every connection is relayed to 127.0.0.1:backend_port.
  void run(uint16_t backend_port) {
    backend_ = tcp::endpoint(asio::ip::address_v4::loopback(), backend_port);
    accept();
    thread_ = std::thread([this] { io_.run(); });
  }

  // The client behind a relayed connection, by the address the backend saw it from.
  std::optional<std::string> clientOf(const std::string& relay_source) const {
    in_addr a{};
    if (::inet_pton(AF_INET, relay_source.c_str(), &a) != 1) return std::nullopt;
    std::lock_guard<std::mutex> lock(mu_);
    auto it = clients_.find(ntohl(a.s_addr));
    if (it == clients_.end()) return std::nullopt;
    return it->second;
  }

  // Stops accepting and closes every relayed connection; idempotent.
  void stop() {
    if (!thread_.joinable()) {
      boost::system::error_code ignored;
      acceptor_.close(ignored);
      return;
    }
    asio::post(io_, [this] {
      boost::system::error_code ignored;
      acceptor_.close(ignored);
      retry_.cancel();
      std::vector<std::shared_ptr<Connection>> live;
      for (auto& [source, weak] : connections_) {
        if (auto c = weak.lock()) live.push_back(std::move(c));
      }
      for (auto& c : live) c->close();
    });
    // Every socket is closed, so every pending operation completes and run() returns.
    thread_.join();
  }

 private:
  // Enough for the control plane's clients; beyond it a client is closed at once
  // rather than running the process out of descriptors (each one costs three).
  static constexpr size_t kMaxConnections = 4096;
  // Source addresses 127.1.0.1 .. 127.254.255.254, skipping .0 and .255: clear of
  // 127.0.0.1 and Debian's 127.0.1.1 that other local clients use.
  static constexpr uint32_t kFirstSource = 0x7f010000;
  static constexpr uint32_t kLastSource = 0x7ffeffff;

  // One client and its connection to the backend, both on the relay's thread.
  class Connection : public std::enable_shared_from_this<Connection> {
   public:
    Connection(Ipv6Relay& relay, tcp::socket client, uint32_t source)
        : relay_(relay), client_(std::move(client)), backend_(relay.io_), source_(source) {}

    void start() {
      boost::system::error_code ec;
      backend_.open(tcp::v4(), ec);
      if (!ec) backend_.bind(tcp::endpoint(asio::ip::address_v4(source_), 0), ec);
      if (ec) {
        LB_WARN("http relay cannot bind its loopback source address error=%s", ec.message().c_str());
        close();
        return;
      }
      backend_.async_connect(relay_.backend_, [self = shared_from_this()](const boost::system::error_code& ec) {
        if (self->closed_) return;
        if (ec) {
          LB_WARN("http relay cannot reach its listener error=%s", ec.message().c_str());
          self->close();
          return;
        }
        self->pump(self->client_, self->backend_, self->upstream_);
        self->pump(self->backend_, self->client_, self->downstream_);
      });
    }

    void close() {
      if (closed_) return;
      closed_ = true;
      boost::system::error_code ignored;
      client_.close(ignored);
      backend_.close(ignored);
      relay_.release(source_);
    }

   private:
    using Buffer = std::array<char, 16 * 1024>;

    void pump(tcp::socket& from, tcp::socket& to, Buffer& buf) {
      from.async_read_some(asio::buffer(buf), [self = shared_from_this(), &from, &to, &buf](
                                                  const boost::system::error_code& ec, size_t n) {
        if (self->closed_) return;
        if (ec == asio::error::eof) {
          // Pass the half-close on: a client that shut down its sending side after its
          // last request still reads the answer.
          boost::system::error_code ignored;
          to.shutdown(tcp::socket::shutdown_send, ignored);
          if (--self->open_directions_ == 0) self->close();
          return;
        }
        if (ec) {
          self->close();
          return;
        }
        asio::async_write(to, asio::buffer(buf.data(), n),
                          [self, &from, &to, &buf](const boost::system::error_code& ec, size_t) {
                            if (self->closed_) return;
                            if (ec) {
                              self->close();
                              return;
                            }
                            self->pump(from, to, buf);
                          });
      });
    }

    Ipv6Relay& relay_;
    tcp::socket client_;
    tcp::socket backend_;
    const uint32_t source_;
    Buffer upstream_{};
    Buffer downstream_{};
    int open_directions_ = 2;
    bool closed_ = false;
  };

  Ipv6Relay() = default;

  void accept() {
    acceptor_.async_accept([this](const boost::system::error_code& ec, tcp::socket client) {
      if (!acceptor_.is_open()) return;  // stopped
      if (ec) {
        // Out of descriptors, typically: try again shortly instead of spinning.
        auto now = std::chrono::steady_clock::now();
        if (now - last_warning_ > std::chrono::seconds(10)) {
          last_warning_ = now;
          LB_WARN("http relay accept failed port=%u error=%s", port_, ec.message().c_str());
        }
        retry_.expires_after(std::chrono::milliseconds(100));
        retry_.async_wait([this](const boost::system::error_code& ec) {
          if (!ec) accept();
        });
        return;
      }
      admit(std::move(client));
      accept();
    });
  }

  void admit(tcp::socket client) {
    boost::system::error_code ec;
    auto peer = client.remote_endpoint(ec).address();
    if (ec) return;  // already gone
    std::string name = peer.is_v6() && peer.to_v6().is_v4_mapped()
                           ? asio::ip::make_address_v4(asio::ip::v4_mapped, peer.to_v6()).to_string()
                           : peer.to_string();
    auto source = allocate(name);
    if (!source) {
      auto now = std::chrono::steady_clock::now();
      if (now - last_warning_ > std::chrono::seconds(10)) {
        last_warning_ = now;
        LB_WARN("http relay refused a client: too many connections port=%u limit=%zu", port_, kMaxConnections);
      }
      return;  // the socket closes here
    }
    auto connection = std::make_shared<Connection>(*this, std::move(client), *source);
    connections_[*source] = connection;
    connection->start();
  }

  // A loopback source address for a new connection, or none at the limit. Addresses are
  // handed out in turn, so one is not reused while the listener may still be reading
  // what its last client sent.
  std::optional<uint32_t> allocate(const std::string& client) {
    std::lock_guard<std::mutex> lock(mu_);
    if (clients_.size() >= kMaxConnections) return std::nullopt;
    while (true) {
      next_source_ = next_source_ >= kLastSource ? kFirstSource : next_source_ + 1;
      uint32_t host = next_source_ & 0xff;
      if (host != 0 && host != 0xff && clients_.count(next_source_) == 0) break;
    }
    clients_.emplace(next_source_, client);
    return next_source_;
  }

  void release(uint32_t source) {
    connections_.erase(source);
    std::lock_guard<std::mutex> lock(mu_);
    clients_.erase(source);
  }

  asio::io_context io_;
  tcp::acceptor acceptor_{io_};
  asio::steady_timer retry_{io_};
  tcp::endpoint backend_;
  uint16_t port_ = 0;
  std::thread thread_;
  std::chrono::steady_clock::time_point last_warning_{};
  // On the relay's thread only.
  std::unordered_map<uint32_t, std::weak_ptr<Connection>> connections_;
  // Also read by the listener's threads (clientOf).
  mutable std::mutex mu_;
  std::unordered_map<uint32_t, std::string> clients_;  // loopback source -> client address
  uint32_t next_source_ = kFirstSource;
};

// The IPv6 literal in `address` ("::1", "2001:db8::5", "::", also in brackets, or with
// a zone: "fe80::1%eth0"), nothing for an IPv4 address or a host name (they have no
// colon), or an error for anything else with a colon.
Result<std::optional<asio::ip::address_v6>> ipv6Literal(const std::string& address) {
  if (address.find(':') == std::string::npos) return std::optional<asio::ip::address_v6>{};
  std::string text = address;
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') text = text.substr(1, text.size() - 2);
  boost::system::error_code ec;
  auto parsed = asio::ip::make_address_v6(text, ec);
  if (ec) {
    return makeError(ErrorCode::kInvalidArgument,
                     "not an IPv6 address: expected a literal such as \"::1\", \"2001:db8::5\" or \"::\" "
                     "(every address)",
                     address);
  }
  return std::optional<asio::ip::address_v6>{parsed};
}

// The threads handlers run on when HttpServerOptions::handler_threads is set: one
// first-come-first-served queue, so requests are answered in the order they became
// ready, however many connections cpprestsdk's own pool is reading.
class HandlerThreads {
 public:
  explicit HandlerThreads(size_t count) {
    for (size_t i = 0; i < count; ++i) threads_.emplace_back([this] { run(); });
  }
  // Runs what is still queued (its answers go to whichever connections are left), then joins.
  ~HandlerThreads() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  void post(std::function<void()> job) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      jobs_.push_back(std::move(job));
    }
    cv_.notify_one();
  }

 private:
  void run() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
        if (jobs_.empty()) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

class CpprestHttpServer final : public HttpServer {
 public:
  CpprestHttpServer(HttpServerOptions options, HttpHandler handler)
      : options_(std::move(options)), handler_(std::move(handler)) {}
  ~CpprestHttpServer() override { stop(); }

  Result<void> start() {
    auto v6 = ipv6Literal(options_.address);
    if (!v6) return v6.error();
    if (options_.handler_threads > 0) {
      handlers_ = std::make_unique<HandlerThreads>(options_.handler_threads);
      if (options_.write_handler_threads > 0)
        write_handlers_ = std::make_unique<HandlerThreads>(options_.write_handler_threads);
    }
    if (options_.tls) {
      auto m = loadTls(*options_.tls);
      if (!m) return m.error();
      tls_ = std::make_shared<const TlsMaterial>(std::move(m.value()));
    }
    // cpprestsdk listens on the configured address, or behind the relay of an IPv6 one
    // (see Ipv6Relay) on a free loopback port.
    std::string host = options_.address;
    uint16_t wanted = options_.port;
    if (*v6) {
      auto relay = Ipv6Relay::listen(**v6, options_.port);
      if (!relay) return relay.error();
      relay_ = std::move(relay.value());
      host = "127.0.0.1";
      wanted = 0;
    }
    const int attempts = wanted == 0 ? 5 : 1;
    Error last;
    for (int i = 0; i < attempts; ++i) {
      uint16_t port = wanted;
      if (port == 0) {
        auto p = pickFreePort(host);
        if (!p) return p.error();
        port = p.value();
      }
      auto r = open(host, port);
      if (r) {
        listener_port_ = port;
        if (relay_) relay_->run(port);
        return {};
      }
      last = r.error();
    }
    relay_.reset();
    return last;
  }

  uint16_t port() const override { return relay_ ? relay_->port() : listener_port_; }

  void stop() override {
    std::lock_guard<std::mutex> lock(stop_mu_);
    // The relay first: no new connection reaches a listener that is closing.
    if (relay_) relay_->stop();
    if (!listener_) return;
    try {
      listener_->close().wait();
    } catch (const std::exception& e) {
      LB_WARN("http server close failed port=%u error=%s", port(), e.what());
    }
    // Bodies still being read end with their connections; their handlers must
    // not run on a server that is gone.
    std::unique_lock<std::mutex> wait_lock(in_flight_mu_);
    if (!in_flight_cv_.wait_for(wait_lock, std::chrono::seconds(10), [this] { return in_flight_.load() == 0; }))
      LB_WARN("http server stopped with request bodies still being read port=%u", port());
    listener_.reset();
  }

  Result<void> reloadTls() override {
    if (!options_.tls) return makeError(ErrorCode::kInvalidArgument, "server has no TLS");
    auto m = loadTls(*options_.tls);
    if (!m) return m.error();
    std::lock_guard<std::mutex> lock(tls_mu_);
    tls_ = std::make_shared<const TlsMaterial>(std::move(m.value()));
    return {};
  }

 private:
  std::shared_ptr<const TlsMaterial> tlsMaterial() {
    std::lock_guard<std::mutex> lock(tls_mu_);
    return tls_;
  }

  Result<void> open(const std::string& host, uint16_t port) {
    std::string url = std::string(options_.tls ? "https" : "http") + "://" + host + ":" + std::to_string(port);
    http::experimental::listener::http_listener_config config;
    if (options_.tls) {
      // cpprestsdk builds a fresh asio context per connection with this callback, so a
      // reloadTls() takes effect at the next handshake.
      config.set_ssl_context_callback([this](boost::asio::ssl::context& ctx) {
        auto m = tlsMaterial();
        ctx.set_options(boost::asio::ssl::context::default_workarounds | boost::asio::ssl::context::no_sslv2 |
                        boost::asio::ssl::context::no_sslv3 | boost::asio::ssl::context::no_tlsv1 |
                        boost::asio::ssl::context::no_tlsv1_1);
        ctx.use_certificate_chain(boost::asio::buffer(m->cert_chain));
        ctx.use_private_key(boost::asio::buffer(m->key), boost::asio::ssl::context::pem);
        if (!m->client_ca.empty()) {
          ctx.add_certificate_authority(boost::asio::buffer(m->client_ca));
          ctx.set_verify_mode(boost::asio::ssl::verify_peer | boost::asio::ssl::verify_fail_if_no_peer_cert);
        }
      });
    }
    try {
      auto listener = std::make_unique<http::experimental::listener::http_listener>(url, config);
      listener->support([this](http::http_request request) { serve(std::move(request)); });
      listener->open().wait();
      listener_ = std::move(listener);
    } catch (const std::exception& e) {
      return makeError(ErrorCode::kUnavailable, std::string("cannot listen: ") + e.what(), url);
    }
    return {};
  }

  // The head is read; a body is read without holding a pool thread: every
  // thread blocked on a slow client's body (there are 40) would leave none to
  // finish any read, and the server would answer nothing.
  void serve(http::http_request request) {
    HttpRequest req;
    if (auto refused = readHead(request, req)) {
      sendReply(request, *refused);
      return;
    }
    if (request.method() == http::methods::GET || request.method() == http::methods::HEAD) {
      dispatch(request, std::move(req));
      return;
    }
    in_flight_.fetch_add(1);
    request.extract_vector().then(
        [this, request, req = std::move(req)](pplx::task<std::vector<unsigned char>> t) mutable {
          try {
            std::vector<unsigned char> body = t.get();
            if (body.size() > options_.max_body_bytes) {
              sendReply(request, tooLarge());
            } else {
              req.body.assign(body.begin(), body.end());
              dispatch(request, std::move(req));
            }
          } catch (const std::exception& e) {
            // The client went away or sent a broken body: nothing was handled.
            LB_DEBUG("http request body not read method=%s path=%s error=%s", req.method.c_str(),
                     req.path.c_str(), e.what());
          }
          leave();
        });
  }

  // The handler runs here, or on the handler threads when there are some: a read on
  // the read threads, anything else on the write threads when there are those.
  void dispatch(http::http_request& request, HttpRequest req) {
    if (!handlers_) {
      respond(request, req);
      return;
    }
    const bool read = req.method == "GET" || req.method == "HEAD";
    HandlerThreads& lane = read || !write_handlers_ ? *handlers_ : *write_handlers_;
    in_flight_.fetch_add(1);
    lane.post([this, request, req = std::move(req)]() mutable {
      respond(request, req);
      leave();
    });
  }

  // A body read or a queued handler is done: stop() may be waiting for the last.
  void leave() {
    if (in_flight_.fetch_sub(1) == 1) {
      std::lock_guard<std::mutex> lock(in_flight_mu_);
      in_flight_cv_.notify_all();
    }
  }

  void respond(http::http_request& request, const HttpRequest& req) {
    HttpResponse response;
    try {
      response = handler_(req);
    } catch (const std::exception& e) {
      LB_ERROR("http handler failed method=%s path=%s error=%s", req.method.c_str(), req.path.c_str(), e.what());
      response = HttpResponse{500, {}, "application/json",
                              R"({"faultcode": "Server", "faultstring": "Internal Server Error", "debuginfo": null})"};
    }
    sendReply(request, response);
  }

  void sendReply(http::http_request& request, HttpResponse response) {
    http::http_response reply(static_cast<http::status_code>(response.status));
    std::string content_type = response.content_type;
    for (auto& [k, v] : response.headers) {
      if (strcasecmp(k.c_str(), "content-type") == 0) {
        content_type = v;
      } else {
        reply.headers().add(k, v);
      }
    }
    // cpprestsdk closes the connection after a request that asked for it but does not say
    // so in the answer; a client that trusts HTTP/1.1 persistence then sends its next
    // request into the closing socket and reads nothing ("Remote end closed connection").
    utility::string_t asked;
    if (request.headers().match(http::header_names::connection, asked) && strcasecmp(asked.c_str(), "close") == 0) {
      reply.headers().add(http::header_names::connection, "close");
    }
    if (!response.body.empty()) {
      reply.set_body(std::move(response.body), content_type);
    } else if (response.status != 204 && response.status != 304) {
      // cpprestsdk writes Content-Length: 0 itself for an empty body; a second one
      // makes Python clients hang.
      reply.headers().set_content_type(content_type);
    }
    request.reply(reply).then([](pplx::task<void> t) {
      try {
        t.get();
      } catch (const std::exception&) {
        // The client went away; nothing to do.
      }
    });
  }

  // Fills everything but the body; an answer when the request is refused already.
  std::optional<HttpResponse> readHead(http::http_request& request, HttpRequest& req) {
    const auto& headers = request.headers();
    if (headers.has(http::header_names::content_length) &&
        headers.content_length() > options_.max_body_bytes) {
      return tooLarge();
    }
    req.method = request.method();
    const auto& uri = request.relative_uri();
    req.raw_path = uri.path();
    req.path = web::uri::decode(uri.path());
    req.query = uri.query();
    if (!req.query.empty()) {
      std::string_view q = req.query;
      while (!q.empty()) {
        auto amp = q.find('&');
        auto part = q.substr(0, amp);
        q = amp == std::string_view::npos ? std::string_view{} : q.substr(amp + 1);
        if (part.empty()) continue;
        auto eq = part.find('=');
        std::string key(part.substr(0, eq));
        std::string value(eq == std::string_view::npos ? std::string_view{} : part.substr(eq + 1));
        for (auto* s : {&key, &value}) std::replace(s->begin(), s->end(), '+', ' ');
        req.query_params.emplace_back(web::uri::decode(key), web::uri::decode(value));
      }
    }
    for (const auto& [k, v] : headers) req.headers.emplace_back(k, v);
    req.peer_address = request.remote_address();
    if (relay_) {
      auto client = relay_->clientOf(req.peer_address);
      if (!client) {
        // Straight to the loopback port, around the configured address.
        LB_DEBUG("http request refused: not through the listening address peer=%s", req.peer_address.c_str());
        return HttpResponse{403, {}, "application/json",
                            R"({"faultcode": "Client", "faultstring": "Forbidden", "debuginfo": null})"};
      }
      req.peer_address = std::move(*client);
    }
    return std::nullopt;
  }

  HttpResponse tooLarge() const {
    return HttpResponse{413, {}, "application/json",
                        R"({"faultcode": "Client", "faultstring": "Request Entity Too Large", "debuginfo": null})"};
  }

  HttpServerOptions options_;
  HttpHandler handler_;
  std::unique_ptr<http::experimental::listener::http_listener> listener_;
  std::mutex stop_mu_;
  std::mutex tls_mu_;
  std::atomic<int> in_flight_{0};  // bodies being read and handlers queued (see serve)
  std::mutex in_flight_mu_;
  std::condition_variable in_flight_cv_;
  std::shared_ptr<const TlsMaterial> tls_;
  std::unique_ptr<HandlerThreads> handlers_;        // handler_threads > 0 only
  std::unique_ptr<HandlerThreads> write_handlers_;  // also write_handler_threads > 0
  std::unique_ptr<Ipv6Relay> relay_;  // an IPv6 address only; before listener_ in stop()
  uint16_t listener_port_ = 0;        // cpprestsdk's port; port() is the relay's with one
};

}  // namespace

void setHttpIoThreads(size_t threads) {
  if (threads > 0) crossplat::threadpool::initialize_with_threads(threads);
}

Result<std::unique_ptr<HttpServer>> startHttpServer(const HttpServerOptions& options, HttpHandler handler) {
  auto server = std::make_unique<CpprestHttpServer>(options, std::move(handler));
  auto r = server->start();
  if (!r) return r.error();
  return std::unique_ptr<HttpServer>(std::move(server));
}

}  // namespace banyan::common
