// ChunkedScanner (declared in parser.h): finds the end of a chunked body,
// RFC 9112 section 7.1, one byte-level state per grammar position.
//
//   chunked-body = *chunk last-chunk trailer-section CRLF
//   chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
//   chunk-ext    = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
#include <algorithm>

#include "http/chars.h"
#include "http/parser.h"

namespace banyan::dp::http {

using namespace detail;

void ChunkedScanner::reset() {
  state_ = State::Size;
  error_ = ParseError::None;
  remaining_ = 0;
  last_chunk_ = false;
  size_digits_ = 0;
  line_bytes_ = 0;
  trailer_bytes_ = 0;
  name_bytes_ = 0;
}

// After a chunk size, an extension name or an extension value, ';' starts the
// next extension and CR ends the size line. False for any other byte.
bool ChunkedScanner::nextExtensionOrLineEnd(char c) {
  if (c == ';') {
    state_ = State::ExtName;
    name_bytes_ = 0;
    return true;
  }
  if (c == '\r') {
    state_ = State::SizeLf;
    return true;
  }
  return false;
}

ChunkedScanner::Step ChunkedScanner::fail(ParseError e) {
  state_ = State::Failed;
  error_ = e;
  return {ParseStatus::Invalid, e, 0};
}

ChunkedScanner::Step ChunkedScanner::feed(std::string_view input) {
  const auto* s = reinterpret_cast<const unsigned char*>(input.data());
  const size_t n = input.size();
  size_t pos = 0;
  while (pos < n) {
    switch (state_) {
      case State::Done:
        return {ParseStatus::Done, ParseError::None, pos};
      case State::Failed:
        return {ParseStatus::Invalid, error_, 0};
      case State::Data: {
        const uint64_t take = std::min<uint64_t>(remaining_, n - pos);
        pos += static_cast<size_t>(take);
        remaining_ -= take;
        if (remaining_ == 0) state_ = State::DataCr;
        continue;
      }
      default:
        break;
    }

    const unsigned char c = s[pos];
    // The size line (with extensions) and the trailer section are bounded:
    // an endless extension is a cheap way to pin a connection.
    if (state_ <= State::SizeLf) {
      if (++line_bytes_ > limits_.max_request_line) return fail(ParseError::BadChunkExtension);
    } else if (state_ >= State::TrailerStart && state_ <= State::FinalLf) {
      if (++trailer_bytes_ > limits_.max_head) return fail(ParseError::TrailerTooLarge);
    }

    switch (state_) {
      case State::Size:
        if (is(kHexDigit, c)) {
          // 16 hex digits fill a uint64; more (even leading zeros) is refused.
          if (++size_digits_ > 16) return fail(ParseError::ChunkSizeOverflow);
          const uint64_t d = c <= '9' ? c - '0' : (kChars.lower[c] - 'a' + 10);
          remaining_ = (remaining_ << 4) | d;
          break;
        }
        if (size_digits_ == 0) return fail(ParseError::BadChunkSize);
        last_chunk_ = remaining_ == 0;
        if (nextExtensionOrLineEnd(c)) {
          // another extension, or the end of the size line
        } else if (isWs(c)) {
          state_ = State::ExtBws;
        } else if (c == '\n') {
          return fail(ParseError::BareLF);
        } else {
          return fail(ParseError::BadChunkSize);
        }
        break;
      case State::ExtBws:
        if (nextExtensionOrLineEnd(c)) {
          // another extension, or the end of the size line
        } else if (c == '\n') {
          return fail(ParseError::BareLF);
        } else if (!isWs(c)) {
          return fail(ParseError::BadChunkExtension);
        }
        break;
      case State::ExtName:
        if (is(kTchar, c)) {
          ++name_bytes_;
        } else if (isWs(c) && name_bytes_ == 0) {
          // BWS after ";"
        } else if (name_bytes_ == 0) {
          return fail(c == '\n' ? ParseError::BareLF : ParseError::BadChunkExtension);
        } else if (isWs(c)) {
          state_ = State::ExtNameBws;
        } else if (c == '=') {
          state_ = State::ExtValStart;
        } else if (nextExtensionOrLineEnd(c)) {
        } else if (c == '\n') {
          return fail(ParseError::BareLF);
        } else {
          return fail(ParseError::BadChunkExtension);
        }
        break;
      case State::ExtNameBws:
        if (c == '=') {
          state_ = State::ExtValStart;
        } else if (nextExtensionOrLineEnd(c)) {
        } else if (c == '\n') {
          return fail(ParseError::BareLF);
        } else if (!isWs(c)) {
          return fail(ParseError::BadChunkExtension);
        }
        break;
      case State::ExtValStart:
        if (c == '"') {
          state_ = State::ExtQuoted;
        } else if (is(kTchar, c)) {
          state_ = State::ExtToken;
        } else if (c == '\n') {
          return fail(ParseError::BareLF);
        } else if (!isWs(c)) {
          return fail(ParseError::BadChunkExtension);
        }
        break;
      case State::ExtToken:
        if (is(kTchar, c)) {
          // more of the value
        } else if (isWs(c)) {
          state_ = State::ExtBws;
        } else if (nextExtensionOrLineEnd(c)) {
        } else if (c == '\n') {
          return fail(ParseError::BareLF);
        } else {
          return fail(ParseError::BadChunkExtension);
        }
        break;
      case State::ExtQuoted:
        if (c == '"') {
          state_ = State::ExtBws;
        } else if (c == '\\') {
          state_ = State::ExtQuotedEscape;
        } else if (!is(kQdtext, c)) {
          // CR or LF cannot appear inside a quoted-string: refusing them here
          // keeps every parser agreeing on where the size line ends.
          return fail(ParseError::BadChunkExtension);
        }
        break;
      case State::ExtQuotedEscape:
        if (!is(kFieldChar, c)) return fail(ParseError::BadChunkExtension);
        state_ = State::ExtQuoted;
        break;
      case State::SizeLf:
        if (c != '\n') return fail(ParseError::BareCR);
        line_bytes_ = 0;
        size_digits_ = 0;
        if (last_chunk_) {
          state_ = State::TrailerStart;
        } else {
          state_ = State::Data;
        }
        break;
      case State::DataCr:
        if (c != '\r') return fail(ParseError::BadChunkTerminator);
        state_ = State::DataLf;
        break;
      case State::DataLf:
        if (c != '\n') return fail(ParseError::BadChunkTerminator);
        state_ = State::Size;
        remaining_ = 0;
        break;
      case State::TrailerStart:
        if (c == '\r') {
          state_ = State::FinalLf;
        } else if (c == '\n') {
          return fail(ParseError::BareLF);
        } else if (is(kTchar, c)) {
          state_ = State::TrailerName;
        } else {
          // Includes obs-fold (SP/HTAB) and an empty name.
          return fail(ParseError::BadTrailer);
        }
        break;
      case State::TrailerName:
        if (c == ':') {
          state_ = State::TrailerValue;
        } else if (!is(kTchar, c)) {
          return fail(ParseError::BadTrailer);
        }
        break;
      case State::TrailerValue:
        if (c == '\r') {
          state_ = State::TrailerLf;
        } else if (c == '\n') {
          return fail(ParseError::BareLF);
        } else if (!is(kFieldChar, c)) {
          return fail(ParseError::BadTrailer);
        }
        break;
      case State::TrailerLf:
        if (c != '\n') return fail(ParseError::BareCR);
        state_ = State::TrailerStart;
        break;
      case State::FinalLf:
        if (c != '\n') return fail(ParseError::BareCR);
        state_ = State::Done;
        return {ParseStatus::Done, ParseError::None, pos + 1};
      case State::Data:
      case State::Done:
      case State::Failed:
        break;  // handled above
    }
    ++pos;
  }
  if (state_ == State::Done) return {ParseStatus::Done, ParseError::None, pos};
  if (state_ == State::Failed) return {ParseStatus::Invalid, error_, 0};
  return {ParseStatus::NeedMore, ParseError::None, pos};
}

}  // namespace banyan::dp::http
