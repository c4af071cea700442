// Invariants shared by the HTTP fuzz targets. Checks abort instead of using
// assert(): RelWithDebInfo defines NDEBUG, and the replay build must check too.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "http/parser.h"

namespace banyan::dp::http::fuzz {

#define HTTP_FUZZ_CHECK(cond)                                                \
  do {                                                                       \
    if (!(cond)) {                                                           \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                          \
    }                                                                        \
  } while (0)

inline void checkInside(std::string_view v, std::string_view input) {
  if (v.empty()) return;
  HTTP_FUZZ_CHECK(v.data() >= input.data());
  HTTP_FUZZ_CHECK(v.data() + v.size() <= input.data() + input.size());
}

inline void checkHeaders(const std::vector<Header>& headers, std::string_view head) {
  for (const Header& h : headers) {
    HTTP_FUZZ_CHECK(!h.name.empty());
    checkInside(h.name, head);
    checkInside(h.value, head);
  }
}

// Scans `body` once whole and once in pieces whose sizes come from `split`:
// the outcome must not depend on how the bytes arrived.
inline void checkChunked(std::string_view body, const Limits& limits, unsigned split) {
  ChunkedScanner whole(limits);
  const ChunkedScanner::Step w = whole.feed(body);
  HTTP_FUZZ_CHECK(w.consumed <= body.size());
  if (w.status == ParseStatus::NeedMore) HTTP_FUZZ_CHECK(w.consumed == body.size());
  if (w.status == ParseStatus::Invalid) HTTP_FUZZ_CHECK(w.error != ParseError::None);

  ChunkedScanner pieces(limits);
  const size_t piece = split % 7 + 1;
  size_t pos = 0;
  ChunkedScanner::Step p;
  while (pos < body.size()) {
    const std::string_view chunk = body.substr(pos, piece);
    p = pieces.feed(chunk);
    HTTP_FUZZ_CHECK(p.consumed <= chunk.size());
    pos += p.consumed;
    if (p.status != ParseStatus::NeedMore) break;
    HTTP_FUZZ_CHECK(p.consumed == chunk.size());
  }
  if (body.empty()) return;
  HTTP_FUZZ_CHECK(p.status == w.status);
  HTTP_FUZZ_CHECK(p.error == w.error);
  if (w.status == ParseStatus::Done) HTTP_FUZZ_CHECK(pos == w.consumed);
}

inline Limits smallLimits() {
  Limits l;
  l.max_request_line = 64;
  l.max_head = 256;
  l.max_headers = 8;
  return l;
}

}  // namespace banyan::dp::http::fuzz
