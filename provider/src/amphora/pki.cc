#include "amphora/pki.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <optional>
#include <thread>
#include <vector>

#include "banyan/common/logging.h"

namespace banyan::provider::amphora {

using common::ErrorCode;
using common::makeError;
using common::Result;

namespace {

// A certificate's notBefore lies this far in the past: an amphora whose clock is a bit
// behind the controller's must still accept a certificate issued a moment ago.
constexpr long kBackdateSeconds = 3600;
// controllerClientCert() replaces the client certificate once fewer days than this are left.
constexpr auto kClientRenewBefore = std::chrono::hours(24 * 30);
// Bounds the wait for another process generating the CA or renewing the client
// certificate (which takes milliseconds).
constexpr auto kLockTimeout = std::chrono::seconds(30);
constexpr int kMaxValidityDays = 36500;

struct PkeyFree { void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); } };
struct X509Free { void operator()(X509* p) const { X509_free(p); } };
struct BioFree { void operator()(BIO* p) const { BIO_free(p); } };
struct BnFree { void operator()(BIGNUM* p) const { BN_free(p); } };
struct ExtFree { void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); } };
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using BioPtr = std::unique_ptr<BIO, BioFree>;
using BnPtr = std::unique_ptr<BIGNUM, BnFree>;
using ExtPtr = std::unique_ptr<X509_EXTENSION, ExtFree>;

std::string opensslError() {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(code, buf, sizeof(buf));
  return buf;
}

common::Error sslError(const std::string& what) {
  return makeError(ErrorCode::kInternal, what + ": " + opensslError());
}

common::Error sysError(const std::string& what, const std::string& path, int err = errno) {
  return makeError(ErrorCode::kUnavailable, what + ": " + std::strerror(err), path);
}

// ---- files ---------------------------------------------------------------------

bool exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

Result<void> makeDirs(const std::string& dir) {
  // mkdir -p; only directories this creates get 0700, an existing one is left as is.
  for (size_t at = 1; at <= dir.size(); ++at) {
    if (at != dir.size() && dir[at] != '/') continue;
    std::string prefix = dir.substr(0, at);
    if (::mkdir(prefix.c_str(), 0700) != 0 && errno != EEXIST) return sysError("cannot create directory", prefix);
  }
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) return sysError("cannot stat", dir);
  if (!S_ISDIR(st.st_mode)) return makeError(ErrorCode::kInvalidArgument, "not a directory", dir);
  return {};
}

Result<std::string> readFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return makeError(ErrorCode::kNotFound, "no such file", path);
    return sysError("cannot open", path);
  }
  std::string out;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return sysError("cannot read", path, err);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > (1u << 20)) {
      ::close(fd);
      return makeError(ErrorCode::kInvalidArgument, "larger than 1 MiB: not a PEM certificate or key", path);
    }
  }
  ::close(fd);
  return out;
}

Result<void> fsyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return sysError("cannot open directory", dir);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return sysError("cannot fsync directory", dir, err);
  return {};
}

// Writes CONTENT to a new 0600 file in DIR (fsynced) and returns its path.
Result<std::string> writeTemp(const std::string& dir, const std::string& content) {
  std::string path = dir + "/.tmp-XXXXXX";
  std::vector<char> name(path.begin(), path.end());
  name.push_back('\0');
  int fd = ::mkstemp(name.data());  // mode 0600
  if (fd < 0) return sysError("cannot create a file", dir);
  path = name.data();
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      ::unlink(path.c_str());
      return sysError("cannot write", path, err);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    int err = errno;
    ::close(fd);
    ::unlink(path.c_str());
    return sysError("cannot fsync", path, err);
  }
  ::close(fd);
  return path;
}

// Publishes TMP as TARGET without ever replacing an existing TARGET (link() fails with
// EEXIST), then drops TMP. Returns false when TARGET already existed.
Result<bool> linkExclusive(const std::string& tmp, const std::string& target) {
  int rc = ::link(tmp.c_str(), target.c_str());
  int err = errno;
  ::unlink(tmp.c_str());
  if (rc == 0) return true;
  if (err == EEXIST) return false;
  return sysError("cannot create", target, err);
}

Result<void> replaceFile(const std::string& dir, const std::string& target, const std::string& content) {
  auto tmp = writeTemp(dir, content);
  if (!tmp) return tmp.error();
  if (::rename(tmp->c_str(), target.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp->c_str());
    return sysError("cannot replace", target, err);
  }
  return {};
}

