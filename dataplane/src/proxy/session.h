// One client connection on an HTTP or TCP listener, with at most one member
// connection attached at a time. Lives on its worker's loop thread.
//
// Bytes are forwarded straight from the buffer they were read into: a
// validated body prefix (`ready`) of the source buffer is written to the other
// side with writev, after any head Banyan generated for that side. Reading a
// side pauses while its bytes wait for the other side (backpressure).
#pragma once

#include <netinet/in.h>

#include <memory>
#include <string>

#include "event/loop.h"
#include "http/parser.h"
#include "proxy/buffer.h"
#include "proxy/snapshot.h"
#include "proxy/worker.h"

namespace banyan::dp::proxy {

// Tracks where a message body ends inside a source buffer.
struct BodyScan {
  http::BodyKind kind = http::BodyKind::None;
  uint64_t left = 0;           // ContentLength: bytes not yet scanned
  size_t ready = 0;            // bytes at the front of the buffer validated for forwarding
  bool done = false;           // the end of the body has been scanned
  http::ChunkedScanner chunks;
  void start(http::BodyKind k, uint64_t length);
  // Scans bytes of `src` past `ready`. False on invalid chunked framing.
  bool scan(const Buffer& src, bool src_eof);
  bool complete() const { return done && ready == 0; }
};

class H2Connection;

class ClientSession final : public Session, public event::Handler, public event::IoUser {
 public:
  ClientSession(Worker& worker, std::shared_ptr<const Snapshot> snap, const ListenerRt& listener,
                int fd, const sockaddr_storage& peer, const sockaddr_storage& local);
  // Stream mode: one HTTP/2 stream of `conn`, whose request arrives as the
  // HTTP/1.1 `head` (then body bytes through the connection). No socket; the
  // connection's SSL is only read for TLS facts (SNI, client certificate).
  ClientSession(Worker& worker, std::shared_ptr<const Snapshot> snap, const ListenerRt& listener,
                H2Connection& conn, int32_t stream_id, std::string head, SSL* conn_ssl,
                const sockaddr_storage& peer, const sockaddr_storage& local);
  ~ClientSession() override;

  // Stream mode, for the connection: more request bytes or response room.
  void h2Wake(bool readable, bool writable);
  // Stream mode: the connection forgets this session (it must not call back).
  void h2Detach();
  // Stream mode: the stream is gone; closes without answering.
  void h2Abort(const char* termination);

  void start();
  void onEvents(uint32_t events) override;
  void onUpstreamEvents(UpstreamConn& up, uint32_t events) override;
  void drain() override;
  void h2WaitOver() override;

  // event::IoUser: reads and writes of plain sockets go through the loop's
  // batch when it has one (see EventLoop::queueIo).
  bool prepareIo(uint32_t tag, event::IoOp& op) override;
  bool ioDone(uint32_t tag, ssize_t result) override;
  void ioSettled() override;

 private:
  // Inspect: a TCP/HTTPS listener whose L7 policies look at the TLS
  // ClientHello's SNI holds the client's first bytes until it can pick a pool.
  enum class Phase { ProxyHeader, Head, Request, Inspect, TcpConnect, Tunnel, Closing };
  enum IoTag : uint32_t { kIoClientRecv, kIoMemberRecv, kIoClientSend, kIoMemberSend };
  static constexpr uint8_t ioBit(uint32_t tag) { return static_cast<uint8_t>(1u << tag); }
  // Hands a plain-socket read or write to the loop's batch; always false (no
  // progress yet: ioSettled resumes the session with the result).
  bool queueIo(IoTag tag, size_t cap = 0);
  // What a read or write result means for the session, shared by the direct
  // system calls and the batch. Received bytes are committed by the caller;
  // `r` is the byte count or -errno.
  bool afterClientRecv(ssize_t r, size_t room);
  bool afterMemberRecv(UpstreamConn& up, ssize_t r, size_t room);
  bool afterClientSend(ssize_t r, size_t offered);
  bool afterMemberSend(UpstreamConn& up, ssize_t r, size_t offered);
  void consumeSentToClient(size_t done);
  void consumeSentToMember(UpstreamConn& up, size_t done);
  // The prefix of the member's (client's) buffer that may go to the client (member) now.
  size_t clientBodyReady() const;
  size_t memberBodyReady() const;

  void advance();
  // TLS chose "h2": hands the socket over to an H2Connection and ends.
  void handOffToH2();
  bool readClient(size_t cap);
  bool readUpstream(size_t cap);
  bool flushClient();
  bool flushStream(size_t body);
  bool flushUpstream();
  bool flushH2Upstream();
  bool stepProxyHeader();
  // TCP and HTTPS listeners, once the PROXY header (if any) is read: inspects
  // the first bytes when the L7 policies need the SNI, else picks the pool now.
  void beginTcp();
  bool stepInspect();
  // Applies the L7 policies to a passed-through connection whose ClientHello
  // named `sni` ("" for none, or not TLS) and connects the pool they chose.
  void routeConnection(std::string_view sni);
  bool stepHead();
  bool stepResponse();
  void startRequest(size_t head_length);
  bool resolveListener();
  bool attachMember();
  // `may_wait`: the request's first attempt, which may wait for another
  // session's handshake offering h2 (Worker::waitH2) instead of connecting.
  void connectMember(bool may_wait = false);
  // The awaited handshake settled: a stream of its HTTP/2 connection, an idle
  // connection, or a connection of our own.
  void resumeAfterH2Wait();
  void onConnected();
  void onConnectFailed(int err);
  bool retryOnFreshConnection();
  void finishResponse();
  void sendError(int status, const char* termination);
  // Answers with `response` (a whole message) and closes once it is out.
  void sendLocal(int status, std::string response, const char* termination);
  // PROMETHEUS listeners: answers the request head in w_.req_scratch locally.
  void answerScrape(size_t head_length);
  // L7 policies and persistence cookies of the request head in w_.req_scratch:
  // sets req_pool_ and req_cookie_, or answers (REJECT, redirects) and returns false.
  bool routeRequest();
  const MemberRt* persistentMember();
  void rememberMember(const MemberRt& member);
  void releaseUpstream(bool reusable);
  void dropPrivateUpstream();
  void close();
  void updateTimer();
  void onTimer();
  void logAccess();
  bool tunnelStep();
  void appendSslHeaders(std::string& h);
  void shutdownClientWrite();
  void shutdownUpstreamWrite(UpstreamConn& up);
  struct SplicePipe;
  bool spliceStep(SplicePipe& pipe, bool to_member);

