#include "test_http_backend.h"

#include <sys/socket.h>

#include <cstdlib>
#include <cstring>
#include <thread>

#include "http_client.h"

namespace banyan::test {

namespace {

constexpr size_t kMaxHead = 1 << 20;
constexpr size_t kMaxRecorded = 8 << 20;
constexpr char kProxyV2Signature[] = "\r\n\r\n\0\r\nQUIT\n";

const char* reasonFor(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Status";
  }
}

bool sendQuietly(int fd, std::string_view bytes) {
  try {
    sendAll(fd, bytes);
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace

TestHttpBackend::TestHttpBackend(std::string name, std::string address, HttpBackendOptions options)
    : name_(std::move(name)),
      options_(std::move(options)),
      core_(std::move(address), [this](int fd, size_t index, const sockaddr_storage& peer) {
        serve(fd, index, peer);
      }) {
  core_.start(0);
}

TestHttpBackend::~TestHttpBackend() { core_.stop(); }

void TestHttpBackend::configure(const std::function<void(HttpBackendOptions&)>& change) {
  std::lock_guard lock(mu_);
  change(options_);
}

HttpBackendOptions TestHttpBackend::options() const {
  std::lock_guard lock(mu_);
  return options_;
}

size_t TestHttpBackend::requestCount() const {
  std::lock_guard lock(mu_);
  return requests_.size();
}

std::vector<RecordedRequest> TestHttpBackend::requests() const {
  std::lock_guard lock(mu_);
  return requests_;
}

std::vector<RecordedConnection> TestHttpBackend::connections() const {
  std::lock_guard lock(mu_);
  return connections_;
}

std::string TestHttpBackend::receivedBytes() const {
  std::lock_guard lock(mu_);
  return received_;
}

size_t TestHttpBackend::receivedByteCount() const {
  std::lock_guard lock(mu_);
  return received_count_;
}

bool TestHttpBackend::waitForRequests(size_t count, int timeout_ms) const {
  return waitUntil([&] { return requestCount() >= count; }, Millis(timeout_ms));
}

void TestHttpBackend::clearRecords() {
  std::lock_guard lock(mu_);
  requests_.clear();
  received_.clear();
  received_count_ = 0;
}

std::string TestHttpBackend::bodyFor(const HttpBackendOptions& options) const {
  if (!options.body.empty()) return options.body;
  if (options.body_size == 0) return name_ + "\n";
  return patternBody(options.body_size);
}

std::string patternBody(size_t size) {
  std::string body(size, 'x');
  for (size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>('a' + (i * 7 + i / 26) % 26);
  return body;
}

void TestHttpBackend::serve(int fd, size_t index, const sockaddr_storage& peer) {
  {
    std::lock_guard lock(mu_);
    if (connections_.size() <= index) connections_.resize(index + 1);
    connections_[index].peer_address = addressText(peer);
    connections_[index].peer_port = addressPort(peer);
  }
  std::string buf;
  // Reads more bytes into buf, recording them; false on EOF, error or stop.
  auto read_more = [&]() -> bool {
    while (!core_.stopping()) {
      std::string chunk;
      ReadOutcome r = readSome(fd, chunk, 50);
      if (r == ReadOutcome::Timeout) continue;
      if (r != ReadOutcome::Data) return false;
      std::lock_guard lock(mu_);
      auto& first = connections_[index].first_bytes;
      if (first.size() < 1024) first.append(chunk.substr(0, 1024 - first.size()));
      if (received_.size() < kMaxRecorded) received_.append(chunk);
      received_count_ += chunk.size();
      buf += chunk;
      return true;
    }
    return false;
  };

  // A PROXY header (v1 or v2) may come first; skip it and keep it for the test.
  // A v2 header starts with CRLF CRLF, so a leading CR means "wait for 16 bytes".
  auto preamble_incomplete = [&] {
    if (buf.size() >= 16) return false;
    if (!buf.empty() && buf[0] == '\r') return true;
    return buf.find("\r\n") == std::string::npos;
  };
  while (preamble_incomplete())
    if (!read_more()) return;
  if (buf.compare(0, 6, "PROXY ") == 0) {
    size_t eol;
    while ((eol = buf.find("\r\n")) == std::string::npos)
      if (buf.size() > 200 || !read_more()) return;
    std::lock_guard lock(mu_);
    connections_[index].proxy_header = buf.substr(0, eol + 2);
    buf.erase(0, eol + 2);
  } else if (buf.size() >= 16 && std::memcmp(buf.data(), kProxyV2Signature, 12) == 0) {
    size_t total = 16 + ((static_cast<uint8_t>(buf[14]) << 8) | static_cast<uint8_t>(buf[15]));
    while (buf.size() < total)
      if (!read_more()) return;
    std::lock_guard lock(mu_);
    connections_[index].proxy_header = buf.substr(0, total);
    buf.erase(0, total);
  }

  while (!core_.stopping()) {
    std::optional<size_t> head_end;
    while (!(head_end = findHeadEnd(buf))) {
      if (buf.size() > kMaxHead || !read_more()) return;
    }
    HttpHead head = parseHead(std::string_view(buf).substr(0, *head_end));
    buf.erase(0, *head_end);
    RecordedRequest req;
    req.connection = index;
    req.head = head.raw;
    req.headers = head.headers;
    {
      const std::string& line = head.start_line;
      size_t sp1 = line.find(' ');
      size_t sp2 = line.rfind(' ');
      req.method = line.substr(0, sp1);
      if (sp1 != std::string::npos && sp2 > sp1) {
        req.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
        req.version = line.substr(sp2 + 1);
      }
    }
    HttpBackendOptions opts = options();
    bool chunked_body = headerHasToken(req.headers, "Transfer-Encoding", "chunked");
    size_t content_length = std::strtoull(req.header("Content-Length").c_str(), nullptr, 10);
    bool has_body = chunked_body || content_length > 0;
    if (has_body && opts.send_100_continue && !opts.never_answer &&
        equalsIgnoreCase(req.header("Expect"), "100-continue")) {
      if (!sendQuietly(fd, "HTTP/1.1 100 Continue\r\n\r\n")) return;
    }
    if (chunked_body) {
      while (true) {
        size_t consumed = 0;
        ChunkedStatus st = decodeChunked(buf, req.body, consumed);
        if (st == ChunkedStatus::Done) {
          buf.erase(0, consumed);
          break;
        }
        if (st == ChunkedStatus::Invalid || !read_more()) return;
      }
    } else if (content_length > 0) {
      while (buf.size() < content_length)
        if (!read_more()) return;
      req.body = buf.substr(0, content_length);
      buf.erase(0, content_length);
    }
    bool upgrade = opts.answer_upgrade && req.hasHeaderUpgrade();
    {
      std::lock_guard lock(mu_);
      requests_.push_back(req);
    }
    if (opts.never_answer) {
      while (read_more()) buf.clear();
      return;
    }
    if (upgrade) {
      std::string resp = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: " + req.header("Upgrade") +
                         "\r\nConnection: Upgrade\r\nX-Backend: " + name_ + "\r\n\r\n";
      if (!sendQuietly(fd, resp)) return;
      // Echo everything from now on (bytes after the head included).
      while (true) {
        if (!buf.empty() && !sendQuietly(fd, buf)) return;
        buf.clear();
        if (!read_more()) return;
      }
    }
    if (opts.delay_ms > 0 &&
        (opts.delay_path_prefix.empty() || req.target.rfind(opts.delay_path_prefix, 0) == 0)) {
      auto until = Clock::now() + Millis(opts.delay_ms);
      while (Clock::now() < until && !core_.stopping()) std::this_thread::sleep_for(Millis(5));
    }
    bool close =
        opts.close_after_response || headerHasToken(req.headers, "Connection", "close") ||
        (req.version == "HTTP/1.0" && !headerHasToken(req.headers, "Connection", "keep-alive"));
    std::string body = bodyFor(opts);
    std::string resp =
        "HTTP/1.1 " + std::to_string(opts.status) + " " + reasonFor(opts.status) + "\r\n";
    resp += "X-Backend: " + name_ + "\r\n";
    resp += "X-Request-Path: " + req.target + "\r\n";
    resp += "X-Member-Connection: " + std::to_string(index) + "\r\n";
    resp += "Content-Type: text/plain\r\n";
    for (const auto& [name, value] : opts.extra_headers) resp += name + ": " + value + "\r\n";
    bool no_body = opts.status == 204 || opts.status == 304;
    if (no_body) {
      body.clear();
    } else if (opts.chunked) {
      resp += "Transfer-Encoding: chunked\r\n";
    } else {
      resp += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    }
    if (close) resp += "Connection: close\r\n";
    resp += "\r\n";
    if (req.method != "HEAD" && !no_body) resp += opts.chunked ? encodeChunked(body, 4096) : body;
    if (!sendQuietly(fd, resp)) return;
    if (close) {
      ::shutdown(fd, SHUT_WR);
      // Let the proxy read everything before the socket closes (no RST).
      std::string rest;
      readUntilEof(fd, rest, 500);
      return;
    }
  }
}

}  // namespace banyan::test
