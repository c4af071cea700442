// TLS session ticket keys for every TERMINATED_HTTPS listener of the process.
//
// One key ring is shared by all workers and survives config applies: a client
// resuming a session may land on any worker's SO_REUSEPORT socket, and after a
// reload. A new key is made every rotation period; the previous kKept - 1 keys
// still decrypt tickets (which are then renewed with the current key), so a
// ticket is accepted for at least (kKept - 1) periods and at most kKept.
//
// Thread-safe: a mutex guards the ring. It is taken once per full or resumed
// handshake, next to public-key or AEAD work that costs far more.
#pragma once

#include <openssl/ssl.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>

namespace banyan::dp::tls {

class TicketKeys {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  static constexpr size_t kKept = 3;

  struct Key {
    std::array<uint8_t, 16> name{};
    std::array<uint8_t, 32> aes{};
    std::array<uint8_t, 32> hmac{};
  };

  explicit TicketKeys(std::chrono::seconds period, Clock clock = {});

  void setPeriod(std::chrono::seconds period);
  std::chrono::seconds period() const;
  // The key new tickets are sealed with; rotates first when its period ended.
  Key current();
  // The key a ticket named `name` was sealed with, if still kept. `is_current`
  // tells whether it is the newest (otherwise the ticket should be renewed).
  std::optional<Key> find(const uint8_t* name, bool* is_current);
  // Number of keys made so far (the first one included).
  uint64_t generated() const;

  // Makes `ctx` seal and open tickets with this ring. The ring must outlive ctx.
  void install(SSL_CTX* ctx);

 private:
  void rotateIfDueLocked();

  mutable std::mutex mu_;
  std::chrono::seconds period_;
  Clock clock_;
  std::deque<Key> keys_;  // newest first
  std::chrono::steady_clock::time_point made_at_{};
  uint64_t generated_ = 0;
};

// Whether a ticket opened on a connection of protocol `version` (TLS1_3_VERSION
// etc.) is replaced by a fresh one: always in TLS 1.3 (tickets are single-use
// there, and OpenSSL clients with a session cache cannot resume twice from one),
// in TLS 1.2 only when an older key sealed it.
bool renewsTicket(int version, bool key_is_current);

}  // namespace banyan::dp::tls
