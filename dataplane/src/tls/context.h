// TLS contexts built from the config document's certificate bundles.
//
// TlsContextProvider runs on the apply path (Proxy::apply, one thread at a
// time). It reads the PEM files a listener or pool names, checks them (each
// certificate parses, matches its private key and has not expired; CA and CRL
// files hold what they should) and builds immutable contexts. Any failure is
// returned as an Error whose context is the JSON pointer of the offending
// field, so the apply is refused and the running config stays.
//
// The contexts are shared by every worker (SSL_new on a shared SSL_CTX is
// thread-safe) and live as long as the snapshot that holds them and every
// session started on it.
#pragma once

#include <openssl/ssl.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "banyan/common/result.h"
#include "config/model.h"
#include "tls/ticket_keys.h"

namespace banyan::dp::tls {

// Handshakes on a listener's contexts since they were built (one config
// apply), read from OpenSSL's own per-context counters: nothing is added to
// the handshake path. Tells whether clients resume (issue 3's tls-resume).
struct HandshakeCounts {
  uint64_t completed = 0;  // handshakes that finished, full or resumed
  uint64_t resumed = 0;    // handshakes that accepted a ticket (TLS 1.3 PSK)
};

// A TERMINATED_HTTPS listener's contexts: the default certificate's and one
// per SNI certificate, all otherwise configured alike.
class ServerContext {
 public:
  ~ServerContext();
  ServerContext(const ServerContext&) = delete;
  ServerContext& operator=(const ServerContext&) = delete;

  // A server-side SSL for an accepted socket (non-blocking; the handshake runs
  // inside the first SSL_read). nullptr when OpenSSL is out of memory.
  SSL* newSsl(int fd) const;
  // The context serving `server_name` (lower case or not): an exact SAN/CN
  // match, then a wildcard one, then the default certificate's.
  SSL_CTX* pick(std::string_view server_name) const;
  // Names the certificates answer for (lower case), for tests and logs.
  std::vector<std::string> names() const;
  // Summed over the default and SNI contexts (after an SNI switch OpenSSL
  // counts the finished handshake on the SNI context, the resumption on the
  // default one). Safe from any thread.
  HandshakeCounts handshakes() const;

 private:
  friend class TlsContextProvider;
  ServerContext() = default;

  SSL_CTX* default_ctx_ = nullptr;
  std::vector<SSL_CTX*> sni_ctxs_;
  std::unordered_map<std::string, SSL_CTX*> exact_;     // "www.example.com"
  std::unordered_map<std::string, SSL_CTX*> wildcard_;  // ".example.com" for "*.example.com"
  std::string alpn_wire_;                               // advertised protocols, wire format
  std::shared_ptr<TicketKeys> tickets_;                 // outlives the contexts using it
};

// A pool's context for re-encryption to its members.
class ClientContext {
 public:
  ~ClientContext();
  ClientContext(const ClientContext&) = delete;
  ClientContext& operator=(const ClientContext&) = delete;

  // A client-side SSL on a connecting socket; `sni` is sent when not empty.
  SSL* newSsl(int fd, const std::string& sni) const;
  // Distinguishes contexts in the idle-connection pool keys.
  uint64_t serial() const { return serial_; }

 private:
  friend class TlsContextProvider;
  ClientContext() = default;
  SSL_CTX* ctx_ = nullptr;
  uint64_t serial_ = 0;
};

class TlsContextProvider {
 public:
  TlsContextProvider();

  // `path` is the listener's JSON pointer ("/listeners/3"), for errors.
  common::Result<std::shared_ptr<const ServerContext>> serverContext(
      const config::Listener& listener, const std::string& path);
  common::Result<std::shared_ptr<const ClientContext>> clientContext(const config::Pool& pool,
                                                                     const std::string& path);
  // settings.tls_ticket_key_rotation_s; applies to keys made from now on.
  void setTicketRotation(std::chrono::seconds period) { tickets_->setPeriod(period); }
  TicketKeys& ticketKeys() { return *tickets_; }

 private:
  std::shared_ptr<TicketKeys> tickets_;
  uint64_t next_serial_ = 1;
};

// The certificate bundle checks on their own (also used by tests): the file
// holds a certificate first, optionally its chain, and a matching unencrypted
// private key; the certificate is within its validity period. The message
// names the file.
common::Result<void> checkCertificateBundle(const std::string& file);

// Builds (and drops) every TLS context `config` needs: what `--check` runs.
common::Result<void> checkConfigTls(const config::Config& config);

}  // namespace banyan::dp::tls
