// ClientSession: moving bytes. Reads and writes on both sides (plain sockets,
// TLS, an HTTP/2 stream of the client connection or of a member connection)
// and the body scan that decides how much of a buffer may be forwarded.
#include "proxy/session.h"

#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

#include "banyan/common/logging.h"
#include "net/socket.h"
#include "proxy/h2_connection.h"
#include "proxy/h2_upstream.h"
#include "tls/tls_io.h"

namespace banyan::dp::proxy {

namespace {

// send(2) for one buffer, sendmsg(2) for two: both skip the VFS layer (and
// its file-position lock) that writev(2) goes through on sockets.
ssize_t sendIov(int fd, iovec* iov, int cnt) {
  if (cnt == 1) return ::send(fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL);
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = static_cast<size_t>(cnt);
  return ::sendmsg(fd, &msg, MSG_NOSIGNAL);
}

size_t iovBytes(const iovec* iov, int cnt) { return iov[0].iov_len + (cnt > 1 ? iov[1].iov_len : 0); }

// What goes out to one side: the head Banyan built for it, then the
// forwardable prefix of the other side's buffer.
int sendIovs(iovec* iov, const Buffer& head, const Buffer& src, size_t body) {
  int cnt = 0;
  if (!head.empty()) iov[cnt++] = {const_cast<char*>(head.data()), head.size()};
  if (body) iov[cnt++] = {const_cast<char*>(src.data()), body};
  return cnt;
}

// Space to read into `b` (which holds less than `cap`): a block's worth at most.
char* readRoom(Buffer& b, size_t cap, size_t* room) {
  size_t want = cap - b.size();
  char* p = b.writable(std::min<size_t>(want, 4096));
  *room = std::min(b.writableSize(), want);
  return p;
}

// One TLS record's worth of the two buffers, as one SSL_write: a head and the
// start of a body become one record instead of two. The length offered only
// grows between retries (the buffers' fronts stay until written), as OpenSSL
// requires after WANT_READ/WANT_WRITE.
constexpr size_t kTlsRecord = 16384;

// Reads and writes go into the worker's batch (one kernel entry for the round) while
// they are small: that is where a system call costs as much as the work. A large one
// is copy-bound, and waiting for the whole round's other operations only adds to its
// latency: with every operation batched, 16 KiB responses had a p99 of 5.8 ms against
// 3.7 ms direct, for 5 % more requests per CPU-second. So a write of more than this,
// and the reads after a read of at least this, are made directly.
constexpr size_t kBatchMaxBytes = 8192;

tls::IoResult tlsWriteIov(SSL* ssl, iovec* iov, int cnt) {
  size_t len = std::min(iovBytes(iov, cnt), kTlsRecord);
  if (cnt == 1 || iov[0].iov_len >= len)
    return tls::write(ssl, static_cast<const char*>(iov[0].iov_base), len);
  thread_local char scratch[kTlsRecord];
  std::memcpy(scratch, iov[0].iov_base, iov[0].iov_len);
  std::memcpy(scratch + iov[0].iov_len, iov[1].iov_base, len - iov[0].iov_len);
  return tls::write(ssl, scratch, len);
}

}  // namespace

void BodyScan::start(http::BodyKind k, uint64_t length) {
  kind = k;
  left = length;
  ready = 0;
  done = k == http::BodyKind::None || (k == http::BodyKind::ContentLength && length == 0);
  if (k == http::BodyKind::Chunked) chunks.reset();
}

bool BodyScan::scan(const Buffer& src, bool src_eof) {
  if (done) return true;
  switch (kind) {
    case http::BodyKind::None:
      done = true;
      return true;
    case http::BodyKind::ContentLength: {
      uint64_t take = std::min<uint64_t>(src.size() - ready, left);
      ready += take;
      left -= take;
      done = left == 0;
      return true;
    }
    case http::BodyKind::Chunked: {
      auto step = chunks.feed(src.view().substr(ready));
      if (step.status == http::ParseStatus::Invalid) return false;
      ready += step.consumed;
      done = step.status == http::ParseStatus::Done;
      return true;
    }
    case http::BodyKind::UntilClose:
      ready = src.size();
      done = src_eof;
      return true;
  }
  return true;
}

bool ClientSession::readClient(size_t cap) {
  if (!c_readable_ || c_eof_ || cin_.size() >= cap) return false;
  if (h2_mode_) {
    // The stream's request body, as HTTP/1.1 bytes the connection decoded.
    if (h2_ == nullptr) {
      c_eof_ = true;
      c_readable_ = false;
      return true;
    }
    size_t room;
    char* p = readRoom(cin_, cap, &room);
    size_t n = h2_->takeRequest(h2_stream_, p, room);
    if (n > 0) {
      cin_.commit(n);
      req_bytes_in_ += n;
      client_act_ = w_.loop().now();
      return true;
    }
    c_readable_ = false;
    cin_.releaseIfEmpty();
    if (h2_->requestEnded(h2_stream_)) {
      c_eof_ = true;
      return true;
    }
    return false;
  }
  if (ssl_ && phase_ == Phase::ProxyHeader) {
    // The PROXY header precedes the TLS handshake: peek at it, so the TLS
    // bytes after it stay in the socket for OpenSSL. stepProxyHeader removes
    // what it consumed.
    cin_.clear();
    char* p = cin_.writable(cap);
    ssize_t n = ::recv(fd_, p, std::min(cin_.writableSize(), cap), MSG_PEEK);
    c_readable_ = false;  // more bytes bring a new edge
    if (n > 0) {
      cin_.commit(static_cast<size_t>(n));
      return true;
    }
    if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
      c_eof_ = true;
      return true;
    }
    cin_.releaseIfEmpty();
    return false;
  }
  if (!ssl_ && !c_bulk_ && w_.loop().ioBatching()) return queueIo(kIoClientRecv, cap);
  size_t room;
  char* p = readRoom(cin_, cap, &room);
  if (ssl_) {
    tls::IoResult r = tls::read(ssl_, p, room);
    switch (r.status) {
      case tls::IoStatus::kDone:
        cin_.commit(r.bytes);
        bump(lis_counters_->slot(w_.index()).bytes_in, static_cast<uint64_t>(r.bytes));
        req_bytes_in_ += r.bytes;
        client_act_ = w_.loop().now();
        // OpenSSL may hold more of the record, or more records may wait:
        // only a read that cannot progress ends the readable state.
        return true;
      case tls::IoStatus::kWantRead:
        c_readable_ = false;
        cin_.releaseIfEmpty();
        return false;
      case tls::IoStatus::kWantWrite:
        c_readable_ = false;
        c_read_wants_write_ = true;
        cin_.releaseIfEmpty();
        return false;
      case tls::IoStatus::kClosed:
        c_eof_ = true;
        c_readable_ = false;
        cin_.releaseIfEmpty();
        return true;
      case tls::IoStatus::kError:
        break;
    }
    bool handshake_done = SSL_is_init_finished(ssl_);
    if (!handshake_done) bump(lis_counters_->slot(w_.index()).errors);
    termination_ = handshake_done ? "tls_error" : "tls_handshake";
    c_eof_ = true;
    c_readable_ = false;
    close_after_ = true;
    cout_.clear();
    return true;
  }
  ssize_t n = ::recv(fd_, p, room, 0);
  if (n > 0) cin_.commit(static_cast<size_t>(n));
  return afterClientRecv(n >= 0 ? n : -errno, room);
}

