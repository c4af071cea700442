#include "certs/certs.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <vector>

#include "storage/storage.h"

namespace banyan::agent::certs {

using common::ErrorCode;
using common::makeError;
using common::Result;

namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct OpenSslFree {
  void operator()(void* p) const { OPENSSL_free(p); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

common::Error bad(std::string message) { return makeError(ErrorCode::kInvalidArgument, std::move(message)); }

std::string bioText(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return n > 0 ? std::string(data, static_cast<size_t>(n)) : std::string();
}

}  // namespace

bool isValidName(std::string_view name) {
  if (name.empty() || name.size() > 128 || name == "." || name == "..") return false;
  for (char c : name) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
              c == '-';
    if (!ok) return false;
  }
  return true;
}

namespace {

// Both parsers: `tls_only` is parseBundle's stricter contract (a key is required and
// CRLs are not part of a TLS bundle).
Result<Bundle> parsePem(std::string_view pem, bool tls_only) {
  ERR_clear_error();
  BioPtr in(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!in) return makeError(ErrorCode::kInternal, "out of memory");
  std::vector<X509Ptr> certs;
  PkeyPtr key;
  int keys = 0;
  int crls = 0;
  for (int block = 0;; ++block) {
    char* name_raw = nullptr;
    char* header_raw = nullptr;
    unsigned char* data_raw = nullptr;
    long len = 0;
    if (PEM_read_bio(in.get(), &name_raw, &header_raw, &data_raw, &len) != 1) {
      unsigned long err = ERR_peek_last_error();
      ERR_clear_error();
      // The normal end of the input: no further "-----BEGIN" line.
      if (ERR_GET_REASON(err) == PEM_R_NO_START_LINE) break;
      return bad("PEM block " + std::to_string(block + 1) + " does not parse");
    }
    std::unique_ptr<char, OpenSslFree> name(name_raw);
    std::unique_ptr<char, OpenSslFree> header(header_raw);
    std::unique_ptr<unsigned char, OpenSslFree> data(data_raw);
    std::string_view kind(name.get());
    const unsigned char* p = data.get();
    if (kind == "CERTIFICATE") {
      X509Ptr cert(d2i_X509(nullptr, &p, len));
      if (!cert || p != data.get() + len) {
        return bad("certificate " + std::to_string(certs.size() + 1) + " does not parse");
      }
      certs.push_back(std::move(cert));
    } else if (kind == "X509 CRL" && !tls_only) {
      std::unique_ptr<X509_CRL, decltype(&X509_CRL_free)> crl(d2i_X509_CRL(nullptr, &p, len), &X509_CRL_free);
      if (!crl || p != data.get() + len) {
        return bad("certificate revocation list " + std::to_string(crls + 1) + " does not parse");
      }
      ++crls;
    } else if (kind == "ENCRYPTED PRIVATE KEY" || (header && header.get()[0] != '\0')) {
      return bad("encrypted private keys are not supported");
    } else if (kind == "PRIVATE KEY" || kind == "RSA PRIVATE KEY" || kind == "EC PRIVATE KEY") {
      ++keys;
      PkeyPtr k(d2i_AutoPrivateKey(nullptr, &p, len));
      if (!k) return bad("the private key does not parse");
      key = std::move(k);
    } else {
      return bad("unexpected PEM block \"" + std::string(kind) + "\"");
    }
  }
  ERR_clear_error();
  if (!tls_only && keys == 0) {
    if (certs.empty() && crls == 0) return bad("the file has no certificate, private key or revocation list");
  } else {
    if (certs.empty()) return bad("the bundle has no certificate");
    if (keys == 0) return bad("the bundle has no private key");
    if (crls > 0) return bad("a bundle with a private key cannot hold revocation lists");
  }
  if (keys > 1) return bad("the bundle has more than one private key");
  if (key && X509_check_private_key(certs.front().get(), key.get()) != 1) {
    ERR_clear_error();
    return bad("the private key does not match the first certificate");
  }
  Bundle out;
  out.certificate_count = static_cast<int>(certs.size());
  out.crl_count = crls;
  out.has_key = key != nullptr;
  if (!certs.empty()) {
    std::unique_ptr<char, OpenSslFree> subject(X509_NAME_oneline(X509_get_subject_name(certs.front().get()), nullptr, 0));
    if (subject) out.subject = subject.get();
    BioPtr b(BIO_new(BIO_s_mem()));
    ASN1_TIME_print(b.get(), X509_get0_notAfter(certs.front().get()));
    out.not_after = bioText(b.get());
  }
  BioPtr chain(BIO_new(BIO_s_mem()));
  for (auto& c : certs) PEM_write_bio_X509(chain.get(), c.get());
  out.cert_chain_pem = bioText(chain.get());
  if (key) {
    BioPtr key_out(BIO_new(BIO_s_mem()));
    PEM_write_bio_PrivateKey(key_out.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr);
    out.key_pem = bioText(key_out.get());
  }
  return out;
}

}  // namespace

Result<Bundle> parseBundle(std::string_view pem) { return parsePem(pem, true); }

Result<Bundle> parseCertificateFile(std::string_view pem) { return parsePem(pem, false); }

Result<Bundle> CertStore::put(std::string_view name, std::string_view pem) {
  if (!isValidName(name)) return makeError(ErrorCode::kInvalidArgument, "invalid certificate name", std::string(name));
  auto bundle = parseCertificateFile(pem);
  if (!bundle) return bundle.error();
  auto dir = storage::makeDirs(dir_, 0700);
  if (!dir) return dir.error();
  auto w = storage::writeFileAtomic(pathOf(name), pem, 0600);
  if (!w) return w.error();
  return bundle;
}

Result<std::string> CertStore::get(std::string_view name) const {
  if (!isValidName(name)) return makeError(ErrorCode::kInvalidArgument, "invalid certificate name", std::string(name));
  return storage::readFile(pathOf(name));
}

Result<std::vector<std::string>> CertStore::list() const {
  std::vector<std::string> out;
  std::error_code ec;
  std::filesystem::directory_iterator it(dir_, ec);
  if (ec == std::errc::no_such_file_or_directory) return out;
  if (ec) return makeError(ErrorCode::kInternal, "cannot list: " + ec.message(), dir_);
  for (const auto& entry : it) {
    std::string file = entry.path().filename().string();
    if (file.size() <= 4 || file.compare(file.size() - 4, 4, ".pem") != 0) continue;
    std::string name = file.substr(0, file.size() - 4);
    if (isValidName(name) && entry.is_regular_file(ec)) out.push_back(std::move(name));
  }
  std::sort(out.begin(), out.end());
  return out;
}

Result<void> CertStore::remove(std::string_view name) {
  if (!isValidName(name)) return makeError(ErrorCode::kInvalidArgument, "invalid certificate name", std::string(name));
  auto r = storage::removeFile(pathOf(name));
  if (!r && r.error().code == ErrorCode::kNotFound) return {};  // directory never created
  return r;
}

}  // namespace banyan::agent::certs
