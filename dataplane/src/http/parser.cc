// Strict HTTP/1.x head parsing; see parser.h (ChunkedScanner is in chunked_scanner.cc).
//
// One forward pass over the head: every byte is judged once, by a 256-entry
// table (or eight at a time with SWAR for targets and field values), and the
// first byte that breaks a rule decides the ParseError. Because the pass is
// sequential, a rule broken by bytes already received is reported as Invalid
// even if the head is not complete yet.
#include "http/parser.h"

#include <algorithm>
#include <cstring>

#include "http/chars.h"

namespace banyan::dp::http {

namespace {

using namespace detail;

// SWAR helpers (Hacker's Delight / "Bit Twiddling Hacks"): exact "some byte
// of x is < n" and "some byte equals v" tests on 8 bytes at once.
constexpr uint64_t kOnes = 0x0101010101010101ULL;
constexpr uint64_t kHighs = 0x8080808080808080ULL;
inline uint64_t load64(const unsigned char* p) {
  uint64_t x;
  std::memcpy(&x, p, sizeof x);
  return x;
}
inline bool anyLess(uint64_t x, uint8_t n) { return ((x - kOnes * n) & ~x & kHighs) != 0; }
inline bool anyEqual(uint64_t x, uint8_t v) {
  const uint64_t y = x ^ (kOnes * v);
  return ((y - kOnes) & ~y & kHighs) != 0;
}

// Advances over request-target bytes (VCHAR) up to `end`.
inline size_t skipTarget(const unsigned char* s, size_t pos, size_t end) {
  while (pos + 8 <= end) {
    const uint64_t x = load64(s + pos);
    if (anyLess(x, 0x21) || anyEqual(x, 0x7f) || (x & kHighs) != 0) break;
    pos += 8;
  }
  while (pos < end && is(kTargetChar, s[pos])) ++pos;
  return pos;
}

// Advances over field-value bytes (HTAB / SP / VCHAR / obs-text) up to `end`.
// The fast path treats HTAB as "stop and look byte by byte": it is rare.
inline size_t skipFieldValue(const unsigned char* s, size_t pos, size_t end) {
  for (;;) {
    while (pos + 8 <= end) {
      const uint64_t x = load64(s + pos);
      if (anyLess(x, 0x20) || anyEqual(x, 0x7f)) break;
      pos += 8;
    }
    const size_t stop = std::min(end, pos + 8);
    while (pos < stop && is(kFieldChar, s[pos])) ++pos;
    if (pos < stop || pos == end) return pos;
  }
}

inline size_t skipTchar(const unsigned char* s, size_t pos, size_t end) {
  while (pos < end && is(kTchar, s[pos])) ++pos;
  return pos;
}

std::string_view trimOws(std::string_view v) {
  while (!v.empty() && isWs(static_cast<unsigned char>(v.front()))) v.remove_prefix(1);
  while (!v.empty() && isWs(static_cast<unsigned char>(v.back()))) v.remove_suffix(1);
  return v;
}

// Calls fn(element) for each comma-separated element, OWS trimmed, empty
// elements included (callers decide whether `a,,b` is acceptable). Stops
// early and returns false when fn returns false.
template <typename Fn>
bool forEachElement(std::string_view list, Fn&& fn) {
  for (;;) {
    const size_t comma = list.find(',');
    if (!fn(trimOws(list.substr(0, comma)))) return false;
    if (comma == std::string_view::npos) return true;
    list.remove_prefix(comma + 1);
  }
}

// Everything the header section tells about framing and the connection.
struct FieldFacts {
  bool is_request = true;
  bool http10 = false;
  bool has_cl = false;
  uint64_t cl = 0;
  bool has_te = false;
  bool te_chunked_seen = false;
  bool te_chunked_final = false;
  bool conn_close = false;
  bool conn_keep_alive = false;
  bool conn_upgrade = false;
  bool has_upgrade = false;
  bool expect_continue = false;
  int host_count = 0;
  std::string_view host;
};

// RFC 9110 section 8.6: Content-Length = 1*DIGIT. A list of identical values
// ("5, 5"), or repeated identical fields, is one length; anything else is
// refused rather than guessed at.
ParseError onContentLength(std::string_view value, FieldFacts& f) {
  if (f.has_te) return ParseError::ContentLengthWithTransferEncoding;
  ParseError err = ParseError::None;
  forEachElement(value, [&](std::string_view e) {
    if (e.empty()) {
      err = ParseError::BadContentLength;
      return false;
    }
    uint64_t n = 0;
    for (unsigned char c : e) {
      if (c < '0' || c > '9') {
        err = ParseError::BadContentLength;
        return false;
      }
      const uint64_t d = c - '0';
      if (n > (UINT64_MAX - d) / 10) {
        err = ParseError::BadContentLength;
        return false;
      }
      n = n * 10 + d;
    }
    if (f.has_cl && n != f.cl) {
      err = ParseError::ConflictingContentLength;
      return false;
    }
    f.has_cl = true;
    f.cl = n;
    return true;
  });
  return err;
}

// RFC 9112 section 6.1. Only codings from the IANA registry that a member can
// really send are known; parameters, empty elements and unknown names are
// refused, as is chunked twice. Whether chunked is final is judged once the
// whole section (all Transfer-Encoding lines) has been read.
ParseError onTransferEncoding(std::string_view value, FieldFacts& f) {
  // RFC 9112 section 6.1: an HTTP/1.0 message with Transfer-Encoding has
  // faulty framing, whatever else it carries.
  if (f.http10) return ParseError::BadTransferEncoding;
  if (f.has_cl) return ParseError::ContentLengthWithTransferEncoding;
  f.has_te = true;
  ParseError err = ParseError::None;
  forEachElement(value, [&](std::string_view e) {
    if (equalsIgnoreCase(e, "chunked")) {
      if (f.te_chunked_seen) {
        err = ParseError::BadTransferEncoding;
        return false;
      }
      f.te_chunked_seen = true;
      f.te_chunked_final = true;
      return true;
    }
    if (equalsIgnoreCase(e, "gzip") || equalsIgnoreCase(e, "x-gzip") ||
        equalsIgnoreCase(e, "deflate") || equalsIgnoreCase(e, "compress") ||
        equalsIgnoreCase(e, "x-compress")) {
      f.te_chunked_final = false;
      return true;
    }
    err = ParseError::BadTransferEncoding;
    return false;
  });
  return err;
}

void onConnection(std::string_view value, FieldFacts& f) {
  forEachElement(value, [&](std::string_view e) {
    if (equalsIgnoreCase(e, "close")) {
      f.conn_close = true;
    } else if (equalsIgnoreCase(e, "keep-alive")) {
      f.conn_keep_alive = true;
    } else if (equalsIgnoreCase(e, "upgrade")) {
      f.conn_upgrade = true;
    }
    return true;
  });
}

// Dispatch on length first: most fields are none of these and cost one switch.
ParseError onField(std::string_view name, std::string_view value, FieldFacts& f) {
  switch (name.size()) {
    case 4:
      if (f.is_request && equalsIgnoreCase(name, "host")) {
        if (++f.host_count > 1) return ParseError::DuplicateHost;
        f.host = value;
      }
      break;
    case 6:
      // RFC 9110 section 10.1.1: a 100-continue expectation in an HTTP/1.0
      // request must be ignored, so it is not reported.
      if (f.is_request && !f.http10 && equalsIgnoreCase(name, "expect") &&
          equalsIgnoreCase(value, "100-continue")) {
        f.expect_continue = true;
      }
      break;
    case 7:
      if (equalsIgnoreCase(name, "upgrade")) f.has_upgrade = true;
      break;
    case 10:
      if (equalsIgnoreCase(name, "connection")) onConnection(value, f);
      break;
    case 14:
      if (equalsIgnoreCase(name, "content-length")) return onContentLength(value, f);
      break;
    case 17:
      if (equalsIgnoreCase(name, "transfer-encoding")) return onTransferEncoding(value, f);
      break;
    default:
      break;
  }
  return ParseError::None;
}

struct SectionResult {
  ParseStatus status;
  ParseError error;
  size_t end;  // Done: offset just past the final CRLF
};

constexpr SectionResult invalid(ParseError e) { return {ParseStatus::Invalid, e, 0}; }

// Parses field lines from `pos` through the empty line that ends the head.
// `scan_end` is min(input size, max_head): hitting it without the end of the
// head means NeedMore, or HeadTooLarge when the limit itself was reached.
SectionResult parseFields(std::string_view input, size_t pos, const Limits& limits,
                          std::vector<Header>& headers, FieldFacts& f) {
  const auto* s = reinterpret_cast<const unsigned char*>(input.data());
  const size_t scan_end = std::min(input.size(), limits.max_head);
  const SectionResult out_of_bytes = input.size() >= limits.max_head
                                         ? invalid(ParseError::HeadTooLarge)
                                         : SectionResult{ParseStatus::NeedMore, ParseError::None, 0};
  for (;;) {
    if (pos >= scan_end) return out_of_bytes;
    unsigned char c = s[pos];
    if (c == '\r') {
      if (pos + 1 >= scan_end) return out_of_bytes;
      if (s[pos + 1] != '\n') return invalid(ParseError::BareCR);
      return {ParseStatus::Done, ParseError::None, pos + 2};
    }
    if (c == '\n') return invalid(ParseError::BareLF);
    // RFC 9112 section 5.2: obs-fold; also whitespace before the first field.
    if (isWs(c)) return invalid(ParseError::ObsFold);
    if (headers.size() >= limits.max_headers) return invalid(ParseError::TooManyHeaders);

    const size_t name_start = pos;
    pos = skipTchar(s, pos, scan_end);
    if (pos >= scan_end) return out_of_bytes;
    c = s[pos];
    if (c != ':') {
      // RFC 9112 section 5.1: no whitespace between name and colon.
      if (isWs(c)) return invalid(ParseError::WhitespaceBeforeColon);
      if (c == '\r' || c == '\n') return invalid(ParseError::MissingColon);
      return invalid(ParseError::BadHeaderName);
    }
    if (pos == name_start) return invalid(ParseError::BadHeaderName);
    const size_t name_end = pos;
    ++pos;
    while (pos < scan_end && isWs(s[pos])) ++pos;
    const size_t value_start = pos;
    pos = skipFieldValue(s, pos, scan_end);
    if (pos >= scan_end) return out_of_bytes;
    c = s[pos];
    if (c == '\r') {
      if (pos + 1 >= scan_end) return out_of_bytes;
      if (s[pos + 1] != '\n') return invalid(ParseError::BareCR);
    } else if (c == '\n') {
      return invalid(ParseError::BareLF);
    } else {
      return invalid(ParseError::BadHeaderValue);
    }
    size_t value_end = pos;
    while (value_end > value_start && isWs(s[value_end - 1])) --value_end;
    pos += 2;

    const Header h{input.substr(name_start, name_end - name_start),
                   input.substr(value_start, value_end - value_start)};
    headers.push_back(h);
    const ParseError err = onField(h.name, h.value, f);
    if (err != ParseError::None) return invalid(err);
  }
}

// Matches "HTTP/1.0" or "HTTP/1.1" at `pos`, byte by byte so that a wrong
// prefix is refused before the rest arrives. Returns the minor version, -1 when
// the bytes run out first (at `scan_end`), or -2 when they do not match.
int matchVersion(const unsigned char* s, size_t pos, size_t scan_end) {
  static constexpr char kPrefix[] = "HTTP/1.";
  for (size_t i = 0; i < sizeof kPrefix - 1; ++i) {
    if (pos + i >= scan_end) return -1;
    if (s[pos + i] != static_cast<unsigned char>(kPrefix[i])) return -2;
  }
  const size_t minor = pos + sizeof kPrefix - 1;
  if (minor >= scan_end) return -1;
  if (s[minor] == '0') return 0;
  if (s[minor] == '1') return 1;
  return -2;
}

// RFC 9112 section 3.2: origin-form, absolute-form, asterisk-form (OPTIONS
// only). authority-form belongs to CONNECT, which is refused earlier. For
// absolute-form a scheme followed by "://" is required: the proxy only ever
// sees http and https targets, and both have an authority.
bool validTargetForm(std::string_view method, std::string_view target) {
  const unsigned char first = static_cast<unsigned char>(target.front());
  if (first == '/') return true;
  if (target == "*") return method == "OPTIONS";
  if (!((first >= 'a' && first <= 'z') || (first >= 'A' && first <= 'Z'))) return false;
  for (size_t i = 1; i < target.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(target[i]);
    if (c == ':') return target.substr(i).starts_with("://") && target.size() > i + 3;
    const bool scheme_char = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                             (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.';
    if (!scheme_char) return false;
  }
  return false;
}

constexpr ParseResult fail(ParseError e) { return {ParseStatus::Invalid, e, 0}; }
constexpr ParseResult needMore() { return {ParseStatus::NeedMore, ParseError::None, 0}; }

// RFC 9112 section 2.2: one CRLF before the start line may be ignored. Returns
// the offset of the start line, 0 when there is none; sets `r` on NeedMore or
// Invalid.
bool skipLeadingCrlf(std::string_view input, size_t& start, ParseResult& r) {
  start = 0;
  if (input.empty()) {
    r = needMore();
    return false;
  }
  if (input[0] == '\n') {
    r = fail(ParseError::BareLF);
    return false;
  }
  if (input[0] != '\r') return true;
  if (input.size() < 2) {
    r = needMore();
    return false;
  }
  if (input[1] != '\n') {
    r = fail(ParseError::BareCR);
    return false;
  }
  start = 2;
  return true;
}

}  // namespace

const char* parseErrorName(ParseError e) {
  switch (e) {
    case ParseError::None: return "none";
    case ParseError::BadRequestLine: return "bad_request_line";
    case ParseError::BadMethod: return "bad_method";
    case ParseError::BadTarget: return "bad_target";
    case ParseError::BadVersion: return "bad_version";
    case ParseError::RequestLineTooLong: return "request_line_too_long";
    case ParseError::HeadTooLarge: return "head_too_large";
    case ParseError::TooManyHeaders: return "too_many_headers";
    case ParseError::BareCR: return "bare_cr";
    case ParseError::BareLF: return "bare_lf";
    case ParseError::ObsFold: return "obs_fold";
    case ParseError::WhitespaceBeforeColon: return "whitespace_before_colon";
    case ParseError::BadHeaderName: return "bad_header_name";
    case ParseError::BadHeaderValue: return "bad_header_value";
    case ParseError::MissingColon: return "missing_colon";
    case ParseError::BadContentLength: return "bad_content_length";
    case ParseError::ConflictingContentLength: return "conflicting_content_length";
    case ParseError::ContentLengthWithTransferEncoding: return "content_length_with_transfer_encoding";
    case ParseError::BadTransferEncoding: return "bad_transfer_encoding";
    case ParseError::MissingHost: return "missing_host";
    case ParseError::DuplicateHost: return "duplicate_host";
    case ParseError::BadStatusLine: return "bad_status_line";
    case ParseError::BadChunkSize: return "bad_chunk_size";
    case ParseError::ChunkSizeOverflow: return "chunk_size_overflow";
    case ParseError::BadChunkTerminator: return "bad_chunk_terminator";
    case ParseError::BadTrailer: return "bad_trailer";
    case ParseError::UnsupportedMethod: return "unsupported_method";
    case ParseError::StatusLineTooLong: return "status_line_too_long";
    case ParseError::TrailerTooLarge: return "trailer_too_large";
    case ParseError::BadChunkExtension: return "bad_chunk_extension";
  }
  return "unknown";
}

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (kChars.lower[static_cast<unsigned char>(a[i])] != kChars.lower[static_cast<unsigned char>(b[i])]) {
      return false;
    }
  }
  return true;
}

