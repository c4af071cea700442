// TLS record and ClientHello layouts: RFC 8446 sections 4.1.2 and 5.1 (TLS 1.3),
// RFC 5246 section 7.4.1.2 (TLS 1.2, the same wire format), server_name:
// RFC 6066 section 3.
#include "tls/client_hello.h"

#include <algorithm>

namespace banyan::dp::tls {

namespace {

constexpr uint8_t kHandshakeRecord = 22;
constexpr uint8_t kClientHello = 1;
constexpr size_t kRecordHeader = 5;
constexpr size_t kHandshakeHeader = 4;
constexpr size_t kMaxRecordPayload = 16384;  // 2^14 (RFC 8446 section 5.1)
constexpr uint16_t kServerNameExtension = 0;
constexpr uint8_t kHostNameType = 0;
constexpr size_t kMaxHostName = 255;

ClientHelloParse notTls(ClientHelloError error) {
  ClientHelloParse r;
  r.status = ClientHelloStatus::kNotTls;
  r.error = error;
  return r;
}

// A bounds-checked cursor over the ClientHello body. Every read checks the
// bytes left first; a failed read leaves `ok` false and returns zeros.
class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : p_(data), left_(size) {}

  bool ok() const { return ok_; }
  size_t left() const { return left_; }

  uint32_t u8() { return take(1) ? p_[-1] : 0; }
  uint32_t u16() { return take(2) ? (uint32_t{p_[-2]} << 8) | p_[-1] : 0; }
  // A sub-reader over the next `n` bytes, which this one skips.
  Reader sub(size_t n) {
    if (!take(n)) return Reader(nullptr, 0, false);
    return Reader(p_ - n, n);
  }
  const uint8_t* bytes(size_t n) { return take(n) ? p_ - n : nullptr; }

 private:
  Reader(const uint8_t* data, size_t size, bool ok) : p_(data), left_(size), ok_(ok) {}
  bool take(size_t n) {
    if (!ok_ || n > left_) {
      ok_ = false;
      return false;
    }
    p_ += n;
    left_ -= n;
    return true;
  }

