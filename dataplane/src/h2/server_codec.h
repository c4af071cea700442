// The HTTP/2 server side of one client connection, over nghttp2, with no I/O:
// the owner feeds it the bytes it read (after TLS) and writes out what it
// produces. Each request stream becomes an HTTP/1.1 exchange for the proxy:
// the codec hands out the request as HTTP/1.1 (head, then the body framed with
// Content-Length or chunked, trailers as chunked trailers) and takes back the
// HTTP/1.1 response the proxy built, sent on the stream as HEADERS, DATA and
// trailers.
//
// Memory stays bounded both ways: request DATA is acknowledged
// (WINDOW_UPDATE) only as the proxy takes it, and a stream accepts response
// bytes only while less than kResponseCap of them wait for the client's
// flow-control window.
//
// Single-threaded: used on its connection's loop only. Handler callbacks run
// inside feed()/produce(); a handler must not call feed()/produce() from them.
#pragma once

#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "h2/response_translator.h"

namespace banyan::dp::h2 {

struct CodecLimits {
  size_t max_head = 65536;              // bytes of a request's header list (names + values)
  uint32_t max_concurrent_streams = 100;
  int32_t stream_window = 65535;        // per-stream receive window (request bodies)
  int32_t connection_window = 1 << 20;  // connection receive window
};

// What the codec tells its owner. Called from inside feed()/produce().
class ServerHandler {
 public:
  virtual ~ServerHandler() = default;
  // A request head is complete. `http1_head` is its HTTP/1.1 form; body bytes
  // (if any) follow through takeRequest().
  virtual void onRequest(int32_t stream_id, std::string http1_head) = 0;
  // More request body is available, or the request ended.
  virtual void onRequestData(int32_t stream_id) = 0;
  // Response space was freed (the client's window let data out).
  virtual void onResponseWritable(int32_t stream_id) = 0;
  // The stream is gone (finished, or reset by either side) while the proxy was
  // still working on it. `error_code` is the RST_STREAM/GOAWAY code, 0 if none.
  virtual void onStreamClosed(int32_t stream_id, uint32_t error_code) = 0;
};

class ServerCodec {
 public:
  static constexpr size_t kResponseCap = 65536;

  // A stream's result for the proxy's view of the response.
  enum class PushStatus { Ok, Invalid };

  ServerCodec(ServerHandler& handler, const CodecLimits& limits);
  ~ServerCodec();
  ServerCodec(const ServerCodec&) = delete;
  ServerCodec& operator=(const ServerCodec&) = delete;

  // False when the connection must end (bad preface, protocol error, flood);
  // produce() may still have a GOAWAY to send.
  bool feed(std::string_view bytes);
  // Appends frames to send to `out` until it holds at least `max` bytes or
  // nothing is left. False on a fatal error.
  bool produce(std::string& out, size_t max);
  bool wantRead() const;
  bool wantWrite() const;

  // ---- one stream, for the proxy ----
  // Moves up to `max` bytes of the HTTP/1.1 request body into `dst`.
  size_t takeRequest(int32_t stream_id, char* dst, size_t max);
  // The request's last byte was taken (or the stream is gone).
  bool requestEnded(int32_t stream_id) const;
  // Offers bytes of the HTTP/1.1 response; returns how many were taken (fewer
  // when the stream's buffer is full; all of them when the stream is gone).
  size_t pushResponse(int32_t stream_id, std::string_view bytes, PushStatus* status);
  // The response ended where the input ended (a body delimited by close).
  void endResponse(int32_t stream_id);
  // The proxy is done with the stream: an unfinished response is reset;
  // a finished one goes out, then a request still arriving is cut off with
  // RST_STREAM(NO_ERROR) (RFC 9113 section 8.1).
  void finishStream(int32_t stream_id);
  // Refuses a stream without a response.
  void resetStream(int32_t stream_id, uint32_t error_code);

  // Graceful end: GOAWAY naming the last stream taken; those streams finish.
  void goAway();
  bool goingAway() const { return going_away_; }
  size_t openStreams() const { return streams_.size(); }

  struct Stream;

 private:
  friend struct CodecCallbacks;
  Stream* find(int32_t id) const;
  void submitHead(Stream& s, const ResponseHead& head);
  void submitTrailersOrEnd(Stream& s);

  ServerHandler& handler_;
  CodecLimits limits_;
  nghttp2_session* session_ = nullptr;
  std::unordered_map<int32_t, std::unique_ptr<Stream>> streams_;
  bool going_away_ = false;
  bool fatal_ = false;
};

}  // namespace banyan::dp::h2