bool hasToken(std::string_view list, std::string_view token) {
  return !forEachElement(list, [&](std::string_view e) { return !equalsIgnoreCase(e, token); });
}

void RequestHead::clear() {
  method = {};
  target = {};
  version_minor = 1;
  host = {};
  headers.clear();  // keeps capacity: no allocation on the next request
  body = BodyKind::None;
  content_length = 0;
  flags = MessageFlags{};
  head_length = 0;
}

void ResponseHead::clear() {
  version_minor = 1;
  status = 0;
  reason = {};
  headers.clear();
  body = BodyKind::None;
  content_length = 0;
  flags = MessageFlags{};
  head_length = 0;
}

ParseResult parseRequestHead(std::string_view input, const Limits& limits, RequestHead& out) {
  out.clear();
  ParseResult r;
  size_t line_start = 0;
  if (!skipLeadingCrlf(input, line_start, r)) return r;

  const auto* s = reinterpret_cast<const unsigned char*>(input.data());
  // The request line is judged against both limits, whichever is nearer.
  const size_t line_limit = line_start + limits.max_request_line;
  const size_t scan_end = std::min({input.size(), line_limit, limits.max_head});
  const ParseResult out_of_bytes = scan_end == line_limit        ? fail(ParseError::RequestLineTooLong)
                                   : scan_end == limits.max_head ? fail(ParseError::HeadTooLarge)
                                                                 : needMore();

  // method SP
  size_t pos = skipTchar(s, line_start, scan_end);
  if (pos >= scan_end) return out_of_bytes;
  if (s[pos] != ' ') {
    if (s[pos] == '\r' || s[pos] == '\n') return fail(ParseError::BadRequestLine);
    return fail(ParseError::BadMethod);
  }
  if (pos == line_start) return fail(ParseError::BadMethod);
  out.method = input.substr(line_start, pos - line_start);
  // CONNECT turns the connection into a tunnel; banyan-proxy does not offer one.
  if (out.method == "CONNECT") return fail(ParseError::UnsupportedMethod);
  ++pos;

  // request-target SP
  const size_t target_start = pos;
  pos = skipTarget(s, pos, scan_end);
  if (pos >= scan_end) return out_of_bytes;
  if (s[pos] != ' ') {
    // No version: HTTP/0.9 style, or a target that ends the line.
    if (s[pos] == '\r' || s[pos] == '\n') {
      return fail(pos == target_start ? ParseError::BadTarget : ParseError::BadRequestLine);
    }
    return fail(ParseError::BadTarget);
  }
  if (pos == target_start) return fail(ParseError::BadTarget);
  out.target = input.substr(target_start, pos - target_start);
  if (!validTargetForm(out.method, out.target)) return fail(ParseError::BadTarget);
  ++pos;

  // HTTP-version CRLF
  const int minor = matchVersion(s, pos, scan_end);
  if (minor < 0) {
    // "GET /a b HTTP/1.1": a space inside the target first shows up as a bad
    // version. Which it is depends on whether another SP comes before the line
    // ends, so wait for one or the other (bounded by the line limit) rather
    // than name an error that more bytes could contradict.
    for (size_t i = pos; i < scan_end; ++i) {
      if (s[i] == ' ') return fail(ParseError::BadTarget);
      if (s[i] == '\r' || s[i] == '\n') return fail(ParseError::BadVersion);
    }
    return out_of_bytes;
  }
  out.version_minor = minor;
  pos += 8;
  if (pos >= scan_end) return out_of_bytes;
  if (s[pos] != '\r') {
    if (s[pos] == '\n') return fail(ParseError::BareLF);
    if (s[pos] >= '0' && s[pos] <= '9') return fail(ParseError::BadVersion);
    return fail(ParseError::BadRequestLine);
  }
  if (pos + 1 >= scan_end) return out_of_bytes;
  if (s[pos + 1] != '\n') return fail(ParseError::BareCR);
  pos += 2;

  FieldFacts f;
  f.is_request = true;
  f.http10 = minor == 0;
  const SectionResult sr = parseFields(input, pos, limits, out.headers, f);
  if (sr.status != ParseStatus::Done) return {sr.status, sr.error, 0};

  // RFC 9112 section 3.2: exactly one Host in HTTP/1.1 (duplicates were
  // refused while reading).
  if (!f.http10 && f.host_count == 0) return fail(ParseError::MissingHost);
  out.host = f.host;
  if (f.has_te) {
    // RFC 9112 section 6.3: a request whose final coding is not chunked has
    // no reliable length; 400 and close.
    if (!f.te_chunked_final) return fail(ParseError::BadTransferEncoding);
    out.body = BodyKind::Chunked;
  } else if (f.has_cl) {
    out.content_length = f.cl;
    out.body = f.cl > 0 ? BodyKind::ContentLength : BodyKind::None;
  }
  out.flags.connection_close = f.conn_close;
  out.flags.connection_upgrade = f.conn_upgrade;
  out.flags.has_upgrade = f.has_upgrade;
  out.flags.expect_continue = f.expect_continue;
  out.flags.keep_alive = f.http10 ? (f.conn_keep_alive && !f.conn_close) : !f.conn_close;
  out.head_length = sr.end;
  return {ParseStatus::Done, ParseError::None, sr.end};
}

