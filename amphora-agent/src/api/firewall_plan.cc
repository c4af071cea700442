#include "api/firewall_plan.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <array>
#include <optional>

namespace banyan::agent::api {

using common::ErrorCode;
using common::makeError;
using common::Result;

namespace {

struct Address {
  int family = 0;
  std::array<uint8_t, 16> bytes{};
  size_t size() const { return family == AF_INET ? 4 : 16; }
};

std::optional<Address> parseAddress(std::string_view text) {
  if (text.empty() || text.size() > 64) return std::nullopt;
  std::string s(text);
  Address a;
  if (inet_pton(AF_INET, s.c_str(), a.bytes.data()) == 1) {
    a.family = AF_INET;
  } else if (inet_pton(AF_INET6, s.c_str(), a.bytes.data()) == 1) {
    a.family = AF_INET6;
  } else {
    return std::nullopt;
  }
  return a;
}

std::string toString(const Address& a) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(a.family, a.bytes.data(), buf, sizeof buf);
  return buf;
}

bool isWildcard(const Address& a) {
  return std::all_of(a.bytes.begin(), a.bytes.begin() + static_cast<long>(a.size()),
                     [](uint8_t b) { return b == 0; });
}

// "192.0.2.0/24", "2001:db8::/32" or a bare address (one host), the way banyan-proxy
// reads allowed_cidrs: host bits past the prefix are an error, not silently cleared.
Result<std::string> canonicalCidr(std::string_view text) {
  auto slash = text.find('/');
  auto addr = parseAddress(text.substr(0, slash));
  if (!addr)
    return makeError(ErrorCode::kInvalidArgument,
                     "\"" + std::string(text) + "\" is not an IP prefix");
  const int max_len = static_cast<int>(addr->size() * 8);
  int len = max_len;
  if (slash != std::string_view::npos) {
    std::string_view digits = text.substr(slash + 1);
    if (digits.empty() || digits.size() > 3 ||
        !std::all_of(digits.begin(), digits.end(), ::isdigit) ||
        (digits.size() > 1 && digits[0] == '0')) {
      return makeError(ErrorCode::kInvalidArgument,
                       "\"" + std::string(text) + "\" is not an IP prefix");
    }
    len = std::stoi(std::string(digits));
    if (len > max_len) {
      return makeError(ErrorCode::kInvalidArgument,
                       "\"" + std::string(text) + "\" has a prefix longer than its family's");
    }
  }
  for (int bit = len; bit < max_len; ++bit) {
    if (addr->bytes[static_cast<size_t>(bit / 8)] & (0x80 >> (bit % 8))) {
      return makeError(ErrorCode::kInvalidArgument,
                       "\"" + std::string(text) + "\" has host bits set past the prefix length");
    }
  }
  return toString(*addr) + "/" + std::to_string(len);
}

Result<std::string> transportOf(const rapidjson::Value& listener, const std::string& at) {
  auto p = listener.FindMember("protocol");
  if (p == listener.MemberEnd()) return std::string("tcp");  // the document's default is HTTP
  if (!p->value.IsString())
    return makeError(ErrorCode::kInvalidArgument, "must be a string", at + "/protocol");
  std::string_view v(p->value.GetString(), p->value.GetStringLength());
  if (v == "HTTP" || v == "TCP" || v == "HTTPS" || v == "TERMINATED_HTTPS" || v == "PROMETHEUS")
    return std::string("tcp");
  if (v == "UDP") return std::string("udp");
  if (v == "SCTP") return std::string("sctp");
  return makeError(ErrorCode::kInvalidArgument,
                   "unknown listener protocol \"" + std::string(v) + "\"", at + "/protocol");
}

}  // namespace

