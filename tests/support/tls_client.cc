#include "tls_client.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <stdexcept>
#include <thread>

namespace banyan::test {

TlsTestClient::TlsTestClient(const std::string& host, uint16_t port, TlsClientOptions options)
    : opts_(std::move(options)) {
  ConnectOptions co;
  co.source_address = opts_.source_address;
  co.timeout_ms = opts_.timeout_ms;
  fd_ = connectTo(host, port, co);
  ctx_ = SSL_CTX_new(TLS_client_method());
  if (!opts_.ca.empty()) {
    SSL_CTX_load_verify_locations(ctx_, opts_.ca.c_str(), nullptr);
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
  }
  if (!opts_.cert.empty()) {
    SSL_CTX_use_certificate_chain_file(ctx_, opts_.cert.c_str());
    SSL_CTX_use_PrivateKey_file(ctx_, opts_.key.c_str(), SSL_FILETYPE_PEM);
  }
  if (opts_.min_version) SSL_CTX_set_min_proto_version(ctx_, opts_.min_version);
  if (opts_.max_version) SSL_CTX_set_max_proto_version(ctx_, opts_.max_version);
  if (!opts_.cipher_list.empty()) SSL_CTX_set_cipher_list(ctx_, opts_.cipher_list.c_str());
  if (!opts_.ciphersuites.empty()) SSL_CTX_set_ciphersuites(ctx_, opts_.ciphersuites.c_str());
  if (!opts_.alpn.empty()) {
    std::string wire;
    for (const auto& p : opts_.alpn) {
      wire.push_back(static_cast<char>(p.size()));
      wire += p;
    }
    SSL_CTX_set_alpn_protos(ctx_, reinterpret_cast<const unsigned char*>(wire.data()),
                            static_cast<unsigned>(wire.size()));
  }
  ssl_ = SSL_new(ctx_);
  rbio_ = BIO_new(BIO_s_mem());
  wbio_ = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl_, rbio_, wbio_);
  SSL_set_connect_state(ssl_);
  if (!opts_.sni.empty()) SSL_set_tlsext_host_name(ssl_, opts_.sni.c_str());
  if (!opts_.session.empty()) {
    const unsigned char* p = reinterpret_cast<const unsigned char*>(opts_.session.data());
    SSL_SESSION* sess = d2i_SSL_SESSION(nullptr, &p, static_cast<long>(opts_.session.size()));
    if (sess) {
      SSL_set_session(ssl_, sess);
      SSL_SESSION_free(sess);
    }
  }
  if (!opts_.preamble.empty()) sendAll(fd_.get(), opts_.preamble);
  ok_ = handshake();
}

TlsTestClient::~TlsTestClient() {
  if (ssl_) SSL_free(ssl_);
  if (ctx_) SSL_CTX_free(ctx_);
}

void TlsTestClient::flushOut() {
  char buf[16384];
  for (;;) {
    int n = BIO_read(wbio_, buf, sizeof buf);
    if (n <= 0) break;
    std::string_view bytes(buf, static_cast<size_t>(n));
    if (opts_.segment == 0) {
      sendAll(fd_.get(), bytes);
      continue;
    }
    // Cut into small TCP segments (TCP_NODELAY is not needed: each send is
    // followed by a pause, so Nagle has nothing in flight to wait for).
    for (size_t off = 0; off < bytes.size(); off += opts_.segment) {
      sendAll(fd_.get(), bytes.substr(off, opts_.segment));
      if (opts_.segment_delay_ms)
        std::this_thread::sleep_for(std::chrono::milliseconds(opts_.segment_delay_ms));
    }
  }
}

bool TlsTestClient::readMore(int timeout_ms) {
  std::string in;
  ReadOutcome r = readSome(fd_.get(), in, timeout_ms);
  if (r != ReadOutcome::Data) return false;
  BIO_write(rbio_, in.data(), static_cast<int>(in.size()));
  return true;
}

