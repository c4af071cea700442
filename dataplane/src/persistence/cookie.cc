#include "persistence/cookie.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <cstdint>
#include <cstring>

#include "banyan/common/logging.h"

namespace banyan::dp::persistence {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Splits "name=value" (already cut at ';'); false if there is no usable name.
bool splitPair(std::string_view pair, std::string_view* name, std::string_view* value) {
  size_t eq = pair.find('=');
  if (eq == std::string_view::npos) return false;
  *name = trim(pair.substr(0, eq));
  *value = trim(pair.substr(eq + 1));
  return !name->empty();
}

// --- member token -----------------------------------------------------------

constexpr uint8_t kTokenVersion = 1;
constexpr size_t kTagBytes = 16;
constexpr uint8_t kKindRaw = 0;
constexpr uint8_t kKindUuid = 1;
constexpr size_t kMaxMemberIdBytes = 255;
// Version, tag, kind and the largest member id, in base64url.
constexpr size_t kMaxTokenChars = ((1 + kTagBytes + 1 + kMaxMemberIdBytes) * 4 + 2) / 3;

using Digest = std::array<uint8_t, 32>;

Digest oneShotHmac(std::string_view key, std::string_view data) {
  Digest out{};
  unsigned int len = 0;
  uint8_t* r = HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
                    reinterpret_cast<const uint8_t*>(data.data()), data.size(), out.data(), &len);
  LB_CHECK(r != nullptr && len == out.size(), "HMAC-SHA256 is always available");
  return out;
}

// One scratch digest context per thread, so a shared codec needs no lock and
// a request allocates nothing for its HMACs.
EVP_MD_CTX* scratchDigest() {
  struct Holder {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    ~Holder() { EVP_MD_CTX_free(ctx); }
  };
  thread_local Holder holder;
  LB_CHECK(holder.ctx != nullptr, "out of memory");
  return holder.ctx;
}

// HMAC-SHA256 (RFC 2104) with the padded key already absorbed into an inner
// and an outer SHA-256 state: a MAC costs two state copies and two short hash
// runs instead of OpenSSL 3's per-call algorithm fetch.
class PreparedHmac {
 public:
  explicit PreparedHmac(const Digest& key) : inner_(EVP_MD_CTX_new()), outer_(EVP_MD_CTX_new()) {
    LB_CHECK(inner_ != nullptr && outer_ != nullptr, "out of memory");
    uint8_t ipad[64], opad[64];
    for (size_t i = 0; i < 64; ++i) {
      uint8_t k = i < key.size() ? key[i] : 0;
      ipad[i] = k ^ 0x36;
      opad[i] = k ^ 0x5c;
    }
    bool ok = EVP_DigestInit_ex(inner_, EVP_sha256(), nullptr) == 1 &&
              EVP_DigestUpdate(inner_, ipad, sizeof ipad) == 1 &&
              EVP_DigestInit_ex(outer_, EVP_sha256(), nullptr) == 1 &&
              EVP_DigestUpdate(outer_, opad, sizeof opad) == 1;
    LB_CHECK(ok, "SHA-256 is always available");
  }
  ~PreparedHmac() {
    EVP_MD_CTX_free(inner_);
    EVP_MD_CTX_free(outer_);
  }
  PreparedHmac(const PreparedHmac&) = delete;
  PreparedHmac& operator=(const PreparedHmac&) = delete;

  // HMAC over the concatenation a || b.
  Digest mac(const void* a, size_t a_size, const void* b = nullptr, size_t b_size = 0) const {
    EVP_MD_CTX* c = scratchDigest();
    Digest inner_hash{}, out{};
    unsigned int len = 0;
    bool ok = EVP_MD_CTX_copy_ex(c, inner_) == 1 && EVP_DigestUpdate(c, a, a_size) == 1 &&
              (b_size == 0 || EVP_DigestUpdate(c, b, b_size) == 1) &&
              EVP_DigestFinal_ex(c, inner_hash.data(), &len) == 1 &&
              EVP_MD_CTX_copy_ex(c, outer_) == 1 &&
              EVP_DigestUpdate(c, inner_hash.data(), inner_hash.size()) == 1 &&
              EVP_DigestFinal_ex(c, out.data(), &len) == 1;
    LB_CHECK(ok, "SHA-256 of a buffer cannot fail");
    return out;
  }