bool ClientSession::afterClientRecv(ssize_t r, size_t room) {
  c_bulk_ = r >= static_cast<ssize_t>(kBatchMaxBytes);
  if (r > 0) {
    bump(lis_counters_->slot(w_.index()).bytes_in, static_cast<uint64_t>(r));
    req_bytes_in_ += static_cast<uint64_t>(r);
    client_act_ = w_.loop().now();
    // A short read drained the socket: wait for the next edge.
    if (static_cast<size_t>(r) < room && !c_hup_) c_readable_ = false;
    return true;
  }
  if (r == 0) {
    c_eof_ = true;
    c_readable_ = false;
    cin_.releaseIfEmpty();
    return true;
  }
  if (r == -EAGAIN || r == -EINTR) {
    if (r == -EAGAIN) c_readable_ = false;
    cin_.releaseIfEmpty();
    return false;
  }
  termination_ = "client_reset";
  c_eof_ = true;
  c_readable_ = false;
  close_after_ = true;
  cout_.clear();
  return true;
}

bool ClientSession::readUpstream(size_t cap) {
  UpstreamConn* up = up_;
  if (!up || !up->connected || !up->readable || up->eof || up->in.size() >= cap) return false;
  if (!up->h2_mode && !up->ssl && !up->bulk && w_.loop().ioBatching()) return queueIo(kIoMemberRecv, cap);
  size_t room;
  char* p = readRoom(up->in, cap, &room);
  if (up->h2_mode) {
    // A stream of an HTTP/2 member connection: its response as HTTP/1.1 bytes.
    bool ended = up->h2 == nullptr;
    size_t n = ended ? 0 : up->h2->takeResponse(*up, p, room, &ended);
    if (n > 0) {
      up->in.commit(n);
      resp_bytes_ += n;
      if (member_) bump(member_->counters->slot(w_.index()).bytes_out, static_cast<uint64_t>(n));
      member_act_ = w_.loop().now();
      return true;
    }
    up->readable = false;
    if (!ended) return false;
    if (up->h2) up->h2_refused = up->h2->refused(*up);
    up->eof = true;
    return true;
  }
  if (up->ssl) {
    tls::IoResult r = tls::read(up->ssl, p, room);
    switch (r.status) {
      case tls::IoStatus::kDone:
        up->in.commit(r.bytes);
        resp_bytes_ += r.bytes;
        if (member_) bump(member_->counters->slot(w_.index()).bytes_out, static_cast<uint64_t>(r.bytes));
        member_act_ = w_.loop().now();
        return true;
      case tls::IoStatus::kWantRead:
        up->readable = false;
        return false;
      case tls::IoStatus::kWantWrite:
        up->readable = false;
        up->tls_read_wants_write = true;
        return false;
      case tls::IoStatus::kClosed:
      case tls::IoStatus::kError:
        up->eof = true;
        up->readable = false;
        return true;
    }
  }
  ssize_t n = ::recv(up->fd, p, room, 0);
  if (n > 0) up->in.commit(static_cast<size_t>(n));
  return afterMemberRecv(*up, n >= 0 ? n : -errno, room);
}