bool TlsTestClient::handshake() {
  auto deadline = Clock::now() + Millis(opts_.timeout_ms);
  for (;;) {
    int r = SSL_do_handshake(ssl_);
    flushOut();
    if (r == 1) {
      // TLS 1.3 tickets arrive after the handshake: read them while the
      // server has nothing else to say.
      return true;
    }
    int err = SSL_get_error(ssl_, r);
    if (err != SSL_ERROR_WANT_READ) {
      char buf[256];
      ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
      error_ = buf;
      ERR_clear_error();
      return false;
    }
    auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
    if (left <= 0 || !readMore(static_cast<int>(left))) {
      error_ = "connection closed or timed out during the handshake";
      ERR_clear_error();
      return false;
    }
  }
}

std::string TlsTestClient::peerCommonName() const {
  X509* x = SSL_get1_peer_certificate(ssl_);
  if (!x) return "";
  char buf[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, buf, sizeof buf);
  X509_free(x);
  return buf;
}

std::string TlsTestClient::alpn() const {
  const unsigned char* p = nullptr;
  unsigned int n = 0;
  SSL_get0_alpn_selected(ssl_, &p, &n);
  return p ? std::string(reinterpret_cast<const char*>(p), n) : "";
}

std::string TlsTestClient::version() const { return SSL_get_version(ssl_); }
std::string TlsTestClient::cipher() const { return SSL_get_cipher_name(ssl_); }
bool TlsTestClient::resumed() const { return SSL_session_reused(ssl_) == 1; }
std::string TlsTestClient::sessionDer() const {
  SSL_SESSION* sess = SSL_get1_session(ssl_);
  if (!sess || !SSL_SESSION_is_resumable(sess)) {
    SSL_SESSION_free(sess);
    return "";
  }
  int n = i2d_SSL_SESSION(sess, nullptr);
  std::string der(static_cast<size_t>(n > 0 ? n : 0), '\0');
  unsigned char* p = reinterpret_cast<unsigned char*>(der.data());
  if (n > 0) i2d_SSL_SESSION(sess, &p);
  SSL_SESSION_free(sess);
  return der;
}

void TlsTestClient::send(std::string_view plain) {
  size_t off = 0;
  while (off < plain.size()) {
    int n = SSL_write(ssl_, plain.data() + off, static_cast<int>(plain.size() - off));
    if (n <= 0) throw std::runtime_error("TLS client: SSL_write failed");
    off += static_cast<size_t>(n);
    flushOut();
  }
}

HttpResponse TlsTestClient::readResponse() {
  auto deadline = Clock::now() + Millis(opts_.timeout_ms);
  char buf[16384];
  for (;;) {
    for (;;) {
      int n = SSL_read(ssl_, buf, sizeof buf);
      if (n > 0) {
        plain_.append(buf, static_cast<size_t>(n));
        continue;
      }
      ERR_clear_error();
      break;
    }
    flushOut();  // key updates, alerts
    if (auto end = findHeadEnd(plain_)) {
      HttpHead head = parseHead(std::string_view(plain_).substr(0, *end));
      size_t length = std::stoul("0" + headerValue(head.headers, "Content-Length"));
      if (plain_.size() >= *end + length) {
        HttpResponse r;
        r.raw_head = head.raw;
        r.headers = head.headers;
        size_t sp = head.start_line.find(' ');
        r.version = head.start_line.substr(0, sp);
        r.status = std::stoi(head.start_line.substr(sp + 1, 3));
        r.body = plain_.substr(*end, length);
        plain_.erase(0, *end + length);
        return r;
      }
    }
    auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
    if (left <= 0 || !readMore(static_cast<int>(left)))
      throw std::runtime_error("TLS client: no complete response; got: " + plain_);
  }
}

HttpResponse TlsTestClient::get(const std::string& target, const HeaderList& headers) {
  HeaderList h = headers;
  if (headerCount(h, "Host") == 0) h.insert(h.begin(), {"Host", opts_.sni.empty() ? "test" : opts_.sni});
  send(HttpClient::buildRequest("GET", target, h, ""));
  return readResponse();
}

std::string TlsTestClient::readBytes(size_t n) {
  auto deadline = Clock::now() + Millis(opts_.timeout_ms);
  char buf[16384];
  while (plain_.size() < n) {
    int r = SSL_read(ssl_, buf, sizeof buf);
    if (r > 0) {
      plain_.append(buf, static_cast<size_t>(r));
      continue;
    }
    ERR_clear_error();
    auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
    if (left <= 0 || !readMore(static_cast<int>(left)))
      throw std::runtime_error("TLS client: only " + std::to_string(plain_.size()) + " bytes");
  }
  std::string out = plain_.substr(0, n);
  plain_.erase(0, n);
  return out;
}