 private:
  EVP_MD_CTX* inner_;
  EVP_MD_CTX* outer_;
};

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;  // uppercase is not canonical: such ids travel raw, to round-trip exactly
}

// A canonical lowercase 8-4-4-4-12 UUID, packed into 16 bytes.
bool packUuid(std::string_view id, uint8_t out[16]) {
  if (id.size() != 36) return false;
  size_t o = 0;
  for (size_t i = 0; i < 36;) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (id[i] != '-') return false;
      ++i;
      continue;
    }
    int hi = hexValue(id[i]);
    int lo = hexValue(id[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[o++] = static_cast<uint8_t>(hi << 4 | lo);
    i += 2;
  }
  return o == 16;
}

std::string unpackUuid(const uint8_t* b) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (size_t i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(kHex[b[i] >> 4]);
    out.push_back(kHex[b[i] & 15]);
  }
  return out;
}

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string base64UrlEncode(const std::string& in) {
  std::string out;
  out.reserve((in.size() * 4 + 2) / 3);
  size_t i = 0;
  auto byte = [&](size_t k) { return static_cast<uint8_t>(in[k]); };
  for (; i + 3 <= in.size(); i += 3) {
    uint32_t v = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
    out.push_back(kB64[v >> 18]);
    out.push_back(kB64[(v >> 12) & 63]);
    out.push_back(kB64[(v >> 6) & 63]);
    out.push_back(kB64[v & 63]);
  }
  size_t rest = in.size() - i;
  if (rest == 1) {
    uint32_t v = byte(i) << 16;
    out.push_back(kB64[v >> 18]);
    out.push_back(kB64[(v >> 12) & 63]);
  } else if (rest == 2) {
    uint32_t v = byte(i) << 16 | byte(i + 1) << 8;
    out.push_back(kB64[v >> 18]);
    out.push_back(kB64[(v >> 12) & 63]);
    out.push_back(kB64[(v >> 6) & 63]);
  }
  return out;
}

int b64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

