// A small synchronous HTTP(S) client facade for the control plane: Keystone token
// validation, the controller's mutual-TLS calls to amphora agents, OpenStack REST APIs.
// It keeps cpprestsdk and boost out of every other header. One HttpClient may be used
// from many threads at once; connections are pooled per scheme://host:port.
// Nothing throws across this boundary: transport failures (refused, reset, timeout, TLS
// handshake or certificate verification failure) come back as kUnavailable with a
// message naming the method and URL; an HTTP error status is a successful response.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "banyan/common/http_server.h"  // HttpHeaders
#include "banyan/common/result.h"

namespace banyan::common {

struct HttpClientOptions {
  // PEM bundle of CAs that may sign server certificates. "" = the system's default store.
  std::string ca_file{};
  // PEM client certificate (chain may follow) and key: mutual TLS. Both or neither.
  std::string client_cert_file{};
  std::string client_key_file{};
  // false: accept any server certificate and host name (like "insecure = True" in
  // keystonemiddleware). Only for tests and lab setups.
  bool verify = true;
  // Connections are pooled per origin (scheme://host:port) and timeout; the pools of the
  // least recently used origins beyond this many are dropped (a controller talks to
  // amphorae that come and go, each its own origin).
  size_t max_pooled_origins = 256;
};

struct HttpClientResponse {
  int status = 0;
  HttpHeaders headers;
  std::string body;

  // Case-insensitive header lookup; the first one wins.
  std::optional<std::string> header(std::string_view name) const;
};

class HttpClient {
 public:
  virtual ~HttpClient() = default;

  // Sends one request and waits for the whole response, at most `timeout` per network
  // step (connect, each read, each write; cpprestsdk's semantics). url is absolute:
  // "https://127.0.0.1:9876/v3/auth/tokens?nocatalog", "https://[2001:db8::5]:9443/info"
  // (an IPv6 server's certificate must name the address: an IP SAN; no SNI is sent to an
  // address). A link-local IPv6 address (fe80::/10) needs an RFC 6874 zone naming the
  // interface to leave through, "https://[fe80::1%25eth0]:9443/info" (a bare
  // "[fe80::1%eth0]" is taken too; an index "%253" as well): the certificate must name
  // fe80::1 and the Host header carries no zone. A zone on any other address, a malformed
  // zone or a link-local address without one is kInvalidArgument; an interface this host
  // (this network namespace) does not have is kUnavailable. A "Content-Type" in headers is
  // sent with the body; the body is sent as is (bytes, no charset conversion).
  // Errors: kInvalidArgument for a malformed URL or method, kUnavailable otherwise.
  virtual Result<HttpClientResponse> request(std::string_view method, const std::string& url,
                                             const HttpHeaders& headers, const std::string& body,
                                             std::chrono::milliseconds timeout) = 0;
};

// Checks the CA, certificate and key files up front (readable, parseable, key matches
// the certificate) so that a misconfiguration fails at startup with kInvalidArgument,
// not at the first request.
Result<std::unique_ptr<HttpClient>> makeHttpClient(const HttpClientOptions& options = {});

// Whether zone can stand after "%25" in an IPv6 literal host (RFC 6874) as request()
// accepts it: an interface name or index of at most IFNAMSIZ - 1 characters of
// [A-Za-z0-9._~-], the unreserved set, so it needs no escaping in a URL. For callers
// that build such URLs from configuration and want to refuse a bad name up front.
bool isValidIpv6Zone(std::string_view zone);

}  // namespace banyan::common