ParseResult parseResponseHead(std::string_view input, const Limits& limits,
                              std::string_view request_method, ResponseHead& out) {
  out.clear();
  const auto* s = reinterpret_cast<const unsigned char*>(input.data());
  const size_t line_limit = limits.max_request_line;
  const size_t scan_end = std::min({input.size(), line_limit, limits.max_head});
  const ParseResult out_of_bytes = scan_end == line_limit        ? fail(ParseError::StatusLineTooLong)
                                   : scan_end == limits.max_head ? fail(ParseError::HeadTooLarge)
                                                                 : needMore();

  // HTTP-version SP 3DIGIT [SP reason-phrase] CRLF
  const int minor = matchVersion(s, 0, scan_end);
  if (minor == -1) return out_of_bytes;
  if (minor < 0) return fail(ParseError::BadVersion);
  out.version_minor = minor;
  size_t pos = 8;
  if (pos >= scan_end) return out_of_bytes;
  if (s[pos] != ' ') return fail(ParseError::BadStatusLine);
  ++pos;
  int status = 0;
  for (int i = 0; i < 3; ++i, ++pos) {
    if (pos >= scan_end) return out_of_bytes;
    if (s[pos] < '0' || s[pos] > '9') return fail(ParseError::BadStatusLine);
    status = status * 10 + (s[pos] - '0');
  }
  // RFC 9110 section 15: values outside 100..599 are invalid.
  if (status < 100 || status > 599) return fail(ParseError::BadStatusLine);
  out.status = status;
  if (pos >= scan_end) return out_of_bytes;
  size_t reason_start = pos;
  if (s[pos] == ' ') {
    reason_start = ++pos;
    pos = skipFieldValue(s, pos, scan_end);
    if (pos >= scan_end) return out_of_bytes;
  }
  if (s[pos] != '\r') {
    if (s[pos] == '\n') return fail(ParseError::BareLF);
    return fail(ParseError::BadStatusLine);
  }
  if (pos + 1 >= scan_end) return out_of_bytes;
  if (s[pos + 1] != '\n') return fail(ParseError::BareCR);
  out.reason = input.substr(reason_start, pos - reason_start);
  pos += 2;

  FieldFacts f;
  f.is_request = false;
  f.http10 = minor == 0;
  const SectionResult sr = parseFields(input, pos, limits, out.headers, f);
  if (sr.status != ParseStatus::Done) return {sr.status, sr.error, 0};

  // RFC 9112 section 6.3, in its order.
  const bool no_body = request_method == "HEAD" || (status >= 100 && status < 200) ||
                       status == 204 || status == 304;
  if (f.has_cl) out.content_length = f.cl;
  if (no_body) {
    out.body = BodyKind::None;
  } else if (f.has_te) {
    out.body = f.te_chunked_final ? BodyKind::Chunked : BodyKind::UntilClose;
  } else if (f.has_cl) {
    out.body = f.cl > 0 ? BodyKind::ContentLength : BodyKind::None;
  } else {
    out.body = BodyKind::UntilClose;
  }
  out.flags.connection_close = f.conn_close;
  out.flags.connection_upgrade = f.conn_upgrade;
  out.flags.has_upgrade = f.has_upgrade;
  out.flags.keep_alive = f.http10 ? (f.conn_keep_alive && !f.conn_close) : !f.conn_close;
  // A body that ends at close cannot be followed by another response.
  if (out.body == BodyKind::UntilClose) out.flags.keep_alive = false;
  out.head_length = sr.end;
  return {ParseStatus::Done, ParseError::None, sr.end};
}

}  // namespace banyan::dp::http