bool TlsTestClient::waitClosed(int timeout_ms) {
  auto deadline = Clock::now() + Millis(timeout_ms);
  char buf[4096];
  for (;;) {
    int n = SSL_read(ssl_, buf, sizeof buf);
    if (n <= 0) {
      int err = SSL_get_error(ssl_, n);
      ERR_clear_error();
      if (err == SSL_ERROR_ZERO_RETURN) return true;
      if (err != SSL_ERROR_WANT_READ) return true;
    }
    auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    std::string in;
    ReadOutcome r = readSome(fd_.get(), in, static_cast<int>(left));
    if (r == ReadOutcome::Eof || r == ReadOutcome::Error) return true;
    if (r == ReadOutcome::Timeout) return false;
    BIO_write(rbio_, in.data(), static_cast<int>(in.size()));
  }
}

ToolResult runTool(const std::vector<std::string>& args, const std::string& input, int timeout_ms) {
  int in_pipe[2], out_pipe[2], err_pipe[2];
  if (pipe2(in_pipe, O_CLOEXEC) || pipe2(out_pipe, O_CLOEXEC) || pipe2(err_pipe, O_CLOEXEC))
    throw std::runtime_error("pipe failed");
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    dup2(in_pipe[0], 0);
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    _exit(127);
  }
  close(in_pipe[0]);
  close(out_pipe[1]);
  close(err_pipe[1]);
  signal(SIGPIPE, SIG_IGN);
  if (!input.empty()) {
    ssize_t ignored = write(in_pipe[1], input.data(), input.size());
    (void)ignored;
  }
  // s_client keeps the connection while stdin is open: the caller's input
  // decides (a request with Connection: close ends it from the server side).
  close(in_pipe[1]);
  ToolResult r;
  auto deadline = Clock::now() + Millis(timeout_ms);
  bool out_open = true, err_open = true;
  char buf[8192];
  while (out_open || err_open) {
    auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
    if (left <= 0) break;
    pollfd p[2] = {{out_open ? out_pipe[0] : -1, POLLIN, 0}, {err_open ? err_pipe[0] : -1, POLLIN, 0}};
    if (poll(p, 2, static_cast<int>(left)) <= 0) continue;
    if (p[0].revents) {
      ssize_t n = read(out_pipe[0], buf, sizeof buf);
      if (n <= 0) out_open = false; else r.out.append(buf, static_cast<size_t>(n));
    }
    if (p[1].revents) {
      ssize_t n = read(err_pipe[0], buf, sizeof buf);
      if (n <= 0) err_open = false; else r.err.append(buf, static_cast<size_t>(n));
    }
  }
  close(out_pipe[0]);
  close(err_pipe[0]);
  int status = 0;
  for (;;) {
    pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid) break;
    if (Clock::now() >= deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return r;  // exit_status stays -1
    }
    std::this_thread::sleep_for(Millis(10));
  }
  r.exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

std::string clientHelloBytes(const ClientHelloSpec& spec) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (spec.max_version) SSL_CTX_set_max_proto_version(ctx, spec.max_version);
  SSL* ssl = SSL_new(ctx);
  if (!spec.sni.empty()) SSL_set_tlsext_host_name(ssl, spec.sni.c_str());
  if (spec.max_fragment) SSL_set_max_send_fragment(ssl, spec.max_fragment);
  if (!spec.alpn.empty()) {
    std::string wire;
    for (const auto& p : spec.alpn) wire += static_cast<char>(p.size()) + p;
    SSL_set_alpn_protos(ssl, reinterpret_cast<const unsigned char*>(wire.data()),
                        static_cast<unsigned>(wire.size()));
  }
  BIO* rbio = BIO_new(BIO_s_mem());
  BIO* wbio = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl, rbio, wbio);  // owned by ssl from here
  (void)SSL_connect(ssl);        // writes the ClientHello, then wants the server's answer
  char* data = nullptr;
  long n = BIO_get_mem_data(wbio, &data);
  std::string out(data, static_cast<size_t>(n));
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  return out;
}

}  // namespace banyan::test
