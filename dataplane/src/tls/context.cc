#include "tls/context.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "banyan/common/logging.h"

namespace banyan::dp::tls {

using common::ErrorCode;
using common::makeError;
using common::Result;

namespace {

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct CtxFree {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using BioPtr = std::unique_ptr<BIO, BioFree>;
using CtxPtr = std::unique_ptr<SSL_CTX, CtxFree>;

common::Error fail(const std::string& context, std::string message) {
  ERR_clear_error();
  return makeError(ErrorCode::kInvalidArgument, std::move(message), context);
}

// The OpenSSL reason of the last error, for messages.
std::string opensslReason() {
  unsigned long e = ERR_peek_last_error();
  if (e == 0) return "unknown error";
  const char* r = ERR_reason_error_string(e);
  return r ? r : "unknown error";
}

Result<std::string> readPem(const std::string& file, const std::string& context) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return fail(context, "cannot read " + file + ": " + strerror(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  if (text.size() > (16u << 20)) return fail(context, file + " is larger than 16 MiB");
  return text;
}

BioPtr memBio(const std::string& text) {
  return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

// A password callback that refuses: encrypted keys are not supported (the
// agent writes keys decrypted, 0600).
int noPassword(char*, int, int, void*) { return 0; }

struct Bundle {
  X509Ptr cert;
  std::vector<X509Ptr> chain;
  PkeyPtr key;
};

std::string asn1Time(const ASN1_TIME* t) {
  BioPtr b(BIO_new(BIO_s_mem()));
  if (!b || ASN1_TIME_print(b.get(), t) != 1) return "?";
  char* data = nullptr;
  long n = BIO_get_mem_data(b.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

Result<Bundle> loadBundle(const std::string& file, const std::string& context) {
  auto text = readPem(file, context);
  if (!text) return text.error();
  Bundle b;
  {
    BioPtr bio = memBio(*text);
    while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, noPassword, nullptr)) {
      if (!b.cert)
        b.cert.reset(x);
      else
        b.chain.emplace_back(x);
    }
    ERR_clear_error();  // the loop ends on "no start line"
  }
  if (!b.cert) return fail(context, "no PEM certificate in " + file);
  {
    BioPtr bio = memBio(*text);
    b.key.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, noPassword, nullptr));
  }
  if (!b.key) {
    return fail(context, "no usable private key in " + file + " (missing, malformed or encrypted: " +
                             opensslReason() + ")");
  }
  if (X509_check_private_key(b.cert.get(), b.key.get()) != 1)
    return fail(context, "the certificate in " + file + " does not match its private key");
  if (X509_cmp_current_time(X509_get0_notAfter(b.cert.get())) < 0) {
    return fail(context, "the certificate in " + file + " expired on " +
                             asn1Time(X509_get0_notAfter(b.cert.get())));
  }
  if (X509_cmp_current_time(X509_get0_notBefore(b.cert.get())) > 0) {
    return fail(context, "the certificate in " + file + " is not valid before " +
                             asn1Time(X509_get0_notBefore(b.cert.get())));
  }
  return b;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The DNS names a certificate answers for: its SAN dNSNames, or its subject CN
// when it has none (RFC 6125 section 6.4.4; what haproxy's crt-list does).
std::vector<std::string> certificateNames(X509* cert) {
  std::vector<std::string> names;
  auto* sans = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (sans) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* g = sk_GENERAL_NAME_value(sans, i);
      if (g->type != GEN_DNS) continue;
      const ASN1_STRING* s = g->d.dNSName;
      names.push_back(lower(std::string_view(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                             static_cast<size_t>(ASN1_STRING_length(s)))));
    }
    GENERAL_NAMES_free(sans);
  }
  if (names.empty()) {
    X509_NAME* subject = X509_get_subject_name(cert);
    int idx = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    if (idx >= 0) {
      const ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, idx));
      names.push_back(lower(std::string_view(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                             static_cast<size_t>(ASN1_STRING_length(s)))));
    }
  }
  return names;
}

