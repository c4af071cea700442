// Heartbeat codec (docs/heartbeat.md). Signing uses OpenSSL 3's EVP_MAC so the key
// never passes through a deprecated HMAC_CTX; the body is JSON so a health manager in
// another language can read it, compressed because a load balancer with many members
// would otherwise not fit one datagram.
#include "banyan/common/heartbeat.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <zlib.h>

#include <array>
#include <cstring>

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "banyan/common/logging.h"

namespace banyan::common {
namespace {

constexpr uint8_t kMagic[4] = {'B', 'N', 'H', 'B'};
constexpr size_t kHeaderSize = 16;
constexpr size_t kMacSize = 32;

using Mac = std::array<uint8_t, kMacSize>;

Mac hmacSha256(std::string_view key, const uint8_t* data, size_t size) {
  Mac out{};
  EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  LB_CHECK(mac != nullptr, "OpenSSL has no HMAC");
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(mac);
  LB_CHECK(ctx != nullptr, "out of memory");
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                         OSSL_PARAM_construct_end()};
  // An empty key is refused by some providers; the callers never pass one (decode
  // refuses it before), but keep a non-null pointer for the zero-length case.
  static const uint8_t kEmpty = 0;
  const auto* key_bytes = key.empty() ? &kEmpty : reinterpret_cast<const uint8_t*>(key.data());
  size_t out_len = 0;
  bool ok = EVP_MAC_init(ctx, key_bytes, key.size(), params) == 1 &&
            EVP_MAC_update(ctx, data, size) == 1 &&
            EVP_MAC_final(ctx, out.data(), &out_len, out.size()) == 1 && out_len == kMacSize;
  EVP_MAC_CTX_free(ctx);
  EVP_MAC_free(mac);
  LB_CHECK(ok, "HMAC-SHA256 failed");
  return out;
}

void putU32(std::vector<uint8_t>& out, size_t at, uint32_t v) {
  out[at] = static_cast<uint8_t>(v >> 24);
  out[at + 1] = static_cast<uint8_t>(v >> 16);
  out[at + 2] = static_cast<uint8_t>(v >> 8);
  out[at + 3] = static_cast<uint8_t>(v);
}

uint32_t getU32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

std::string bodyJson(const Heartbeat& hb) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  auto str = [&](const char* key, const std::string& v) {
    w.Key(key);
    w.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
  };
  auto num = [&](const char* key, uint64_t v) {
    w.Key(key);
    w.Uint64(v);
  };
  w.StartObject();
  str("id", hb.amphora_id);
  num("seq", hb.sequence);
  num("epoch", hb.proxy_epoch);
  num("generation", hb.generation);
  w.Key("listeners");
  w.StartArray();
  for (const auto& l : hb.listeners) {
    w.StartObject();
    str("id", l.id);
    str("status", l.status);
    num("bytes_in", l.bytes_in);
    num("bytes_out", l.bytes_out);
    num("active_connections", l.active_connections);
    num("total_connections", l.total_connections);
    num("request_errors", l.request_errors);
    w.EndObject();
  }
  w.EndArray();
  w.Key("pools");
  w.StartArray();
  for (const auto& p : hb.pools) {
    w.StartObject();
    str("id", p.id);
    str("status", p.status);
    w.Key("members");
    w.StartArray();
    for (const auto& m : p.members) {
      w.StartObject();
      str("id", m.id);
      str("status", m.status);
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}

Error bodyError(std::string what, std::string where) {
  return makeError(ErrorCode::kInvalidArgument, "heartbeat body: " + std::move(what), std::move(where));
}

// Field readers for the body: every field is required and typed, and the error names
// the JSON pointer of the offending value.
Result<std::string> getString(const rapidjson::Value& obj, const char* key, const std::string& at) {
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd()) return bodyError(std::string("missing \"") + key + "\"", at);
  if (!it->value.IsString()) return bodyError(std::string("\"") + key + "\" is not a string", at + "/" + key);
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

Result<uint64_t> getUint(const rapidjson::Value& obj, const char* key, const std::string& at) {
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd()) return bodyError(std::string("missing \"") + key + "\"", at);
  if (!it->value.IsUint64())
    return bodyError(std::string("\"") + key + "\" is not an unsigned integer", at + "/" + key);
  return it->value.GetUint64();
}

Result<const rapidjson::Value*> getArray(const rapidjson::Value& obj, const char* key, const std::string& at) {
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd()) return bodyError(std::string("missing \"") + key + "\"", at);
  if (!it->value.IsArray()) return bodyError(std::string("\"") + key + "\" is not an array", at + "/" + key);
  return &it->value;
}

