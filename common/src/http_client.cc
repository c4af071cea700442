#include "banyan/common/http_client.h"

#include <arpa/inet.h>
#include <net/if.h>

#include <cpprest/http_client.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstdlib>
#include <map>
#include <mutex>

namespace banyan::common {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string opensslError() {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(code, buf, sizeof(buf));
  return buf;
}

// An IPv6 literal host as web::uri keeps it: "[2001:db8::5]", or with an RFC 6874 zone
// "[fe80::1%25eth0]" (web::uri leaves the "%25" as it is).
struct Ipv6Host {
  std::string address;  // "fe80::1": what the certificate must name and Host carries
  std::string connect;  // what cpprestsdk's resolver gets: "2001:db8::5", "fe80::1%3"
};

// The IPv6 literal in HOST, nothing for any other host (an IPv4 address, a name).
// A zone names the interface a link-local address is reached through (the scope id):
// "%25eth0" as RFC 6874 writes it, or a bare "%eth0" as Octavia and curl also accept.
// The interface is looked up here, in the caller's network namespace, and handed on as
// its index ("fe80::1%3"): glibc's getaddrinfo, which cpprestsdk's asio resolver calls,
// turns that into sin6_scope_id, and a number needs no further lookup on the resolver's
// thread. A zone on anything but fe80::/10 (the only unicast scope a zone selects), an
// unusable zone, or a link-local address without one (the kernel could not tell the
// link) is kInvalidArgument; an interface this host does not have is kUnavailable (it
// may come up later, like the management interface of a controller that is starting).
Result<std::optional<Ipv6Host>> ipv6Host(const std::string& host) {
  if (host.size() < 4 || host.front() != '[' || host.back() != ']') return std::optional<Ipv6Host>{};
  std::string inner = host.substr(1, host.size() - 2);
  std::string zone;
  bool zoned = false;
  if (auto pct = inner.find('%'); pct != std::string::npos) {
    zoned = true;
    zone = inner.substr(pct + 1);
    if (zone.compare(0, 2, "25") == 0) zone.erase(0, 2);
    inner.resize(pct);
  }
  in6_addr a{};
  if (::inet_pton(AF_INET6, inner.c_str(), &a) != 1) {
    if (!zoned) return std::optional<Ipv6Host>{};
    return makeError(ErrorCode::kInvalidArgument, "not an IPv6 address before the zone", host);
  }
  if (!zoned) {
    if (IN6_IS_ADDR_LINKLOCAL(&a)) {
      return makeError(ErrorCode::kInvalidArgument,
                       "a link-local IPv6 address needs a zone naming its interface, e.g. [fe80::1%25eth0]", host);
    }
    return std::optional<Ipv6Host>{Ipv6Host{inner, inner}};
  }
  if (!IN6_IS_ADDR_LINKLOCAL(&a)) {
    return makeError(ErrorCode::kInvalidArgument, "a zone is only allowed on a link-local IPv6 address (fe80::/10)",
                     host);
  }
  if (!isValidIpv6Zone(zone)) {
    return makeError(ErrorCode::kInvalidArgument,
                     "an IPv6 zone must be an interface name or index ([A-Za-z0-9._~-], at most 15 characters)",
                     host);
  }
  unsigned index = 0;
  if (std::all_of(zone.begin(), zone.end(), [](unsigned char c) { return std::isdigit(c); })) {
    char name[IF_NAMESIZE];
    unsigned long parsed = std::strtoul(zone.c_str(), nullptr, 10);
    if (parsed > 0 && parsed <= UINT_MAX && ::if_indextoname(static_cast<unsigned>(parsed), name) != nullptr) {
      index = static_cast<unsigned>(parsed);
    }
  } else {
    index = ::if_nametoindex(zone.c_str());
  }
  if (index == 0) {
    return makeError(ErrorCode::kUnavailable, "no network interface " + zone + " for the IPv6 zone", host);
  }
  return std::optional<Ipv6Host>{Ipv6Host{inner, inner + "%" + std::to_string(index)}};
}

// Verifies the server's chain with OpenSSL's own checks only, the expected IP address
// included (X509_VERIFY_PARAM_set1_ip_asc on the context). For an IPv6 origin it stands
// in for cpprestsdk's per-certificate callback, which matches the certificate against
// the Host header ("[2001:db8::5]:9443": never an IP address, so nothing matches).
int verifyWithOpenSslOnly(X509_STORE_CTX* store, void*) {
  X509_STORE_CTX_set_verify_cb(store, [](int ok, X509_STORE_CTX*) { return ok; });
  return X509_verify_cert(store);
}

// Loads the CA bundle and client certificate into an OpenSSL context. Used both to check
// the files up front (on a scratch context) and on every connection context cpprestsdk makes.
Result<void> configureTls(SSL_CTX* ctx, const HttpClientOptions& options) {
  if (!options.ca_file.empty() &&
      SSL_CTX_load_verify_locations(ctx, options.ca_file.c_str(), nullptr) != 1) {
    return makeError(ErrorCode::kInvalidArgument, "cannot load the CA file: " + opensslError(),
                     options.ca_file);
  }
  if (!options.client_cert_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx, options.client_cert_file.c_str()) != 1) {
      return makeError(ErrorCode::kInvalidArgument,
                       "cannot load the client certificate: " + opensslError(),
                       options.client_cert_file);
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, options.client_key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
      return makeError(ErrorCode::kInvalidArgument, "cannot load the client key: " + opensslError(),
                       options.client_key_file);
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
      return makeError(ErrorCode::kInvalidArgument,
                       "the client key does not match the client certificate",
                       options.client_key_file);
    }
  }
  return {};
}

