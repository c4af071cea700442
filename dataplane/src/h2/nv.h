// Small helpers the HTTP/2 codecs and the response translator share: nghttp2
// name/value pairs, HTTP/1 chunk-size digits, and the tail of the nghttp2
// DATA-provider read callbacks (both codecs send a body from an outbox and
// end it with optional trailers). Internal to the h2 module.
#pragma once

#include <nghttp2/nghttp2.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "h2/response_translator.h"

namespace banyan::dp::h2 {

// A pair pointing into `name` and `value`: both must outlive the submit call.
nghttp2_nv makeNv(std::string_view name, std::string_view value);

// ASCII lowercase copy (HTTP/2 field names are lowercase, RFC 9113 section 8.2.1).
std::string lower(std::string_view s);

// The value of one hex digit, or -1.
int hexValue(char c);

// Appends a chunk-size line ("1a\r\n").
void appendHex(std::string& out, size_t n);

// DATA providers: moves up to `length` bytes from the front of `outbox`
// (starting at `*off`) into `buf`; the outbox is emptied once fully taken.
// Returns the bytes moved.
size_t takeOutbox(std::string& outbox, size_t* off, uint8_t* buf, size_t length);

// DATA providers: the callback's result once `n` bytes were moved. At the end
// of the body (`body_done`) the stream ends with this DATA frame, or with
// `trailers` as a HEADERS frame when there are any; with nothing to send the
// provider defers (sets `*deferred`) until the owner resumes it.
ssize_t finishRead(nghttp2_session* session, int32_t stream_id, size_t n, bool body_done,
                   const std::vector<Field>& trailers, bool* deferred, uint32_t* data_flags);

// Appends the session's pending frames to `out` until it holds `max` bytes or
// nothing is pending. False when nghttp2 fails (the session is unusable).
bool produceFrames(nghttp2_session* session, std::string& out, size_t max);

}  // namespace banyan::dp::h2
