// Fuzzes the HTTP/2 client codec with frames from a hostile member: three
// streams are opened (a GET, a chunked POST, a HEAD), their requests go out,
// and the input is fed in pieces as the member's bytes, with output produced
// and responses taken between pieces. What the proxy is handed must stay an
// HTTP/1.1 response stream it can parse: it starts with a status line.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "h2/client_codec.h"

namespace {

using banyan::dp::h2::ClientCodec;

struct Handler : banyan::dp::h2::ClientHandler {
  void onResponseData(uint32_t) override {}
  void onRequestWritable(uint32_t) override {}
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Handler handler;
  ClientCodec codec(handler, {});
  bool invalid = false;
  uint32_t hs[3] = {codec.open(false, false), codec.open(false, false), codec.open(true, false)};
  codec.pushRequest(hs[0], "GET / HTTP/1.1\r\nHost: m\r\n\r\n", &invalid);
  codec.pushRequest(hs[1], "POST /u HTTP/1.1\r\nHost: m\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
                    &invalid);
  codec.pushRequest(hs[2], "HEAD / HTTP/1.1\r\nHost: m\r\n\r\n", &invalid);
  std::string out;
  codec.produce(out, 1 << 20);
  std::string got[3];
  std::string_view in(reinterpret_cast<const char*>(data), size);
  size_t piece = 1 + (size ? data[0] % 64 : 0);
  char buf[4096];
  while (!in.empty()) {
    size_t n = std::min(piece, in.size());
    bool ok = codec.feed(in.substr(0, n));
    in.remove_prefix(n);
    out.clear();
    codec.produce(out, 1 << 20);
    for (int i = 0; i < 3; ++i) {
      for (;;) {
        size_t t = codec.takeResponse(hs[i], buf, sizeof buf);
        if (t == 0) break;
        got[i].append(buf, t);
      }
    }
    if (!ok) break;
    if (in.size() % 7 == 0) codec.pushRequest(hs[1], "0\r\n\r\n", &invalid);
  }
  codec.connectionLost();
  for (int i = 0; i < 3; ++i) {
    if (!got[i].empty() && got[i].compare(0, 9, "HTTP/1.1 ") != 0) abort();
    if (!codec.responseEnded(hs[i])) abort();
    codec.release(hs[i]);
  }
  if (codec.openStreams() != 0) abort();
  return 0;
}
