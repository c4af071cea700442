#include "test_pki.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <vector>

namespace banyan::test {
namespace {

struct Issued {
  EVP_PKEY* key = nullptr;
  X509* cert = nullptr;
};

void check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("test PKI: ") + what);
}

EVP_PKEY* newKey(bool rsa) {
  EVP_PKEY* k = rsa ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");
  check(k != nullptr, "key generation");
  return k;
}

void addExt(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  check(ext != nullptr, "extension");
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

Issued issue(const std::string& cn, const std::string& san, const Issued* issuer, bool ca,
             bool rsa, long not_before_s, long not_after_s, long serial,
             EVP_PKEY* key = nullptr) {
  Issued out;
  out.key = key ? key : newKey(rsa);
  if (key) EVP_PKEY_up_ref(key);
  out.cert = X509_new();
  X509_set_version(out.cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(out.cert), serial);
  X509_gmtime_adj(X509_getm_notBefore(out.cert), not_before_s);
  X509_gmtime_adj(X509_getm_notAfter(out.cert), not_after_s);
  X509_set_pubkey(out.cert, out.key);
  X509_NAME* name = X509_get_subject_name(out.cert);
  X509_NAME_add_entry_by_txt(name, "C", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("US"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("Banyan Test"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509* issuer_cert = issuer ? issuer->cert : out.cert;
  X509_set_issuer_name(out.cert, X509_get_subject_name(issuer_cert));
  addExt(out.cert, issuer_cert, NID_subject_key_identifier, "hash");
  if (issuer) addExt(out.cert, issuer_cert, NID_authority_key_identifier, "keyid:always");
  if (ca) {
    addExt(out.cert, issuer_cert, NID_basic_constraints, "critical,CA:TRUE");
    addExt(out.cert, issuer_cert, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    addExt(out.cert, issuer_cert, NID_basic_constraints, "CA:FALSE");
    addExt(out.cert, issuer_cert, NID_ext_key_usage, "serverAuth,clientAuth");
    if (!san.empty()) addExt(out.cert, issuer_cert, NID_subject_alt_name, san.c_str());
  }
  check(X509_sign(out.cert, issuer ? issuer->key : out.key, EVP_sha256()) > 0, "sign");
  return out;
}

void writePem(const std::string& path, const std::vector<X509*>& certs, EVP_PKEY* key) {
  FILE* f = fopen(path.c_str(), "w");
  check(f != nullptr, "open file");
  for (X509* c : certs) PEM_write_X509(f, c);
  if (key) PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  fclose(f);
  chmod(path.c_str(), 0600);
}

void writeCrl(const std::string& path, const Issued& ca, const std::vector<long>& revoked) {
  X509_CRL* crl = X509_CRL_new();
  X509_CRL_set_version(crl, 1);
  X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca.cert));
  ASN1_TIME* t = ASN1_TIME_new();
  X509_gmtime_adj(t, -3600);
  X509_CRL_set1_lastUpdate(crl, t);
  X509_gmtime_adj(t, 7 * 86400);
  X509_CRL_set1_nextUpdate(crl, t);
  for (long serial : revoked) {
    X509_REVOKED* r = X509_REVOKED_new();
    ASN1_INTEGER* s = ASN1_INTEGER_new();
    ASN1_INTEGER_set(s, serial);
    X509_REVOKED_set_serialNumber(r, s);
    ASN1_INTEGER_free(s);
    X509_gmtime_adj(t, -60);
    X509_REVOKED_set_revocationDate(r, t);
    X509_CRL_add0_revoked(crl, r);
  }
  ASN1_TIME_free(t);
  X509_CRL_sort(crl);
  check(X509_CRL_sign(crl, ca.key, EVP_sha256()) > 0, "sign CRL");
  FILE* f = fopen(path.c_str(), "w");
  check(f != nullptr, "open CRL file");
  PEM_write_X509_CRL(f, crl);
  fclose(f);
  X509_CRL_free(crl);
}

X509* readCert(const std::string& file) {
  FILE* f = fopen(file.c_str(), "r");
  check(f != nullptr, "open certificate");
  X509* x = PEM_read_X509(f, nullptr, nullptr, nullptr);
  fclose(f);
  check(x != nullptr, "read certificate");
  return x;
}

std::string timeText(const ASN1_TIME* t) {
  std::string s(reinterpret_cast<const char*>(ASN1_STRING_get0_data(t)),
                static_cast<size_t>(ASN1_STRING_length(t)));
  if (ASN1_STRING_type(t) == V_ASN1_GENERALIZEDTIME) s.erase(0, 2);
  return s;
}

std::string g_dir;
void removeDir() {
  if (!g_dir.empty()) std::filesystem::remove_all(g_dir);
}

TestPki makePki() {
  TestPki p;
  std::string tmpl = (std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp") + std::string("/banyan-pki-XXXXXX");
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  check(mkdtemp(buf.data()) != nullptr, "mkdtemp");
  p.dir = buf.data();
  g_dir = p.dir;
  std::atexit(removeDir);
  auto f = [&](const char* name) { return p.dir + "/" + name; };
  const long day = 86400;

  Issued root = issue("Banyan Test Root CA", "", nullptr, true, false, -day, 3650 * day, 1);
  Issued inter = issue("Banyan Test Intermediate CA", "", &root, true, false, -day, 3650 * day, 2);
  writePem(p.root_ca = f("root-ca.pem"), {root.cert}, nullptr);

  Issued www = issue("www.example.test", "DNS:www.example.test,DNS:*.wild.example.test", &inter,
                     false, true, -day, 365 * day, 10);
  writePem(p.www_bundle = f("www.pem"), {www.cert, inter.cert}, www.key);
  Issued api = issue("api.example.test", "DNS:api.example.test", &inter, false, true, -day, 365 * day, 11);
  writePem(p.api_bundle = f("api.pem"), {api.cert, inter.cert}, api.key);
  Issued def = issue("default.example.test", "", &inter, false, true, -day, 365 * day, 12);
  writePem(p.default_bundle = f("default.pem"), {def.cert, inter.cert}, def.key);
  Issued expired = issue("expired.example.test", "DNS:expired.example.test", &inter, false, true,
                         -30 * day, -day, 13, www.key);
  writePem(p.expired_bundle = f("expired.pem"), {expired.cert, inter.cert}, expired.key);
  Issued future = issue("future.example.test", "DNS:future.example.test", &inter, false, true,
                        day, 30 * day, 14, www.key);
  writePem(p.future_bundle = f("future.pem"), {future.cert, inter.cert}, future.key);
  writePem(p.mismatch_bundle = f("mismatch.pem"), {www.cert, inter.cert}, api.key);
  writePem(p.nokey_bundle = f("nokey.pem"), {www.cert, inter.cert}, nullptr);
  {
    FILE* g = fopen((p.garbage_file = f("garbage.pem")).c_str(), "w");
    check(g != nullptr, "open garbage");
    fputs("this is not a certificate\n", g);
    fclose(g);
  }

  Issued cca = issue("Banyan Test Client CA", "", nullptr, true, false, -day, 3650 * day, 100);
  writePem(p.client_ca = f("client-ca.pem"), {cca.cert}, nullptr);
  Issued client = issue("client.example.test", "", &cca, false, false, -day, 365 * day, 101);
  writePem(p.client_cert = f("client.crt"), {client.cert}, nullptr);
  writePem(p.client_key = f("client.key"), {}, client.key);
  writePem(p.client_bundle = f("client-bundle.pem"), {client.cert}, client.key);
  Issued revoked = issue("revoked.example.test", "", &cca, false, false, -day, 365 * day, 102);
  writePem(p.revoked_cert = f("revoked.crt"), {revoked.cert}, nullptr);
  writePem(p.revoked_key = f("revoked.key"), {}, revoked.key);
  writeCrl(p.client_crl = f("client.crl"), cca, {102});
  Issued sca = issue("Stranger CA", "", nullptr, true, false, -day, 3650 * day, 200);
  writePem(p.stranger_ca = f("stranger-ca.pem"), {sca.cert}, nullptr);
  Issued stranger = issue("stranger.example.test", "", &sca, false, false, -day, 365 * day, 201);
  writePem(p.stranger_cert = f("stranger.crt"), {stranger.cert}, nullptr);
  writePem(p.stranger_key = f("stranger.key"), {}, stranger.key);
  Issued pclient = issue("banyan-proxy.example.test", "", &cca, false, false, -day, 365 * day, 103);
  writePem(p.proxy_client_bundle = f("proxy-client.pem"), {pclient.cert}, pclient.key);

  Issued mca = issue("Banyan Test Member CA", "", nullptr, true, false, -day, 3650 * day, 300);
  writePem(p.member_ca = f("member-ca.pem"), {mca.cert}, nullptr);
  Issued member = issue("member.example.test", "DNS:member.example.test", &mca, false, false, -day,
                        365 * day, 301);
  writePem(p.member_bundle = f("member.pem"), {member.cert}, member.key);
  Issued mrev = issue("member-revoked.example.test", "DNS:member-revoked.example.test", &mca, false,
                      false, -day, 365 * day, 302);
  writePem(p.member_revoked_bundle = f("member-revoked.pem"), {mrev.cert}, mrev.key);
  writeCrl(p.member_crl = f("member.crl"), mca, {302});
  writeCrl(p.empty_crl = f("member-empty.crl"), mca, {});
  for (Issued* i : {&root, &inter, &www, &api, &def, &expired, &future, &cca, &client, &revoked,
                    &sca, &stranger, &pclient, &mca, &member, &mrev}) {
    X509_free(i->cert);
    EVP_PKEY_free(i->key);
  }
  return p;
}

}  // namespace

const TestPki& testPki() {
  static std::once_flag once;
  static TestPki pki;
  std::call_once(once, [] { pki = makePki(); });
  return pki;
}

std::string certificateSha1Hex(const std::string& file) {
  X509* x = readCert(file);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  X509_digest(x, EVP_sha1(), md, &n);
  X509_free(x);
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned i = 0; i < n; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

std::string certificateNotBefore(const std::string& file) {
  X509* x = readCert(file);
  std::string s = timeText(X509_get0_notBefore(x));
  X509_free(x);
  return s;
}

std::string certificateNotAfter(const std::string& file) {
  X509* x = readCert(file);
  std::string s = timeText(X509_get0_notAfter(x));
  X509_free(x);
  return s;
}

}  // namespace banyan::test