bool ClientSession::afterMemberRecv(UpstreamConn& up, ssize_t r, size_t room) {
  up.bulk = r >= static_cast<ssize_t>(kBatchMaxBytes);
  if (r > 0) {
    resp_bytes_ += static_cast<uint64_t>(r);
    if (member_) bump(member_->counters->slot(w_.index()).bytes_out, static_cast<uint64_t>(r));
    member_act_ = w_.loop().now();
    if (static_cast<size_t>(r) < room && !up.hup) up.readable = false;
    return true;
  }
  if (r == 0 || (r != -EAGAIN && r != -EINTR)) {
    up.eof = true;
    up.readable = false;
    return true;
  }
  if (r == -EAGAIN) up.readable = false;
  return false;
}

// Writes cout_ then the forwardable prefix of the member's buffer.
size_t ClientSession::clientBodyReady() const {
  bool forwarding = phase_ == Phase::Request || phase_ == Phase::Tunnel || phase_ == Phase::Closing;
  return up_ && forwarding ? resp_.ready : 0;
}

size_t ClientSession::memberBodyReady() const {
  return phase_ == Phase::Request || phase_ == Phase::Tunnel ? req_.ready : 0;
}

bool ClientSession::flushClient() {
  if (!c_writable_ || closed_) return false;
  size_t body = clientBodyReady();
  if (cout_.empty() && body == 0) return false;
  if (h2_mode_) return flushStream(body);
  if (!ssl_ && cout_.size() + body <= kBatchMaxBytes && w_.loop().ioBatching()) return queueIo(kIoClientSend);
  iovec iov[2];
  int cnt = sendIovs(iov, cout_, up_ ? up_->in : cout_, body);
  size_t done = 0;
  if (ssl_) {
    tls::IoResult r = tlsWriteIov(ssl_, iov, cnt);
    if (r.status == tls::IoStatus::kWantWrite) {
      c_writable_ = false;
      return false;
    }
    if (r.status == tls::IoStatus::kWantRead) {
      c_writable_ = false;
      c_write_wants_read_ = true;
      return false;
    }
    if (r.status != tls::IoStatus::kDone) {
      termination_ = "client_reset";
      close();
      return false;
    }
    done = r.bytes;
  } else {
    ssize_t n = sendIov(fd_, iov, cnt);
    return afterClientSend(n >= 0 ? n : -errno, iovBytes(iov, cnt));
  }
  consumeSentToClient(done);
  return true;
}

