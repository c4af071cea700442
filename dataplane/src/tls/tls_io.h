// Non-blocking TLS I/O on an SSL bound to a socket, for sessions on an event
// loop. Nothing here blocks: a call that cannot progress reports which socket
// readiness it waits for (a read may need the socket writable during a
// handshake, a write may need it readable), and the caller retries when it is.
//
// Partial records are OpenSSL's business: bytes of an incomplete record stay
// in its read buffer until the rest arrives (a read reports kWantRead).
#pragma once

#include <openssl/ssl.h>

#include <cstddef>
#include <string>
#include <vector>

namespace banyan::dp::tls {

enum class IoStatus {
  kDone,       // `bytes` moved
  kWantRead,   // retry once the socket is readable
  kWantWrite,  // retry once the socket is writable
  kClosed,     // the peer ended the stream (close_notify or EOF)
  kError,      // handshake or protocol failure, or a socket error
};

struct IoResult {
  IoStatus status = IoStatus::kError;
  size_t bytes = 0;
};

// SSL_read. The first calls run the handshake.
IoResult read(SSL* ssl, char* buf, size_t len);
// SSL_do_handshake alone (kDone once it finished): for connections whose
// protocol (ALPN) must be known before the first byte is written.
IoResult handshake(SSL* ssl);
// Offers `protocols` over ALPN on this SSL only (before its handshake),
// replacing its context's list. False when OpenSSL refuses the list.
bool setAlpn(SSL* ssl, const std::vector<std::string>& protocols);
// SSL_write (with partial writes enabled). After kWantRead/kWantWrite the next
// call must offer at least the same bytes again (they may have moved).
IoResult write(SSL* ssl, const char* buf, size_t len);
// Sends close_notify when the handshake completed, without waiting for the
// peer's; best effort (a full socket drops it).
void shutdownQuietly(SSL* ssl);
// Frees the SSL after shutdownQuietly.
void closeAndFree(SSL* ssl);

// The SNI the client sent, "" when none.
std::string serverName(SSL* ssl);
// The negotiated ALPN protocol, "" when none.
std::string alpnProtocol(SSL* ssl);

// The client certificate as haproxy's ssl_c_* sample fetches render it, for
// the X-SSL-* headers Octavia inserts.
struct ClientCertInfo {
  bool has_cert = false;    // ssl_c_used: "1" / "0"
  long verify = 0;          // ssl_c_verify: X509 verify result, 0 = ok
  std::string dn;           // ssl_c_s_dn: "/C=US/O=Example/CN=client"
  std::string cn;           // ssl_c_s_dn(cn): the last CN of the subject
  std::string issuer_dn;    // ssl_c_i_dn
  std::string sha1;         // ssl_c_sha1,hex: upper-case hex of the DER's SHA-1
  std::string not_before;   // ssl_c_notbefore: YYMMDDhhmmssZ
  std::string not_after;    // ssl_c_notafter
};
ClientCertInfo clientCertInfo(SSL* ssl);

}  // namespace banyan::dp::tls