  const uint8_t* p_;
  size_t left_;
  bool ok_ = true;
};

bool hostNameChar(uint8_t c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_';
}

// server_name extension_data: ServerNameList { NameType; opaque HostName<1..2^16-1> }<1..2^16-1>.
// RFC 6066 allows one name per type; only host_name (0) is defined.
ClientHelloError readServerName(Reader ext, ClientHelloParse& out) {
  uint32_t list_length = ext.u16();
  if (!ext.ok() || list_length == 0 || list_length != ext.left())
    return ClientHelloError::kBadServerName;
  while (ext.left() > 0) {
    uint32_t type = ext.u8();
    uint32_t length = ext.u16();
    const uint8_t* name = ext.bytes(length);
    if (!ext.ok() || length == 0) return ClientHelloError::kBadServerName;
    if (type != kHostNameType) continue;  // unknown types are skipped (no others exist)
    if (out.has_sni) return ClientHelloError::kBadServerName;
    // ASCII host names (A-labels for IDNs), without a trailing dot.
    if (length > kMaxHostName || name[length - 1] == '.') return ClientHelloError::kBadServerName;
    for (size_t i = 0; i < length; ++i)
      if (!hostNameChar(name[i])) return ClientHelloError::kBadServerName;
    out.sni.resize(length);
    for (size_t i = 0; i < length; ++i) {
      uint8_t c = name[i];
      out.sni[i] = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    out.has_sni = true;
  }
  return ClientHelloError::kNone;
}

// The ClientHello body (after its handshake header).
ClientHelloError readBody(const uint8_t* data, size_t size, ClientHelloParse& out) {
  Reader r(data, size);
  uint32_t legacy_version = r.u16();
  (void)r.bytes(32);  // random
  uint32_t session_id = r.u8();
  (void)r.bytes(session_id);
  uint32_t suites = r.u16();
  (void)r.bytes(suites);
  uint32_t compressions = r.u8();
  (void)r.bytes(compressions);
  if (!r.ok() || (legacy_version >> 8) != 3 || session_id > 32 || suites < 2 || suites % 2 != 0 ||
      compressions < 1)
    return ClientHelloError::kMalformed;
  if (r.left() == 0) return ClientHelloError::kNone;  // no extensions (SSLv3-style): no SNI
  uint32_t extensions_length = r.u16();
  if (!r.ok() || extensions_length != r.left()) return ClientHelloError::kMalformed;
  bool seen_server_name = false;
  while (r.left() > 0) {
    uint32_t type = r.u16();
    uint32_t length = r.u16();
    Reader ext = r.sub(length);
    if (!r.ok()) return ClientHelloError::kMalformed;
    if (type != kServerNameExtension) continue;
    // Two server_name extensions would let a client show one name to us and
    // another to the member (RFC 8446 section 4.2: one extension per type).
    if (seen_server_name) return ClientHelloError::kDuplicateExtension;
    seen_server_name = true;
    if (ClientHelloError e = readServerName(ext, out); e != ClientHelloError::kNone) return e;
  }
  return ClientHelloError::kNone;
}

}  // namespace

ClientHelloParse parseClientHello(std::span<const uint8_t> in) {
  // Pass 1: walk the records, checking each header as soon as its bytes are
  // there, until the handshake payload holds the whole ClientHello.
  size_t offset = 0;
  size_t payload = 0;       // handshake bytes seen so far, across records
  size_t needed = 0;        // header + body of the ClientHello, once known
  uint8_t header[kHandshakeHeader] = {};
  size_t records = 0;
  size_t consumed = 0;      // end of the last record's bytes looked at
  while (true) {
    // A record starting here would end past the bound. Checking record ends
    // (not the input's size) keeps the answer independent of how many bytes
    // beyond the ClientHello have arrived.
    if (offset + kRecordHeader >= kMaxClientHelloInput) return notTls(ClientHelloError::kTooLarge);
    size_t have = in.size() - offset;
    if (have >= 1 && in[offset] != kHandshakeRecord)
      return notTls(records == 0 ? ClientHelloError::kNotHandshake
                                 : ClientHelloError::kRecordTypeChange);
    if (have >= 2 && in[offset + 1] != 3) return notTls(ClientHelloError::kBadRecordVersion);
    if (have >= 3 && in[offset + 2] > 4) return notTls(ClientHelloError::kBadRecordVersion);
    if (have < kRecordHeader) break;
    size_t length = (size_t{in[offset + 3]} << 8) | in[offset + 4];
    if (length == 0 || length > kMaxRecordPayload) return notTls(ClientHelloError::kBadRecordLength);
    size_t start = offset + kRecordHeader;
    if (start + length > kMaxClientHelloInput) return notTls(ClientHelloError::kTooLarge);
    size_t avail = std::min(length, in.size() - start);
    // The handshake header itself may be split between records.
    for (size_t i = 0; i < avail && payload + i < kHandshakeHeader; ++i)
      header[payload + i] = in[start + i];
    size_t before = payload;
    payload += avail;
    if (before < kHandshakeHeader && payload >= kHandshakeHeader) {
      if (header[0] != kClientHello) return notTls(ClientHelloError::kNotClientHello);
      size_t body = (size_t{header[1]} << 16) | (size_t{header[2]} << 8) | header[3];
      if (body > kMaxClientHelloLength) return notTls(ClientHelloError::kTooLarge);
      needed = kHandshakeHeader + body;
    } else if (before == 0 && avail >= 1 && header[0] != kClientHello) {
      return notTls(ClientHelloError::kNotClientHello);
    }
    ++records;
    consumed = start + avail;
    if (avail < length) break;  // this record is still arriving
    offset = start + length;
    if (needed != 0 && payload >= needed) break;
  }
  // Every record seen ends within kMaxClientHelloInput, so needing more means
  // the input is still below it: a caller reading up to the bound gets an answer.
  if (needed == 0 || payload < needed) return ClientHelloParse{};

  // Pass 2: the body, in place when one record holds it, else gathered from
  // the records into a buffer on the stack (no allocation).
  ClientHelloParse out;
  out.status = ClientHelloStatus::kDone;
  out.consumed = consumed;
  size_t body_size = needed - kHandshakeHeader;
  size_t first_length = (size_t{in[3]} << 8) | in[4];
  ClientHelloError error;
  if (first_length >= needed) {
    error = readBody(in.data() + kRecordHeader + kHandshakeHeader, body_size, out);
  } else {
    uint8_t gathered[kMaxClientHelloLength];
    size_t at = 0;        // handshake payload offset
    size_t copied = 0;    // body bytes gathered
    for (size_t pos = 0; copied < body_size;) {
      size_t length = (size_t{in[pos + 3]} << 8) | in[pos + 4];
      const uint8_t* p = in.data() + pos + kRecordHeader;
      for (size_t i = 0; i < length && copied < body_size; ++i, ++at)
        if (at >= kHandshakeHeader) gathered[copied++] = p[i];
      pos += kRecordHeader + length;
    }
    error = readBody(gathered, body_size, out);
  }
  if (error != ClientHelloError::kNone) return notTls(error);
  return out;
}

std::string_view clientHelloErrorName(ClientHelloError error) {
  switch (error) {
    case ClientHelloError::kNone:
      return "none";
    case ClientHelloError::kNotHandshake:
      return "not_handshake";
    case ClientHelloError::kBadRecordVersion:
      return "bad_record_version";
    case ClientHelloError::kBadRecordLength:
      return "bad_record_length";
    case ClientHelloError::kRecordTypeChange:
      return "record_type_change";
    case ClientHelloError::kNotClientHello:
      return "not_client_hello";
    case ClientHelloError::kTooLarge:
      return "too_large";
    case ClientHelloError::kMalformed:
      return "malformed";
    case ClientHelloError::kDuplicateExtension:
      return "duplicate_extension";
    case ClientHelloError::kBadServerName:
      return "bad_server_name";
  }
  return "?";
}

}  // namespace banyan::dp::tls