// An exclusive flock() on <dir>/.lock for one scope. flock() locks belong to the open
// file description, so two threads of one process exclude each other too.
class DirLock {
 public:
  ~DirLock() {
    if (fd_ >= 0) ::close(fd_);  // releases the lock
  }
  Result<void> acquire(const std::string& dir) {
    std::string path = dir + "/.lock";
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0) return sysError("cannot open the lock file", path);
    auto deadline = std::chrono::steady_clock::now() + kLockTimeout;
    while (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      if (errno != EWOULDBLOCK && errno != EINTR) return sysError("cannot lock", path);
      if (std::chrono::steady_clock::now() > deadline) {
        return makeError(ErrorCode::kUnavailable, "another process holds the PKI lock too long", path);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return {};
  }

 private:
  int fd_ = -1;
};

// ---- OpenSSL -------------------------------------------------------------------

Result<PkeyPtr> generateKey() {
  PkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return sslError("cannot generate an EC P-256 key");
  return key;
}

Result<std::string> keyPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return sslError("cannot encode a private key");
  }
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

Result<std::string> certPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) return sslError("cannot encode a certificate");
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

Result<X509Ptr> parseCert(std::string_view pem, const std::string& where) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  X509Ptr cert(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!cert) return makeError(ErrorCode::kInvalidArgument, "no PEM certificate: " + opensslError(), where);
  return cert;
}

Result<PkeyPtr> parseKey(std::string_view pem, const std::string& where) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  // A null password callback with an empty password: an encrypted key fails instead of
  // prompting on the terminal.
  PkeyPtr key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, const_cast<char*>("")) : nullptr);
  if (!key) return makeError(ErrorCode::kInvalidArgument, "no unencrypted PEM private key: " + opensslError(), where);
  return key;
}

std::chrono::system_clock::time_point toTimePoint(const ASN1_TIME* t) {
  struct tm tm {};
  ASN1_TIME_to_tm(t, &tm);
  return std::chrono::system_clock::from_time_t(::timegm(&tm));
}

Result<void> randomSerial(X509* cert) {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) return sslError("RAND_bytes");
  bytes[0] &= 0x7f;  // DER INTEGER: keep it positive in 16 bytes (RFC 5280 4.1.2.2: at most 20)
  bytes[0] |= 0x40;  // and never shorter, so every serial has the same 128-bit width
  BnPtr bn(BN_bin2bn(bytes, sizeof(bytes), nullptr));
  if (!bn || BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert)) == nullptr) return sslError("serial number");
  return {};
}

Result<void> addExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  ExtPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) {
    return sslError(std::string("cannot add the extension ") + OBJ_nid2sn(nid) + "=" + value);
  }
  return {};
}

struct CertSpec {
  std::string common_name;
  int validity_days = 0;
  std::vector<std::pair<int, std::string>> extensions;  // after subjectKeyIdentifier
};

// Signs a certificate for KEY. ISSUER/ISSUER_KEY null: self-signed with KEY. notAfter
// never exceeds the issuer's: a certificate outliving its CA would fail verification
// anyway, and this way the not_after we report is the real limit.
Result<X509Ptr> makeCert(const CertSpec& spec, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key) {
  X509Ptr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), X509_VERSION_3) != 1) return sslError("X509_new");
  if (auto r = randomSerial(cert.get()); !r) return r.error();
  X509_NAME* name = X509_get_subject_name(cert.get());
  if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(spec.common_name.c_str()), -1, -1, 0) != 1) {
    return sslError("cannot set the subject CN");
  }
  if (X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : name) != 1) return sslError("issuer");
  if (!X509_gmtime_adj(X509_getm_notBefore(cert.get()), -kBackdateSeconds) ||
      !X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(spec.validity_days) * 86400)) {
    return sslError("cannot set the validity");
  }
  if (issuer && ASN1_TIME_compare(X509_get0_notAfter(cert.get()), X509_get0_notAfter(issuer)) > 0) {
    if (X509_set1_notAfter(cert.get(), X509_get0_notAfter(issuer)) != 1) return sslError("notAfter");
  }
  if (X509_set_pubkey(cert.get(), key) != 1) return sslError("X509_set_pubkey");
  X509* ext_issuer = issuer ? issuer : cert.get();
  if (auto r = addExtension(cert.get(), ext_issuer, NID_subject_key_identifier, "hash"); !r) return r.error();
  if (auto r = addExtension(cert.get(), ext_issuer, NID_authority_key_identifier, "keyid:always"); !r) {
    return r.error();
  }
  for (const auto& [nid, value] : spec.extensions) {
    if (auto r = addExtension(cert.get(), ext_issuer, nid, value); !r) return r.error();
  }
  if (X509_sign(cert.get(), issuer_key ? issuer_key : key, EVP_sha256()) <= 0) return sslError("X509_sign");
  return cert;
}

