#include "http_client.h"

#include <cstdlib>
#include <stdexcept>

namespace banyan::test {

namespace {

std::string describe(const std::string& buffer) {
  std::string shown = buffer.substr(0, 200);
  for (char& c : shown)
    if (c == '\r') c = '~';
  return "received so far (" + std::to_string(buffer.size()) + " bytes): [" + shown + "]";
}

int remaining(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
  return left < 0 ? 0 : static_cast<int>(left);
}

}  // namespace

HttpResponse ResponseReader::read(int fd, int timeout_ms, bool head_request) {
  auto deadline = Clock::now() + Millis(timeout_ms);
  bool eof = false;
  // Reads more, or throws when the deadline passes or the peer is gone.
  auto more = [&](const char* waiting_for) {
    if (eof)
      throw std::runtime_error(std::string("connection closed while waiting for ") + waiting_for +
                               "; " + describe(buffer_));
    if (Clock::now() >= deadline)
      throw std::runtime_error(std::string("timed out waiting for ") + waiting_for + "; " +
                               describe(buffer_));
    ReadOutcome r = readSome(fd, buffer_, remaining(deadline));
    if (r == ReadOutcome::Eof || r == ReadOutcome::Error) eof = true;
  };

  std::optional<size_t> head_end;
  while (!(head_end = findHeadEnd(buffer_))) more("response head");
  HttpHead head = parseHead(std::string_view(buffer_).substr(0, *head_end));
  buffer_.erase(0, *head_end);

  HttpResponse resp;
  resp.raw_head = head.raw;
  resp.headers = std::move(head.headers);
  {
    const std::string& line = head.start_line;
    size_t sp1 = line.find(' ');
    if (sp1 == std::string::npos || line.compare(0, 5, "HTTP/") != 0)
      throw std::runtime_error("bad status line: [" + line + "]");
    resp.version = line.substr(0, sp1);
    size_t sp2 = line.find(' ', sp1 + 1);
    resp.status = std::atoi(
        line.substr(sp1 + 1, sp2 == std::string::npos ? std::string::npos : sp2 - sp1 - 1).c_str());
    if (sp2 != std::string::npos) resp.reason = line.substr(sp2 + 1);
  }

  bool no_body = head_request || (resp.status >= 100 && resp.status < 200) || resp.status == 204 ||
                 resp.status == 304;
  if (no_body) return resp;
  if (headerHasToken(resp.headers, "Transfer-Encoding", "chunked")) {
    resp.chunked = true;
    while (true) {
      size_t consumed = 0;
      ChunkedStatus st = decodeChunked(buffer_, resp.body, consumed);
      if (st == ChunkedStatus::Done) {
        buffer_.erase(0, consumed);
        break;
      }
      if (st == ChunkedStatus::Invalid)
        throw std::runtime_error("bad chunked body; " + describe(buffer_));
      more("chunked body");
    }
  } else if (resp.hasHeader("Content-Length")) {
    size_t length = std::strtoull(resp.header("Content-Length").c_str(), nullptr, 10);
    while (buffer_.size() < length) more("body");
    resp.body = buffer_.substr(0, length);
    buffer_.erase(0, length);
  } else {
    while (!eof) {
      if (Clock::now() >= deadline)
        throw std::runtime_error("timed out waiting for close-delimited body; " +
                                 describe(buffer_));
      ReadOutcome r = readSome(fd, buffer_, remaining(deadline));
      if (r == ReadOutcome::Eof || r == ReadOutcome::Error) eof = true;
    }
    resp.body = std::move(buffer_);
    buffer_.clear();
  }
  resp.closed_after = eof;
  return resp;
}

HttpClient::HttpClient(std::string host, uint16_t port, ConnectOptions options)
    : host_(std::move(host)), port_(port), options_(std::move(options)) {}

void HttpClient::connect() {
  reader_ = ResponseReader();
  fd_ = connectTo(host_, port_, options_);
}

uint16_t HttpClient::localPort() const {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&ss), &len);
  return addressPort(ss);
}

void HttpClient::sendRaw(std::string_view bytes) {
  if (!fd_.valid()) connect();
  sendAll(fd_.get(), bytes);
}

void HttpClient::shutdownWrite() {
  if (fd_.valid()) ::shutdown(fd_.get(), SHUT_WR);
}

HttpResponse HttpClient::readResponse(bool head_request) {
  return readResponse(options_.timeout_ms, head_request);
}

HttpResponse HttpClient::readResponse(int timeout_ms, bool head_request) {
  if (!fd_.valid()) throw std::runtime_error("readResponse on a closed client");
  HttpResponse resp = reader_.read(fd_.get(), timeout_ms, head_request);
  if (resp.closed_after) close();
  return resp;
}

std::string HttpClient::readRaw(int timeout_ms) {
  std::string out = std::move(reader_.buffered());
  reader_.buffered().clear();
  if (!fd_.valid()) return out;
  auto deadline = Clock::now() + Millis(timeout_ms);
  while (Clock::now() < deadline) {
    ReadOutcome r = readSome(fd_.get(), out, remaining(deadline));
    if (r == ReadOutcome::Eof || r == ReadOutcome::Error) break;
  }
  return out;
}

bool HttpClient::waitClosed(int timeout_ms, std::string* extra) {
  std::string seen = std::move(reader_.buffered());
  reader_.buffered().clear();
  bool closed = !fd_.valid() || readUntilEof(fd_.get(), seen, timeout_ms);
  if (extra) *extra = seen;
  if (closed) close();
  return closed;
}

std::string HttpClient::buildRequest(const std::string& method, const std::string& target,
                                     const HeaderList& headers, const std::string& body) {
  std::string out = method + " " + target + " HTTP/1.1\r\n";
  if (headerCount(headers, "Host") == 0) out += "Host: test.invalid\r\n";
  for (const auto& [n, v] : headers) out += n + ": " + v + "\r\n";
  if (!body.empty() && headerCount(headers, "Content-Length") == 0 &&
      headerCount(headers, "Transfer-Encoding") == 0)
    out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  out += "\r\n";
  out += body;
  return out;
}

HttpResponse HttpClient::request(const std::string& method, const std::string& target,
                                 const HeaderList& headers, const std::string& body) {
  sendRaw(buildRequest(method, target, headers, body));
  return readResponse(method == "HEAD");
}

HttpResponse fetchOnce(const std::string& host, uint16_t port, const std::string& target,
                       const ConnectOptions& options, const HeaderList& headers) {
  HttpClient client(host, port, options);
  HeaderList all = headers;
  all.emplace_back("Connection", "close");
  return client.request("GET", target, all);
}

std::optional<HttpResponse> tryFetchOnce(const std::string& host, uint16_t port,
                                         const std::string& target, const ConnectOptions& options,
                                         std::string* error) {
  try {
    return fetchOnce(host, port, target, options);
  } catch (const std::exception& e) {
    if (error) *error = e.what();
    return std::nullopt;
  }
}

}  // namespace banyan::test
