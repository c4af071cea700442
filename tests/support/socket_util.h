// Small blocking-socket helpers for the integration tests: an owning fd,
// loopback address parsing, bounded connect/send/receive and polling waits.
// Every call that can block takes a deadline; failures throw std::runtime_error
// with the errno text (tests may use exceptions).
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace banyan::test {

using Clock = std::chrono::steady_clock;
using Millis = std::chrono::milliseconds;

// Owning file descriptor; closes on destruction.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(other.release()) {}
  Fd& operator=(Fd&& other) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release();
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

// "127.0.0.1" / "::1" plus port into a sockaddr; throws on a bad literal.
sockaddr_storage makeAddress(const std::string& host, uint16_t port, socklen_t* len);
// Address text without port ("127.0.0.1", "::1") and port of a sockaddr.
std::string addressText(const sockaddr_storage& addr);
uint16_t addressPort(const sockaddr_storage& addr);

// Binds host:0, reads the port the kernel chose, closes. A listener port for
// the proxy (it binds it a few milliseconds later; the race is acceptable). Never the
// same port twice in one process.
uint16_t pickFreePort(const std::string& host = "127.0.0.1");

// Listening socket on host:port (port 0: any) with SO_REUSEADDR.
Fd listenOn(const std::string& host, uint16_t port, int backlog = 128);

struct ConnectOptions {
  std::string source_address;  // bind before connect ("127.1.0.5"); empty: kernel's choice
  uint16_t source_port = 0;    // with source_address; SO_REUSEADDR is set
  int timeout_ms = 3000;       // connect and each later receive
};
// Connects (blocking, bounded by timeout_ms) and sets SO_RCVTIMEO/SO_SNDTIMEO.
Fd connectTo(const std::string& host, uint16_t port, const ConnectOptions& options = {});
// Same, but returns an invalid Fd instead of throwing when the connect fails.
Fd tryConnect(const std::string& host, uint16_t port, const ConnectOptions& options = {});

void setTimeouts(int fd, int timeout_ms);
void sendAll(int fd, std::string_view bytes);
// Closes with RST (SO_LINGER 0): leaves no TIME_WAIT, so the source port can be reused.
void abortiveClose(Fd& fd);

enum class ReadOutcome { Data, Eof, Timeout, Error };
// One poll+recv bounded by timeout_ms; appends to out.
ReadOutcome readSome(int fd, std::string& out, int timeout_ms);
// Reads until `out` holds at least `n` bytes, EOF, or the deadline. Returns true when n reached.
bool readAtLeast(int fd, std::string& out, size_t n, int timeout_ms);
// Reads until EOF or deadline; true on EOF (peer closed or reset).
bool readUntilEof(int fd, std::string& out, int timeout_ms);

// Polls `predicate` every `step` until it holds or `timeout` passes.
bool waitUntil(const std::function<bool()>& predicate, Millis timeout, Millis step = Millis(10));

// True while something LISTENs on the TCP port (any address), read from
// /proc/net/tcp{,6} so that checking does not open a connection the proxy
// would count or forward.
bool isPortListening(uint16_t port);

}  // namespace banyan::test
