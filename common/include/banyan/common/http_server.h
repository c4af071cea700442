// A small HTTP/1.1 server facade for the control plane (the provider's API, the
// amphora agent's API). It keeps cpprestsdk and boost out of every other header: the
// handler sees plain structs. Requests are served on a pool of threads (cpprestsdk's, or
// the server's own: handler_threads); the handler must be thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "banyan/common/result.h"

namespace banyan::common {

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method;        // "GET", "PUT", ...
  std::string path;          // percent-decoded path, no query: "/v2/lbaas/loadbalancers"
  std::string raw_path;      // as sent, without the query
  std::string query;         // raw query string without '?', "" when none
  std::vector<std::pair<std::string, std::string>> query_params;  // decoded, in order, repeats kept
  HttpHeaders headers;
  std::string body;
  std::string peer_address;  // the client: "127.0.0.1", "::1" (an IPv4 client of "::" as "127.0.0.1")

  // Case-insensitive header lookup; the first one wins.
  std::optional<std::string> header(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  HttpHeaders headers;       // Content-Type is set from content_type unless given here
  std::string content_type = "application/json";
  std::string body;
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

struct HttpServerTls {
  std::string cert_file;     // PEM server certificate (chain may follow)
  std::string key_file;      // PEM private key
  std::string client_ca_file;  // non-empty: mutual TLS; clients must present a certificate
                               // signed by this CA, or the handshake fails
};

struct HttpServerOptions {
  // An IPv4 literal ("0.0.0.0" = every IPv4 address), an IPv6 literal ("::1",
  // "2001:db8::5", also "[::1]"; "::" = every address, IPv4 clients included where the
  // kernel has dual-stack sockets), or a host name (cpprestsdk binds its first address).
  // Anything else with a colon is refused with kInvalidArgument. cpprestsdk cannot bind
  // IPv6 itself: such an address is served through an in-process relay to a cpprestsdk
  // listener on a loopback port, which answers 403 to requests that did not come
  // through the relay (http_server.cc says why and what that costs).
  std::string address = "127.0.0.1";
  uint16_t port = 0;                  // 0: pick a free port (see HttpServer::port())
  size_t max_body_bytes = 1 << 20;    // larger bodies get 413 without reaching the handler
  std::optional<HttpServerTls> tls;
  // 0: handlers run on the threads cpprestsdk reads requests with (its shared pool of
  // 40). N: on N threads of this server's own, first come first served; cpprestsdk's
  // threads then only read and write, so a burst of clients does not put 40 handlers
  // on the cores at once. A handler may still block (a Keystone or Barbican call): the
  // client side's I/O runs on cpprestsdk's pool, not on these threads.
  size_t handler_threads = 0;
  // Only with handler_threads. 0: every request shares the handler threads. N: requests
  // that may change something (every method but GET and HEAD) run on N threads of their
  // own, so a read never waits behind writes that wait for a database commit.
  size_t write_handler_threads = 0;
};

class HttpServer {
 public:
  virtual ~HttpServer() = default;
  virtual uint16_t port() const = 0;
  // Stops accepting and waits for handlers in flight. Also done by the destructor.
  virtual void stop() = 0;
  // Re-reads the TLS certificate and key (and client CA) from the same files, for
  // certificate rotation without a process restart. Connections in flight keep theirs.
  virtual Result<void> reloadTls() = 0;
};

// Sizes the pool of threads cpprestsdk runs every HTTP server's and client's socket I/O
// on (its default is 40). Takes effect only before the first server or client of the
// process is created; 0 keeps the default. Nothing may block on those threads: handlers
// run there only with handler_threads = 0.
void setHttpIoThreads(size_t threads);

// Starts serving; the handler is called for every request (body already read).
// A handler that throws gets a 500 and a log line; it never takes the server down.
Result<std::unique_ptr<HttpServer>> startHttpServer(const HttpServerOptions& options,
                                                    HttpHandler handler);

}  // namespace banyan::common
