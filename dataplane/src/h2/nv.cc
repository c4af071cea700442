#include "h2/nv.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace banyan::dp::h2 {

nghttp2_nv makeNv(std::string_view name, std::string_view value) {
  nghttp2_nv nv;
  nv.name = reinterpret_cast<uint8_t*>(const_cast<char*>(name.data()));
  nv.namelen = name.size();
  nv.value = reinterpret_cast<uint8_t*>(const_cast<char*>(value.data()));
  nv.valuelen = value.size();
  nv.flags = NGHTTP2_NV_FLAG_NONE;
  return nv;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void appendHex(std::string& out, size_t n) {
  char buf[24];
  int len = snprintf(buf, sizeof buf, "%zx\r\n", n);
  out.append(buf, static_cast<size_t>(len));
}

size_t takeOutbox(std::string& outbox, size_t* off, uint8_t* buf, size_t length) {
  size_t n = std::min(length, outbox.size() - *off);
  if (n == 0) return 0;
  std::memcpy(buf, outbox.data() + *off, n);
  *off += n;
  if (*off == outbox.size()) {
    outbox.clear();
    *off = 0;
  }
  return n;
}

ssize_t finishRead(nghttp2_session* session, int32_t stream_id, size_t n, bool body_done,
                   const std::vector<Field>& trailers, bool* deferred, uint32_t* data_flags) {
  if (body_done) {
    *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    if (!trailers.empty()) {
      std::vector<nghttp2_nv> nv;
      nv.reserve(trailers.size());
      for (const auto& t : trailers) nv.push_back(makeNv(t.name, t.value));
      if (nghttp2_submit_trailer(session, stream_id, nv.data(), nv.size()) == 0)
        *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
    }
    return static_cast<ssize_t>(n);
  }
  if (n == 0) {
    *deferred = true;
    return NGHTTP2_ERR_DEFERRED;
  }
  return static_cast<ssize_t>(n);
}

bool produceFrames(nghttp2_session* session, std::string& out, size_t max) {
  while (out.size() < max) {
    const uint8_t* data = nullptr;
    ssize_t n = nghttp2_session_mem_send(session, &data);
    if (n < 0) return false;
    if (n == 0) break;
    out.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
  }
  return true;
}

}  // namespace banyan::dp::h2
