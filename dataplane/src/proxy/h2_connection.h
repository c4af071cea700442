// One client connection speaking HTTP/2 (TLS with ALPN "h2") on its worker's
// loop. It owns the socket, the SSL and the nghttp2 server session
// (h2::ServerCodec); every request stream is a ClientSession of its own in
// stream mode, which routes, balances, applies L7 policies, persistence and
// header insertion and talks HTTP/1.1 to the member exactly as for an
// HTTP/1.1 client, reading its request from and writing its response to this
// connection instead of a socket.
//
// Created by a ClientSession whose TLS handshake selected "h2" (it hands over
// its socket, SSL and the bytes it already read). Owns its stream sessions:
// ending the connection ends them.
#pragma once

#include <netinet/in.h>
#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "event/loop.h"
#include "h2/server_codec.h"
#include "proxy/snapshot.h"
#include "proxy/worker.h"

namespace banyan::dp::proxy {

class ClientSession;

class H2Connection final : public Session, public event::Handler, public h2::ServerHandler {
 public:
  H2Connection(Worker& worker, std::shared_ptr<const Snapshot> snap, const ListenerRt& listener,
               std::shared_ptr<Counters> counters, int fd, SSL* ssl, const sockaddr_storage& peer,
               const sockaddr_storage& local);
  ~H2Connection() override;

  // Takes over the registered socket; `early` holds bytes already decrypted.
  void start(std::string_view early);
  void onEvents(uint32_t events) override;
  void onUpstreamEvents(UpstreamConn&, uint32_t) override {}
  void drain() override;
  void snapshotApplied() override;

  // ---- for its stream sessions ----
  size_t takeRequest(int32_t stream_id, char* dst, size_t max);
  bool requestEnded(int32_t stream_id) const;
  // Returns the bytes taken; `*invalid` when the response cannot be carried.
  size_t pushResponse(int32_t stream_id, std::string_view bytes, bool* invalid);
  void endResponse(int32_t stream_id);
  // The stream's session closed: finish (or reset) the stream and forget it.
  void streamDone(int32_t stream_id);

  // ---- h2::ServerHandler ----
  void onRequest(int32_t stream_id, std::string http1_head) override;
  void onRequestData(int32_t stream_id) override;
  void onResponseWritable(int32_t stream_id) override;
  void onStreamClosed(int32_t stream_id, uint32_t error_code) override;

 private:
  void advance();
  bool readClient();
  bool flushClient();
  void dispatch();
  void close(const char* why);
  void updateTimer();
  void onTimer();

  Worker& w_;
  std::shared_ptr<const Snapshot> snap_;
  const ListenerRt* lis_;
  std::shared_ptr<Counters> counters_;
  int fd_;
  SSL* ssl_;
  sockaddr_storage peer_;
  sockaddr_storage local_;
  h2::ServerCodec codec_;
  std::string out_;         // frames produced, not yet written
  size_t out_off_ = 0;
  bool readable_ = true;
  bool writable_ = true;
  bool read_wants_write_ = false;
  bool write_wants_read_ = false;
  bool eof_ = false;
  bool closed_ = false;
  bool in_advance_ = false;
  event::Timer timer_;
  event::Timer kick_;
  event::TimePoint client_act_;
  std::unordered_map<int32_t, ClientSession*> streams_;
  // Work noted inside codec callbacks, done once the codec returned.
  std::vector<std::pair<int32_t, std::string>> new_requests_;
  std::vector<int32_t> wake_read_;
  std::vector<int32_t> wake_write_;
};

}  // namespace banyan::dp::proxy