bool validName(std::string_view id) {
  // Goes into the CN (at most 64 characters, RFC 5280 ub-common-name) and a DNS SAN.
  if (id.empty() || id.size() > 64 || id.front() == '.' || id.front() == '-') return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
              c == '_';
    if (!ok) return false;
  }
  return true;
}

Result<void> checkValidity(int days, const char* option) {
  if (days < 1 || days > kMaxValidityDays) {
    return makeError(ErrorCode::kInvalidArgument, std::string(option) + " must be 1.." + std::to_string(kMaxValidityDays),
                     option);
  }
  return {};
}

}  // namespace

struct Pki::Impl {
  PkiOptions options;
  X509Ptr ca_cert;
  PkeyPtr ca_key;

  Result<CertBundle> issue(const CertSpec& spec) {
    auto key = generateKey();
    if (!key) return key.error();
    auto cert = makeCert(spec, key->get(), ca_cert.get(), ca_key.get());
    if (!cert) return cert.error();
    auto cpem = certPem(cert->get());
    if (!cpem) return cpem.error();
    auto kpem = keyPem(key->get());
    if (!kpem) return kpem.error();
    return CertBundle{std::move(*cpem), std::move(*kpem), toTimePoint(X509_get0_notAfter(cert->get()))};
  }

  // An existing client certificate worth keeping: it parses, its key matches, our CA
  // signed it and it has more than kClientRenewBefore left.
  std::optional<CertBundle> reusableClientCert(const std::string& cert_file, const std::string& key_file) {
    auto cert_text = readFile(cert_file);
    auto key_text = readFile(key_file);
    if (!cert_text || !key_text) return std::nullopt;
    auto cert = parseCert(*cert_text, cert_file);
    auto key = parseKey(*key_text, key_file);
    if (!cert || !key) return std::nullopt;
    if (X509_check_private_key(cert->get(), key->get()) != 1 || X509_verify(cert->get(), ca_key.get()) != 1) {
      ERR_clear_error();
      return std::nullopt;
    }
    auto not_after = toTimePoint(X509_get0_notAfter(cert->get()));
    if (not_after - std::chrono::system_clock::now() <= kClientRenewBefore) return std::nullopt;
    return CertBundle{std::move(*cert_text), std::move(*key_text), not_after};
  }
};