class CpprestHttpClient final : public HttpClient {
 public:
  explicit CpprestHttpClient(HttpClientOptions options) : options_(std::move(options)) {}

  Result<HttpClientResponse> request(std::string_view method, const std::string& url,
                                     const HttpHeaders& headers, const std::string& body,
                                     std::chrono::milliseconds timeout) override {
    // A pooled keep-alive connection the server has closed meanwhile (Keystone under
    // uwsgi or Apache does this) fails while the request is written: the server never
    // got a whole request, so sending it once more on a fresh connection is safe even
    // for a POST. cpprestsdk retries such a failure only while reading the status line.
    // Up to three tries: each failed one uses up one stale pooled connection.
    auto result = attempt(method, url, headers, body, timeout);
    for (int retry = 0;
         retry < 2 && !result.ok() && result.error().code == ErrorCode::kUnavailable &&
         result.error().message.find("Failed to write request") != std::string::npos;
         ++retry) {
      result = attempt(method, url, headers, body, timeout);
    }
    return result;
  }

 private:
  Result<HttpClientResponse> attempt(std::string_view method, const std::string& url,
                                     const HttpHeaders& headers, const std::string& body,
                                     std::chrono::milliseconds timeout) {
    std::string what = std::string(method) + " " + redact(url);
    if (method.empty() || !std::all_of(method.begin(), method.end(), [](unsigned char c) {
          return std::isupper(c) || c == '-' || c == '_';
        })) {
      return makeError(ErrorCode::kInvalidArgument, "bad HTTP method", std::string(method));
    }
    // cpprestsdk throws for almost everything; nothing may escape this function.
    try {
      web::uri uri(url);
      if ((uri.scheme() != "http" && uri.scheme() != "https") || uri.host().empty()) {
        return makeError(ErrorCode::kInvalidArgument, "URL must be absolute http(s)://host/...",
                         url);
      }
      auto v6 = ipv6Host(uri.host());
      if (!v6) return makeError(v6.error().code, what + ": " + v6.error().message, url);
      auto client = clientFor(uri, *v6, timeout);
      web::http::http_request req{web::http::method(std::string(method))};
      web::uri_builder path_and_query;
      path_and_query.set_path(uri.path(), false);
      path_and_query.set_query(uri.query(), false);
      req.set_request_uri(path_and_query.to_uri());
      std::string content_type;
      bool has_host = false;
      for (const auto& [name, value] : headers) {
        if (iequals(name, "Content-Type")) {
          content_type = value;
          continue;
        }
        has_host = has_host || iequals(name, "Host");
        req.headers().add(name, value);
      }
      if (!has_host && *v6) {
        // The client was made for the bare address (see clientFor), which cpprestsdk
        // would also write into Host; RFC 9110 wants it in brackets, and RFC 6874 (4)
        // leaves a zone out of what is sent: it only means something on this host.
        std::string bracketed = "[" + (*v6)->address + "]";
        req.headers().add("Host", uri.port() > 0 ? bracketed + ":" + std::to_string(uri.port()) : bracketed);
      }
      if (!body.empty() || !content_type.empty()) {
        req.set_body(body,
                     content_type.empty() ? std::string("application/octet-stream") : content_type);
      }
      web::http::http_response resp = client->request(req).get();
      HttpClientResponse out;
      out.status = resp.status_code();
      for (const auto& [name, value] : resp.headers()) out.headers.emplace_back(name, value);
      std::vector<unsigned char> bytes = resp.extract_vector().get();
      out.body.assign(bytes.begin(), bytes.end());
      return out;
    } catch (const web::uri_exception& e) {
      return makeError(ErrorCode::kInvalidArgument, std::string("malformed URL: ") + e.what(), url);
    } catch (const std::exception& e) {
      return makeError(ErrorCode::kUnavailable, what + " failed: " + e.what(), url);
    } catch (...) {
      return makeError(ErrorCode::kUnavailable, what + " failed", url);
    }
  }

  // Drop the query: it may carry secrets, and errors are logged.
  static std::string redact(const std::string& url) { return url.substr(0, url.find('?')); }