Result<FirewallPlan> firewallPlanFor(std::string_view document, const FirewallInputs& inputs) {
  FirewallPlan plan;
  plan.agent_port = inputs.agent_port;
  plan.management_cidrs = inputs.management_cidrs;
  if (plan.management_cidrs.empty()) plan.management_cidrs = {"0.0.0.0/0", "::/0"};
  plan.allow_vrrp = inputs.vrrp;
  if (inputs.vrrp) plan.vrrp_peers = inputs.vrrp_peers;

  rapidjson::Document doc;
  doc.Parse(document.data(), document.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return makeError(ErrorCode::kInvalidArgument, "the document is not a JSON object", "");
  }
  auto listeners = doc.FindMember("listeners");
  if (listeners == doc.MemberEnd() || listeners->value.IsNull()) return plan;
  if (!listeners->value.IsArray())
    return makeError(ErrorCode::kInvalidArgument, "must be an array", "/listeners");
  for (rapidjson::SizeType i = 0; i < listeners->value.Size(); ++i) {
    const auto& l = listeners->value[i];
    const std::string at = "/listeners/" + std::to_string(i);
    if (!l.IsObject()) return makeError(ErrorCode::kInvalidArgument, "must be an object", at);
    auto transport = transportOf(l, at);
    if (!transport) return transport.error();
    auto port = l.FindMember("protocol_port");
    if (port == l.MemberEnd() || !port->value.IsInt() || port->value.GetInt() < 1 ||
        port->value.GetInt() > 65535) {
      // The proxy's own check would name the value too; say it before it gets there.
      std::string seen = port == l.MemberEnd() ? "missing"
                         : port->value.IsInt() ? std::to_string(port->value.GetInt())
                                               : "not an integer";
      return makeError(ErrorCode::kInvalidArgument, "must be a port number 1-65535, not " + seen,
                       at + "/protocol_port");
    }
    std::vector<std::string> allowed;
    auto cidrs = l.FindMember("allowed_cidrs");
    if (cidrs != l.MemberEnd() && !cidrs->value.IsNull()) {
      if (!cidrs->value.IsArray())
        return makeError(ErrorCode::kInvalidArgument, "must be an array", at + "/allowed_cidrs");
      for (rapidjson::SizeType j = 0; j < cidrs->value.Size(); ++j) {
        const std::string cat = at + "/allowed_cidrs/" + std::to_string(j);
        const auto& c = cidrs->value[j];
        if (!c.IsString()) return makeError(ErrorCode::kInvalidArgument, "must be a string", cat);
        auto canonical = canonicalCidr(std::string_view(c.GetString(), c.GetStringLength()));
        if (!canonical)
          return makeError(ErrorCode::kInvalidArgument, canonical.error().message, cat);
        if (std::find(allowed.begin(), allowed.end(), *canonical) == allowed.end())
          allowed.push_back(*canonical);
      }
    }
    std::vector<std::pair<const rapidjson::Value*, std::string>> addresses;
    auto address = l.FindMember("address");
    if (address == l.MemberEnd())
      return makeError(ErrorCode::kInvalidArgument, "is required", at + "/address");
    addresses.emplace_back(&address->value, at + "/address");
    auto more = l.FindMember("additional_addresses");
    if (more != l.MemberEnd() && !more->value.IsNull()) {
      if (!more->value.IsArray()) {
        return makeError(ErrorCode::kInvalidArgument, "must be an array",
                         at + "/additional_addresses");
      }
      for (rapidjson::SizeType j = 0; j < more->value.Size(); ++j) {
        addresses.emplace_back(&more->value[j], at + "/additional_addresses/" + std::to_string(j));
      }
    }
    for (const auto& [value, where] : addresses) {
      if (!value->IsString())
        return makeError(ErrorCode::kInvalidArgument, "must be a string", where);
      auto a = parseAddress(std::string_view(value->GetString(), value->GetStringLength()));
      if (!a) {
        return makeError(ErrorCode::kInvalidArgument,
                         "\"" + std::string(value->GetString()) + "\" is not an IP address", where);
      }
      if (isWildcard(*a)) continue;
      std::string vip = toString(*a);
      if (std::find(plan.vips.begin(), plan.vips.end(), vip) == plan.vips.end())
        plan.vips.push_back(vip);
      FirewallListener fl{vip, static_cast<uint16_t>(port->value.GetInt()), *transport, allowed};
      if (std::find(plan.listeners.begin(), plan.listeners.end(), fl) == plan.listeners.end()) {
        plan.listeners.push_back(std::move(fl));
      }
    }
  }
  return plan;
}

}  // namespace banyan::agent::api