#define HB_TRY(var, expr)            \
  auto var##_r = (expr);             \
  if (!var##_r) return var##_r.error(); \
  auto var = std::move(var##_r.value())

Result<Heartbeat> parseBody(const char* data, size_t size) {
  rapidjson::Document doc;
  doc.Parse(data, size);
  if (doc.HasParseError()) {
    return bodyError(std::string("invalid JSON at offset ") + std::to_string(doc.GetErrorOffset()) + ": " +
                         rapidjson::GetParseError_En(doc.GetParseError()),
                     "");
  }
  if (!doc.IsObject()) return bodyError("not an object", "");
  Heartbeat hb;
  HB_TRY(id, getString(doc, "id", ""));
  HB_TRY(seq, getUint(doc, "seq", ""));
  HB_TRY(epoch, getUint(doc, "epoch", ""));
  HB_TRY(generation, getUint(doc, "generation", ""));
  hb.amphora_id = std::move(id);
  hb.sequence = seq;
  hb.proxy_epoch = epoch;
  hb.generation = generation;
  HB_TRY(listeners, getArray(doc, "listeners", ""));
  for (rapidjson::SizeType i = 0; i < listeners->Size(); ++i) {
    const auto& v = (*listeners)[i];
    std::string at = "/listeners/" + std::to_string(i);
    if (!v.IsObject()) return bodyError("not an object", at);
    HeartbeatListener l;
    HB_TRY(lid, getString(v, "id", at));
    HB_TRY(status, getString(v, "status", at));
    HB_TRY(bytes_in, getUint(v, "bytes_in", at));
    HB_TRY(bytes_out, getUint(v, "bytes_out", at));
    HB_TRY(active, getUint(v, "active_connections", at));
    HB_TRY(total, getUint(v, "total_connections", at));
    HB_TRY(errors, getUint(v, "request_errors", at));
    l.id = std::move(lid);
    l.status = std::move(status);
    l.bytes_in = bytes_in;
    l.bytes_out = bytes_out;
    l.active_connections = active;
    l.total_connections = total;
    l.request_errors = errors;
    hb.listeners.push_back(std::move(l));
  }
  HB_TRY(pools, getArray(doc, "pools", ""));
  for (rapidjson::SizeType i = 0; i < pools->Size(); ++i) {
    const auto& v = (*pools)[i];
    std::string at = "/pools/" + std::to_string(i);
    if (!v.IsObject()) return bodyError("not an object", at);
    HeartbeatPool p;
    HB_TRY(pid, getString(v, "id", at));
    HB_TRY(status, getString(v, "status", at));
    HB_TRY(members, getArray(v, "members", at));
    p.id = std::move(pid);
    p.status = std::move(status);
    for (rapidjson::SizeType j = 0; j < members->Size(); ++j) {
      const auto& m = (*members)[j];
      std::string mat = at + "/members/" + std::to_string(j);
      if (!m.IsObject()) return bodyError("not an object", mat);
      HB_TRY(mid, getString(m, "id", mat));
      HB_TRY(mstatus, getString(m, "status", mat));
      p.members.push_back(HeartbeatMember{std::move(mid), std::move(mstatus)});
    }
    hb.pools.push_back(std::move(p));
  }
  return hb;
}

#undef HB_TRY

}  // namespace

std::vector<uint8_t> encodeHeartbeat(const Heartbeat& heartbeat, std::string_view key) {
  LB_CHECK(!key.empty(), "heartbeats are never sent without a key");
  std::string body = bodyJson(heartbeat);
  uLongf bound = compressBound(body.size());
  std::vector<uint8_t> out(kHeaderSize + bound + kMacSize);
  int rc = compress2(out.data() + kHeaderSize, &bound, reinterpret_cast<const Bytef*>(body.data()),
                     body.size(), Z_BEST_COMPRESSION);
  LB_CHECK(rc == Z_OK, "zlib compress2 cannot fail with a compressBound buffer");
  out.resize(kHeaderSize + bound);
  std::memcpy(out.data(), kMagic, sizeof kMagic);
  out[4] = kHeartbeatFormatVersion;
  out[5] = 0;  // flags
  out[6] = 0;  // reserved
  out[7] = 0;
  putU32(out, 8, static_cast<uint32_t>(body.size()));
  putU32(out, 12, static_cast<uint32_t>(bound));
  Mac mac = hmacSha256(key, out.data(), out.size());
  out.insert(out.end(), mac.begin(), mac.end());
  return out;
}

Result<Heartbeat> decodeHeartbeat(std::span<const uint8_t> datagram, std::string_view key) {
  const size_t size = datagram.size();
  if (key.empty()) return makeError(ErrorCode::kInvalidArgument, "no heartbeat key configured");
  if (size > kHeartbeatMaxDatagram) {
    return makeError(ErrorCode::kInvalidArgument,
                     "heartbeat too large: " + std::to_string(size) + " bytes (limit " +
                         std::to_string(kHeartbeatMaxDatagram) + ")");
  }
  if (size < kHeaderSize + kMacSize) {
    return makeError(ErrorCode::kInvalidArgument,
                     "heartbeat truncated: " + std::to_string(size) + " bytes, the header and signature need " +
                         std::to_string(kHeaderSize + kMacSize));
  }
  const uint8_t* p = datagram.data();
  if (std::memcmp(p, kMagic, sizeof kMagic) != 0) {
    return makeError(ErrorCode::kInvalidArgument, "not a Banyan heartbeat (bad magic)");
  }
  const uint32_t compressed_len = getU32(p + 12);
  if (size - kHeaderSize - kMacSize != compressed_len) {
    return makeError(ErrorCode::kInvalidArgument,
                     "heartbeat truncated: header announces " + std::to_string(compressed_len) +
                         " compressed bytes, datagram carries " + std::to_string(size - kHeaderSize - kMacSize));
  }
  Mac expected = hmacSha256(key, p, size - kMacSize);
  if (CRYPTO_memcmp(expected.data(), p + size - kMacSize, kMacSize) != 0) {
    return makeError(ErrorCode::kInvalidArgument, "heartbeat signature mismatch (wrong key or altered datagram)");
  }
  if (p[4] != kHeartbeatFormatVersion) {
    return makeError(ErrorCode::kInvalidArgument, "unsupported heartbeat format version " + std::to_string(p[4]) +
                                                      " (this side reads " +
                                                      std::to_string(kHeartbeatFormatVersion) + ")");
  }
  if (p[5] != 0 || p[6] != 0 || p[7] != 0) {
    return makeError(ErrorCode::kInvalidArgument, "heartbeat header has reserved bits set");
  }
  const uint32_t body_len = getU32(p + 8);
  if (body_len > kHeartbeatMaxBody) {
    return makeError(ErrorCode::kInvalidArgument, "heartbeat body too large: " + std::to_string(body_len) +
                                                      " bytes (limit " + std::to_string(kHeartbeatMaxBody) + ")");
  }
  std::string body(body_len, '\0');
  uLongf out_len = body_len;
  uLong in_len = compressed_len;
  int rc = uncompress2(reinterpret_cast<Bytef*>(body.data()), &out_len, p + kHeaderSize, &in_len);
  if (rc != Z_OK) {
    return makeError(ErrorCode::kInvalidArgument,
                     std::string("heartbeat body does not decompress: ") +
                         (rc == Z_BUF_ERROR ? "longer than announced or cut short" : zError(rc)));
  }
  if (out_len != body_len || in_len != compressed_len) {
    return makeError(ErrorCode::kInvalidArgument, "heartbeat body length differs from the header");
  }
  return parseBody(body.data(), body.size());
}

}  // namespace banyan::common
