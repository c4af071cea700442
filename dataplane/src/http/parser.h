// Strict HTTP/1.x message-head and chunked-body parsing (RFC 9110, RFC 9112).
// Pure: no I/O, no clock, no globals. The proxy calls these on bytes it has
// buffered; every refusal has its own ParseError so the access log and the
// counters can say exactly why a request got 400.
//
// Anything that could let two parsers disagree on where a message ends is
// Invalid, never "repaired": request smuggling is a security bug.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace banyan::dp::http {

enum class ParseStatus { Done, NeedMore, Invalid };

enum class ParseError {
  None,
  BadRequestLine,       // not `method SP target SP version CRLF`
  BadMethod,            // method is not a token
  BadTarget,            // empty target, or a byte outside visible ASCII
  BadVersion,           // not HTTP/1.0 or HTTP/1.1
  RequestLineTooLong,   // longer than Limits::max_request_line
  HeadTooLarge,         // head longer than Limits::max_head
  TooManyHeaders,
  BareCR,               // CR not followed by LF
  BareLF,               // LF not preceded by CR where CRLF is required
  ObsFold,              // line folding (a header line starting with SP/HTAB)
  WhitespaceBeforeColon,
  BadHeaderName,        // empty, or a byte that is not tchar
  BadHeaderValue,       // NUL or a control character other than HTAB
  MissingColon,
  BadContentLength,     // not 1*DIGIT, or overflows uint64
  ConflictingContentLength,  // several Content-Length values that differ
  ContentLengthWithTransferEncoding,
  BadTransferEncoding,  // final coding not chunked, chunked twice, unknown coding, or on HTTP/1.0
  MissingHost,          // HTTP/1.1 request without Host
  DuplicateHost,
  BadStatusLine,        // responses: not `HTTP/1.x SP 3DIGIT SP reason CRLF`
  BadChunkSize,         // not 1*HEXDIG
  ChunkSizeOverflow,    // more than 16 hex digits (leading zeros count)
  BadChunkTerminator,   // chunk data not followed by CRLF
  BadTrailer,           // trailer section fails header rules
  // Added after the first draft of this header; keep new values at the end.
  UnsupportedMethod,    // CONNECT: banyan-proxy does not tunnel
  StatusLineTooLong,    // responses: status line longer than Limits::max_request_line
  TrailerTooLarge,      // chunked trailer section longer than Limits::max_head
  BadChunkExtension,    // chunk-ext breaks RFC 9112 section 7.1.1, or the size line is
                        // longer than Limits::max_request_line
};

const char* parseErrorName(ParseError e);

struct Limits {
  size_t max_request_line = 8192;  // bytes including CRLF
  size_t max_head = 65536;         // whole head including the final CRLF CRLF
  size_t max_headers = 100;
};

struct Header {
  std::string_view name;   // as received (case preserved)
  std::string_view value;  // leading/trailing OWS stripped
};

enum class BodyKind {
  None,           // no body (GET without framing, 1xx/204/304, HEAD responses)
  ContentLength,  // exactly content_length bytes
  Chunked,        // chunked framing; use ChunkedScanner to find the end
  UntilClose,     // responses only: body runs until the member closes
};

// Connection-level facts the proxy needs, gathered while parsing.
struct MessageFlags {
  bool keep_alive = false;        // per version defaults + Connection header
  bool connection_close = false;  // Connection: close seen
  bool connection_upgrade = false;  // Connection: upgrade seen
  bool has_upgrade = false;       // Upgrade header present
  bool expect_continue = false;   // requests: Expect: 100-continue
};

struct RequestHead {
  std::string_view method;
  std::string_view target;
  int version_minor = 1;  // HTTP/1.<version_minor>
  std::string_view host;  // Host header value (empty if absent on HTTP/1.0)
  std::vector<Header> headers;
  BodyKind body = BodyKind::None;
  uint64_t content_length = 0;
  MessageFlags flags;
  size_t head_length = 0;  // bytes of the head including the final CRLF CRLF
  void clear();
};

struct ResponseHead {
  int version_minor = 1;
  int status = 0;
  std::string_view reason;
  std::vector<Header> headers;
  BodyKind body = BodyKind::None;
  uint64_t content_length = 0;
  MessageFlags flags;
  size_t head_length = 0;
  void clear();
};

