// Turns the HTTP/1.1 response banyan-proxy produces for one HTTP/2 stream (a
// member's head as the session rewrote it, or a page Banyan answered itself)
// into what the stream carries: interim heads, the final head, body bytes
// without HTTP/1 framing, and the trailers of a chunked body.
//
// Pure: no I/O. The input was produced by a ClientSession from bytes that its
// own parser and ChunkedScanner already accepted, but the translator checks
// again and reports Invalid instead of trusting it (the fuzz target feeds it
// anything).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/parser.h"

namespace banyan::dp::h2 {

struct Field {
  std::string name;  // lowercase, as HTTP/2 requires (RFC 9113 section 8.2.1)
  std::string value;
};

struct ResponseHead {
  int status = 0;
  std::vector<Field> fields;  // connection-specific fields already removed
  bool final = true;          // false for 1xx interim responses
  bool has_body = false;      // a body (maybe empty) follows; false: the head ends the stream
};

class ResponseTranslator {
 public:
  enum class Status { Ok, Invalid };

  // `head_request`: the request was HEAD, so the response has no body whatever
  // its framing fields say.
  explicit ResponseTranslator(bool head_request = false) : head_request_(head_request) {}

  // Consumes all of `in`: finished heads are appended to `heads`, body bytes
  // to `body`. Bytes of an unfinished head or framing line are kept for the
  // next call.
  Status feed(std::string_view in, std::vector<ResponseHead>& heads, std::string& body);
  // The body ends at the end of the input (a response delimited by the
  // member closing its connection).
  void endOfInput();

  bool headDone() const { return state_ != State::Head; }
  bool done() const { return state_ == State::Done; }
  const std::vector<Field>& trailers() const { return trailers_; }
  size_t buffered() const { return pending_.size(); }

 private:
  enum class State { Head, Length, UntilClose, ChunkSize, ChunkExt, ChunkData, ChunkDataEnd,
                     Trailer, Done };
  Status parseHead(std::vector<ResponseHead>& heads, size_t* consumed);
  Status fail() {
    state_ = State::Done;
    invalid_ = true;
    return Status::Invalid;
  }

  bool head_request_;
  bool invalid_ = false;
  State state_ = State::Head;
  std::string pending_;  // an unfinished head, chunk-size line or trailer line
  uint64_t left_ = 0;    // Length: bytes left; ChunkData: bytes of the chunk left
  int size_digits_ = 0;
  std::vector<Field> trailers_;
  http::ResponseHead scratch_;
};

// True for fields RFC 9113 section 8.2.2 forbids in HTTP/2 messages
// ("connection-specific header fields"). `name` is compared without regard to case.
bool isConnectionSpecific(std::string_view name);

}  // namespace banyan::dp::h2
