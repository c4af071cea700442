// cpprestsdk behind the plain structs of http_server.h. Everything cpprest and boost
// stays in this file.
#include "banyan/common/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cctype>
#include <cstring>
#include <strings.h>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>

#include <boost/asio/ssl.hpp>
#include <cpprest/http_listener.h>
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

// A free port for the listener: cpprestsdk cannot report the port it bound when given 0.
// The short race with another process taking it is handled by retrying open(). A host
// name is probed on the loopback address.
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

class CpprestHttpServer final : public HttpServer {
 public:
  CpprestHttpServer(HttpServerOptions options, HttpHandler handler)
      : options_(std::move(options)), handler_(std::move(handler)) {}
  ~CpprestHttpServer() override { stop(); }

  Result<void> start() {
    if (options_.address.find(':') != std::string::npos) {
      return makeError(ErrorCode::kInvalidArgument,
                       "cannot listen on an IPv6 literal: cpprestsdk's listener splits the address at its "
                       "first colon; use an IPv4 address or a host name",
                       options_.address);
    }
    if (options_.tls) {
      auto m = loadTls(*options_.tls);
      if (!m) return m.error();
      tls_ = std::make_shared<const TlsMaterial>(std::move(m.value()));
    }
    const int attempts = options_.port == 0 ? 5 : 1;
    Error last;
    for (int i = 0; i < attempts; ++i) {
      uint16_t port = options_.port;
      if (port == 0) {
        auto p = pickFreePort(options_.address);
        if (!p) return p.error();
        port = p.value();
      }
      auto r = open(port);
      if (r) {
        port_ = port;
        return {};
      }
      last = r.error();
    }
    return last;
  }

  uint16_t port() const override { return port_; }

  void stop() override {
    std::lock_guard<std::mutex> lock(stop_mu_);
    if (!listener_) return;
    try {
      listener_->close().wait();
    } catch (const std::exception& e) {
      LB_WARN("http server close failed port=%u error=%s", port_, e.what());
    }
    // Bodies still being read end with their connections; their handlers must
    // not run on a server that is gone.
    std::unique_lock<std::mutex> wait_lock(in_flight_mu_);
    if (!in_flight_cv_.wait_for(wait_lock, std::chrono::seconds(10), [this] { return in_flight_.load() == 0; }))
      LB_WARN("http server stopped with request bodies still being read port=%u", port_);
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

  Result<void> open(uint16_t port) {
    std::string url =
        std::string(options_.tls ? "https" : "http") + "://" + options_.address + ":" + std::to_string(port);
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
      respond(request, req);
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
              respond(request, req);
            }
          } catch (const std::exception& e) {
            // The client went away or sent a broken body: nothing was handled.
            LB_DEBUG("http request body not read method=%s path=%s error=%s", req.method.c_str(),
                     req.path.c_str(), e.what());
          }
          if (in_flight_.fetch_sub(1) == 1) {
            std::lock_guard<std::mutex> lock(in_flight_mu_);
            in_flight_cv_.notify_all();
          }
        });
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
  std::atomic<int> in_flight_{0};  // bodies being read (see serve)
  std::mutex in_flight_mu_;
  std::condition_variable in_flight_cv_;
  std::shared_ptr<const TlsMaterial> tls_;
  uint16_t port_ = 0;
};

}  // namespace

Result<std::unique_ptr<HttpServer>> startHttpServer(const HttpServerOptions& options, HttpHandler handler) {
  auto server = std::make_unique<CpprestHttpServer>(options, std::move(handler));
  auto r = server->start();
  if (!r) return r.error();
  return std::unique_ptr<HttpServer>(std::move(server));
}

}  // namespace banyan::common
