// Cookies for HTTP_COOKIE and APP_COOKIE persistence and for COOKIE L7 rules:
// Cookie / Set-Cookie parsing (RFC 6265), the Set-Cookie value the proxy
// inserts, and the opaque member token it carries. Parsers take client or
// member bytes: they never allocate, never read past their input, and run in
// linear time whatever they are given.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace banyan::dp::persistence {

// Octavia's HAProxy amphora inserts `SRV` (`cookie SRV insert indirect nocache`).
inline constexpr std::string_view kMemberCookieName = "SRV";

// Walks the cookie-pairs of one Cookie header field value ("a=1; b=2"). Pairs are
// split on ';', names and values trimmed of SP/HTAB; a pair without '=' or with
// an empty name is skipped (RFC 6265 §5.2 rules, applied to the request side).
// Values are returned verbatim (quotes kept), names compare case-sensitively.
class CookieIterator {
 public:
  explicit CookieIterator(std::string_view header) : rest_(header) {}
  bool next(std::string_view* name, std::string_view* value);

 private:
  std::string_view rest_;
};

// The index-th (0-based) cookie called `name` in one Cookie header value.
std::optional<std::string_view> findCookie(std::string_view header, std::string_view name,
                                           size_t index = 0);
// The last cookie called `name`: what HAProxy's req.cook() sample returns.
std::optional<std::string_view> findLastCookie(std::string_view header, std::string_view name);
// The header value without any cookie called `name`, the others re-joined with
// "; " (HAProxy `indirect`: the member never sees the LB's cookie). Empty if
// nothing is left; the caller then drops the header.
std::string removeCookie(std::string_view header, std::string_view name);

// The cookie a Set-Cookie field value sets (RFC 6265 §5.2: the name-value pair
// before the first ';', trimmed); empty if it has no '=' or an empty name.
struct SetCookiePair {
  std::string_view name;
  std::string_view value;
};
std::optional<SetCookiePair> parseSetCookie(std::string_view header);

// "name=value; path=/; HttpOnly", plus "; Secure" on TLS listeners so the token
// is not sent back over plain HTTP. HAProxy's `nocache` also marks a response
// carrying it `Cache-Control: private`, so shared caches do not hand one
// client's member cookie to others; the proxy should do the same.
std::string buildSetCookie(std::string_view name, std::string_view value, bool secure);

// The value of the inserted member cookie: an authenticated, encrypted token
// naming member_id (no member id, address or index readable by clients; a
// client cannot forge a token for another member). Deterministic: the same
// member and secret give the same token on both amphorae and across config
// applies. SIV construction: tag = HMAC-SHA256(mac key, plaintext) truncated
// to 128 bits, ciphertext = plaintext XOR HMAC-SHA256(enc key, tag || counter)
// blocks; both keys are derived from `secret`. Canonical UUIDs are packed into
// 16 bytes, so a token is 46 characters of base64url.
// These two derive the keys on every call (about 10 us); per request,
// use a MemberCookieCodec built once per secret.
std::string encodeMemberCookie(std::string_view member_id, std::string_view secret);
// The member id, or empty if the value is not a token made with `secret`
// (tampered, truncated, other secret, garbage).
std::optional<std::string> decodeMemberCookie(std::string_view value, std::string_view secret);

// The same tokens with keys derived once: build one per secret (per config
// apply) and share it; encode/decode are const and thread-safe (each thread
// keeps one scratch digest context).
class MemberCookieCodec {
 public:
  explicit MemberCookieCodec(std::string_view secret);
  ~MemberCookieCodec();
  MemberCookieCodec(const MemberCookieCodec&) = delete;
  MemberCookieCodec& operator=(const MemberCookieCodec&) = delete;

  std::string encode(std::string_view member_id) const;
  std::optional<std::string> decode(std::string_view value) const;

  struct Keys;

 private:
  std::unique_ptr<Keys> keys_;
};

}  // namespace banyan::dp::persistence