namespace {

Result<std::unique_ptr<Pki::Impl>> loadCa(const PkiOptions& options, const std::string& cert_file,
                                          const std::string& key_file) {
  auto cert_text = readFile(cert_file);
  if (!cert_text) {
    auto e = cert_text.error();
    if (e.code == ErrorCode::kNotFound) e.code = ErrorCode::kInvalidArgument;
    e.message = "CA certificate: " + e.message;
    return e;
  }
  auto key_text = readFile(key_file);
  if (!key_text) {
    auto e = key_text.error();
    if (e.code == ErrorCode::kNotFound) e.code = ErrorCode::kInvalidArgument;
    e.message = "CA key: " + e.message;
    return e;
  }
  auto impl = std::make_unique<Pki::Impl>();
  impl->options = options;
  auto cert = parseCert(*cert_text, cert_file);
  if (!cert) return cert.error();
  auto key = parseKey(*key_text, key_file);
  if (!key) return key.error();
  if (X509_check_private_key(cert->get(), key->get()) != 1) {
    ERR_clear_error();
    return makeError(ErrorCode::kInvalidArgument, "the CA key does not belong to the CA certificate " + cert_file,
                     key_file);
  }
  if (X509_check_ca(cert->get()) < 1) {
    return makeError(ErrorCode::kInvalidArgument, "not a CA certificate (basicConstraints CA:TRUE missing)", cert_file);
  }
  if (X509_cmp_current_time(X509_get0_notAfter(cert->get())) <= 0) {
    return makeError(ErrorCode::kInvalidArgument, "the CA certificate has expired", cert_file);
  }
  auto ca_end = toTimePoint(X509_get0_notAfter(cert->get()));
  if (ca_end < std::chrono::system_clock::now() + std::chrono::hours(24) * options.server_cert_validity_days) {
    LB_WARN("The amphora CA expires before new certificates would: they are cut to its end. file=%s",
            cert_file.c_str());
  }
  struct stat st;
  if (::stat(key_file.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
    LB_WARN("The amphora CA key is readable by other users. file=%s mode=%03o", key_file.c_str(),
            static_cast<unsigned>(st.st_mode & 0777));
  }
  impl->ca_cert = std::move(*cert);
  impl->ca_key = std::move(*key);
  return impl;
}

// Under the directory lock: creates <dir>/ca.key and <dir>/ca.pem unless another
// process did. The key is published first and the certificate last, so "ca.pem exists"
// means the pair is complete; a lone ca.key is what a crash between the two links leaves,
// and since no certificate was ever signed with it, it is safe to replace.
Result<void> generateCa(const PkiOptions& options, const std::string& cert_file, const std::string& key_file) {
  DirLock lock;
  if (auto r = lock.acquire(options.dir); !r) return r.error();
  if (exists(cert_file)) return {};  // another process won
  if (exists(key_file)) {
    LB_WARN("Replacing a CA key without certificate left by an interrupted start. file=%s", key_file.c_str());
    if (::unlink(key_file.c_str()) != 0) return sysError("cannot remove", key_file);
  }
  auto key = generateKey();
  if (!key) return key.error();
  unsigned char tag[4];
  if (RAND_bytes(tag, sizeof(tag)) != 1) return sslError("RAND_bytes");
  char hex[9];
  std::snprintf(hex, sizeof(hex), "%02x%02x%02x%02x", tag[0], tag[1], tag[2], tag[3]);
  CertSpec spec;
  // A per-deployment suffix: two deployments' CAs are told apart in logs and openssl output.
  spec.common_name = std::string("banyan-amphora-ca-") + hex;
  spec.validity_days = options.ca_validity_days;
  spec.extensions = {{NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
                     {NID_key_usage, "critical,keyCertSign,cRLSign"}};
  auto cert = makeCert(spec, key->get(), nullptr, nullptr);
  if (!cert) return cert.error();
  auto kpem = keyPem(key->get());
  if (!kpem) return kpem.error();
  auto cpem = certPem(cert->get());
  if (!cpem) return cpem.error();
  auto key_tmp = writeTemp(options.dir, *kpem);
  if (!key_tmp) return key_tmp.error();
  auto cert_tmp = writeTemp(options.dir, *cpem);
  if (!cert_tmp) {
    ::unlink(key_tmp->c_str());
    return cert_tmp.error();
  }
  auto key_linked = linkExclusive(*key_tmp, key_file);
  if (!key_linked || !*key_linked) {
    ::unlink(cert_tmp->c_str());
    if (!key_linked) return key_linked.error();
    // Only a process ignoring the lock gets here; use whatever it publishes.
    return {};
  }
  auto cert_linked = linkExclusive(*cert_tmp, cert_file);
  if (!cert_linked) return cert_linked.error();
  if (auto r = fsyncDir(options.dir); !r) return r.error();
  LB_INFO("Amphora CA generated. cn=%s file=%s not_after_days=%d", spec.common_name.c_str(), cert_file.c_str(),
          options.ca_validity_days);
  return {};
}

}  // namespace

Pki::Pki(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Pki::~Pki() = default;

Result<std::unique_ptr<Pki>> Pki::loadOrCreate(const PkiOptions& in) {
  PkiOptions options = in;
  if (options.dir.empty()) return makeError(ErrorCode::kInvalidArgument, "the PKI directory is not set", "dir");
  while (options.dir.size() > 1 && options.dir.back() == '/') options.dir.pop_back();
  if (options.ca_cert_file.empty() != options.ca_key_file.empty()) {
    return makeError(ErrorCode::kInvalidArgument, "configure both the CA certificate and its key, or neither",
                     options.ca_cert_file.empty() ? "ca_cert_file" : "ca_key_file");
  }
  if (auto r = checkValidity(options.ca_validity_days, "ca_validity_days"); !r) return r.error();
  if (auto r = checkValidity(options.server_cert_validity_days, "server_cert_validity_days"); !r) return r.error();
  if (auto r = checkValidity(options.client_cert_validity_days, "client_cert_validity_days"); !r) return r.error();
  if (!validName(options.client_cert_name)) {
    return makeError(ErrorCode::kInvalidArgument, "client_cert_name must be 1-64 of [A-Za-z0-9._-]",
                     "client_cert_name");
  }
  if (auto r = makeDirs(options.dir); !r) return r.error();

  bool configured = !options.ca_cert_file.empty();
  std::string cert_file = configured ? options.ca_cert_file : options.dir + "/ca.pem";
  std::string key_file = configured ? options.ca_key_file : options.dir + "/ca.key";
  if (!configured && !exists(cert_file)) {
    if (auto r = generateCa(options, cert_file, key_file); !r) return r.error();
  }
  // The winner and every loser load the CA from the same files.
  auto impl = loadCa(options, cert_file, key_file);
  if (!impl) return impl.error();
  auto pem = certPem((*impl)->ca_cert.get());
  if (!pem) return pem.error();
  std::unique_ptr<Pki> pki(new Pki(std::move(*impl)));
  pki->dir_ = options.dir;
  pki->ca_cert_file_ = cert_file;
  pki->ca_cert_pem_ = std::move(*pem);
  return pki;
}

Result<CertBundle> Pki::issueServerCert(std::string_view amphora_id, std::string_view address) {
  if (!validName(amphora_id)) {
    return makeError(ErrorCode::kInvalidArgument, "an amphora id must be 1-64 of [A-Za-z0-9._-]",
                     std::string(amphora_id));
  }
  std::string addr(address);
  unsigned char buf[16];
  if (::inet_pton(AF_INET, addr.c_str(), buf) != 1 && ::inet_pton(AF_INET6, addr.c_str(), buf) != 1) {
    return makeError(ErrorCode::kInvalidArgument, "not an IPv4 or IPv6 address", addr);
  }
  CertSpec spec;
  spec.common_name = std::string(amphora_id);
  spec.validity_days = impl_->options.server_cert_validity_days;
  spec.extensions = {{NID_basic_constraints, "critical,CA:FALSE"},
                     {NID_key_usage, "critical,digitalSignature"},
                     {NID_ext_key_usage, "serverAuth"},
                     {NID_subject_alt_name, "IP:" + addr + ",DNS:" + spec.common_name}};
  auto bundle = impl_->issue(spec);
  if (bundle) LB_INFO("Amphora server certificate issued. amp=%s address=%s", spec.common_name.c_str(), addr.c_str());
  return bundle;
}

Result<CertBundle> Pki::controllerClientCert() {
  std::lock_guard<std::mutex> guard(client_mu_);
  std::string cert_file = clientCertFile();
  std::string key_file = clientKeyFile();
  if (auto kept = impl_->reusableClientCert(cert_file, key_file)) return std::move(*kept);
  // Another controller process on this dir may be renewing at the same moment.
  DirLock lock;
  if (auto r = lock.acquire(dir_); !r) return r.error();
  if (auto kept = impl_->reusableClientCert(cert_file, key_file)) return std::move(*kept);
  CertSpec spec;
  spec.common_name = impl_->options.client_cert_name;
  spec.validity_days = impl_->options.client_cert_validity_days;
  spec.extensions = {{NID_basic_constraints, "critical,CA:FALSE"},
                     {NID_key_usage, "critical,digitalSignature"},
                     {NID_ext_key_usage, "clientAuth"}};
  auto bundle = impl_->issue(spec);
  if (!bundle) return bundle.error();
  // Key first: a reader that loads the pair between the two renames gets the new key
  // with the old certificate, fails its handshake (kUnavailable) and is retried.
  if (auto r = replaceFile(dir_, key_file, bundle->key_pem); !r) return r.error();
  if (auto r = replaceFile(dir_, cert_file, bundle->cert_pem); !r) return r.error();
  if (auto r = fsyncDir(dir_); !r) return r.error();
  LB_INFO("Controller client certificate issued. cn=%s file=%s", spec.common_name.c_str(), cert_file.c_str());
  return bundle;
}

Result<std::chrono::system_clock::time_point> certNotAfter(std::string_view pem) {
  auto cert = parseCert(pem, "");
  if (!cert) return cert.error();
  return toTimePoint(X509_get0_notAfter(cert->get()));
}

}  // namespace banyan::provider::amphora
