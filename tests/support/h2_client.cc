#include "h2_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace banyan::test {

struct H2ClientCallbacks {
  static H2TestClient& c(void* ud) { return *static_cast<H2TestClient*>(ud); }

  static int onHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t, void* ud) {
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    H2StreamResult& s = c(ud).streams_[frame->hd.stream_id];
    std::string n(reinterpret_cast<const char*>(name), namelen);
    std::string v(reinterpret_cast<const char*>(value), valuelen);
    if (n == ":status") {
      int st = std::stoi(v);
      if (st >= 200) s.status = st;
      return 0;
    }
    if (frame->headers.cat == NGHTTP2_HCAT_HEADERS && s.status != 0)
      s.trailers.emplace_back(n, v);
    else
      s.headers.emplace_back(n, v);
    return 0;
  }
  static int onData(nghttp2_session* session, uint8_t, int32_t id, const uint8_t* data, size_t len,
                    void* ud) {
    H2TestClient& cl = c(ud);
    cl.streams_[id].body.append(reinterpret_cast<const char*>(data), len);
    if (cl.opts_.consume_data) nghttp2_session_consume(session, id, len);
    return 0;
  }
  static int onClose(nghttp2_session*, int32_t id, uint32_t code, void* ud) {
    H2StreamResult& s = c(ud).streams_[id];
    s.closed = true;
    s.error_code = code;
    return 0;
  }
  static int onFrame(nghttp2_session*, const nghttp2_frame* frame, void* ud) {
    if (frame->hd.type == NGHTTP2_GOAWAY) {
      c(ud).goaway_ = true;
      c(ud).goaway_last_ = frame->goaway.last_stream_id;
    }
    return 0;
  }
  static ssize_t read(nghttp2_session*, int32_t id, uint8_t* buf, size_t length, uint32_t* flags,
                      nghttp2_data_source*, void* ud) {
    auto& p = c(ud).pending_[id];
    size_t n = std::min(length, p.data.size() - p.off);
    memcpy(buf, p.data.data() + p.off, n);
    p.off += n;
    if (p.off == p.data.size()) {
      p.data.clear();
      p.off = 0;
      if (p.end) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        return static_cast<ssize_t>(n);
      }
      if (n == 0) return NGHTTP2_ERR_DEFERRED;
    }
    return static_cast<ssize_t>(n);
  }
};

H2TestClient::H2TestClient(uint16_t port, H2ClientOptions options) : opts_(std::move(options)) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    error_ = "connect failed";
    return;
  }
  ctx_ = SSL_CTX_new(TLS_client_method());
  static const unsigned char kAlpn[] = {2, 'h', '2'};
  SSL_CTX_set_alpn_protos(ctx_, kAlpn, sizeof kAlpn);
  ssl_ = SSL_new(ctx_);
  SSL_set_fd(ssl_, fd_);
  std::string host = opts_.authority.substr(0, opts_.authority.find(':'));
  SSL_set_tlsext_host_name(ssl_, host.c_str());
  if (SSL_connect(ssl_) != 1) {
    error_ = "TLS handshake failed";
    return;
  }
  const unsigned char* p = nullptr;
  unsigned len = 0;
  SSL_get0_alpn_selected(ssl_, &p, &len);
  if (len != 2 || memcmp(p, "h2", 2) != 0) {
    error_ = "ALPN did not select h2";
    return;
  }
  fcntl(fd_, F_SETFL, fcntl(fd_, F_GETFL) | O_NONBLOCK);
  nghttp2_session_callbacks* cbs;
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_session_callbacks_set_on_header_callback(cbs, H2ClientCallbacks::onHeader);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, H2ClientCallbacks::onData);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, H2ClientCallbacks::onClose);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, H2ClientCallbacks::onFrame);
  nghttp2_option* opt;
  nghttp2_option_new(&opt);
  nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_session_client_new2(&session_, cbs, this, opt);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cbs);
  nghttp2_settings_entry s[] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE,
                                 static_cast<uint32_t>(opts_.stream_window)}};
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, s, 1);
  ok_ = true;
}

H2TestClient::~H2TestClient() {
  if (session_) nghttp2_session_del(session_);
  if (ssl_) SSL_free(ssl_);
  if (ctx_) SSL_CTX_free(ctx_);
  if (fd_ >= 0) ::close(fd_);
}

int32_t H2TestClient::submit(const std::string& method, const std::string& path,
                             const HeaderList& headers, const std::string* body, bool end) {
  std::vector<std::pair<std::string, std::string>> fields = {
      {":method", method}, {":scheme", "https"}, {":authority", opts_.authority}, {":path", path}};
  for (const auto& h : headers) fields.emplace_back(h.first, h.second);
  std::vector<nghttp2_nv> nv;
  for (auto& f : fields)
    nv.push_back({reinterpret_cast<uint8_t*>(f.first.data()), reinterpret_cast<uint8_t*>(f.second.data()),
                  f.first.size(), f.second.size(), NGHTTP2_NV_FLAG_NONE});
  if (body == nullptr && end)
    return nghttp2_submit_request(session_, nullptr, nv.data(), nv.size(), nullptr, this);
  nghttp2_data_provider prov;
  prov.source.ptr = nullptr;
  prov.read_callback = H2ClientCallbacks::read;
  int32_t id = nghttp2_submit_request(session_, nullptr, nv.data(), nv.size(), &prov, this);
  Pending& p = pending_[id];
  if (body) p.data = *body;
  p.end = end;
  return id;
}

void H2TestClient::sendMore(int32_t id, const std::string& bytes, bool end) {
  Pending& p = pending_[id];
  p.data.append(bytes);
  p.end = end;
  nghttp2_session_resume_data(session_, id);
}

void H2TestClient::reset(int32_t id, uint32_t code) {
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, code);
}

void H2TestClient::consume(int32_t id, size_t bytes) { nghttp2_session_consume(session_, id, bytes); }

bool H2TestClient::pump(int wait_ms) {
  for (;;) {
    const uint8_t* data;
    ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n < 0) return false;
    if (n == 0) break;
    size_t off = 0;
    while (off < static_cast<size_t>(n)) {
      int w = SSL_write(ssl_, data + off, static_cast<int>(n - off));
      if (w > 0) {
        off += static_cast<size_t>(w);
        continue;
      }
      int e = SSL_get_error(ssl_, w);
      if (e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ) return false;
      pollfd p{fd_, static_cast<short>(e == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN), 0};
      ::poll(&p, 1, 100);
    }
  }
  pollfd p{fd_, POLLIN, 0};
  if (SSL_pending(ssl_) == 0 && ::poll(&p, 1, wait_ms) <= 0) return true;
  char buf[16384];
  for (;;) {
    int r = SSL_read(ssl_, buf, sizeof buf);
    if (r > 0) {
      if (nghttp2_session_mem_recv(session_, reinterpret_cast<uint8_t*>(buf), static_cast<size_t>(r)) < 0)
        return false;
      continue;
    }
    int e = SSL_get_error(ssl_, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return true;
    return false;  // closed
  }
}

bool H2TestClient::run(const std::function<bool()>& done, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!done()) {
    if (eof_) return false;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    if (!pump(20)) {
      eof_ = true;
      return done();
    }
  }
  return true;
}

H2StreamResult H2TestClient::get(const std::string& path, const HeaderList& headers, int timeout_ms) {
  int32_t id = submit("GET", path, headers);
  if (!waitClosed(id, timeout_ms)) throw std::runtime_error("no response for " + path);
  return stream(id);
}

}  // namespace banyan::test
