// ClientSession: TCP listeners and upgraded HTTP connections. Bytes both ways
// until both sides closed, switching bulk directions to splice(2).
#include "proxy/session.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "banyan/common/logging.h"
#include "proxy/session_internal.h"
#include "tls/tls_io.h"

namespace banyan::dp::proxy {

namespace {

using session_detail::kStreamCap;

// A tunnel direction switches to splice(2) after this many reads in a row that
// each brought at least kBulkRead bytes: a bulk transfer. Request/response
// traffic over TCP (small reads) stays on the buffers, where one recv and one
// send beat two splices per hop.
constexpr uint32_t kSpliceAfterBulkReads = 4;
constexpr size_t kBulkRead = 8192;

}  // namespace

bool ClientSession::tunnelStep() {
  bool progress = false;
  UpstreamConn* up = up_;
  if (!up) {
    close();
    return false;
  }
  auto makePipe = [] {
    auto p = std::make_unique<SplicePipe>();
    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return std::unique_ptr<SplicePipe>();
    p->r = fds[0];
    p->w = fds[1];
    return p;
  };
  // splice(2) moves raw socket bytes: never under TLS on either side.
  // A direction with a batched read or write outstanding finishes it first.
  bool plain = !ssl_ && !up->ssl;
  bool c2m_idle = !(io_queued_ & (ioBit(kIoClientRecv) | ioBit(kIoMemberSend)));
  bool m2c_idle = !(io_queued_ & (ioBit(kIoMemberRecv) | ioBit(kIoClientSend)));
  if (plain && c2m_idle && !c2m_ && c2m_bulk_ >= kSpliceAfterBulkReads && cin_.empty() && up->out.empty())
    c2m_ = makePipe();
  if (plain && m2c_idle && !m2c_ && m2c_bulk_ >= kSpliceAfterBulkReads && up->in.empty() && cout_.empty())
    m2c_ = makePipe();
  if (c2m_) {
    progress |= spliceStep(*c2m_, true);
  } else {
    size_t before = cin_.size();
    progress |= readClient(kStreamCap);
    size_t got = cin_.size() - std::min(before, cin_.size());
    if (got) c2m_bulk_ = got >= kBulkRead ? c2m_bulk_ + 1 : 0;
    req_.ready = cin_.size();
  }
  if (m2c_) {
    progress |= spliceStep(*m2c_, false);
  } else {
    size_t before = up->in.size();
    progress |= readUpstream(kStreamCap);
    size_t got = up->in.size() - std::min(before, up->in.size());
    if (got) m2c_bulk_ = got >= kBulkRead ? m2c_bulk_ + 1 : 0;
    resp_.ready = up->in.size();
  }
  progress |= flushUpstream();
  progress |= flushClient();
  if (closed_ || up_ != up) return false;
  bool c2m_empty = !c2m_ || c2m_->pending == 0;
  bool m2c_empty = !m2c_ || m2c_->pending == 0;
  // Half-close: pass each FIN on once everything before it was delivered.
  if (c_eof_ && cin_.empty() && c2m_empty && up->out.empty() && !up->shut_wr && up->connected) {
    shutdownUpstreamWrite(*up);
    progress = true;
  }
  if (up->eof && up->in.empty() && m2c_empty && cout_.empty() && !c_shut_wr_) {
    shutdownClientWrite();
    progress = true;
  }
  if (c_shut_wr_ && up->shut_wr) {
    close();
    return false;
  }
  return progress;
}

// Moves one direction of a tunnel through its pipe: first what the pipe
// holds, then, once it is empty, the next bytes from the source socket.
bool ClientSession::spliceStep(SplicePipe& pipe, bool to_member) {
  UpstreamConn* up = up_;
  int src = to_member ? fd_ : up->fd;
  int dst = to_member ? up->fd : fd_;
  bool& src_readable = to_member ? c_readable_ : up->readable;
  bool& src_eof = to_member ? c_eof_ : up->eof;
  bool& dst_writable = to_member ? up->writable : c_writable_;
  bool progress = false;
  for (int i = 0; i < 4; ++i) {
    if (pipe.pending && dst_writable) {
      ssize_t n = ::splice(pipe.r, nullptr, dst, nullptr, pipe.pending, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n > 0) {
        pipe.pending -= static_cast<size_t>(n);
        progress = true;
        if (to_member) {
          if (member_) bump(member_->counters->slot(w_.index()).bytes_in, static_cast<uint64_t>(n));
          member_act_ = w_.loop().now();
        } else {
          bump(lis_counters_->slot(w_.index()).bytes_out, static_cast<uint64_t>(n));
          req_bytes_out_ += static_cast<uint64_t>(n);
          client_act_ = w_.loop().now();
        }
      } else if (n < 0 && errno == EAGAIN) {
        dst_writable = false;
      } else if (n < 0 && errno != EINTR) {
        termination_ = to_member ? "member_abort" : "client_reset";
        close();
        return false;
      }
    }
    if (pipe.pending || !src_readable || src_eof) break;
    ssize_t n = ::splice(src, nullptr, pipe.w, nullptr, 65536, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n > 0) {
      pipe.pending = static_cast<size_t>(n);
      progress = true;
      if (to_member) {
        bump(lis_counters_->slot(w_.index()).bytes_in, static_cast<uint64_t>(n));
        req_bytes_in_ += static_cast<uint64_t>(n);
        client_act_ = w_.loop().now();
      } else {
        if (member_) bump(member_->counters->slot(w_.index()).bytes_out, static_cast<uint64_t>(n));
        member_act_ = w_.loop().now();
      }
    } else if (n == 0) {
      src_eof = true;
      src_readable = false;
      progress = true;
    } else if (errno == EAGAIN) {
      src_readable = false;
    } else if (errno != EINTR) {
      src_eof = true;
      src_readable = false;
      progress = true;
    }
  }
  return progress;
}

// Half-close: TLS says so with close_notify before the FIN.
void ClientSession::shutdownClientWrite() {
  if (ssl_) tls::shutdownQuietly(ssl_);
  ::shutdown(fd_, SHUT_WR);
  c_shut_wr_ = true;
}

void ClientSession::shutdownUpstreamWrite(UpstreamConn& up) {
  if (up.ssl) tls::shutdownQuietly(up.ssl);
  ::shutdown(up.fd, SHUT_WR);
  up.shut_wr = true;
}

}  // namespace banyan::dp::proxy