bool ClientSession::afterClientSend(ssize_t r, size_t offered) {
  if (r < 0) {
    if (r == -EAGAIN) {
      c_writable_ = false;
      return false;
    }
    if (r == -EINTR) return false;
    termination_ = "client_reset";
    close();
    return false;
  }
  consumeSentToClient(static_cast<size_t>(r));
  if (static_cast<size_t>(r) < offered) c_writable_ = false;
  return true;
}

void ClientSession::consumeSentToClient(size_t done) {
  bump(lis_counters_->slot(w_.index()).bytes_out, done);
  req_bytes_out_ += done;
  client_act_ = w_.loop().now();
  size_t from_out = std::min(done, cout_.size());
  cout_.consume(from_out);
  size_t from_body = done - from_out;
  if (from_body) {
    up_->in.consume(from_body);
    resp_.ready -= from_body;
  }
  cout_.releaseIfEmpty();
}

// Stream mode: hands cout_ then the forwardable body to the HTTP/2
// connection, which takes what fits in the stream's buffer.
bool ClientSession::flushStream(size_t body) {
  if (h2_ == nullptr) {
    termination_ = "client_reset";
    close();
    return false;
  }
  bool invalid = false;
  bool full = false;
  size_t done = 0;
  if (!cout_.empty()) {
    size_t n = h2_->pushResponse(h2_stream_, cout_.view(), &invalid);
    full = n < cout_.size();
    cout_.consume(n);
    done += n;
  }
  if (!full && !invalid && body) {
    size_t n = h2_->pushResponse(h2_stream_, std::string_view(up_->in.data(), body), &invalid);
    full = n < body;
    up_->in.consume(n);
    resp_.ready -= n;
    done += n;
  }
  if (invalid) {
    // Nothing HTTP/2 can carry (a 101 without an upgrade asked for).
    if (member_) bump(member_->counters->slot(w_.index()).errors);
    termination_ = "bad_response";
    close();
    return false;
  }
  if (full) c_writable_ = false;  // h2Wake(writable) comes when the client's window opens
  req_bytes_out_ += done;
  if (done) client_act_ = w_.loop().now();
  cout_.releaseIfEmpty();
  return done > 0;
}

// Writes the member's out buffer (heads Banyan built) then the forwardable
// prefix of the client's buffer.
bool ClientSession::flushUpstream() {
  UpstreamConn* up = up_;
  if (!up || !up->connected || !up->writable) return false;
  if (up->h2_mode) return flushH2Upstream();
  // A TLS handshake or write toward the member that did not complete: wait for the
  // socket (false), or the member is gone (true: the read side sees EOF). Handshakes
  // are refused for a bad certificate or no common version.
  auto stalled = [&](tls::IoStatus status) -> std::optional<bool> {
    if (status == tls::IoStatus::kDone) return std::nullopt;
    up->writable = false;
    if (status == tls::IoStatus::kWantWrite) return false;
    if (status == tls::IoStatus::kWantRead) {
      up->tls_write_wants_read = true;
      return false;
    }
    LB_DEBUG("TLS to a member failed. member=%s", member_ ? member_->cfg->id.c_str() : "-");
    up->eof = true;
    up->readable = true;
    return true;
  };
  if (up->h2_offered) {
    // The member picks HTTP/2 or HTTP/1.1 in the handshake: finish it first.
    if (auto s = stalled(tls::handshake(up->ssl).status)) return *s;
    up->h2_offered = false;
    if (tls::alpnProtocol(up->ssl) == "h2") {
      w_.adoptH2(up, req_head_method_, req_minor_ == 0);
      return true;
    }
  }
  size_t body = memberBodyReady();
  if (up->out.empty() && body == 0) return false;
  if (!up->ssl && up->out.size() + body <= kBatchMaxBytes && w_.loop().ioBatching()) return queueIo(kIoMemberSend);
  iovec iov[2];
  int cnt = sendIovs(iov, up->out, cin_, body);
  size_t done = 0;
  if (up->ssl) {
    tls::IoResult r = tlsWriteIov(up->ssl, iov, cnt);
    if (auto s = stalled(r.status)) return *s;
    done = r.bytes;
  } else {
    ssize_t n = sendIov(up->fd, iov, cnt);
    return afterMemberSend(*up, n >= 0 ? n : -errno, iovBytes(iov, cnt));
  }
  consumeSentToMember(*up, done);
  return true;
}