Result<void> useBundle(SSL_CTX* ctx, Bundle& b, const std::string& file, const std::string& context) {
  if (SSL_CTX_use_certificate(ctx, b.cert.get()) != 1 ||
      SSL_CTX_use_PrivateKey(ctx, b.key.get()) != 1)
    return fail(context, "cannot use the certificate in " + file + ": " + opensslReason());
  for (auto& c : b.chain) {
    if (SSL_CTX_add1_chain_cert(ctx, c.get()) != 1)
      return fail(context, "cannot use the chain in " + file + ": " + opensslReason());
  }
  return {};
}

// Protocol versions: every version not listed is disabled (haproxy's no-tlsv1x
// as Octavia renders them).
Result<void> setVersions(SSL_CTX* ctx, uint32_t bits, const std::string& context) {
  struct V {
    uint32_t bit;
    int version;
    uint64_t no_flag;
  };
  static constexpr V kVersions[] = {
      {config::kSslV3, SSL3_VERSION, SSL_OP_NO_SSLv3},
      {config::kTlsV1, TLS1_VERSION, SSL_OP_NO_TLSv1},
      {config::kTlsV11, TLS1_1_VERSION, SSL_OP_NO_TLSv1_1},
      {config::kTlsV12, TLS1_2_VERSION, SSL_OP_NO_TLSv1_2},
      {config::kTlsV13, TLS1_3_VERSION, SSL_OP_NO_TLSv1_3},
  };
  int lo = 0, hi = 0;
  for (const V& v : kVersions) {
    if (bits & v.bit) {
      if (!lo) lo = v.version;
      hi = v.version;
    } else {
      SSL_CTX_set_options(ctx, v.no_flag);
    }
  }
  if (bits == config::kSslV3)
    return fail(context, "SSLv3 is not available in this OpenSSL build; list a TLS version too");
  if (lo == SSL3_VERSION) lo = TLS1_VERSION;  // SSLv3 was removed from OpenSSL 3
  if (SSL_CTX_set_min_proto_version(ctx, lo) != 1 || SSL_CTX_set_max_proto_version(ctx, hi) != 1)
    return fail(context, "cannot set the TLS versions: " + opensslReason());
  return {};
}

// Octavia's tls_ciphers mixes TLS 1.3 suites (TLS_*) with the TLS <= 1.2 list;
// OpenSSL configures them separately. A part that is absent keeps OpenSSL's
// default for those versions.
Result<void> setCiphers(SSL_CTX* ctx, const std::string& ciphers, const std::string& context) {
  std::string legacy, suites;
  size_t i = 0;
  while (i <= ciphers.size()) {
    size_t j = ciphers.find(':', i);
    if (j == std::string::npos) j = ciphers.size();
    std::string token = ciphers.substr(i, j - i);
    if (!token.empty()) {
      std::string& dest = token.rfind("TLS_", 0) == 0 ? suites : legacy;
      if (!dest.empty()) dest += ':';
      dest += token;
    }
    i = j + 1;
  }
  if (!legacy.empty() && SSL_CTX_set_cipher_list(ctx, legacy.c_str()) != 1)
    return fail(context, "no cipher of \"" + legacy + "\" is known to OpenSSL");
  if (!suites.empty() && SSL_CTX_set_ciphersuites(ctx, suites.c_str()) != 1)
    return fail(context, "\"" + suites + "\" is not a valid list of TLS 1.3 cipher suites");
  return {};
}

std::string alpnWire(const std::vector<std::string>& protocols) {
  std::string wire;
  for (const auto& p : protocols) {
    wire.push_back(static_cast<char>(p.size()));
    wire += p;
  }
  return wire;
}

