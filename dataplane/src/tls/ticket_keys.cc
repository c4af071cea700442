#include "tls/ticket_keys.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cstring>

#include "banyan/common/logging.h"

namespace banyan::dp::tls {
namespace {

int exIndex() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

bool setHmacKey(EVP_MAC_CTX* hctx, TicketKeys::Key& key) {
  char digest[] = "sha256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key.hmac.data(), key.hmac.size()),
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end(),
  };
  return EVP_MAC_CTX_set_params(hctx, params) == 1;
}

}  // namespace

bool renewsTicket(int version, bool key_is_current) {
  // TLS 1.3 tickets are single-use (RFC 8446 section C.4): an OpenSSL client
  // with a client session cache (wrk, SSL_SESS_CACHE_CLIENT) marks the session
  // it just resumed not resumable, so it resumes again only with a ticket from
  // this connection. Without a fresh one every other connection is a full
  // handshake. OpenSSL's built-in keys renew every TLS 1.3 ticket; with a key
  // callback only a return of 2 does (then one ticket per resumption).
  if (version >= TLS1_3_VERSION) return true;
  // A TLS 1.2 ticket stays valid for reuse: renew it only off an old key.
  return !key_is_current;
}

namespace {

// OpenSSL's ticket key callback (SSL_CTX_set_tlsext_ticket_key_evp_cb): 1 = use
// the key, 2 = use the key and issue a fresh ticket (see renewsTicket), 0 =
// unknown key (full handshake), -1 = error.
int ticketCallback(SSL* ssl, unsigned char* key_name, unsigned char* iv, EVP_CIPHER_CTX* cctx,
                   EVP_MAC_CTX* hctx, int enc) {
  // After an SNI switch the SSL's context is the SNI one; every context of a
  // listener carries the same ring.
  auto* ring = static_cast<TicketKeys*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), exIndex()));
  if (ring == nullptr) return -1;
  if (enc == 1) {
    TicketKeys::Key key = ring->current();
    if (RAND_bytes(iv, 16) != 1) return -1;
    std::memcpy(key_name, key.name.data(), key.name.size());
    if (EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), nullptr, key.aes.data(), iv) != 1) return -1;
    return setHmacKey(hctx, key) ? 1 : -1;
  }
  bool is_current = false;
  auto key = ring->find(key_name, &is_current);
  if (!key) return 0;
  if (!setHmacKey(hctx, *key)) return -1;
  if (EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), nullptr, key->aes.data(), iv) != 1) return -1;
  return renewsTicket(SSL_version(ssl), is_current) ? 2 : 1;
}

}  // namespace

TicketKeys::TicketKeys(std::chrono::seconds period, Clock clock)
    : period_(period), clock_(std::move(clock)) {
  if (!clock_) clock_ = [] { return std::chrono::steady_clock::now(); };
}

void TicketKeys::setPeriod(std::chrono::seconds period) {
  std::lock_guard<std::mutex> g(mu_);
  period_ = period;
}

std::chrono::seconds TicketKeys::period() const {
  std::lock_guard<std::mutex> g(mu_);
  return period_;
}

void TicketKeys::rotateIfDueLocked() {
  auto now = clock_();
  if (!keys_.empty() && now - made_at_ < period_) return;
  Key k;
  // Out of entropy is not recoverable for a TLS server.
  LB_CHECK(RAND_bytes(k.name.data(), static_cast<int>(k.name.size())) == 1 &&
               RAND_bytes(k.aes.data(), static_cast<int>(k.aes.size())) == 1 &&
               RAND_bytes(k.hmac.data(), static_cast<int>(k.hmac.size())) == 1,
           "the OpenSSL random generator works");
  keys_.push_front(k);
  while (keys_.size() > kKept) keys_.pop_back();
  made_at_ = now;
  ++generated_;
}

TicketKeys::Key TicketKeys::current() {
  std::lock_guard<std::mutex> g(mu_);
  rotateIfDueLocked();
  return keys_.front();
}

std::optional<TicketKeys::Key> TicketKeys::find(const uint8_t* name, bool* is_current) {
  std::lock_guard<std::mutex> g(mu_);
  rotateIfDueLocked();
  for (size_t i = 0; i < keys_.size(); ++i) {
    if (std::memcmp(keys_[i].name.data(), name, keys_[i].name.size()) == 0) {
      *is_current = i == 0;
      return keys_[i];
    }
  }
  return std::nullopt;
}

uint64_t TicketKeys::generated() const {
  std::lock_guard<std::mutex> g(mu_);
  return generated_;
}

void TicketKeys::install(SSL_CTX* ctx) {
  SSL_CTX_set_ex_data(ctx, exIndex(), this);
  SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticketCallback);
  // The lifetime hint clients see: a ticket is honoured for kKept periods at most.
  SSL_CTX_set_timeout(ctx, static_cast<long>(period().count() * kKept));
}

}  // namespace banyan::dp::tls
