#include "control/control_server.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "banyan/common/logging.h"
#include "http/parser.h"
#include "proxy/proxy.h"

namespace banyan::dp::control {
namespace {

constexpr size_t kMaxBody = 64u << 20;  // a config document with thousands of members fits
constexpr int kIoTimeoutMs = 10000;

std::string jsonString(const std::string& s) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.String(s.c_str(), static_cast<rapidjson::SizeType>(s.size()));
  return sb.GetString();
}

void writeAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    pollfd p{fd, POLLOUT, 0};
    if (poll(&p, 1, kIoTimeoutMs) <= 0) return;
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) {
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      return;
    }
    off += static_cast<size_t>(n);
  }
}

void respond(int fd, int status, const std::string& body) {
  const char* reason = status == 200   ? "OK"
                       : status == 400 ? "Bad Request"
                       : status == 404 ? "Not Found"
                       : status == 405 ? "Method Not Allowed"
                       : status == 413 ? "Payload Too Large"
                                       : "Error";
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + reason +
                    "\r\nContent-Type: application/json\r\nContent-Length: " +
                    std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
  writeAll(fd, out);
}

}  // namespace

ControlServer::ControlServer(proxy::Proxy& proxy, std::string version)
    : proxy_(proxy), version_(std::move(version)) {}

ControlServer::~ControlServer() { stop(); }

common::Result<void> ControlServer::start(const std::string& path) {
  sockaddr_un addr{};
  if (path.size() >= sizeof addr.sun_path)
    return common::makeError(common::ErrorCode::kInvalidArgument, "control socket path too long", path);
  addr.sun_family = AF_UNIX;
  memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return common::makeError(common::ErrorCode::kUnavailable, strerror(errno), path);
  ::unlink(path.c_str());
  if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd_, 64) != 0) {
    int e = errno;
    ::close(fd_);
    fd_ = -1;
    return common::makeError(common::ErrorCode::kUnavailable,
                             std::string("cannot listen: ") + strerror(e), path);
  }
  ::chmod(path.c_str(), 0600);
  if (pipe2(wake_, O_CLOEXEC) != 0) return common::makeError(common::ErrorCode::kUnavailable, "pipe2", path);
  path_ = path;
  thread_ = std::thread([this] { serve(); });
  return {};
}

void ControlServer::stop() {
  if (wake_[1] >= 0) {
    char c = 1;
    ssize_t n = ::write(wake_[1], &c, 1);
    (void)n;
  }
  if (thread_.joinable()) thread_.join();
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(path_.c_str());
    fd_ = -1;
  }
  for (int& f : wake_) {
    if (f >= 0) ::close(f);
    f = -1;
  }
}

void ControlServer::serve() {
  for (;;) {
    pollfd p[2] = {{fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (p[1].revents) return;
    if (!(p[0].revents & POLLIN)) continue;
    int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    handle(c);
    ::close(c);
  }
}

void ControlServer::handle(int fd) {
  std::string buf;
  http::RequestHead head;
  http::Limits limits;
  http::ParseResult r;
  char chunk[65536];
  for (;;) {
    r = http::parseRequestHead(buf, limits, head);
    if (r.status != http::ParseStatus::NeedMore) break;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, kIoTimeoutMs) <= 0) return;
    ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) return;
    buf.append(chunk, static_cast<size_t>(n));
  }
  if (r.status == http::ParseStatus::Invalid) {
    respond(fd, 400, "{\"error\": " + jsonString(http::parseErrorName(r.error)) + "}");
    return;
  }
  std::string method(head.method);
  std::string target(head.target);
  if (head.body == http::BodyKind::Chunked) {
    respond(fd, 400, "{\"error\": \"send the body with Content-Length\"}");
    return;
  }
  uint64_t length = head.body == http::BodyKind::ContentLength ? head.content_length : 0;
  if (length > kMaxBody) {
    respond(fd, 413, "{\"error\": \"document too large\"}");
    return;
  }
  std::string body = buf.substr(r.consumed);
  while (body.size() < length) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, kIoTimeoutMs) <= 0) return;
    ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) return;
    body.append(chunk, static_cast<size_t>(n));
  }
  body.resize(length);

  if (target == "/version" && method == "GET") {
    respond(fd, 200, "{\"version\": " + jsonString(version_) + "}");
  } else if (target == "/stats" && method == "GET") {
    respond(fd, 200, proxy_.statsJson());
  } else if (target == "/health" && method == "GET") {
    respond(fd, 200, proxy_.healthJson());
  } else if (target == "/config" && method == "GET") {
    respond(fd, 200, proxy_.configDocument());
  } else if (target == "/config" && (method == "PUT" || method == "POST")) {
    auto result = proxy_.apply(std::move(body));
    if (result.ok()) {
      respond(fd, 200, "{\"applied\": true, \"generation\": " + std::to_string(result.value()) + "}");
    } else {
      const auto& e = result.error();
      LB_WARN("Refused a config. path=%s reason=%s", e.context.c_str(), e.message.c_str());
      respond(fd, 400, "{\"applied\": false, \"path\": " + jsonString(e.context) +
                           ", \"reason\": " + jsonString(e.message) + "}");
    }
  } else if (target == "/version" || target == "/stats" || target == "/health" || target == "/config") {
    respond(fd, 405, "{\"error\": \"method not allowed\"}");
  } else {
    respond(fd, 404, "{\"error\": \"not found\"}");
  }
}

}  // namespace banyan::dp::control