struct ParseResult {
  ParseStatus status = ParseStatus::NeedMore;
  ParseError error = ParseError::None;
  size_t consumed = 0;  // Done: head_length; otherwise 0
};

// Parses one request head from the start of `input`. String views in `out`
// point into `input`. NeedMore while the head is incomplete and still within
// the limits; Invalid as soon as the bytes seen already break a rule or a limit.
// Done consumes the head only (one leading CRLF, if any, included): body bytes
// and pipelined requests after it are left for the caller.
//
// Beyond the rules listed with ParseError: CONNECT is UnsupportedMethod; the
// target must be origin-form ("/..."), absolute-form with "scheme://", or "*"
// for OPTIONS; Expect: 100-continue is reported on HTTP/1.1 only (RFC 9110
// section 10.1.1); Content-Length 0 gives BodyKind::None. The Host value is not
// checked beyond the field-value rules, and absolute-form targets keep their
// own authority: the caller decides which one routes.
ParseResult parseRequestHead(std::string_view input, const Limits& limits, RequestHead& out);

// Parses one response head. `request_method` decides HEAD semantics
// (RFC 9112 section 6.3); status 1xx/204/304 have no body (content_length still
// reports a Content-Length they carry). Transfer-Encoding without chunked last
// means UntilClose, and UntilClose always clears flags.keep_alive. Status must
// be 100..599; "HTTP/1.1 200\r\n" without SP and reason is accepted.
ParseResult parseResponseHead(std::string_view input, const Limits& limits,
                              std::string_view request_method, ResponseHead& out);

// Incremental scanner over a chunked body, to find where it ends without
// copying it. The proxy forwards the raw bytes it has scanned.
class ChunkedScanner {
 public:
  struct Step {
    ParseStatus status = ParseStatus::NeedMore;  // Done when the last chunk and trailers ended
    ParseError error = ParseError::None;
    size_t consumed = 0;  // bytes of `input` that belong to the body (forward these); 0 when Invalid
  };
  explicit ChunkedScanner(const Limits& limits = Limits{}) : limits_(limits) {}
  // Feeds the next bytes. Bytes after the end of the body are not consumed.
  Step feed(std::string_view input);
  void reset();
  // True once the last chunk and the trailer section have been scanned.
  bool done() const { return state_ == State::Done; }

 private:
  // One state per grammar position of RFC 9112 section 7.1, so that any byte
  // can be judged without lookahead and the scanner can stop anywhere.
  enum class State {
    Size,          // 1*HEXDIG
    ExtBws,        // BWS before ";" or the CRLF ending the size line
    ExtName,       // chunk-ext-name (after ";" and BWS)
    ExtNameBws,    // BWS after a name: "=", ";" or CRLF
    ExtValStart,   // BWS after "=", then token or quoted-string
    ExtToken,      // token chunk-ext-val
    ExtQuoted,     // inside a quoted-string chunk-ext-val
    ExtQuotedEscape,  // after a backslash inside the quoted-string
    SizeLf,        // CR of the size line seen, LF expected
    Data,          // remaining_ bytes of chunk-data
    DataCr,        // CRLF after chunk-data
    DataLf,
    TrailerStart,  // start of a trailer field line, or the final CRLF
    TrailerName,
    TrailerValue,
    TrailerLf,     // CR ending a trailer field line seen
    FinalLf,       // CR of the final CRLF seen
    Done,
    Failed,
  };
  Step fail(ParseError e);
  bool nextExtensionOrLineEnd(char c);

  Limits limits_;
  State state_ = State::Size;
  ParseError error_ = ParseError::None;
  uint64_t remaining_ = 0;
  bool last_chunk_ = false;  // the chunk being read has size 0
  size_t size_digits_ = 0;
  size_t line_bytes_ = 0;     // bytes of the current size line (extensions are bounded)
  size_t trailer_bytes_ = 0;  // bytes of the trailer section so far
  size_t name_bytes_ = 0;     // bytes of the current ext or trailer field name
};

// True if the comma-separated list `list` (a field value such as Connection or
// Transfer-Encoding) has an element equal to `token`, compared case-insensitively,
// with optional whitespace around elements ignored.
bool hasToken(std::string_view list, std::string_view token);

// Case-insensitive ASCII comparison for header names and tokens.
bool equalsIgnoreCase(std::string_view a, std::string_view b);

}  // namespace banyan::dp::http
