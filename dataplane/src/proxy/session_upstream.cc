// ClientSession: the member side. Picking a member, connecting (or reusing an
// idle connection or an HTTP/2 member connection), connect failures and
// retries, and giving the connection back.
#include "proxy/session.h"

#include <cerrno>
#include <cstring>

#include "banyan/common/logging.h"
#include "net/socket.h"
#include "proxy/h2_upstream.h"
#include "proxy_protocol/proxy_protocol.h"
#include "tls/tls_io.h"

namespace banyan::dp::proxy {

// Picks a member and gets a connection to it (idle or new). Handles "no
// member" itself. False when the session ended or errored out.
bool ClientSession::attachMember() {
  pool_ = req_pool_;  // TCP listeners: the default pool, or the one SNI routing chose
  member_ = nullptr;
  int idx = -1;
  if (pool_) {
    // Persistence on the first attempt only: a redispatch after a failed
    // connect goes to the balancer (`option redispatch`).
    const MemberRt* sticky = attempts_ == 0 ? persistentMember() : nullptr;
    if (sticky) {
      idx = static_cast<int>(sticky - pool_->members.data());
    } else {
      idx = w_.pickMember(*pool_, peer_);
      if (idx >= 0) rememberMember(pool_->members[static_cast<size_t>(idx)]);
    }
  }
  if (idx < 0) {
    termination_ = "no_member";
    if (http_) {
      sendError(503, termination_);
    } else {
      close();
    }
    return false;
  }
  member_ = &pool_->members[static_cast<size_t>(idx)];
  if (!member_counted_) {
    auto& slot = member_->counters->slot(w_.index());
    bump(slot.total_connections);
    bump(slot.active_connections, 1);
    member_->counters->shared_active.fetch_add(1, std::memory_order_relaxed);
    member_counted_ = true;
  }
  UpstreamConn* idle = nullptr;
  if (pool_->send_proxy_v1 || pool_->send_proxy_v2) {
    if (private_up_ && private_up_->key == member_->address_key) {
      idle = private_up_;  // already told the member who this client is
      private_up_ = nullptr;
    } else {
      dropPrivateUpstream();
    }
  } else if (http_) {
    // A member that speaks HTTP/2 takes the request as one more stream on a
    // shared connection; an HTTP/1.1 one on an idle connection.
    if (pool_->h2 && !req_upgrade_)
      idle = w_.takeH2(*member_, *pool_, sni_, req_head_method_, req_minor_ == 0);
    if (!idle) idle = w_.takeIdle(*member_, *pool_, sni_);
  }
  if (idle) {
    up_ = idle;
    up_->owner = this;
    onConnected();
    return true;
  }
  connectMember(attempts_ == 0);
  return !closed_;
}

void ClientSession::connectMember(bool may_wait) {
  // HTTP/2 carries neither upgrades nor a connection-wide PROXY header.
  bool allow_h2 = http_ && !req_upgrade_ && !pool_->send_proxy_v1 && !pool_->send_proxy_v2;
  since_ = w_.loop().now();
  if (may_wait && allow_h2 && pool_->h2 && w_.waitH2(*member_, *pool_, sni_, *this)) {
    // The member may speak HTTP/2: one handshake toward it is under way, and
    // its connection may carry this request too. The wait is not an attempt;
    // after the connect timeout we stop waiting and connect (onTimer).
    h2_waiting_ = true;
    return;
  }
  ++attempts_;
  up_ = w_.connectTo(*member_, *pool_, sni_, allow_h2);
  if (!up_) {
    onConnectFailed(errno);
    return;
  }
  up_->owner = this;
}

void ClientSession::h2WaitOver() {
  if (closed_ || !h2_waiting_) return;
  h2_waiting_ = false;
  h2_wait_over_ = true;
  kick_.arm(event::Millis(0));  // the settling session's call is still on the stack
}

void ClientSession::resumeAfterH2Wait() {
  h2_wait_over_ = false;
  if (closed_ || up_ || !member_ || phase_ != Phase::Request) return;
  // As attachMember, with the member chosen already: a stream if the handshake
  // gave HTTP/2 with room left, else an idle connection, else our own
  // connection (with the usual failure and retry handling).
  UpstreamConn* up = w_.takeH2(*member_, *pool_, sni_, req_head_method_, req_minor_ == 0);
  if (!up) up = w_.takeIdle(*member_, *pool_, sni_);
  if (up) {
    up_ = up;
    up_->owner = this;
    onConnected();
    return;
  }
  connectMember(false);
}

void ClientSession::onConnected() {
  UpstreamConn* up = up_;
  member_act_ = w_.loop().now();
  if (!up->reused) {
    if (pool_->send_proxy_v1)
      up->out.append(proxy_protocol::encodeV1(peer_, local_));
    else if (pool_->send_proxy_v2)
      up->out.append(proxy_protocol::encodeV2(peer_, local_));
  }
  if (http_) {
    up->out.append(up_head_);
  } else {
    phase_ = Phase::Tunnel;
    req_.start(http::BodyKind::UntilClose, 0);
    resp_.start(http::BodyKind::UntilClose, 0);
  }
  up->writable = true;
}

void ClientSession::onConnectFailed(int err) {
  if (member_) bump(member_->counters->slot(w_.index()).errors);
  LB_DEBUG("Member connection failed. listener=%s member=%s error=%s", lis_->cfg->id.c_str(),
           member_ ? member_->cfg->id.c_str() : "-", strerror(err));
  if (up_) {
    up_->destroy();
    up_ = nullptr;
  }
  uint32_t retries = snap_->config->settings.member_connect_retries;
  if (attempts_ <= retries) {
    // Redispatch: the next attempt may pick another member (`option redispatch`).
    if (member_counted_ && member_) {
      bump(member_->counters->slot(w_.index()).active_connections, -1);
      member_->counters->shared_active.fetch_sub(1, std::memory_order_relaxed);
      member_counted_ = false;
    }
    attachMember();  // counts the next attempt when it connects
    return;
  }
  termination_ = "member_connect";
  if (http_) {
    sendError(502, termination_);
  } else {
    close();
  }
}

bool ClientSession::retryOnFreshConnection() {
  // A reused member connection closed before answering: the member timed it
  // out as we picked it. Safe to resend when nothing of a body was consumed.
  // An HTTP/2 stream the member refused (REFUSED_STREAM, above GOAWAY's
  // last-stream-id) was not processed: as safe to resend.
  if (!up_ || (!up_->reused && !up_->h2_refused) || resp_bytes_ != 0 ||
      req_.kind != http::BodyKind::None)
    return false;
  up_->destroy();
  up_ = nullptr;
  connectMember();
  return !closed_;
}

void ClientSession::dropPrivateUpstream() {
  if (!private_up_) return;
  private_up_->destroy();
  private_up_ = nullptr;
}

void ClientSession::releaseUpstream(bool reusable) {
  if (member_counted_ && member_) {
    bump(member_->counters->slot(w_.index()).active_connections, -1);
    member_->counters->shared_active.fetch_sub(1, std::memory_order_relaxed);
    member_counted_ = false;
  }
  if (!up_) return;
  UpstreamConn* up = up_;
  up_ = nullptr;
  up->owner = nullptr;
  if (reusable && !w_.draining())
    w_.putIdle(up);
  else
    up->destroy();
}

}  // namespace banyan::dp::proxy
