#include "tls/tls_io.h"

#include <openssl/err.h>
#include <openssl/x509.h>

#include <cerrno>
#include <climits>

namespace banyan::dp::tls {
namespace {

IoResult failed(SSL* ssl, int ret) {
  int err = SSL_get_error(ssl, ret);
  IoResult r;
  switch (err) {
    case SSL_ERROR_WANT_READ:
      r.status = IoStatus::kWantRead;
      return r;
    case SSL_ERROR_WANT_WRITE:
      r.status = IoStatus::kWantWrite;
      return r;
    case SSL_ERROR_ZERO_RETURN:
      r.status = IoStatus::kClosed;
      break;
    case SSL_ERROR_SYSCALL:
      // With SSL_OP_IGNORE_UNEXPECTED_EOF a bare FIN is ZERO_RETURN; this is a
      // socket error (reset) or EOF in the middle of a handshake.
      r.status = (errno == EAGAIN || errno == EINTR) ? IoStatus::kWantRead : IoStatus::kError;
      break;
    default:
      r.status = IoStatus::kError;
      break;
  }
  // The error queue is per thread: leave it empty for the next connection.
  ERR_clear_error();
  return r;
}

std::string onelineDn(X509_NAME* name) {
  // haproxy's ssl_sock_get_dn_oneline: "/SN=value" per entry, in order.
  std::string out;
  int n = X509_NAME_entry_count(name);
  for (int i = 0; i < n; ++i) {
    X509_NAME_ENTRY* e = X509_NAME_get_entry(name, i);
    ASN1_OBJECT* obj = X509_NAME_ENTRY_get_object(e);
    const ASN1_STRING* data = X509_NAME_ENTRY_get_data(e);
    int nid = OBJ_obj2nid(obj);
    const char* sn = nid != NID_undef ? OBJ_nid2sn(nid) : nullptr;
    char buf[80];
    if (sn == nullptr) {
      OBJ_obj2txt(buf, sizeof buf, obj, 1);
      sn = buf;
    }
    out += '/';
    out += sn;
    out += '=';
    out.append(reinterpret_cast<const char*>(ASN1_STRING_get0_data(data)),
               static_cast<size_t>(ASN1_STRING_length(data)));
  }
  return out;
}

// haproxy's ssl_sock_get_time: UTCTime as is, GeneralizedTime without the
// century, so both read YYMMDDhhmmssZ.
std::string asn1TimeText(const ASN1_TIME* t) {
  std::string s(reinterpret_cast<const char*>(ASN1_STRING_get0_data(t)),
                static_cast<size_t>(ASN1_STRING_length(t)));
  if (ASN1_STRING_type(t) == V_ASN1_GENERALIZEDTIME && s.size() >= 14) s.erase(0, 2);
  return s;
}

}  // namespace

IoResult read(SSL* ssl, char* buf, size_t len) {
  int n = SSL_read(ssl, buf, static_cast<int>(len > INT_MAX ? INT_MAX : len));
  if (n > 0) return {IoStatus::kDone, static_cast<size_t>(n)};
  return failed(ssl, n);
}

IoResult handshake(SSL* ssl) {
  int n = SSL_do_handshake(ssl);
  if (n == 1) return {IoStatus::kDone, 0};
  return failed(ssl, n);
}

bool setAlpn(SSL* ssl, const std::vector<std::string>& protocols) {
  std::string wire;
  for (const auto& p : protocols) {
    if (p.empty() || p.size() > 255) continue;
    wire.push_back(static_cast<char>(p.size()));
    wire.append(p);
  }
  // An empty list turns ALPN off for this SSL.
  return SSL_set_alpn_protos(ssl, reinterpret_cast<const unsigned char*>(wire.data()),
                             static_cast<unsigned>(wire.size())) == 0;
}

IoResult write(SSL* ssl, const char* buf, size_t len) {
  int n = SSL_write(ssl, buf, static_cast<int>(len > INT_MAX ? INT_MAX : len));
  if (n > 0) return {IoStatus::kDone, static_cast<size_t>(n)};
  return failed(ssl, n);
}

void shutdownQuietly(SSL* ssl) {
  if (ssl == nullptr || !SSL_is_init_finished(ssl)) return;
  if (SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN) return;
  SSL_shutdown(ssl);
  ERR_clear_error();
}

void closeAndFree(SSL* ssl) {
  if (ssl == nullptr) return;
  shutdownQuietly(ssl);
  SSL_free(ssl);
}

std::string serverName(SSL* ssl) {
  const char* n = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  return n ? n : "";
}

std::string alpnProtocol(SSL* ssl) {
  const unsigned char* p = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(ssl, &p, &len);
  return p ? std::string(reinterpret_cast<const char*>(p), len) : "";
}

ClientCertInfo clientCertInfo(SSL* ssl) {
  ClientCertInfo info;
  X509* cert = SSL_get1_peer_certificate(ssl);
  info.verify = SSL_get_verify_result(ssl);
  if (cert == nullptr) return info;
  info.has_cert = true;
  X509_NAME* subject = X509_get_subject_name(cert);
  info.dn = onelineDn(subject);
  int idx = -1, last = -1;
  while ((idx = X509_NAME_get_index_by_NID(subject, NID_commonName, idx)) >= 0) last = idx;
  if (last >= 0) {
    const ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, last));
    info.cn.assign(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                   static_cast<size_t>(ASN1_STRING_length(s)));
  }
  info.issuer_dn = onelineDn(X509_get_issuer_name(cert));
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  if (X509_digest(cert, EVP_sha1(), md, &md_len) == 1) {
    static const char kHex[] = "0123456789ABCDEF";
    for (unsigned i = 0; i < md_len; ++i) {
      info.sha1 += kHex[md[i] >> 4];
      info.sha1 += kHex[md[i] & 15];
    }
  }
  info.not_before = asn1TimeText(X509_get0_notBefore(cert));
  info.not_after = asn1TimeText(X509_get0_notAfter(cert));
  X509_free(cert);
  return info;
}

}  // namespace banyan::dp::tls
