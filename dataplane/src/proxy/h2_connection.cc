#include "proxy/h2_connection.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include "banyan/common/logging.h"
#include "proxy/session.h"
#include "proxy/tls_readiness.h"
#include "tls/tls_io.h"

namespace banyan::dp::proxy {
namespace {

using event::Millis;
// Frames produced ahead of the socket. Reading pauses above it, so a client
// that sends (PINGs, SETTINGS) without reading cannot grow it without bound.
constexpr size_t kOutCap = 65536;
constexpr size_t kTlsRecord = 16384;

h2::CodecLimits codecLimits(const ListenerRt& l) {
  h2::CodecLimits c;
  c.max_head = l.limits.max_head;
  return c;
}

void dedupe(std::vector<int32_t>& v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
}

}  // namespace

H2Connection::H2Connection(Worker& worker, std::shared_ptr<const Snapshot> snap,
                           const ListenerRt& listener, std::shared_ptr<Counters> counters, int fd,
                           SSL* ssl, const sockaddr_storage& peer, const sockaddr_storage& local)
    : w_(worker),
      snap_(std::move(snap)),
      lis_(&listener),
      counters_(std::move(counters)),
      fd_(fd),
      ssl_(ssl),
      peer_(peer),
      local_(local),
      codec_(*this, codecLimits(listener)),
      timer_(worker.loop(), [this] { onTimer(); }),
      kick_(worker.loop(), [this] { advance(); }) {
  client_act_ = w_.loop().now();
}

H2Connection::~H2Connection() {
  // Only at worker shutdown (close() empties streams_ otherwise).
  for (auto& [id, s] : streams_) {
    s->h2Detach();
    delete s;
  }
  if (ssl_) SSL_free(ssl_);
  if (fd_ >= 0) ::close(fd_);
}

void H2Connection::start(std::string_view early) {
  w_.addSession(this);
  // The socket stays registered; its events now come here. Readiness flags
  // start set: an edge the previous handler consumed must not be missed.
  if (!w_.loop().modify(fd_, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, this)) {
    close("client_reset");
    return;
  }
  if (!early.empty()) {
    if (!codec_.feed(early)) eof_ = true;
    dispatch();
  }
  advance();
}

void H2Connection::onEvents(uint32_t events) {
  if (closed_) return;
  noteTlsReadiness(events, readable_, writable_, read_wants_write_, write_wants_read_);
  advance();
}

void H2Connection::drain() {
  if (closed_) return;
  codec_.goAway();
  kick_.arm(Millis(0));
}

void H2Connection::snapshotApplied() {
  if (closed_) return;
  const auto& current = w_.snapshot();
  if (!current || current.get() == snap_.get()) return;
  if (const ListenerRt* l = current->findListener(lis_->cfg->id)) {
    snap_ = current;
    lis_ = l;
    return;
  }
  // The listener was removed: streams in flight finish, no new ones start.
  codec_.goAway();
  kick_.arm(Millis(0));
}

// ---- stream side -------------------------------------------------------------

size_t H2Connection::takeRequest(int32_t stream_id, char* dst, size_t max) {
  size_t n = codec_.takeRequest(stream_id, dst, max);
  // Taking bytes may have queued a WINDOW_UPDATE: the client may be waiting
  // for it with nothing else to say, so it must go out without a client event.
  if (n > 0 && !in_advance_ && codec_.wantWrite()) kick_.arm(Millis(0));
  return n;
}

bool H2Connection::requestEnded(int32_t stream_id) const { return codec_.requestEnded(stream_id); }

size_t H2Connection::pushResponse(int32_t stream_id, std::string_view bytes, bool* invalid) {
  h2::ServerCodec::PushStatus st;
  size_t n = codec_.pushResponse(stream_id, bytes, &st);
  *invalid = st == h2::ServerCodec::PushStatus::Invalid;
  if (!in_advance_) kick_.arm(Millis(0));
  return n;
}

void H2Connection::endResponse(int32_t stream_id) {
  codec_.endResponse(stream_id);
  if (!in_advance_) kick_.arm(Millis(0));
}

void H2Connection::streamDone(int32_t stream_id) {
  streams_.erase(stream_id);
  codec_.finishStream(stream_id);
  if (!closed_ && !in_advance_) kick_.arm(Millis(0));
}

// ---- codec callbacks (inside feed/produce) -------------------------------------

void H2Connection::onRequest(int32_t stream_id, std::string http1_head) {
  new_requests_.emplace_back(stream_id, std::move(http1_head));
}

void H2Connection::onRequestData(int32_t stream_id) { wake_read_.push_back(stream_id); }

void H2Connection::onResponseWritable(int32_t stream_id) { wake_write_.push_back(stream_id); }

void H2Connection::onStreamClosed(int32_t stream_id, uint32_t error_code) {
  for (auto it = new_requests_.begin(); it != new_requests_.end(); ++it) {
    if (it->first == stream_id) {
      new_requests_.erase(it);
      return;
    }
  }
  auto it = streams_.find(stream_id);
  if (it == streams_.end()) return;
  ClientSession* s = it->second;
  streams_.erase(it);
  s->h2Detach();
  // The client reset the stream (or the connection failed): the member's
  // connection cannot be reused mid-exchange, the session closes it.
  s->h2Abort(error_code == 0 ? "client_abort" : "client_reset");
}

// Runs what the codec asked for once it returned.
void H2Connection::dispatch() {
  while (!new_requests_.empty() || !wake_read_.empty() || !wake_write_.empty()) {
    auto requests = std::move(new_requests_);
    new_requests_.clear();
    for (auto& [id, head] : requests) {
      if (closed_) return;
      // New streams use the newest config; on a listener that was removed
      // they are refused (the GOAWAY already went out).
      if (!followSnapshot(w_.snapshot(), snap_, lis_)) {
        codec_.goAway();
        codec_.resetStream(id, NGHTTP2_REFUSED_STREAM);
        continue;
      }
      auto* s = new ClientSession(w_, snap_, *lis_, *this, id, std::move(head), ssl_, peer_, local_);
      streams_[id] = s;
      s->start();
    }
    auto reads = std::move(wake_read_);
    wake_read_.clear();
    auto writes = std::move(wake_write_);
    wake_write_.clear();
    dedupe(reads);
    dedupe(writes);
    for (int32_t id : reads) {
      auto it = streams_.find(id);
      if (it != streams_.end()) it->second->h2Wake(true, false);
    }
    for (int32_t id : writes) {
      auto it = streams_.find(id);
      if (it != streams_.end()) it->second->h2Wake(false, true);
    }
  }
}

// ---- I/O ---------------------------------------------------------------------

bool H2Connection::readClient() {
  if (!readable_ || eof_ || !codec_.wantRead() || out_.size() - out_off_ >= kOutCap) return false;
  thread_local char buf[kTlsRecord];
  tls::IoResult r = tls::read(ssl_, buf, sizeof buf);
  switch (r.status) {
    case tls::IoStatus::kDone:
      bump(counters_->slot(w_.index()).bytes_in, r.bytes);
      client_act_ = w_.loop().now();
      if (!codec_.feed(std::string_view(buf, r.bytes))) {
        bump(counters_->slot(w_.index()).errors);
        eof_ = true;  // a GOAWAY may still go out
      }
      dispatch();
      return true;
    case tls::IoStatus::kWantRead:
      readable_ = false;
      return false;
    case tls::IoStatus::kWantWrite:
      readable_ = false;
      read_wants_write_ = true;
      return false;
    case tls::IoStatus::kClosed:
    case tls::IoStatus::kError:
      eof_ = true;
      readable_ = false;
      return true;
  }
  return false;
}

bool H2Connection::flushClient() {
  bool progress = false;
  if (out_.size() - out_off_ < kOutCap) {
    size_t before = out_.size();
    if (!codec_.produce(out_, out_off_ + kOutCap)) eof_ = true;
    dispatch();
    progress = out_.size() != before;
  }
  while (writable_ && out_off_ < out_.size() && !closed_) {
    size_t len = std::min(out_.size() - out_off_, kTlsRecord);
    tls::IoResult r = tls::write(ssl_, out_.data() + out_off_, len);
    if (r.status == tls::IoStatus::kWantWrite) {
      writable_ = false;
      break;
    }
    if (r.status == tls::IoStatus::kWantRead) {
      writable_ = false;
      write_wants_read_ = true;
      break;
    }
    if (r.status != tls::IoStatus::kDone) {
      close("client_reset");
      return false;
    }
    out_off_ += r.bytes;
    bump(counters_->slot(w_.index()).bytes_out, r.bytes);
    client_act_ = w_.loop().now();
    progress = true;
  }
  if (out_off_ == out_.size()) {
    out_.clear();
    out_off_ = 0;
    if (out_.capacity() > 4 * kOutCap) std::string().swap(out_);
  } else if (out_off_ > kOutCap) {
    out_.erase(0, out_off_);
    out_off_ = 0;
  }
  return progress;
}

void H2Connection::advance() {
  if (closed_) return;
  in_advance_ = true;
  bool progress = true;
  for (int round = 0; round < 64 && progress && !closed_; ++round) {
    progress = readClient();
    if (closed_) break;
    progress |= flushClient();
    if (closed_) break;
    bool idle_out = out_off_ == out_.size();
    if (eof_ && (idle_out || !writable_)) {
      close(codec_.wantRead() ? "client_abort" : "-");
      break;
    }
    if (!codec_.wantRead() && !codec_.wantWrite() && idle_out) {
      close("-");  // GOAWAY exchanged and every stream finished
      break;
    }
  }
  in_advance_ = false;
  if (closed_) return;
  if (progress) kick_.arm(Millis(0));
  updateTimer();
}

void H2Connection::close(const char* why) {
  if (closed_) return;
  closed_ = true;
  LB_DEBUG("HTTP/2 connection closed. listener=%s reason=%s", lis_->cfg->id.c_str(), why);
  timer_.cancel();
  kick_.cancel();
  auto streams = std::move(streams_);
  streams_.clear();
  for (auto& [id, s] : streams) {
    s->h2Detach();
    s->h2Abort("client_abort");
  }
  tls::closeAndFree(ssl_);
  ssl_ = nullptr;
  // Also leaves the epoll set. In the loop's batch when it has one: the
  // socket's registration may still be queued there (a hand-over in the
  // iteration that accepted it), and the number must not be reused before.
  w_.loop().closeSoon(fd_);
  fd_ = -1;
  auto& slot = counters_->slot(w_.index());
  bump(slot.active_connections, -1);
  w_.connectionClosed(*counters_);
  w_.removeSession(this);
  w_.loop().deleteLater(std::unique_ptr<event::Deletable>(this));
}

// ---- timers --------------------------------------------------------------------

// timeout_client_data bounds a connection with nothing in flight (idle, as
// for HTTP/1.1 keep-alive) and a client that stopped reading what it is sent.
// Streams waiting for members are bounded by their own timers.
void H2Connection::updateTimer() {
  const config::Listener& l = *lis_->cfg;
  Millis client_to(l.timeout_client_data_ms ? l.timeout_client_data_ms : 50000);
  if (streams_.empty() || out_off_ != out_.size())
    timer_.armAt(client_act_ + client_to);
  else
    timer_.cancel();
}

void H2Connection::onTimer() {
  if (closed_) return;
  const config::Listener& l = *lis_->cfg;
  Millis client_to(l.timeout_client_data_ms ? l.timeout_client_data_ms : 50000);
  if (w_.loop().now() >= client_act_ + client_to && (streams_.empty() || out_off_ != out_.size())) {
    if (streams_.empty() && out_off_ == out_.size()) {
      // Idle: say goodbye properly, then close (best effort, no waiting).
      codec_.goAway();
      codec_.produce(out_, kOutCap);
      if (!out_.empty()) tls::write(ssl_, out_.data(), std::min(out_.size(), kTlsRecord));
    }
    close("client_timeout");
    return;
  }
  updateTimer();
}

}  // namespace banyan::dp::proxy
