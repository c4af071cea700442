#include "support/test_pki.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace banyan::agent::testing {

namespace {

[[noreturn]] void die(const char* what) {
  fprintf(stderr, "test PKI: %s failed\n", what);
  abort();
}

EVP_PKEY* newKey() {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  if (!key) die("EVP_EC_gen");
  return key;
}

void addExt(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (!ext) die("X509V3_EXT_conf_nid");
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

X509* newCert(const std::string& cn, EVP_PKEY* key, long not_before_s, long not_after_s) {
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  unsigned char serial[8];
  RAND_bytes(serial, sizeof serial);
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert), not_before_s);
  X509_gmtime_adj(X509_getm_notAfter(cert), not_after_s);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                             0);
  X509_set_pubkey(cert, key);
  return cert;
}

std::string toPem(X509* cert) {
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(b, cert);
  char* data;
  long n = BIO_get_mem_data(b, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(b);
  return out;
}

std::string keyPem(EVP_PKEY* key) {
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(b, key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data;
  long n = BIO_get_mem_data(b, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(b);
  return out;
}

}  // namespace

struct TestCa::Impl {
  EVP_PKEY* key = nullptr;
  X509* cert = nullptr;
  ~Impl() {
    X509_free(cert);
    EVP_PKEY_free(key);
  }
};

TestCa::TestCa(const std::string& common_name) : impl_(std::make_unique<Impl>()) {
  impl_->key = newKey();
  impl_->cert = newCert(common_name, impl_->key, -86400, 10 * 86400);
  X509_set_issuer_name(impl_->cert, X509_get_subject_name(impl_->cert));
  addExt(impl_->cert, impl_->cert, NID_basic_constraints, "critical,CA:TRUE");
  addExt(impl_->cert, impl_->cert, NID_key_usage, "critical,keyCertSign,cRLSign");
  addExt(impl_->cert, impl_->cert, NID_subject_key_identifier, "hash");
  if (X509_sign(impl_->cert, impl_->key, EVP_sha256()) == 0) die("X509_sign");
  cert_pem_ = toPem(impl_->cert);
}

TestCa::~TestCa() = default;

PemPair TestCa::issue(const std::string& common_name, bool server, long not_before_s, long not_after_s,
                      const std::vector<std::string>& ip_sans, const std::vector<std::string>& dns_sans) const {
  EVP_PKEY* key = newKey();
  X509* cert = newCert(common_name, key, not_before_s, not_after_s);
  X509_set_issuer_name(cert, X509_get_subject_name(impl_->cert));
  addExt(cert, impl_->cert, NID_basic_constraints, "critical,CA:FALSE");
  addExt(cert, impl_->cert, NID_authority_key_identifier, "keyid");
  addExt(cert, impl_->cert, NID_ext_key_usage, server ? "serverAuth" : "clientAuth");
  if (server) {
    std::string san;
    for (const auto& ip : ip_sans) san += (san.empty() ? "" : ",") + std::string("IP:") + ip;
    for (const auto& dns : dns_sans) san += (san.empty() ? "" : ",") + std::string("DNS:") + dns;
    if (!san.empty()) addExt(cert, impl_->cert, NID_subject_alt_name, san);
  }
  if (X509_sign(cert, impl_->key, EVP_sha256()) == 0) die("X509_sign");
  PemPair out{toPem(cert), keyPem(key)};
  X509_free(cert);
  EVP_PKEY_free(key);
  return out;
}

void writeTestFile(const std::string& path, const std::string& content, int mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) die(("open " + path).c_str());
  if (::write(fd, content.data(), content.size()) != static_cast<ssize_t>(content.size())) die("write");
  ::fchmod(fd, static_cast<mode_t>(mode));
  ::close(fd);
}

std::string readTestFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace banyan::agent::testing