// Loads CA certificates (and CRLs) into the context's verification store.
Result<void> loadVerifyStore(SSL_CTX* ctx, const std::string& ca_file, const std::string& ca_context,
                             const std::string& crl_file, const std::string& crl_context,
                             bool client_ca_list) {
  auto text = readPem(ca_file, ca_context);
  if (!text) return text.error();
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  STACK_OF(X509_NAME)* names = client_ca_list ? sk_X509_NAME_new_null() : nullptr;
  size_t count = 0;
  {
    BioPtr bio = memBio(*text);
    while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, noPassword, nullptr)) {
      X509_STORE_add_cert(store, x);
      if (names) sk_X509_NAME_push(names, X509_NAME_dup(X509_get_subject_name(x)));
      X509_free(x);
      ++count;
    }
    ERR_clear_error();
  }
  if (count == 0) {
    if (names) sk_X509_NAME_pop_free(names, X509_NAME_free);
    return fail(ca_context, "no PEM certificate in " + ca_file);
  }
  // The CA names go into CertificateRequest so clients pick a matching certificate.
  if (names) SSL_CTX_set_client_CA_list(ctx, names);
  if (!crl_file.empty()) {
    auto crl_text = readPem(crl_file, crl_context);
    if (!crl_text) return crl_text.error();
    BioPtr bio = memBio(*crl_text);
    size_t crls = 0;
    while (X509_CRL* crl = PEM_read_bio_X509_CRL(bio.get(), nullptr, noPassword, nullptr)) {
      X509_STORE_add_crl(store, crl);
      X509_CRL_free(crl);
      ++crls;
    }
    ERR_clear_error();
    if (crls == 0) return fail(crl_context, "no PEM certificate revocation list in " + crl_file);
    // The leaf is checked against the CRL of its issuer.
    X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
  }
  return {};
}