  Worker& w_;
  std::shared_ptr<const Snapshot> snap_;
  const ListenerRt* lis_;
  std::shared_ptr<Counters> lis_counters_;  // the listener's, even if a reload drops it
  bool http_;
  int fd_;
  sockaddr_storage peer_;
  sockaddr_storage local_;
  Phase phase_;
  Buffer cin_;
  Buffer cout_;
  bool c_readable_ = false;
  bool c_writable_ = true;
  bool c_eof_ = false;
  bool c_hup_ = false;  // the peer's FIN is queued behind the data: read until 0
  bool c_bulk_ = false;  // the last read was a large one: read directly (kBatchMaxBytes)
  bool c_shut_wr_ = false;
  bool closed_ = false;
  // Batched I/O: operations queued or in flight (ioBit per IoTag), results
  // delivered but not yet applied, and what each prepared operation offered.
  uint8_t io_queued_ = 0;
  uint8_t io_done_ = 0;
  ssize_t io_result_[4] = {};
  size_t io_len_[4] = {};
  size_t io_cap_[2] = {};          // the read limits the receives were queued with
  UpstreamConn* io_up_ = nullptr;  // the member connection the member operations were prepared for
  bool close_after_ = false;  // close once cout_ is flushed
  UpstreamConn* up_ = nullptr;
  // PROXY/PROXYV2 pools: the member connection that carries this client's
  // PROXY header, kept between requests for this client only.
  UpstreamConn* private_up_ = nullptr;
  const PoolRt* pool_ = nullptr;
  const MemberRt* member_ = nullptr;
  uint32_t attempts_ = 0;
  // Waiting for a handshake toward the member (no up_ meanwhile), and the
  // worker said it settled (acted on in advance()).
  bool h2_waiting_ = false;
  bool h2_wait_over_ = false;
  event::Timer timer_;
  event::Timer kick_;  // resumes advance() next iteration after a long burst
  event::TimePoint since_;        // phase-specific start (idle, head, connect)
  event::TimePoint client_act_;
  event::TimePoint member_act_;

  // The request in flight (TCP, HTTPS listeners: the connection).
  const PoolRt* req_pool_ = nullptr;  // the pool L7 policies chose (or the default pool)
  // HTTP_COOKIE: the member id the request's token names (valid tokens only);
  // APP_COOKIE: the application cookie's value. Empty: none.
  std::string req_cookie_;
  bool insert_cookie_ = false;    // HTTP_COOKIE: send the member's token with the response
  std::string up_head_;           // head as sent to the member (kept for one retry)
  BodyScan req_;
  BodyScan resp_;
  bool req_head_method_ = false;  // HEAD: the response has no body
  bool req_keep_alive_ = false;
  bool req_upgrade_ = false;
  int req_minor_ = 1;
  bool resp_head_done_ = false;
  bool resp_reusable_ = false;
  bool member_counted_ = false;
  uint64_t resp_bytes_ = 0;       // bytes received from the member for this request
  int status_ = 0;
  uint64_t req_bytes_in_ = 0;
  uint64_t req_bytes_out_ = 0;
  event::TimePoint req_start_;
  const char* termination_ = "-";
  // Zero-copy relaying for bulk tunnels: once a direction shows a run of large
  // reads, it moves through a pipe with splice(2).
  std::unique_ptr<SplicePipe> c2m_;
  std::unique_ptr<SplicePipe> m2c_;
  uint32_t c2m_bulk_ = 0;  // consecutive large reads, client to member
  uint32_t m2c_bulk_ = 0;
  std::string log_method_;
  std::string log_target_;
  // TERMINATED_HTTPS: the client's TLS on fd_ (handshake inside the first reads).
  SSL* ssl_ = nullptr;
  bool c_read_wants_write_ = false;
  bool c_write_wants_read_ = false;
  bool tls_facts_ = false;  // sni_ and cert_ filled (once the handshake is done)
  std::string sni_;         // sent on to members of TLS pools, as Octavia does
  std::unique_ptr<tls::ClientCertInfo> cert_;
  bool alpn_checked_ = false;
  // Stream mode (HTTP/2): the connection carrying this stream, null once it
  // forgot the stream; h2_mode_ stays set.
  H2Connection* h2_ = nullptr;
  int32_t h2_stream_ = 0;
  bool h2_mode_ = false;
};

}  // namespace banyan::dp::proxy
