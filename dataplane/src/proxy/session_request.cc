// ClientSession: the request. Head parsing, the newest listener config, L7
// routing (REJECT and redirect answers), session persistence, and the head
// rewritten for the member (inserted headers, X-SSL-*).
#include "proxy/session.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "banyan/common/logging.h"
#include "http/forwarded.h"
#include "l7/policy.h"
#include "net/socket.h"
#include "persistence/cookie.h"
#include "proxy/session_internal.h"
#include "tls/tls_io.h"

namespace banyan::dp::proxy {

namespace {

using session_detail::appendHeader;
using session_detail::ieq;
using session_detail::isHopByHop;
using session_detail::listHas;
using session_detail::namedByConnection;
using session_detail::reasonPhrase;

// A redirect policy's answer, as HAProxy's `redirect` sends it: no body.
std::string redirectResponse(int status, std::string_view location) {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + reasonPhrase(status) + "\r\n";
  out += "content-length: 0\r\nlocation: ";
  out += location;
  out += "\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n";
  return out;
}

// The Host header without its port, lowercased, as HOST_NAME rules compare it.
std::string hostForMatch(std::string_view host) {
  size_t end = host.size();
  if (!host.empty() && host.front() == '[') {
    size_t close = host.find(']');
    if (close != std::string_view::npos) end = close + 1;
  } else if (size_t colon = host.rfind(':'); colon != std::string_view::npos) {
    end = colon;
  }
  std::string out(host.substr(0, end));
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// The path of a request target, without query string or fragment; an
// absolute-form target ("http://host/p?q") gives "/p".
std::string_view pathOf(std::string_view target) {
  if (target.size() > 7 && (ieq(target.substr(0, 7), "http://") ||
                            (target.size() > 8 && ieq(target.substr(0, 8), "https://")))) {
    size_t start = target.find("://") + 3;
    size_t slash = target.find_first_of("/?#", start);
    if (slash == std::string_view::npos || target[slash] != '/') return "/";
    target = target.substr(slash);
  }
  size_t end = target.find_first_of("?#");
  return end == std::string_view::npos ? target : target.substr(0, end);
}

// The last value of `field` (any case) in a "/C=US/O=Example/CN=client" DN,
// as HAProxy's ssl_c_s_dn(<field>) gives it.
bool dnField(std::string_view dn, std::string_view field, std::string_view* out) {
  bool found = false;
  size_t pos = 0;
  while (pos < dn.size()) {
    if (dn[pos] == '/') ++pos;
    size_t next = dn.find('/', pos);
    std::string_view entry = dn.substr(pos, next == std::string_view::npos ? dn.npos : next - pos);
    size_t eq = entry.find('=');
    if (eq != std::string_view::npos && ieq(entry.substr(0, eq), field)) {
      *out = entry.substr(eq + 1);
      found = true;
    }
    if (next == std::string_view::npos) break;
    pos = next;
  }
  return found;
}

// The last cookie called `name` over every Cookie header of a request.
std::optional<std::string_view> lastRequestCookie(const std::vector<http::Header>& headers,
                                                  std::string_view name) {
  std::optional<std::string_view> found;
  for (const auto& hd : headers) {
    if (!ieq(hd.name, "cookie")) continue;
    if (auto v = persistence::findLastCookie(hd.value, name)) found = v;
  }
  return found;
}

// X-SSL-* values are certificate text: keep them on one header line.
std::string headerSafe(const std::string& v) {
  std::string out = v;
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  return out;
}

std::string quoted(const std::string& v) { return "\"" + headerSafe(v) + "\""; }

bool sslHeaderSet(const config::InsertHeaders& ins, std::string_view name) {
  if (name.size() < 12 || !ieq(name.substr(0, 6), "x-ssl-")) return false;
  return (ins.ssl_client_verify && ieq(name, "x-ssl-client-verify")) ||
         (ins.ssl_client_has_cert && ieq(name, "x-ssl-client-has-cert")) ||
         (ins.ssl_client_dn && ieq(name, "x-ssl-client-dn")) ||
         (ins.ssl_client_cn && ieq(name, "x-ssl-client-cn")) ||
         (ins.ssl_issuer && ieq(name, "x-ssl-issuer")) ||
         (ins.ssl_client_sha1 && ieq(name, "x-ssl-client-sha1")) ||
         (ins.ssl_client_not_before && ieq(name, "x-ssl-client-not-before")) ||
         (ins.ssl_client_not_after && ieq(name, "x-ssl-client-not-after"));
}

}  // namespace

bool ClientSession::stepHead() {
  if (cin_.empty()) {
    // Idle keep-alive connections hold no buffer memory.
    cin_.releaseIfEmpty();
    if (c_eof_) close();
    return false;
  }
  http::RequestHead& req = w_.req_scratch;
  auto r = http::parseRequestHead(cin_.view(), lis_->limits, req);
  if (r.status == http::ParseStatus::NeedMore) {
    if (c_eof_) {
      termination_ = "client_abort";
      close();
    }
    return false;
  }
  if (r.status == http::ParseStatus::Invalid) {
    LB_DEBUG("Refused a request. listener=%s reason=%s", lis_->cfg->id.c_str(),
             http::parseErrorName(r.error));
    bump(lis_counters_->slot(w_.index()).errors);
    sendError(400, http::parseErrorName(r.error));
    return false;
  }
  startRequest(r.consumed);
  return true;
}

bool ClientSession::resolveListener() {
  // A new request uses the newest config; a connection whose listener was
  // removed finishes on the snapshot it started on and then closes.
  if (!followSnapshot(w_.snapshot(), snap_, lis_)) close_after_ = true;
  return true;
}

void ClientSession::startRequest(size_t head_length) {
  const http::RequestHead& req = w_.req_scratch;
  resolveListener();
  if (ssl_ && !tls_facts_) {
    // The handshake is done once a request arrived.
    tls_facts_ = true;
    sni_ = tls::serverName(ssl_);
  }
  req_start_ = w_.loop().now();
  req_bytes_in_ = head_length;  // the head; body bytes are counted as they arrive
  req_bytes_out_ = 0;
  resp_bytes_ = 0;
  status_ = 0;
  termination_ = "-";
  attempts_ = 0;
  resp_head_done_ = false;
  member_counted_ = false;
  req_head_method_ = req.method == "HEAD";
  req_minor_ = req.version_minor;
  req_keep_alive_ = req.flags.keep_alive && !close_after_;
  req_upgrade_ = req.flags.has_upgrade && req.flags.connection_upgrade;
  bump(lis_counters_->slot(w_.index()).requests);
  if (w_.accessLog().enabled()) {
    log_method_.assign(req.method);
    log_target_.assign(req.target.substr(0, 1024));
  }
  if (lis_->prometheus) {
    answerScrape(head_length);
    return;
  }
  if (!routeRequest()) return;
  const PersistenceRt* persist = req_pool_ ? req_pool_->persistence.get() : nullptr;
  const bool strip_member_cookie =
      persist != nullptr && persist->type == config::PersistenceType::kHttpCookie;

  // Build the head the member receives.
  const config::InsertHeaders& ins = lis_->cfg->insert_headers;
  std::string& h = up_head_;
  h.clear();
  h.append(req.method);
  h.push_back(' ');
  h.append(req.target);
  h.append(req.version_minor == 0 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n");
  bool named_tokens = false;
  for (const auto& hd : req.headers)
    if (ieq(hd.name, "connection") && !hd.value.empty()) named_tokens = true;
  std::string xff, fwd;
  for (const auto& hd : req.headers) {
    if (isHopByHop(hd.name)) {
      // "TE: trailers" says the client takes trailers: HTTP/2 members (gRPC)
      // want to hear it (RFC 9113 section 8.2.2). Pools without "h2" never
      // forward it (it is hop-by-hop in HTTP/1.1).
      if (hd.name.size() == 2 && req_pool_ && req_pool_->h2 && listHas(hd.value, "trailers"))
        appendHeader(h, "TE", "trailers");
      continue;
    }
    if (named_tokens && namedByConnection(req.headers, hd.name)) continue;
    if (ins.x_forwarded_for && ieq(hd.name, "x-forwarded-for")) {
      if (!xff.empty()) xff.append(", ");
      xff.append(hd.value);
      continue;
    }
    if (ins.forwarded && ieq(hd.name, "forwarded")) {
      if (!fwd.empty()) fwd.append(", ");
      fwd.append(hd.value);
      continue;
    }
    if (ins.x_forwarded_port && ieq(hd.name, "x-forwarded-port")) continue;
    if (ins.x_forwarded_proto && ieq(hd.name, "x-forwarded-proto")) continue;
    // Banyan sets the enabled X-SSL-* itself (haproxy set-header): a client's
    // own value of those never reaches the member.
    if (ssl_ && ins.anySsl() && sslHeaderSet(ins, hd.name)) continue;
    if (strip_member_cookie && ieq(hd.name, "cookie")) {
      // HAProxy `cookie ... indirect`: the member never sees the LB's cookie.
      std::string rest = persistence::removeCookie(hd.value, persistence::kMemberCookieName);
      if (!rest.empty()) appendHeader(h, hd.name, rest);
      continue;
    }
    appendHeader(h, hd.name, hd.value);
  }
  if (ins.x_forwarded_for) {
    if (!xff.empty()) xff.append(", ");
    xff.append(http::addressText(peer_));
    appendHeader(h, "X-Forwarded-For", xff);
  }
  if (ins.x_forwarded_port) {
    char port[8];
    snprintf(port, sizeof port, "%u", static_cast<unsigned>(lis_->cfg->protocol_port));
    appendHeader(h, "X-Forwarded-Port", port);
  }
  const char* proto = ssl_ ? "https" : "http";
  if (ins.x_forwarded_proto) appendHeader(h, "X-Forwarded-Proto", proto);
  if (ssl_ && ins.anySsl()) appendSslHeaders(h);
  if (ins.forwarded) {
    if (!fwd.empty()) fwd.append(", ");
    fwd.append(http::forwardedElement(peer_, local_, proto));
    appendHeader(h, "Forwarded", fwd);
  }
  if (req_upgrade_) {
    for (const auto& hd : req.headers)
      if (ieq(hd.name, "upgrade")) appendHeader(h, hd.name, hd.value);
    h.append("Connection: upgrade\r\n");
  } else if (req.version_minor == 0) {
    // Keep the member connection reusable even for HTTP/1.0 clients.
    h.append("Connection: keep-alive\r\n");
  }
  h.append("\r\n");

  cin_.consume(head_length);
  req_.start(req.body, req.content_length);
  resp_.start(http::BodyKind::None, 0);
  resp_.done = false;
  phase_ = Phase::Request;
  since_ = w_.loop().now();
  member_act_ = since_;
  if (!attachMember()) return;
}

bool ClientSession::routeRequest() {
  const http::RequestHead& req = w_.req_scratch;
  req_pool_ = lis_->pool;
  req_cookie_.clear();
  insert_cookie_ = false;
  bool taken = false;  // by a REDIRECT_TO_POOL policy
  if (lis_->policies != nullptr) {
    std::string host = hostForMatch(req.host);
    auto headers = [&req](std::string_view name, size_t index, std::string_view* out) {
      for (const auto& hd : req.headers) {
        if (!ieq(hd.name, name)) continue;
        if (index-- == 0) {
          *out = hd.value;
          return true;
        }
      }
      return false;
    };
    auto cookies = [&req](std::string_view name, size_t index, std::string_view* out) {
      for (const auto& hd : req.headers) {
        if (!ieq(hd.name, "cookie")) continue;
        persistence::CookieIterator it(hd.value);
        std::string_view n, v;
        while (it.next(&n, &v)) {
          if (n != name) continue;
          if (index-- == 0) {
            *out = v;
            return true;
          }
        }
      }
      return false;
    };
    l7::MatchInput in;
    in.host = host;
    in.path = pathOf(req.target);
    in.headers = l7::makeLookup(headers);
    in.cookies = l7::makeLookup(cookies);
    if (ssl_) {
      if (!cert_) cert_ = std::make_unique<tls::ClientCertInfo>(tls::clientCertInfo(ssl_));
      in.tls = true;
      in.has_client_cert = cert_->has_cert;
      in.verify_result = cert_->verify;
    }
    std::string_view dn = cert_ ? std::string_view(cert_->dn) : std::string_view();
    auto dn_lookup = [dn](std::string_view name, size_t index, std::string_view* out) {
      return index == 0 && dnField(dn, name, out);
    };
    in.client_dn = l7::makeLookup(dn_lookup);
    if (const l7::Policy* policy = lis_->policies->match(in)) {
      PolicyCounterSlot& counted = lis_->countersOf(*policy).slot(w_.index());
      bump(counted.matched);
      switch (policy->action) {
        case l7::PolicyAction::kReject:
          bump(counted.rejected);
          bump(lis_counters_->slot(w_.index()).errors);
          sendError(403, "l7_reject");
          return false;
        case l7::PolicyAction::kRedirectToUrl:
        case l7::PolicyAction::kRedirectPrefix: {
          bump(counted.redirected);
          std::string location =
              l7::buildRedirectLocation(*policy, ssl_ ? "https" : "http", req.host, req.target);
          sendLocal(policy->redirect_http_code,
                    redirectResponse(policy->redirect_http_code, location), "l7_redirect");
          return false;
        }
        case l7::PolicyAction::kRedirectToPool:
          req_pool_ = snap_->findUsablePool(policy->redirect_pool_id);
          if (req_pool_ != nullptr) bump(counted.routed);
          taken = true;
          break;
      }
    }
  }
  // No policy took the request (or the listener has none): the default pool.
  if (!taken) bump(lis_counters_->slot(w_.index()).l7_default);
  const PersistenceRt* persist = req_pool_ ? req_pool_->persistence.get() : nullptr;
  if (persist == nullptr) return true;
  if (persist->type == config::PersistenceType::kHttpCookie) {
    if (auto token = lastRequestCookie(req.headers, persistence::kMemberCookieName)) {
      if (auto member = persist->codec->decode(*token)) req_cookie_ = std::move(*member);
    }
  } else if (persist->type == config::PersistenceType::kAppCookie) {
    if (auto value = lastRequestCookie(req.headers, persist->cookie_name); value && !value->empty())
      req_cookie_.assign(*value);
  }
  return true;
}

// The member the client sticks to, if it can take traffic; null otherwise
// (the balancer picks, and rememberMember records the choice).
const MemberRt* ClientSession::persistentMember() {
  const PersistenceRt* persist = pool_->persistence.get();
  if (persist == nullptr) return nullptr;
  switch (persist->type) {
    case config::PersistenceType::kSourceIp: {
      persistence::SourceIpKey key = persistence::sourceIpKey(peer_, persist->granularity);
      if (key.size == 0) return nullptr;
      auto id = persist->table->lookup(key.view(), w_.loop().now());
      return id ? pool_->usableMember(*id) : nullptr;
    }
    case config::PersistenceType::kHttpCookie:
      if (!http_ || req_cookie_.empty()) return nullptr;
      return pool_->usableMember(req_cookie_);
    case config::PersistenceType::kAppCookie: {
      if (!http_ || req_cookie_.empty()) return nullptr;
      auto id = persist->table->lookup(req_cookie_, w_.loop().now());
      return id ? pool_->usableMember(*id) : nullptr;
    }
  }
  return nullptr;
}

void ClientSession::rememberMember(const MemberRt& member) {
  const PersistenceRt* persist = pool_->persistence.get();
  if (persist == nullptr) return;
  if (persist->type == config::PersistenceType::kSourceIp) {
    persistence::SourceIpKey key = persistence::sourceIpKey(peer_, persist->granularity);
    if (key.size != 0) persist->table->store(key.view(), member.cfg->id, w_.loop().now());
  } else if (persist->type == config::PersistenceType::kHttpCookie) {
    insert_cookie_ = http_;
  }
  // APP_COOKIE learns from the member's response (stepResponse).
}

// Octavia's X-SSL-* headers (haproxy ssl_c_* fetches; quoted ones with %{+Q}).
// A value that does not exist (no client certificate) is sent as "".
void ClientSession::appendSslHeaders(std::string& h) {
  const config::InsertHeaders& ins = lis_->cfg->insert_headers;
  if (!cert_) cert_ = std::make_unique<tls::ClientCertInfo>(tls::clientCertInfo(ssl_));
  const tls::ClientCertInfo& c = *cert_;
  if (ins.ssl_client_verify) appendHeader(h, "X-SSL-Client-Verify", std::to_string(c.verify));
  if (ins.ssl_client_has_cert) appendHeader(h, "X-SSL-Client-Has-Cert", c.has_cert ? "1" : "0");
  if (ins.ssl_client_dn) appendHeader(h, "X-SSL-Client-DN", quoted(c.dn));
  if (ins.ssl_client_cn) appendHeader(h, "X-SSL-Client-CN", quoted(c.cn));
  if (ins.ssl_issuer) appendHeader(h, "X-SSL-Issuer", quoted(c.issuer_dn));
  if (ins.ssl_client_sha1) appendHeader(h, "X-SSL-Client-SHA1", quoted(c.sha1));
  if (ins.ssl_client_not_before) appendHeader(h, "X-SSL-Client-Not-Before", quoted(c.not_before));
  if (ins.ssl_client_not_after) appendHeader(h, "X-SSL-Client-Not-After", quoted(c.not_after));
}

}  // namespace banyan::dp::proxy