int alpnSelect(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
               unsigned int inlen, void* arg) {
  const auto* wire = static_cast<const std::string*>(arg);
  unsigned char* selected = nullptr;
  // Server preference: the listener's order wins. No overlap: continue without
  // ALPN (haproxy's behaviour) rather than failing the handshake.
  if (SSL_select_next_proto(&selected, outlen, reinterpret_cast<const unsigned char*>(wire->data()),
                            static_cast<unsigned>(wire->size()), in,
                            inlen) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

int serverNameCallback(SSL* ssl, int*, void* arg) {
  const auto* server = static_cast<const ServerContext*>(arg);
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (name == nullptr) return SSL_TLSEXT_ERR_OK;  // no SNI: the default certificate
  SSL_CTX* ctx = server->pick(name);
  if (ctx != SSL_get_SSL_CTX(ssl)) SSL_set_SSL_CTX(ssl, ctx);
  return SSL_TLSEXT_ERR_OK;
}

constexpr long kModes =
    SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS;

}  // namespace

// ---- ServerContext -------------------------------------------------------------

ServerContext::~ServerContext() {
  for (SSL_CTX* c : sni_ctxs_) SSL_CTX_free(c);
  SSL_CTX_free(default_ctx_);
}

SSL* ServerContext::newSsl(int fd) const {
  SSL* ssl = SSL_new(default_ctx_);
  if (!ssl) return nullptr;
  if (SSL_set_fd(ssl, fd) != 1) {
    SSL_free(ssl);
    return nullptr;
  }
  SSL_set_accept_state(ssl);
  return ssl;
}

SSL_CTX* ServerContext::pick(std::string_view server_name) const {
  std::string name = lower(server_name);
  if (auto it = exact_.find(name); it != exact_.end()) return it->second;
  size_t dot = name.find('.');
  if (dot != std::string::npos && dot > 0) {
    if (auto it = wildcard_.find(name.substr(dot)); it != wildcard_.end()) return it->second;
  }
  return default_ctx_;
}

std::vector<std::string> ServerContext::names() const {
  std::vector<std::string> out;
  for (const auto& [n, c] : exact_) out.push_back(n);
  for (const auto& [n, c] : wildcard_) out.push_back("*" + n);
  std::sort(out.begin(), out.end());
  return out;
}

HandshakeCounts ServerContext::handshakes() const {
  HandshakeCounts c;
  auto add = [&c](SSL_CTX* ctx) {
    c.completed += static_cast<uint64_t>(SSL_CTX_sess_accept_good(ctx));
    c.resumed += static_cast<uint64_t>(SSL_CTX_sess_hits(ctx));
  };
  add(default_ctx_);
  for (SSL_CTX* ctx : sni_ctxs_) add(ctx);
  return c;
}

// ---- ClientContext -------------------------------------------------------------

ClientContext::~ClientContext() { SSL_CTX_free(ctx_); }

SSL* ClientContext::newSsl(int fd, const std::string& sni) const {
  SSL* ssl = SSL_new(ctx_);
  if (!ssl) return nullptr;
  if (SSL_set_fd(ssl, fd) != 1 ||
      (!sni.empty() && SSL_set_tlsext_host_name(ssl, sni.c_str()) != 1)) {
    SSL_free(ssl);
    ERR_clear_error();
    return nullptr;
  }
  SSL_set_connect_state(ssl);
  return ssl;
}

// ---- TlsContextProvider --------------------------------------------------------

TlsContextProvider::TlsContextProvider()
    : tickets_(std::make_shared<TicketKeys>(std::chrono::seconds(3600))) {}

Result<std::shared_ptr<const ServerContext>> TlsContextProvider::serverContext(
    const config::Listener& listener, const std::string& path) {
  const config::ListenerTls& t = listener.tls;
  std::shared_ptr<ServerContext> server(new ServerContext());
  server->alpn_wire_ = alpnWire(t.alpn_protocols);
  server->tickets_ = tickets_;
  // Resumed sessions are bound to the listener (RFC 5246 session id context).
  unsigned char sid[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(listener.id.data()), listener.id.size(), sid);

  // Every context of the listener is configured alike; SNI only swaps the
  // certificate (SSL_set_SSL_CTX keeps the handshake's other settings).
  auto build = [&](const std::string& file, const std::string& context) -> Result<SSL_CTX*> {
    auto bundle = loadBundle(file, context);
    if (!bundle) return bundle.error();
    CtxPtr ctx(SSL_CTX_new(TLS_server_method()));
    if (!ctx) return fail(context, "cannot create a TLS context: " + opensslReason());
    SSL_CTX_set_mode(ctx.get(), kModes);
    // A peer closing without close_notify ends the stream like a FIN: HTTP
    // framing tells whether a message was cut short.
    SSL_CTX_set_options(ctx.get(), SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION |
                                       SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (auto r = useBundle(ctx.get(), *bundle, file, context); !r) return r.error();
    if (auto r = setVersions(ctx.get(), t.versions, path + "/tls_versions"); !r) return r.error();
    if (auto r = setCiphers(ctx.get(), t.ciphers, path + "/tls_ciphers"); !r) return r.error();
    SSL_CTX_set_session_id_context(ctx.get(), sid, sizeof sid);
    if (!t.client_ca_certificate.empty()) {
      auto r = loadVerifyStore(ctx.get(), t.client_ca_certificate, path + "/client_ca_certificate",
                               t.client_crl, path + "/client_crl", true);
      if (!r) return r.error();
    }
    switch (t.client_authentication) {
      case config::ClientAuth::kNone:
        SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
        break;
      case config::ClientAuth::kOptional:
        // Ask for a certificate; without one the handshake goes on, a bad
        // one fails it (haproxy `verify optional`).
        SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE, nullptr);
        break;
      case config::ClientAuth::kMandatory:
        SSL_CTX_set_verify(ctx.get(),
                           SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT | SSL_VERIFY_CLIENT_ONCE,
                           nullptr);
        break;
    }
    if (t.session_resumption) {
      // Stateless tickets only: no per-worker session cache to keep in sync.
      SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
      tickets_->install(ctx.get());
    } else {
      SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
      SSL_CTX_set_options(ctx.get(), SSL_OP_NO_TICKET);
      SSL_CTX_set_num_tickets(ctx.get(), 0);
    }
    SSL_CTX_set_alpn_select_cb(ctx.get(), alpnSelect, &server->alpn_wire_);
    SSL_CTX_set_tlsext_servername_callback(ctx.get(), serverNameCallback);
    SSL_CTX_set_tlsext_servername_arg(ctx.get(), server.get());
    std::vector<std::string> names = certificateNames(bundle->cert.get());
    SSL_CTX* raw = ctx.release();
    // The first certificate to claim a name keeps it (haproxy crt-list order).
    for (const auto& n : names) {
      if (n.size() > 2 && n[0] == '*' && n[1] == '.')
        server->wildcard_.emplace(n.substr(1), raw);
      else
        server->exact_.emplace(n, raw);
    }
    return raw;
  };

  auto def = build(t.default_certificate, path + "/default_tls_certificate");
  if (!def) return def.error();
  server->default_ctx_ = *def;
  for (size_t i = 0; i < t.sni_certificates.size(); ++i) {
    auto c = build(t.sni_certificates[i], path + "/sni_certificates/" + std::to_string(i));
    if (!c) return c.error();
    server->sni_ctxs_.push_back(*c);
  }
  return std::shared_ptr<const ServerContext>(std::move(server));
}

Result<std::shared_ptr<const ClientContext>> TlsContextProvider::clientContext(
    const config::Pool& pool, const std::string& path) {
  std::shared_ptr<ClientContext> client(new ClientContext());
  client->serial_ = next_serial_++;
  client->ctx_ = SSL_CTX_new(TLS_client_method());
  SSL_CTX* ctx = client->ctx_;
  if (!ctx) return fail(path, "cannot create a TLS context: " + opensslReason());
  SSL_CTX_set_mode(ctx, kModes);
  SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
  if (auto r = setVersions(ctx, pool.tls_versions, path + "/tls_versions"); !r) return r.error();
  if (auto r = setCiphers(ctx, pool.tls_ciphers, path + "/tls_ciphers"); !r) return r.error();
  std::string wire = alpnWire(pool.alpn_protocols);
  if (SSL_CTX_set_alpn_protos(ctx, reinterpret_cast<const unsigned char*>(wire.data()),
                              static_cast<unsigned>(wire.size())) != 0)
    return fail(path + "/alpn_protocols", "cannot set ALPN: " + opensslReason());
  if (!pool.tls_certificate.empty()) {
    auto bundle = loadBundle(pool.tls_certificate, path + "/tls_certificate");
    if (!bundle) return bundle.error();
    if (auto r = useBundle(ctx, *bundle, pool.tls_certificate, path + "/tls_certificate"); !r)
      return r.error();
  }
  if (!pool.ca_certificate.empty()) {
    // Members are verified against the CA; their host names are not checked
    // (Octavia's haproxy `ca-file ... verify required` without verifyhost).
    auto r = loadVerifyStore(ctx, pool.ca_certificate, path + "/ca_certificate", pool.crl,
                             path + "/crl", false);
    if (!r) return r.error();
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  }
  return std::shared_ptr<const ClientContext>(std::move(client));
}

Result<void> checkCertificateBundle(const std::string& file) {
  auto b = loadBundle(file, file);
  if (!b) return b.error();
  return {};
}

Result<void> checkConfigTls(const config::Config& config) {
  TlsContextProvider provider;
  for (size_t i = 0; i < config.listeners.size(); ++i) {
    const auto& l = config.listeners[i];
    if (!l.admin_state_up || !l.terminatesTls()) continue;
    auto c = provider.serverContext(l, "/listeners/" + std::to_string(i));
    if (!c) return c.error();
  }
  for (size_t i = 0; i < config.pools.size(); ++i) {
    if (!config.pools[i].tls_enabled) continue;
    auto c = provider.clientContext(config.pools[i], "/pools/" + std::to_string(i));
    if (!c) return c.error();
  }
  return {};
}

}  // namespace banyan::dp::tls