bool ClientSession::afterMemberSend(UpstreamConn& up, ssize_t r, size_t offered) {
  if (r < 0) {
    if (r == -EAGAIN) {
      up.writable = false;
      return false;
    }
    if (r == -EINTR) return false;
    up.eof = true;  // the member reset: reading will tell the rest
    up.readable = true;
    up.writable = false;
    return true;
  }
  consumeSentToMember(up, static_cast<size_t>(r));
  if (static_cast<size_t>(r) < offered) up.writable = false;
  return true;
}

void ClientSession::consumeSentToMember(UpstreamConn& up, size_t done) {
  if (member_) bump(member_->counters->slot(w_.index()).bytes_in, done);
  member_act_ = w_.loop().now();
  size_t from_out = std::min(done, up.out.size());
  up.out.consume(from_out);
  size_t from_body = done - from_out;
  if (from_body) {
    cin_.consume(from_body);
    req_.ready -= from_body;
  }
  up.out.releaseIfEmpty();
}

// A stream of an HTTP/2 member connection takes the head Banyan built, then
// the forwardable prefix of the client's buffer, as HTTP/1.1 bytes.
bool ClientSession::flushH2Upstream() {
  UpstreamConn* up = up_;
  if (up->h2 == nullptr) {
    up->readable = true;  // the connection ended: reading tells the rest
    return false;
  }
  size_t body = phase_ == Phase::Request ? req_.ready : 0;
  if (up->out.empty() && body == 0) return false;
  bool invalid = false;
  bool full = false;
  size_t done = 0;
  if (!up->out.empty()) {
    size_t n = up->h2->pushRequest(*up, up->out.view(), &invalid);
    up->out.consume(n);
    done += n;
    full = !up->out.empty();
  }
  if (!full && !invalid && body) {
    size_t n = up->h2->pushRequest(*up, std::string_view(cin_.data(), body), &invalid);
    cin_.consume(n);
    req_.ready -= n;
    done += n;
    full = n < body;
  }
  if (invalid) {
    // Nothing HTTP/2 can carry: answered as a member that closed (502), never resent.
    up->reused = false;
    up->h2_refused = false;
    up->h2->release(*up);
    up->eof = true;
    up->readable = true;
    up->writable = false;
    return true;
  }
  if (full) up->writable = false;  // EPOLLOUT comes when the member's window opens
  if (done) {
    if (member_) bump(member_->counters->slot(w_.index()).bytes_in, done);
    member_act_ = w_.loop().now();
  }
  up->out.releaseIfEmpty();
  return done > 0;
}

// ---- batched I/O (event::IoUser) ------------------------------------------------
//
// With the loop's batch, a plain-socket read or write is queued here and
// described in prepareIo from the session's state at the end of the loop
// iteration, so bytes read or produced in between go out in the same call.
// Nothing of this session runs between prepareIo and ioSettled.

bool ClientSession::queueIo(IoTag tag, size_t cap) {
  if (io_queued_ & ioBit(tag)) return false;
  if (tag == kIoClientRecv || tag == kIoMemberRecv) io_cap_[tag] = cap;
  io_queued_ |= ioBit(tag);
  w_.loop().queueIo(this, tag, tag == kIoClientSend || tag == kIoMemberSend);
  return false;
}