  // cpprestsdk 2.10.18's asio client resolves uri.host() as it is, and keeps an IPv6
  // literal in brackets ("[2001:db8::5]": "Failed to resolve address"). web::uri also
  // takes the bare form "https://2001:db8::5:9443/" (the port is the digits after the
  // last colon), whose host() the resolver understands; so an IPv6 origin gets a client
  // made for that form, always with its port (without one the last group of the address
  // would be read as the port). A zoned link-local address goes the same way, with the
  // interface's index as its scope ("fe80::1%3", see ipv6Host): the resolver gives back
  // an endpoint with that sin6_scope_id and the connection leaves through that link. The
  // rest is put right per request and connection: the Host header (attempt), no SNI
  // (RFC 6066 allows no address there) and OpenSSL's own check of the IP address, without
  // the zone (a certificate never names one), in the certificate (verifyWithOpenSslOnly).
  // The pool key holds the index, so an interface made anew under its old name gets
  // fresh connections.
  std::shared_ptr<web::http::client::http_client> clientFor(const web::uri& uri, const std::optional<Ipv6Host>& host,
                                                            std::chrono::milliseconds timeout) {
    const std::string v6 = host ? host->address : std::string();
    web::uri_builder base;
    base.set_scheme(uri.scheme()).set_host(host ? host->connect : uri.host());
    if (uri.port() > 0) {
      base.set_port(uri.port());
    } else if (host) {
      base.set_port(uri.scheme() == "https" ? 443 : 80);
    }
    std::string key = base.to_string() + "#" + std::to_string(timeout.count());
    std::lock_guard<std::mutex> lock(mu_);
    auto it = clients_.find(key);
    if (it != clients_.end()) {
      it->second.last_used = ++uses_;
      return it->second.client;
    }
    web::http::client::http_client_config config;
    config.set_timeout(std::chrono::duration_cast<std::chrono::microseconds>(
        std::max(timeout, std::chrono::milliseconds(1))));
    // Never through a proxy from the environment: control-plane peers are direct.
    config.set_proxy(web::web_proxy(web::web_proxy::disabled));
    config.set_validate_certificates(options_.verify);
    if (!v6.empty()) config.set_tlsext_sni_enabled(false);
    HttpClientOptions options = options_;
    config.set_ssl_context_callback([options, v6](boost::asio::ssl::context& ctx) {
      SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
      auto configured = configureTls(ctx.native_handle(), options);
      // Checked in makeHttpClient; files that vanished since fail the handshake.
      if (!configured) throw std::runtime_error(configured.error().message);
      if (!v6.empty() && options.verify) {
        // The connection's SSL is made from this context afterwards and inherits both.
        if (X509_VERIFY_PARAM_set1_ip_asc(SSL_CTX_get0_param(ctx.native_handle()), v6.c_str()) != 1) {
          throw std::runtime_error("cannot check the certificate for " + v6);
        }
        SSL_CTX_set_cert_verify_callback(ctx.native_handle(), verifyWithOpenSslOnly, nullptr);
      }
    });
    auto client = std::make_shared<web::http::client::http_client>(base.to_uri(), config);
    if (clients_.size() >= std::max<size_t>(options_.max_pooled_origins, 1)) {
      // Drop the least recently used origin's pool; a request still using it holds its
      // own reference and finishes normally.
      auto oldest = std::min_element(clients_.begin(), clients_.end(), [](const auto& a, const auto& b) {
        return a.second.last_used < b.second.last_used;
      });
      clients_.erase(oldest);
    }
    clients_.emplace(key, Pooled{client, ++uses_});
    return client;
  }

  struct Pooled {
    std::shared_ptr<web::http::client::http_client> client;
    uint64_t last_used = 0;
  };

  const HttpClientOptions options_;
  std::mutex mu_;
  uint64_t uses_ = 0;
  std::map<std::string, Pooled> clients_;
};

}  // namespace

std::optional<std::string> HttpClientResponse::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (iequals(k, name)) return v;
  }
  return std::nullopt;
}

bool isValidIpv6Zone(std::string_view zone) {
  if (zone.empty() || zone.size() >= IFNAMSIZ) return false;
  return std::all_of(zone.begin(), zone.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
  });
}

Result<std::unique_ptr<HttpClient>> makeHttpClient(const HttpClientOptions& options) {
  if (options.client_cert_file.empty() != options.client_key_file.empty()) {
    return makeError(ErrorCode::kInvalidArgument,
                     "a client certificate needs its key and a key its certificate");
  }
  SSL_CTX* scratch = SSL_CTX_new(TLS_client_method());
  if (scratch == nullptr) return makeError(ErrorCode::kInternal, "SSL_CTX_new: " + opensslError());
  auto checked = configureTls(scratch, options);
  SSL_CTX_free(scratch);
  if (!checked) return checked.error();
  return std::unique_ptr<HttpClient>(std::make_unique<CpprestHttpClient>(options));
}

}  // namespace banyan::common
