// The HTTP/2 client side of one member connection, over nghttp2, with no I/O:
// the owner feeds it the bytes it read (after TLS) and writes out what it
// produces. Many streams share the connection; each carries one request the
// proxy wrote as HTTP/1.1 (the head and body bytes it would send an HTTP/1.1
// member) and hands back the member's response as HTTP/1.1 bytes: interim
// heads, the final head, then the body framed with Content-Length when the
// member stated one, chunked otherwise (trailers become chunked trailers), or
// delimited by the end of the stream for HTTP/1.0 requests. So the proxy's
// HTTP/1.1 response path (persistence cookies, HSTS, error pages, the HTTP/2
// client side) runs unchanged on answers from HTTP/2 members.
//
// Memory stays bounded both ways: a stream accepts request bytes only while
// fewer than kRequestCap wait for the member's window, and response DATA is
// acknowledged (WINDOW_UPDATE) only as the proxy takes it.
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

namespace banyan::dp::h2 {

struct ClientLimits {
  size_t max_head = 65536;              // bytes of a response's header list (names + values)
  int32_t stream_window = 65535;        // per-stream receive window (response bodies)
  int32_t connection_window = 1 << 20;  // connection receive window
  uint32_t max_streams = 1000;          // our own cap, below the member's MAX_CONCURRENT_STREAMS
};

// What the codec tells its owner, by stream handle. Called from inside feed()/produce().
class ClientHandler {
 public:
  virtual ~ClientHandler() = default;
  // Response bytes arrived, or the stream ended (normally or not).
  virtual void onResponseData(uint32_t handle) = 0;
  // Request room was freed (the member's window let data out).
  virtual void onRequestWritable(uint32_t handle) = 0;
};

class ClientCodec {
 public:
  static constexpr size_t kRequestCap = 65536;
  static constexpr size_t kResponseCap = 65536;

  ClientCodec(ClientHandler& handler, const ClientLimits& limits);
  ~ClientCodec();
  ClientCodec(const ClientCodec&) = delete;
  ClientCodec& operator=(const ClientCodec&) = delete;

  // False when the connection must end (protocol error, flood); produce() may
  // still have a GOAWAY to send.
  bool feed(std::string_view bytes);
  // Appends frames to send to `out` until it holds at least `max` bytes or
  // nothing is left. False on a fatal error.
  bool produce(std::string& out, size_t max);
  bool wantRead() const;
  bool wantWrite() const;

  // Another stream fits: not going away, and fewer streams than the member's
  // SETTINGS_MAX_CONCURRENT_STREAMS (and our own cap).
  bool canOpen() const;
  size_t openStreams() const { return streams_.size(); }
  // The member sent GOAWAY or the connection failed: no new streams.
  bool goingAway() const { return going_away_ || fatal_; }
  // Graceful end from our side: GOAWAY; open streams finish.
  void goAway();
  // The connection is gone: every stream not yet finished ends as reset
  // (never-sent streams as refused, so they may be retried).
  void connectionLost();

  // ---- one stream, for the proxy ----
  // A new stream (a codec-local handle, not the HTTP/2 stream id: the id is
  // assigned once the request head arrived). `head_request`: the response has
  // no body; `http10`: the response body is delimited by the stream's end.
  uint32_t open(bool head_request, bool http10);
  // Offers bytes of the HTTP/1.1 request; returns how many were taken (fewer
  // when the stream's buffer is full). `*invalid` when the bytes are no
  // request HTTP/2 can carry (CONNECT, bad framing): the stream is reset.
  size_t pushRequest(uint32_t handle, std::string_view bytes, bool* invalid);
  // Moves up to `max` bytes of the HTTP/1.1 response into `dst`.
  size_t takeResponse(uint32_t handle, char* dst, size_t max);
  // No more response bytes will come and all were taken (complete or reset).
  bool responseEnded(uint32_t handle) const;
  // The response ended completely (END_STREAM from the member).
  bool responseComplete(uint32_t handle) const;
  // The member did not process the request (REFUSED_STREAM, a stream above
  // GOAWAY's last-stream-id, or never sent): safe to send again elsewhere.
  bool refused(uint32_t handle) const;
  // The RST_STREAM/GOAWAY code that ended the stream, 0 if none.
  uint32_t resetCode(uint32_t handle) const;
  // The proxy is done with the stream: an unfinished one is reset (CANCEL).
  void release(uint32_t handle);

  struct Stream;

 private:
  friend struct ClientCallbacks;
  Stream* find(uint32_t handle) const;
  bool submitRequest(Stream& s, size_t head_length);
  bool translateBody(Stream& s, std::string_view in, size_t* used);
  void finish(Stream& s);
  void erase(Stream& s);
  void resumeIfDeferred(Stream& s);

  ClientHandler& handler_;
  ClientLimits limits_;
  nghttp2_session* session_ = nullptr;
  std::unordered_map<uint32_t, std::unique_ptr<Stream>> streams_;
  uint32_t next_handle_ = 1;
  bool going_away_ = false;
  bool fatal_ = false;
};

}  // namespace banyan::dp::h2
