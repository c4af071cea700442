#include "amphora/agent_reply.h"

#include <rapidjson/document.h>

namespace banyan::provider::amphora {

using common::ErrorCode;
using common::makeError;
using common::Result;

namespace {

// The agent's error bodies are small; a huge one is cut so it cannot flood a log line.
constexpr size_t kMaxErrorText = 512;

std::string clip(std::string_view s) {
  std::string out(s.substr(0, kMaxErrorText));
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';  // one log line
  }
  if (s.size() > kMaxErrorText) out += "...";
  return out;
}

bool parseObject(rapidjson::Document& doc, std::string_view body) {
  doc.Parse(body.data(), body.size());
  return !doc.HasParseError() && doc.IsObject();
}

std::string member(const rapidjson::Document& doc, const char* name) {
  auto it = doc.FindMember(name);
  if (it == doc.MemberEnd() || !it->value.IsString()) return "";
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

}  // namespace

Result<void> checkAgentStatus(std::string_view what, int status, std::string_view body) {
  if (status >= 200 && status < 300) return {};
  // {"message", "path", "details"} (docs/agent-api.md); anything else is reported raw.
  std::string message, path, details;
  rapidjson::Document doc;
  if (parseObject(doc, body)) {
    message = member(doc, "message");
    path = member(doc, "path");
    details = member(doc, "details");
  } else {
    details = std::string(body);
  }
  std::string text = std::string(what) + ": " + std::to_string(status);
  if (!message.empty()) text += " " + clip(message);
  if (!details.empty()) text += ": " + clip(details);
  if (!path.empty()) text += " (at " + clip(path) + ")";
  ErrorCode code = ErrorCode::kInternal;
  if (status == 400) {
    code = ErrorCode::kInvalidArgument;
  } else if (status == 409) {
    code = ErrorCode::kConflict;
  } else if (status >= 500 && status <= 599) {
    code = ErrorCode::kUnavailable;
  } else if (status == 404 && (message.find("No suitable network interface found") != std::string::npos ||
                               details.find("No suitable network interface found") != std::string::npos)) {
    // The NIC Neutron attached is not visible in the amphora yet: worth a retry.
    code = ErrorCode::kUnavailable;
  }
  return makeError(code, text, clip(path));
}

Result<PutConfigResult> parsePutConfigReply(std::string_view body) {
  rapidjson::Document doc;
  if (!parseObject(doc, body)) return makeError(ErrorCode::kInternal, "the agent's config answer is not a JSON object");
  PutConfigResult out;
  auto gen = doc.FindMember("generation");
  if (gen == doc.MemberEnd() || !gen->value.IsInt64()) {
    return makeError(ErrorCode::kInternal, "the agent's config answer has no integer generation", "/generation");
  }
  out.generation = gen->value.GetInt64();
  out.sha256 = member(doc, "sha256");
  if (out.sha256.empty()) return makeError(ErrorCode::kInternal, "the agent's config answer has no sha256", "/sha256");
  for (auto [name, field] : {std::pair{"delta", &out.delta}, std::pair{"unchanged", &out.unchanged}}) {
    auto it = doc.FindMember(name);
    if (it != doc.MemberEnd() && it->value.IsBool()) *field = it->value.GetBool();
  }
  return out;
}

Result<std::string> stringField(std::string_view body, const char* name) {
  rapidjson::Document doc;
  if (!parseObject(doc, body)) return makeError(ErrorCode::kInternal, "the agent's answer is not a JSON object");
  auto it = doc.FindMember(name);
  if (it == doc.MemberEnd() || !it->value.IsString()) {
    return makeError(ErrorCode::kInternal, std::string("the agent's answer has no string \"") + name + "\"",
                     std::string("/") + name);
  }
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

}  // namespace banyan::provider::amphora
