// Fuzzes the HTTP/2 frame input path: bytes (after the client preface) go into
// a ServerCodec as a client would send them, without TLS. Each request the
// codec hands out is answered (a small response, then finishStream), request
// bodies are drained, and output is produced between pieces, so the response
// and flow-control paths run too.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "h2/server_codec.h"

namespace {

using banyan::dp::h2::ServerCodec;

struct Handler : banyan::dp::h2::ServerHandler {
  std::vector<int32_t> requests;
  void onRequest(int32_t id, std::string head) override {
    if (head.size() < 16 || head.substr(head.size() - 4) != "\r\n\r\n") abort();
    requests.push_back(id);
  }
  void onRequestData(int32_t) override {}
  void onResponseWritable(int32_t) override {}
  void onStreamClosed(int32_t, uint32_t) override {}
};

constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Handler h;
  ServerCodec codec(h, {});
  std::string input(kPreface);
  input.append(reinterpret_cast<const char*>(data), size);
  std::string out;
  char buf[1024];
  // Feed in pieces whose sizes come from the input itself.
  size_t pos = 0;
  bool alive = true;
  while (pos < input.size() && alive) {
    size_t piece = 1 + (static_cast<unsigned char>(input[pos]) % 97);
    piece = std::min(piece, input.size() - pos);
    alive = codec.feed(std::string_view(input).substr(pos, piece));
    pos += piece;
    for (int32_t id : h.requests) {
      while (codec.takeRequest(id, buf, sizeof buf) > 0) {
      }
      ServerCodec::PushStatus st;
      std::string_view resp = (id % 3 == 0) ? "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nx-t: 1\r\n\r\n"
                                            : "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc";
      codec.pushResponse(id, resp, &st);
      if (st != ServerCodec::PushStatus::Ok) abort();
      codec.finishStream(id);
    }
    h.requests.clear();
    out.clear();
    if (!codec.produce(out, 1 << 16)) break;
  }
  out.clear();
  codec.produce(out, 1 << 20);
  return 0;
}
