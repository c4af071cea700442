#include "certs/tls_certificate.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cctype>
#include <memory>

namespace banyan::provider::certs {
namespace {

using common::ErrorCode;
using common::makeError;
using common::Result;

struct Free {
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(PKCS12* p) const { PKCS12_free(p); }
  void operator()(PKCS7* p) const { PKCS7_free(p); }
  void operator()(X509_CRL* p) const { X509_CRL_free(p); }
  void operator()(STACK_OF(X509) * p) const { sk_X509_pop_free(p, X509_free); }
  void operator()(GENERAL_NAMES* p) const { GENERAL_NAMES_free(p); }
};
template <class T>
using Ptr = std::unique_ptr<T, Free>;

// OpenSSL's newest error for the message, and the queue emptied.
std::string sslError() {
  unsigned long e = ERR_peek_last_error();
  char buf[256] = {};
  if (e) ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return e ? buf : "unknown OpenSSL error";
}

Ptr<BIO> memBio(std::string_view bytes) {
  return Ptr<BIO>(BIO_new_mem_buf(bytes.data(), static_cast<int>(bytes.size())));
}

std::string toPem(X509* cert) {
  Ptr<BIO> out(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(out.get(), cert);
  char* data = nullptr;
  long n = BIO_get_mem_data(out.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

std::string toPem(EVP_PKEY* key) {
  Ptr<BIO> out(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(out.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(out.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

Result<void> keyMatches(X509* cert, EVP_PKEY* key) {
  if (X509_check_private_key(cert, key) != 1) {
    ERR_clear_error();
    return makeError(ErrorCode::kInvalidArgument,
                     "the private key does not belong to the certificate");
  }
  return {};
}

// Concatenated PEM certificates, or a PEM PKCS7 structure holding them.
Result<std::vector<std::string>> intermediatesFrom(std::string_view text) {
  std::vector<std::string> out;
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) return out;
  if (text.find("-----BEGIN PKCS7-----") != std::string_view::npos) {
    auto bio = memBio(text);
    Ptr<PKCS7> p7(PEM_read_bio_PKCS7(bio.get(), nullptr, nullptr, nullptr));
    if (!p7 || !PKCS7_type_is_signed(p7.get()) || !p7->d.sign || !p7->d.sign->cert)
      return makeError(ErrorCode::kInvalidArgument,
                       "the intermediates are not a PKCS7 certificate bundle", sslError());
    STACK_OF(X509)* certs = p7->d.sign->cert;
    for (int i = 0; i < sk_X509_num(certs); ++i) out.push_back(toPem(sk_X509_value(certs, i)));
    return out;
  }
  auto bio = memBio(text);
  for (;;) {
    Ptr<X509> c(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!c) break;
    out.push_back(toPem(c.get()));
  }
  ERR_clear_error();  // the end of the input reads as "no start line"
  if (out.empty())
    return makeError(ErrorCode::kInvalidArgument, "the intermediates hold no PEM certificate");
  return out;
}

int passphraseCallback(char* buf, int size, int, void* user) {
  auto* pass = static_cast<std::string_view*>(user);
  if (pass->size() > static_cast<size_t>(size)) return -1;
  std::copy(pass->begin(), pass->end(), buf);
  return static_cast<int>(pass->size());
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

}  // namespace

Result<TlsCertificate> fromPkcs12(std::string_view der, std::string_view passphrase) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  Ptr<PKCS12> p12(d2i_PKCS12(nullptr, &p, static_cast<long>(der.size())));
  if (!p12)
    return makeError(ErrorCode::kInvalidArgument, "the secret is not a PKCS12 bundle", sslError());
  EVP_PKEY* key_raw = nullptr;
  X509* cert_raw = nullptr;
  STACK_OF(X509)* ca_raw = nullptr;
  if (!passphrase.empty()) {
    std::string pass(passphrase);  // NUL-terminated for OpenSSL
    // The MAC check first: a wrong passphrase then gets its own message instead of
    // PKCS12_parse's generic failure.
    if (PKCS12_mac_present(p12.get()) &&
        PKCS12_verify_mac(p12.get(), pass.c_str(), static_cast<int>(pass.size())) != 1)
      return makeError(ErrorCode::kInvalidArgument, "the PKCS12 passphrase is wrong", sslError());
    if (PKCS12_parse(p12.get(), pass.c_str(), &key_raw, &cert_raw, &ca_raw) != 1)
      return makeError(ErrorCode::kInvalidArgument,
                       "the PKCS12 bundle cannot be read with the passphrase given", sslError());
  } else if (PKCS12_parse(p12.get(), nullptr, &key_raw, &cert_raw, &ca_raw) != 1) {
    // A NULL passphrase: OpenSSL tries both "no password" and the empty one.
    return makeError(
        ErrorCode::kInvalidArgument,
        "the PKCS12 bundle cannot be read without a passphrase",
        sslError());
  }
  Ptr<EVP_PKEY> key(key_raw);
  Ptr<X509> cert(cert_raw);
  Ptr<STACK_OF(X509)> ca(ca_raw);
  if (!cert)
    return makeError(ErrorCode::kInvalidArgument, "the PKCS12 bundle holds no certificate");
  if (!key) return makeError(ErrorCode::kInvalidArgument, "the PKCS12 bundle holds no private key");
  if (auto r = keyMatches(cert.get(), key.get()); !r) return r.error();
  TlsCertificate out;
  out.certificate = toPem(cert.get());
  out.private_key = toPem(key.get());
  for (int i = 0; ca && i < sk_X509_num(ca.get()); ++i)
    out.intermediates.push_back(toPem(sk_X509_value(ca.get(), i)));
  return out;
}

Result<TlsCertificate> fromPem(std::string_view certificate, std::string_view private_key,
                               std::string_view intermediates, std::string_view passphrase) {
  auto cert_bio = memBio(certificate);
  Ptr<X509> cert(PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr));
  if (!cert)
    return makeError(ErrorCode::kInvalidArgument, "the certificate is not a PEM certificate",
                     sslError());
  auto key_bio = memBio(private_key);
  std::string_view pass = passphrase;
  Ptr<EVP_PKEY> key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, passphraseCallback, &pass));
  if (!key)
    return makeError(ErrorCode::kInvalidArgument,
                     passphrase.empty() ? "the private key is not an unencrypted PEM key"
                                        : "the private key does not decrypt with its passphrase",
                     sslError());
  if (auto r = keyMatches(cert.get(), key.get()); !r) return r.error();
  auto chain = intermediatesFrom(intermediates);
  if (!chain) return chain.error();
  TlsCertificate out;
  out.certificate = toPem(cert.get());
  out.private_key = toPem(key.get());
  out.intermediates = std::move(chain).value();
  return out;
}

std::string proxyBundle(const TlsCertificate& cert) {
  std::string out = cert.certificate;
  for (const auto& i : cert.intermediates) out += i;
  out += cert.private_key;
  return out;
}

Result<void> checkClientCaAndCrl(std::string_view ca_pem, std::string_view crl_pem) {
  auto ca_bio = memBio(ca_pem);
  Ptr<X509> ca(PEM_read_bio_X509(ca_bio.get(), nullptr, nullptr, nullptr));
  if (!ca)
    return makeError(
        ErrorCode::kInvalidArgument,
        "The client authentication CA certificate is invalid. It must be a valid x509 PEM format "
        "certificate. Error: " +
            sslError());
  if (crl_pem.empty()) return {};
  auto crl_bio = memBio(crl_pem);
  Ptr<X509_CRL> crl(PEM_read_bio_X509_CRL(crl_bio.get(), nullptr, nullptr, nullptr));
  if (!crl)
    return makeError(
        ErrorCode::kInvalidArgument,
        "The client authentication certificate revocation list is invalid. It must be a valid x509 "
        "PEM format certificate revocation list. Error: " +
            sslError());
  EVP_PKEY* ca_key = X509_get0_pubkey(ca.get());
  if (!ca_key || X509_CRL_verify(crl.get(), ca_key) != 1) {
    ERR_clear_error();
    return makeError(
        ErrorCode::kInvalidArgument,
        "The CRL specified is not valid for client certificate authority reference supplied.");
  }
  return {};
}

std::vector<std::string> hostNames(std::string_view certificate_pem) {
  std::vector<std::string> out;
  auto bio = memBio(certificate_pem);
  Ptr<X509> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) {
    ERR_clear_error();
    return out;
  }
  Ptr<GENERAL_NAMES> names(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert.get(), NID_subject_alt_name, nullptr, nullptr)));
  for (int i = 0; names && i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* n = sk_GENERAL_NAME_value(names.get(), i);
    if (n->type != GEN_DNS) continue;
    const ASN1_STRING* s = n->d.dNSName;
    out.push_back(lower(std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                    static_cast<size_t>(ASN1_STRING_length(s)))));
  }
  if (out.empty()) {
    char cn[256] = {};
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert.get()), NID_commonName, cn,
                                  sizeof cn) > 0)
      out.push_back(lower(cn));
  }
  ERR_clear_error();
  return out;
}

}  // namespace banyan::provider::certs