bool ClientSession::prepareIo(uint32_t tag, event::IoOp& op) {
  auto drop = [&] {
    io_queued_ &= static_cast<uint8_t>(~ioBit(tag));
    return false;
  };
  if (closed_) return drop();
  UpstreamConn* up = up_;
  bool member_plain = up && !up->h2_mode && !up->ssl && !up->h2_offered && up->connected;
  if ((tag == kIoMemberRecv || tag == kIoMemberSend) && up && up->connected && !member_plain) {
    // The session moved to a member connection the batch cannot serve (TLS):
    // the next iteration does the operation directly.
    kick_.arm(event::Millis(0));
    return drop();
  }
  switch (tag) {
    case kIoClientRecv: {
      size_t cap = io_cap_[kIoClientRecv];
      if (!c_readable_ || c_eof_ || cin_.size() >= cap) return drop();
      size_t room;
      char* p = readRoom(cin_, cap, &room);
      op.fd = fd_;
      op.iov[0] = {p, room};
      op.cnt = 1;
      io_len_[tag] = room;
      return true;
    }
    case kIoMemberRecv: {
      size_t cap = io_cap_[kIoMemberRecv];
      if (!member_plain || !up->readable || up->eof || up->in.size() >= cap) return drop();
      size_t room;
      char* p = readRoom(up->in, cap, &room);
      op.fd = up->fd;
      op.iov[0] = {p, room};
      op.cnt = 1;
      io_len_[tag] = room;
      io_up_ = up;
      return true;
    }
    case kIoClientSend: {
      size_t body = clientBodyReady();
      if (!c_writable_ || (cout_.empty() && body == 0)) return drop();
      op.send = true;
      op.fd = fd_;
      op.cnt = sendIovs(op.iov, cout_, up_ ? up_->in : cout_, body);
      io_len_[tag] = iovBytes(op.iov, op.cnt);
      return true;
    }
    case kIoMemberSend: {
      size_t body = memberBodyReady();
      if (!member_plain || !up->writable || (up->out.empty() && body == 0)) return drop();
      op.send = true;
      op.fd = up->fd;
      op.cnt = sendIovs(op.iov, up->out, cin_, body);
      io_len_[tag] = iovBytes(op.iov, op.cnt);
      io_up_ = up;
      return true;
    }
  }
  return drop();
}

bool ClientSession::ioDone(uint32_t tag, ssize_t result) {
  bool first = io_done_ == 0;
  io_result_[tag] = result;
  io_done_ |= ioBit(tag);
  return first;
}

void ClientSession::ioSettled() {
  uint8_t done = io_done_;
  io_done_ = 0;
  io_queued_ &= static_cast<uint8_t>(~done);
  if (closed_) return;
  auto has = [&](IoTag tag) { return (done & ioBit(tag)) != 0; };
  // Member results belong to the connection they were prepared for.
  UpstreamConn* up = io_up_ == up_ ? up_ : nullptr;
  io_up_ = nullptr;
  // Received bytes join their buffers before sent bytes leave them: a send's
  // pointers were taken after the receive into the same buffer was prepared.
  if (has(kIoClientRecv) && io_result_[kIoClientRecv] > 0)
    cin_.commit(static_cast<size_t>(io_result_[kIoClientRecv]));
  if (up && has(kIoMemberRecv) && io_result_[kIoMemberRecv] > 0)
    up->in.commit(static_cast<size_t>(io_result_[kIoMemberRecv]));
  if (up && has(kIoMemberSend)) afterMemberSend(*up, io_result_[kIoMemberSend], io_len_[kIoMemberSend]);
  if (has(kIoClientSend)) afterClientSend(io_result_[kIoClientSend], io_len_[kIoClientSend]);
  if (closed_) return;
  if (has(kIoClientRecv)) afterClientRecv(io_result_[kIoClientRecv], io_len_[kIoClientRecv]);
  if (up && has(kIoMemberRecv)) afterMemberRecv(*up, io_result_[kIoMemberRecv], io_len_[kIoMemberRecv]);
  advance();
}

}  // namespace banyan::dp::proxy
