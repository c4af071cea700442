// One HTTP/2 connection to a member (TLS whose ALPN selected "h2"), shared by
// the requests of its worker: each request is a stream, up to the member's
// SETTINGS_MAX_CONCURRENT_STREAMS at a time. It owns the socket, the SSL and
// the nghttp2 client session (h2::ClientCodec).
//
// A session sees a stream as an UpstreamConn in h2 mode (no socket of its
// own): it writes the HTTP/1.1 request it would send any member and reads the
// response back as HTTP/1.1 bytes, so header insertion, L7 policies,
// persistence, HSTS and error pages work as for HTTP/1.1 members.
//
// Lives on its worker's loop; the worker keeps it in its HTTP/2 pool (by the
// same key as idle HTTP/1.1 connections) until it closes. One worker owns its
// connections: nothing is shared between threads, nothing is locked.
#pragma once

#include <openssl/ssl.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "event/loop.h"
#include "h2/client_codec.h"

namespace banyan::dp::proxy {

class Worker;
class UpstreamConn;

class H2UpstreamConn final : public event::Handler, public event::Deletable, public h2::ClientHandler {
 public:
  // Takes over `fd` (registered in the loop) and `ssl` (handshake done).
  H2UpstreamConn(Worker& worker, int fd, SSL* ssl, std::string key, std::string scope);
  ~H2UpstreamConn() override;

  // Moves the socket's events here. False when the loop refuses (then close()d).
  bool start();
  // A new stream fits (not going away, below the member's stream limit).
  bool canOpen() const;
  // Binds `up` (an UpstreamConn in h2 mode) to a new stream.
  void attach(UpstreamConn& up, bool head_request, bool http10);
  // ---- for the stream's session ----
  size_t pushRequest(UpstreamConn& up, std::string_view bytes, bool* invalid);
  // `*ended`: no response byte will follow.
  size_t takeResponse(UpstreamConn& up, char* dst, size_t max, bool* ended);
  // The session is done with the stream (finished, or cancelled).
  void release(UpstreamConn& up);
  bool refused(const UpstreamConn& up) const;

  // No new streams: GOAWAY, and close once the streams in flight finished.
  void retire();
  // Worker teardown: ends every stream and the connection now.
  void closeNow() { close("shutdown"); }
  const std::string& key() const { return key_; }
  const std::string& scope() const { return scope_; }
  size_t streams() const { return ups_.size(); }
  uint64_t streamsOpened() const { return streams_opened_; }

  void onEvents(uint32_t events) override;
  // ---- h2::ClientHandler ----
  void onResponseData(uint32_t handle) override;
  void onRequestWritable(uint32_t handle) override;

 private:
  void advance();
  bool readMember();
  bool flushMember();
  void dispatch();
  void schedule();
  void updateIdle();
  void close(const char* why);

  Worker& w_;
  int fd_;
  SSL* ssl_;
  std::string key_;
  std::string scope_;
  h2::ClientCodec codec_;
  std::string out_;  // frames produced, not yet written
  size_t out_off_ = 0;
  bool readable_ = true;
  bool writable_ = true;
  bool read_wants_write_ = false;
  bool write_wants_read_ = false;
  bool eof_ = false;
  bool closed_ = false;
  bool in_advance_ = false;
  bool more_ = false;  // a session asked for I/O while advance() ran
  bool retired_ = false;
  uint64_t streams_opened_ = 0;
  event::Timer kick_;
  event::Timer idle_;
  std::unordered_map<uint32_t, UpstreamConn*> ups_;
  // Work noted inside codec callbacks, done once the codec returned.
  std::vector<uint32_t> wake_read_;
  std::vector<uint32_t> wake_write_;
};

}  // namespace banyan::dp::proxy
