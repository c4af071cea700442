// Reads the server name (SNI, RFC 6066 section 3) from the first bytes a client
// sends on a TLS connection that banyan-proxy passes through unterminated (TCP
// and HTTPS listeners with L7 policies). Pure and allocation-free apart from
// the returned name: the session keeps the bytes, calls this again whenever
// more arrived, and forwards them unchanged once it has picked a pool.
//
// The input is untrusted: every length is checked against its container
// (record, handshake message, extension block, extension) before it is used.
// A ClientHello may span several TLS records (RFC 8446 section 5.1 lets a
// handshake message be fragmented) and so several TCP segments; its body is
// bounded by kMaxClientHelloLength, the input by kMaxClientHelloInput.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace banyan::dp::tls {

// The largest ClientHello body read (a TLS record's payload limit, 2^14;
// real ClientHellos are a few hundred bytes, post-quantum key shares ~1.7 KiB).
inline constexpr size_t kMaxClientHelloLength = 16384;
// Bytes held at most while looking for it: the body, its 4-byte handshake
// header and record headers for a ClientHello cut into records of 256 bytes.
inline constexpr size_t kMaxClientHelloInput = kMaxClientHelloLength + 4 + 5 * 65;

enum class ClientHelloStatus {
  kDone,      // a complete ClientHello: `sni` holds its host name, if it had one
  kNeedMore,  // a prefix of a ClientHello: call again with more bytes
  kNotTls,    // not a TLS ClientHello (or not one this reads): no SNI
};

// Why the bytes are kNotTls (kNone otherwise); for debug logs and tests.
enum class ClientHelloError {
  kNone,
  kNotHandshake,      // the first record is not a TLS handshake record (plain text, SSLv2)
  kBadRecordVersion,  // record version is not 3.x
  kBadRecordLength,   // a record of length 0 or above 2^14
  kRecordTypeChange,  // a non-handshake record before the ClientHello ended
  kNotClientHello,    // the first handshake message is another type
  kTooLarge,          // the ClientHello is longer than the limits above
  kMalformed,         // a length inside the ClientHello does not fit its container
  kDuplicateExtension,
  kBadServerName,     // server_name extension malformed, or a host name that is not one
};

struct ClientHelloParse {
  ClientHelloStatus status = ClientHelloStatus::kNeedMore;
  ClientHelloError error = ClientHelloError::kNone;
  // kDone: bytes of the input up to the end of the record that completed the
  // ClientHello (the session forwards the whole input anyway).
  size_t consumed = 0;
  bool has_sni = false;
  std::string sni;  // the host_name entry, lower-cased (ASCII); empty without one
};

ClientHelloParse parseClientHello(std::span<const uint8_t> input);
inline ClientHelloParse parseClientHello(std::string_view input) {
  return parseClientHello(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(input.data()), input.size()));
}

std::string_view clientHelloErrorName(ClientHelloError error);

}  // namespace banyan::dp::tls
