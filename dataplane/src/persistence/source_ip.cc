#include "persistence/source_ip.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <charconv>
#include <cstring>

namespace banyan::dp::persistence {

using common::ErrorCode;
using common::makeError;
using common::Result;

namespace {

// Length of the contiguous prefix of ones in `mask`, or -1 if the ones are
// not contiguous (255.0.255.0 is meaningless as a granularity).
int contiguousPrefix(const uint8_t* mask, size_t bytes) {
  int prefix = 0;
  bool zero_seen = false;
  for (size_t i = 0; i < bytes; ++i) {
    for (int bit = 7; bit >= 0; --bit) {
      bool one = (mask[i] >> bit) & 1;
      if (one && zero_seen) return -1;
      if (one)
        ++prefix;
      else
        zero_seen = true;
    }
  }
  return prefix;
}

void maskBytes(uint8_t* addr, size_t bytes, unsigned prefix) {
  for (size_t i = 0; i < bytes; ++i) {
    unsigned bit_start = static_cast<unsigned>(i) * 8;
    if (prefix >= bit_start + 8) continue;
    if (prefix <= bit_start) {
      addr[i] = 0;
    } else {
      addr[i] &= static_cast<uint8_t>(0xff00u >> (prefix - bit_start));
    }
  }
}

}  // namespace

Result<Granularity> parseGranularity(std::string_view text) {
  Granularity g;
  if (text.empty()) return g;
  auto invalid = [&] {
    return makeError(ErrorCode::kInvalidArgument,
                     "persistence_granularity must be a contiguous netmask or /N",
                     std::string(text));
  };
  if (text.front() == '/') {
    unsigned n = 0;
    const char* first = text.data() + 1;
    const char* last = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(first, last, n);
    if (ec != std::errc() || ptr != last || first == last || n > 128) return invalid();
    g.ipv4_prefix = static_cast<uint8_t>(n > 32 ? 32 : n);
    g.ipv6_prefix = static_cast<uint8_t>(n);
    return g;
  }
  if (text.size() >= INET6_ADDRSTRLEN) return invalid();
  char buf[INET6_ADDRSTRLEN];
  memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  uint8_t bytes[16];
  if (inet_pton(AF_INET, buf, bytes) == 1) {
    int p = contiguousPrefix(bytes, 4);
    if (p < 0) return invalid();
    g.ipv4_prefix = static_cast<uint8_t>(p);
    return g;
  }
  if (inet_pton(AF_INET6, buf, bytes) == 1) {
    int p = contiguousPrefix(bytes, 16);
    if (p < 0) return invalid();
    g.ipv6_prefix = static_cast<uint8_t>(p);
    return g;
  }
  return invalid();
}

SourceIpKey sourceIpKey(const sockaddr_storage& client, const Granularity& granularity) {
  SourceIpKey key;
  if (client.ss_family == AF_INET) {
    const auto& sin = reinterpret_cast<const sockaddr_in&>(client);
    key.bytes[0] = 4;
    memcpy(key.bytes + 1, &sin.sin_addr, 4);
    maskBytes(key.bytes + 1, 4, granularity.ipv4_prefix);
    key.size = 5;
  } else if (client.ss_family == AF_INET6) {
    const auto& sin6 = reinterpret_cast<const sockaddr_in6&>(client);
    if (IN6_IS_ADDR_V4MAPPED(&sin6.sin6_addr)) {
      key.bytes[0] = 4;
      memcpy(key.bytes + 1, sin6.sin6_addr.s6_addr + 12, 4);
      maskBytes(key.bytes + 1, 4, granularity.ipv4_prefix);
      key.size = 5;
    } else {
      key.bytes[0] = 6;
      memcpy(key.bytes + 1, sin6.sin6_addr.s6_addr, 16);
      maskBytes(key.bytes + 1, 16, granularity.ipv6_prefix);
      key.size = 17;
    }
  }
  return key;
}

SourceIpTable::SourceIpTable(const Granularity& granularity, const StickTableOptions& options)
    : granularity_(granularity), table_([&] {
        // Keys are binary and at most 17 bytes; never clip them.
        StickTableOptions o = options;
        o.max_key_length = 17;
        return o;
      }()) {}

std::optional<std::string_view> SourceIpTable::lookup(const sockaddr_storage& client,
                                                      TimePoint now) {
  SourceIpKey key = sourceIpKey(client, granularity_);
  if (key.size == 0) return std::nullopt;
  return table_.lookup(key.view(), now);
}

void SourceIpTable::store(const sockaddr_storage& client, std::string_view member_id,
                          TimePoint now) {
  SourceIpKey key = sourceIpKey(client, granularity_);
  if (key.size == 0) return;
  table_.store(key.view(), member_id, now);
}

}  // namespace banyan::dp::persistence
