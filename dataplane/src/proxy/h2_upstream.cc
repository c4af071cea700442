#include "proxy/h2_upstream.h"

#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

#include "banyan/common/logging.h"
#include "proxy/worker.h"
#include "proxy/tls_readiness.h"
#include "tls/tls_io.h"

namespace banyan::dp::proxy {
namespace {

using event::Millis;
constexpr event::Millis kIdleTimeout(10000);  // as idle HTTP/1.1 member connections
constexpr size_t kOutCap = 65536;
constexpr size_t kTlsRecord = 16384;
// Bytes read per round: a member that floods (within its windows) cannot keep
// the worker to itself.
constexpr int kReadsPerRound = 16;

void noteOnce(std::vector<uint32_t>& v, uint32_t h) {
  if (std::find(v.begin(), v.end(), h) == v.end()) v.push_back(h);
}

}  // namespace

H2UpstreamConn::H2UpstreamConn(Worker& worker, int fd, SSL* ssl, std::string key, std::string scope)
    : w_(worker),
      fd_(fd),
      ssl_(ssl),
      key_(std::move(key)),
      scope_(std::move(scope)),
      codec_(*this, h2::ClientLimits{}),
      kick_(worker.loop(), [this] { advance(); }),
      idle_(worker.loop(), [this] {
        if (ups_.empty()) close("idle");
      }) {}

H2UpstreamConn::~H2UpstreamConn() {
  for (auto& [h, up] : ups_) up->h2 = nullptr;
  if (ssl_) SSL_free(ssl_);
  if (fd_ >= 0) ::close(fd_);
}

bool H2UpstreamConn::start() {
  // Readiness flags start set: an edge the previous handler consumed must not be missed.
  if (!w_.loop().modify(fd_, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, this)) {
    close("register");
    return false;
  }
  schedule();
  return true;
}

bool H2UpstreamConn::canOpen() const { return !closed_ && !retired_ && !eof_ && codec_.canOpen(); }

void H2UpstreamConn::attach(UpstreamConn& up, bool head_request, bool http10) {
  uint32_t h = codec_.open(head_request, http10);
  up.h2 = this;
  up.h2_handle = h;
  up.h2_mode = true;
  up.connected = true;
  up.writable = true;
  ups_[h] = &up;
  ++streams_opened_;
  idle_.cancel();
}

size_t H2UpstreamConn::pushRequest(UpstreamConn& up, std::string_view bytes, bool* invalid) {
  size_t n = codec_.pushRequest(up.h2_handle, bytes, invalid);
  if (n > 0 || *invalid) schedule();
  return n;
}

size_t H2UpstreamConn::takeResponse(UpstreamConn& up, char* dst, size_t max, bool* ended) {
  size_t n = codec_.takeResponse(up.h2_handle, dst, max);
  *ended = n == 0 && codec_.responseEnded(up.h2_handle);
  // Taking bytes may have queued a WINDOW_UPDATE the member waits for.
  if (n > 0 && codec_.wantWrite()) schedule();
  return n;
}

bool H2UpstreamConn::refused(const UpstreamConn& up) const { return codec_.refused(up.h2_handle); }

void H2UpstreamConn::release(UpstreamConn& up) {
  auto it = ups_.find(up.h2_handle);
  if (it == ups_.end() || it->second != &up) return;
  ups_.erase(it);
  codec_.release(up.h2_handle);
  up.h2 = nullptr;
  schedule();
}

void H2UpstreamConn::retire() {
  if (closed_ || retired_) return;
  retired_ = true;
  codec_.goAway();
  schedule();
}

void H2UpstreamConn::schedule() {
  if (closed_) return;
  if (in_advance_) {
    more_ = true;
    return;
  }
  // Never re-entered from a session's call: the connection runs on its own turn.
  kick_.arm(Millis(0));
}

void H2UpstreamConn::onEvents(uint32_t events) {
  if (closed_) return;
  noteTlsReadiness(events, readable_, writable_, read_wants_write_, write_wants_read_);
  advance();
}

void H2UpstreamConn::onResponseData(uint32_t handle) { noteOnce(wake_read_, handle); }
void H2UpstreamConn::onRequestWritable(uint32_t handle) { noteOnce(wake_write_, handle); }

bool H2UpstreamConn::readMember() {
  if (!readable_ || eof_) return false;
  // Frames pile up while the member does not read: stop reading until they left.
  if (out_.size() - out_off_ >= kOutCap) return false;
  bool progress = false;
  char buf[kTlsRecord];
  for (int i = 0; i < kReadsPerRound; ++i) {
    tls::IoResult r = tls::read(ssl_, buf, sizeof buf);
    if (r.status == tls::IoStatus::kDone) {
      progress = true;
      if (!codec_.feed(std::string_view(buf, r.bytes))) {
        LB_DEBUG("HTTP/2 member connection broke the protocol. key_scope=%zu", scope_.size());
        eof_ = true;
        break;
      }
      continue;
    }
    if (r.status == tls::IoStatus::kWantRead) {
      readable_ = false;
    } else if (r.status == tls::IoStatus::kWantWrite) {
      readable_ = false;
      read_wants_write_ = true;
    } else {
      eof_ = true;
      readable_ = false;
      progress = true;
    }
    break;
  }
  return progress;
}

bool H2UpstreamConn::flushMember() {
  bool progress = false;
  for (;;) {
    if (out_off_ == out_.size()) {
      out_.clear();
      out_off_ = 0;
      if (!codec_.produce(out_, kOutCap)) eof_ = true;
      if (out_.empty()) break;
    }
    if (!writable_) break;
    size_t len = std::min(out_.size() - out_off_, kTlsRecord);
    tls::IoResult r = tls::write(ssl_, out_.data() + out_off_, len);
    if (r.status == tls::IoStatus::kDone) {
      out_off_ += r.bytes;
      progress = true;
      continue;
    }
    if (r.status == tls::IoStatus::kWantWrite) {
      writable_ = false;
    } else if (r.status == tls::IoStatus::kWantRead) {
      writable_ = false;
      write_wants_read_ = true;
    } else {
      eof_ = true;
      writable_ = false;
    }
    break;
  }
  return progress;
}

// Wakes the sessions whose streams have news. They may push request bytes,
// take response bytes or release their stream from here: each is looked up
// again, and the I/O they cause runs in the next round of advance().
void H2UpstreamConn::dispatch() {
  for (int guard = 0; guard < 8 && (!wake_read_.empty() || !wake_write_.empty()); ++guard) {
    std::vector<uint32_t> reads;
    std::vector<uint32_t> writes;
    reads.swap(wake_read_);
    writes.swap(wake_write_);
    for (uint32_t h : reads) {
      auto it = ups_.find(h);
      if (it == ups_.end()) continue;
      UpstreamConn* up = it->second;
      if (up->owner) up->owner->onUpstreamEvents(*up, EPOLLIN);
    }
    for (uint32_t h : writes) {
      auto it = ups_.find(h);
      if (it == ups_.end()) continue;
      UpstreamConn* up = it->second;
      if (up->owner) up->owner->onUpstreamEvents(*up, EPOLLOUT);
    }
  }
}

void H2UpstreamConn::advance() {
  if (closed_) return;
  if (in_advance_) {
    more_ = true;
    return;
  }
  in_advance_ = true;
  bool progress = true;
  int round = 0;
  for (; round < 16 && (progress || more_) && !closed_; ++round) {
    more_ = false;
    progress = readMember();
    progress |= flushMember();
    dispatch();
    if (eof_) break;
  }
  in_advance_ = false;
  if (eof_ || (!codec_.wantRead() && !codec_.wantWrite() && out_off_ == out_.size())) {
    close(eof_ ? "member_closed" : "finished");
    return;
  }
  if (round == 16 && (progress || more_)) kick_.arm(Millis(0));
  updateIdle();
}

void H2UpstreamConn::updateIdle() {
  if (closed_ || !ups_.empty()) return;
  if (retired_ || codec_.goingAway()) {
    // Nothing in flight and no new streams will come: done.
    if (out_off_ == out_.size()) close("retired");
    return;
  }
  if (!idle_.armed()) idle_.arm(kIdleTimeout);
}

void H2UpstreamConn::close(const char* why) {
  if (closed_) return;
  closed_ = true;
  LB_DEBUG("HTTP/2 member connection closed. reason=%s streams_opened=%llu", why,
           static_cast<unsigned long long>(streams_opened_));
  kick_.cancel();
  idle_.cancel();
  codec_.connectionLost();
  wake_read_.clear();
  wake_write_.clear();
  // Each stream's session learns of the end by reading: what the member sent
  // before closing is handed over first.
  auto ups = std::move(ups_);
  ups_.clear();
  for (auto& [h, up] : ups) {
    char buf[kTlsRecord];
    for (;;) {
      size_t n = codec_.takeResponse(h, buf, sizeof buf);
      if (n == 0) break;
      up->in.append(std::string_view(buf, n));
    }
    up->h2_refused = codec_.refused(h);
    up->h2 = nullptr;
    up->readable = true;
    up->writable = true;
    codec_.release(h);
  }
  w_.h2Closed(this);
  tls::closeAndFree(ssl_);
  ssl_ = nullptr;
  ::close(fd_);  // also leaves the epoll set: the fd is never duplicated
  fd_ = -1;
  for (auto& [h, up] : ups)
    if (up->owner) up->owner->onUpstreamEvents(*up, EPOLLIN);
  w_.loop().deleteLater(std::unique_ptr<event::Deletable>(this));
}

}  // namespace banyan::dp::proxy
