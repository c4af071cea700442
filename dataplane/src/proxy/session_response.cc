// ClientSession: the response. The member's HTTP/1.1 response path, and the
// answers Banyan gives itself (error pages, PROMETHEUS scrapes).
#include "proxy/session.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "banyan/common/logging.h"
#include "persistence/cookie.h"
#include "proxy/h2_connection.h"
#include "proxy/metrics.h"
#include "proxy/session_internal.h"

namespace banyan::dp::proxy {

namespace {

using session_detail::appendHeader;
using session_detail::ieq;
using session_detail::isHopByHop;
using session_detail::kStreamCap;
using session_detail::namedByConnection;
using session_detail::reasonPhrase;

// The body texts follow the stock amphora's error pages, so clients that
// match on them keep working.
std::string errorResponse(int status) {
  const char* detail = "";
  switch (status) {
    case 400: detail = "Your browser sent an invalid request."; break;
    case 403: detail = "Request forbidden by administrative rules."; break;
    case 408: detail = "Your browser didn't send a complete request in time."; break;
    case 502: detail = "The server returned an invalid or incomplete response."; break;
    case 503: detail = "No server is available to handle this request."; break;
    case 504: detail = "The server didn't respond in time."; break;
  }
  char body[256];
  int blen = snprintf(body, sizeof body, "<html><body><h1>%d %s</h1>\n%s\n</body></html>\n",
                      status, reasonPhrase(status), detail);
  char head[256];
  int hlen = snprintf(head, sizeof head,
                      "HTTP/1.1 %d %s\r\ncontent-length: %d\r\ncache-control: no-cache\r\n"
                      "content-type: text/html\r\nconnection: close\r\n\r\n",
                      status, reasonPhrase(status), blen);
  return std::string(head, hlen) + std::string(body, blen);
}

}  // namespace

bool ClientSession::stepResponse() {
  UpstreamConn* up = up_;
  if (!up || !up->connected) return false;
  bool progress = false;
  if (!resp_head_done_) {
    progress |= readUpstream(lis_->limits.max_head + 1);
    if (up->in.empty() && up->eof) {
      if (retryOnFreshConnection()) return true;
      bump(member_->counters->slot(w_.index()).errors);
      sendError(502, "member_closed");
      return false;
    }
    if (up->in.empty()) return progress;
    http::ResponseHead& resp = w_.resp_scratch;
    auto r = http::parseResponseHead(up->in.view(), lis_->limits,
                                     req_head_method_ ? "HEAD" : "GET", resp);
    if (r.status == http::ParseStatus::NeedMore) {
      if (up->eof) {
        bump(member_->counters->slot(w_.index()).errors);
        sendError(502, "member_truncated");
      }
      return progress;
    }
    if (r.status == http::ParseStatus::Invalid) {
      LB_DEBUG("Member sent an invalid response. member=%s reason=%s", member_->cfg->id.c_str(),
               http::parseErrorName(r.error));
      bump(member_->counters->slot(w_.index()).errors);
      sendError(502, "bad_response");
      return false;
    }
    if (resp.status >= 100 && resp.status < 200 && resp.status != 101) {
      // Interim response (100 Continue, 103 Early Hints): relay as received.
      cout_.append(up->in.view().substr(0, r.consumed));
      up->in.consume(r.consumed);
      return true;
    }
    status_ = resp.status;
    bump(lis_counters_->slot(w_.index()).responses[responseClass(resp.status)]);
    if (member_) bump(member_->counters->slot(w_.index()).responses[responseClass(resp.status)]);
    if (resp.status == 101) {
      if (!req_upgrade_) {
        sendError(502, "bad_response");
        return false;
      }
      cout_.append(up->in.view().substr(0, r.consumed));
      up->in.consume(r.consumed);
      resp_head_done_ = true;
      phase_ = Phase::Tunnel;
      req_.start(http::BodyKind::UntilClose, 0);
      resp_.start(http::BodyKind::UntilClose, 0);
      if (w_.accessLog().enabled()) logAccess();
      return true;
    }
    bool keep = req_keep_alive_ && !close_after_ && !w_.draining() &&
                resp.body != http::BodyKind::UntilClose;
    resp_reusable_ = resp.flags.keep_alive && resp.body != http::BodyKind::UntilClose;
    // Status line as received, then the headers without hop-by-hop ones.
    std::string_view raw = up->in.view();
    size_t eol = raw.find("\r\n");
    cout_.append(raw.substr(0, eol + 2));
    bool named_tokens = false;
    for (const auto& hd : resp.headers)
      if (ieq(hd.name, "connection")) named_tokens = true;
    std::string& head = w_.head_scratch;
    head.clear();
    bool hsts = !lis_->hsts.empty();
    for (const auto& hd : resp.headers) {
      if (isHopByHop(hd.name)) continue;
      if (named_tokens && namedByConnection(resp.headers, hd.name)) continue;
      if (hsts && ieq(hd.name, "strict-transport-security")) continue;
      appendHeader(head, hd.name, hd.value);
    }
    // Octavia `http-response set-header Strict-Transport-Security`.
    if (hsts) appendHeader(head, "Strict-Transport-Security", lis_->hsts);
    if (const PersistenceRt* persist = pool_->persistence.get()) {
      if (persist->type == config::PersistenceType::kHttpCookie && insert_cookie_) {
        appendHeader(head, "Set-Cookie",
                     persistence::buildSetCookie(persistence::kMemberCookieName,
                                                 persist->codec->encode(member_->cfg->id),
                                                 ssl_ != nullptr));
        // HAProxy's `nocache`: shared caches must not hand this client's
        // member cookie to others.
        bool has_cache_control = false;
        for (const auto& hd : resp.headers)
          if (ieq(hd.name, "cache-control")) has_cache_control = true;
        if (!has_cache_control) appendHeader(head, "Cache-Control", "private");
      } else if (persist->type == config::PersistenceType::kAppCookie) {
        // `stick store-response res.cook(<name>)`: the last one wins.
        for (const auto& hd : resp.headers) {
          if (!ieq(hd.name, "set-cookie")) continue;
          auto pair = persistence::parseSetCookie(hd.value);
          if (pair && pair->name == persist->cookie_name && !pair->value.empty())
            persist->table->store(pair->value, member_->cfg->id, w_.loop().now());
        }
      }
    }
    cout_.append(head);
    if (!keep) {
      cout_.append("Connection: close\r\n\r\n");
      close_after_ = true;
    } else if (req_minor_ == 0) {
      cout_.append("Connection: keep-alive\r\n\r\n");
    } else {
      cout_.append("\r\n");
    }
    up->in.consume(r.consumed);
    resp_.start(resp.body, resp.content_length);
    resp_head_done_ = true;
    progress = true;
  }
  progress |= readUpstream(kStreamCap);
  if (!resp_.scan(up->in, up->eof)) {
    termination_ = "bad_chunked_response";
    close();
    return false;
  }
  if (!resp_.done && up->eof && resp_.ready == 0) {
    termination_ = "member_abort";
    bump(member_->counters->slot(w_.index()).errors);
    close();
    return false;
  }
  progress |= flushClient();
  if (closed_) return false;
  if (resp_.complete()) {
    finishResponse();
    return true;
  }
  return progress;
}

void ClientSession::finishResponse() {
  if (w_.accessLog().enabled() && status_ != 101) logAccess();
  // Bytes OpenSSL decrypted but nobody read would be taken for the next
  // response: such a connection is not reused.
  bool reusable = resp_reusable_ && req_.complete() && up_ && !up_->eof && up_->in.empty() &&
                  (!up_->ssl || SSL_pending(up_->ssl) == 0);
  if (!req_.complete()) close_after_ = true;  // the rest of the body cannot be skipped safely
  if ((pool_->send_proxy_v1 || pool_->send_proxy_v2) && reusable && !close_after_) {
    // A member connection that carried a PROXY header speaks for this client
    // only: keep it for this client's next request, never pool it for others.
    private_up_ = up_;
    private_up_->reused = true;
    up_ = nullptr;
    releaseUpstream(false);  // the member counters
  } else {
    releaseUpstream(reusable && !pool_->send_proxy_v1 && !pool_->send_proxy_v2);
  }
  pool_ = nullptr;
  member_ = nullptr;
  if (h2_mode_ && h2_) h2_->endResponse(h2_stream_);
  phase_ = close_after_ ? Phase::Closing : Phase::Head;
  since_ = w_.loop().now();
  if (up_head_.capacity() > 4096) std::string().swap(up_head_);
}

// Answers the request in flight with an error page, logs it, and closes the
// connection once the page is out.
void ClientSession::sendError(int status, const char* termination) {
  sendLocal(status, errorResponse(status), termination);
}

void ClientSession::sendLocal(int status, std::string response, const char* termination) {
  termination_ = termination;
  status_ = status;
  bump(lis_counters_->slot(w_.index()).responses[responseClass(status)]);
  releaseUpstream(false);
  cout_.clear();
  cout_.append(response);
  if (w_.accessLog().enabled()) logAccess();  // bytes_out counts the page
  resp_.start(http::BodyKind::None, 0);
  close_after_ = true;
  phase_ = Phase::Closing;
  since_ = client_act_ = w_.loop().now();
  flushClient();
  if (!closed_ && cout_.empty()) close();
}

// PROMETHEUS listeners: the request is answered here, never by a member.
// GET/HEAD of any path gets the metrics, as Octavia's prometheus-proxy answers
// every GET (scrapers ask for /metrics); other methods 405. Keep-alive is kept
// unless the request carried a body (not read: the connection closes after).
void ClientSession::answerScrape(size_t head_length) {
  const http::RequestHead& req = w_.req_scratch;
  const bool head = req.method == "HEAD";
  int status = 200;
  std::string body;
  if (req.method != "GET" && !head) {
    status = 405;
    body = "Method Not Allowed\n";
  } else {
    body = renderMetrics(*snap_, readHostUsage());
  }
  cin_.consume(head_length);
  const bool keep = req_keep_alive_ && req.body == http::BodyKind::None && !w_.draining();
  std::string out = "HTTP/1.1 " + std::to_string(status) +
                    (status == 200 ? " OK" : " Method Not Allowed") +
                    "\r\ncontent-length: " + std::to_string(body.size()) +
                    "\r\ncache-control: no-cache\r\n" +
                    (status == 200 ? "content-type: text/plain; version=0.0.4; charset=utf-8\r\n"
                                   : "content-type: text/plain\r\n");
  if (status == 405) out += "allow: GET, HEAD\r\n";
  if (!lis_->hsts.empty()) out += "strict-transport-security: " + lis_->hsts + "\r\n";
  out += keep ? "\r\n" : "connection: close\r\n\r\n";
  if (!head) out += body;
  status_ = status;
  bump(lis_counters_->slot(w_.index()).responses[responseClass(status)]);
  cout_.append(out);
  if (w_.accessLog().enabled()) logAccess();
  since_ = client_act_ = w_.loop().now();
  if (!keep) {
    close_after_ = true;
    resp_.start(http::BodyKind::None, 0);
    phase_ = Phase::Closing;
  }
  flushClient();
}

}  // namespace banyan::dp::proxy
