#include "tls_member.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>

#include <stdexcept>

#include "socket_util.h"

namespace banyan::test {
namespace {

std::string subjectCn(X509* cert) {
  if (!cert) return "";
  char buf[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf, sizeof buf);
  return buf;
}

int selectAlpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
               unsigned int inlen, void* arg) {
  auto* wire = static_cast<std::string*>(arg);
  unsigned char* sel = nullptr;
  if (SSL_select_next_proto(&sel, outlen, reinterpret_cast<const unsigned char*>(wire->data()),
                            static_cast<unsigned>(wire->size()), in, inlen) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;
  *out = sel;
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace

TestTlsMember::TestTlsMember(std::string name, std::string address, TlsMemberOptions options)
    : backend_(name, address),
      core_(address, [this](int fd, size_t, const sockaddr_storage&) { serve(fd); }) {
  // SSL_write to a peer that hung up (a health check, a closed proxy connection)
  // raises SIGPIPE, which would kill the whole test binary.
  signal(SIGPIPE, SIG_IGN);
  ctx_ = SSL_CTX_new(TLS_server_method());
  if (SSL_CTX_use_certificate_chain_file(ctx_, options.bundle.c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx_, options.bundle.c_str(), SSL_FILETYPE_PEM) != 1)
    throw std::runtime_error("TLS member: cannot load " + options.bundle);
  if (!options.client_ca.empty()) {
    SSL_CTX_load_verify_locations(ctx_, options.client_ca.c_str(), nullptr);
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }
  if (options.max_version) SSL_CTX_set_max_proto_version(ctx_, options.max_version);
  for (const auto& p : options.alpn) {
    alpn_wire_.push_back(static_cast<char>(p.size()));
    alpn_wire_ += p;
  }
  if (!alpn_wire_.empty()) SSL_CTX_set_alpn_select_cb(ctx_, selectAlpn, &alpn_wire_);
  core_.start(0);
}

TestTlsMember::~TestTlsMember() {
  core_.stop();
  SSL_CTX_free(ctx_);
}

std::vector<TlsHandshakeRecord> TestTlsMember::handshakes() const {
  std::lock_guard lock(mu_);
  return handshakes_;
}

size_t TestTlsMember::handshakeCount() const {
  std::lock_guard lock(mu_);
  return handshakes_.size();
}

void TestTlsMember::serve(int fd) {
  setTimeouts(fd, 3000);
  SSL* ssl = SSL_new(ctx_);
  SSL_set_fd(ssl, fd);
  TlsHandshakeRecord rec;
  rec.ok = SSL_accept(ssl) == 1;
  ERR_clear_error();
  if (const char* sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name)) rec.sni = sni;
  if (rec.ok) {
    const unsigned char* a = nullptr;
    unsigned int alen = 0;
    SSL_get0_alpn_selected(ssl, &a, &alen);
    if (a) rec.alpn.assign(reinterpret_cast<const char*>(a), alen);
    rec.version = SSL_get_version(ssl);
    X509* peer = SSL_get1_peer_certificate(ssl);
    rec.client_cn = subjectCn(peer);
    X509_free(peer);
    rec.resumed = SSL_session_reused(ssl) == 1;
  }
  {
    std::lock_guard lock(mu_);
    handshakes_.push_back(rec);
  }
  if (!rec.ok) {
    SSL_free(ssl);
    return;
  }
  Fd up = tryConnect(backend_.address(), backend_.port());
  if (!up.valid()) {
    SSL_free(ssl);
    return;
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  char buf[16384];
  bool open = true;
  while (open && !core_.stopping()) {
    pollfd p[2] = {{fd, POLLIN, 0}, {up.get(), POLLIN, 0}};
    if (SSL_pending(ssl) == 0 && ::poll(p, 2, 50) <= 0) continue;
    if (SSL_pending(ssl) > 0 || (p[0].revents & (POLLIN | POLLHUP | POLLERR))) {
      for (;;) {
        int n = SSL_read(ssl, buf, sizeof buf);
        if (n > 0) {
          try {
            sendAll(up.get(), std::string_view(buf, static_cast<size_t>(n)));
          } catch (const std::exception&) {
            open = false;
            break;
          }
          continue;
        }
        int err = SSL_get_error(ssl, n);
        ERR_clear_error();
        if (err != SSL_ERROR_WANT_READ) open = false;
        break;
      }
    }
    if (open && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t n = ::recv(up.get(), buf, sizeof buf, 0);
      if (n <= 0) {
        open = false;
      } else {
        size_t off = 0;
        while (off < static_cast<size_t>(n) && !core_.stopping()) {
          int w = SSL_write(ssl, buf + off, static_cast<int>(n - off));
          if (w > 0) {
            off += static_cast<size_t>(w);
            continue;
          }
          int err = SSL_get_error(ssl, w);
          ERR_clear_error();
          if (err != SSL_ERROR_WANT_WRITE && err != SSL_ERROR_WANT_READ) {
            open = false;
            break;
          }
          pollfd q{fd, static_cast<short>(err == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN), 0};
          ::poll(&q, 1, 50);
        }
      }
    }
  }
  SSL_shutdown(ssl);
  ERR_clear_error();
  SSL_free(ssl);
}

}  // namespace banyan::test