// Strict: unpadded base64url only, and unused trailing bits must be zero so
// every byte string has exactly one accepted spelling.
std::optional<std::string> base64UrlDecode(std::string_view in) {
  if (in.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(in.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v = b64Value(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

}  // namespace

bool CookieIterator::next(std::string_view* name, std::string_view* value) {
  while (!rest_.empty()) {
    size_t semi = rest_.find(';');
    std::string_view pair = rest_.substr(0, semi);
    rest_ = semi == std::string_view::npos ? std::string_view() : rest_.substr(semi + 1);
    if (splitPair(pair, name, value)) return true;
  }
  return false;
}

std::optional<std::string_view> findCookie(std::string_view header, std::string_view name,
                                           size_t index) {
  CookieIterator it(header);
  std::string_view n, v;
  while (it.next(&n, &v))
    if (n == name && index-- == 0) return v;
  return std::nullopt;
}

std::optional<std::string_view> findLastCookie(std::string_view header, std::string_view name) {
  CookieIterator it(header);
  std::string_view n, v;
  std::optional<std::string_view> last;
  while (it.next(&n, &v))
    if (n == name) last = v;
  return last;
}

std::string removeCookie(std::string_view header, std::string_view name) {
  std::string out;
  CookieIterator it(header);
  std::string_view n, v;
  while (it.next(&n, &v)) {
    if (n == name) continue;
    if (!out.empty()) out.append("; ");
    out.append(n).append("=").append(v);
  }
  return out;
}

std::optional<SetCookiePair> parseSetCookie(std::string_view header) {
  std::string_view pair = header.substr(0, header.find(';'));
  SetCookiePair out;
  if (!splitPair(pair, &out.name, &out.value)) return std::nullopt;
  return out;
}

std::string buildSetCookie(std::string_view name, std::string_view value, bool secure) {
  std::string out;
  out.reserve(name.size() + value.size() + 32);
  out.append(name).append("=").append(value).append("; path=/; HttpOnly");
  if (secure) out.append("; Secure");
  return out;
}

struct MemberCookieCodec::Keys {
  explicit Keys(std::string_view secret)
      : mac(oneShotHmac(secret, "banyan member cookie mac v1")),
        enc(oneShotHmac(secret, "banyan member cookie enc v1")) {}
  PreparedHmac mac;  // tag = HMAC(mac, version || plaintext)
  PreparedHmac enc;  // keystream block i = HMAC(enc, tag || i)

  Digest tag(const std::string& plaintext) const {
    const uint8_t version = kTokenVersion;
    return mac.mac(&version, 1, plaintext.data(), plaintext.size());
  }
  // XORs `data` with HMAC(enc, tag || counter) blocks: a PRF in counter mode
  // starting from the synthetic IV (the tag).
  void applyKeystream(const uint8_t* tag, uint8_t* data, size_t size) const {
    uint8_t block_input[kTagBytes + 4];
    memcpy(block_input, tag, kTagBytes);
    for (size_t offset = 0, counter = 0; offset < size; offset += 32, ++counter) {
      block_input[kTagBytes + 0] = static_cast<uint8_t>(counter >> 24);
      block_input[kTagBytes + 1] = static_cast<uint8_t>(counter >> 16);
      block_input[kTagBytes + 2] = static_cast<uint8_t>(counter >> 8);
      block_input[kTagBytes + 3] = static_cast<uint8_t>(counter);
      Digest ks = enc.mac(block_input, sizeof block_input);
      for (size_t i = 0; i < 32 && offset + i < size; ++i) data[offset + i] ^= ks[i];
    }
  }
};

MemberCookieCodec::MemberCookieCodec(std::string_view secret)
    : keys_(std::make_unique<Keys>(secret)) {}
MemberCookieCodec::~MemberCookieCodec() = default;

std::string MemberCookieCodec::encode(std::string_view member_id) const {
  LB_CHECK(member_id.size() <= kMaxMemberIdBytes, "member ids are at most 255 bytes (UUIDs)");
  std::string plaintext;
  uint8_t packed[16];
  if (packUuid(member_id, packed)) {
    plaintext.push_back(static_cast<char>(kKindUuid));
    plaintext.append(reinterpret_cast<const char*>(packed), sizeof packed);
  } else {
    plaintext.push_back(static_cast<char>(kKindRaw));
    plaintext.append(member_id);
  }
  Digest tag = keys_->tag(plaintext);
  keys_->applyKeystream(tag.data(), reinterpret_cast<uint8_t*>(plaintext.data()), plaintext.size());
  std::string token;
  token.push_back(static_cast<char>(kTokenVersion));
  token.append(reinterpret_cast<const char*>(tag.data()), kTagBytes);
  token.append(plaintext);
  return base64UrlEncode(token);
}

std::optional<std::string> MemberCookieCodec::decode(std::string_view value) const {
  if (value.size() > kMaxTokenChars) return std::nullopt;
  std::optional<std::string> raw = base64UrlDecode(value);
  if (!raw || raw->size() < 1 + kTagBytes + 1 || static_cast<uint8_t>((*raw)[0]) != kTokenVersion)
    return std::nullopt;
  const auto* tag = reinterpret_cast<const uint8_t*>(raw->data() + 1);
  std::string plaintext = raw->substr(1 + kTagBytes);
  keys_->applyKeystream(tag, reinterpret_cast<uint8_t*>(plaintext.data()), plaintext.size());
  Digest expected = keys_->tag(plaintext);
  if (CRYPTO_memcmp(expected.data(), tag, kTagBytes) != 0) return std::nullopt;
  auto kind = static_cast<uint8_t>(plaintext[0]);
  if (kind == kKindUuid && plaintext.size() == 17)
    return unpackUuid(reinterpret_cast<const uint8_t*>(plaintext.data() + 1));
  if (kind == kKindRaw) return plaintext.substr(1);
  return std::nullopt;
}

std::string encodeMemberCookie(std::string_view member_id, std::string_view secret) {
  return MemberCookieCodec(secret).encode(member_id);
}

std::optional<std::string> decodeMemberCookie(std::string_view value, std::string_view secret) {
  return MemberCookieCodec(secret).decode(value);
}

}  // namespace banyan::dp::persistence
