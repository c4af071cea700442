// Fuzzes the auth module's parsers: an oslo.policy document (YAML subset or JSON) with
// its check strings, evaluated for every action, and the noauth identity headers.
// Policy files are operator input, but a parser that crashes or loops on a typo takes
// the API down at startup; the noauth headers are client input.
#include <cstddef>
#include <cstdint>
#include <string>

#include "auth/noauth.h"
#include "auth/policy.h"
#include "banyan/common/logging.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace banyan::provider::auth;
  banyan::common::setLogLevel(banyan::common::LogLevel::kOff);
  std::string text(reinterpret_cast<const char*>(data), size);

  auto noauth = makeNoauthAuthenticator();
  AuthOutcome who = noauth->authenticate([&](std::string_view name) -> std::optional<std::string> {
    if (name == "X-Roles" || name == "X-Project-Id" || name == "OpenStack-System-Scope")
      return text;
    return std::nullopt;
  });
  who.credentials.is_admin = false;

  auto policy = makeOctaviaPolicyFromText(text, "fuzz.yaml", false);
  if (policy.ok()) {
    for (const auto& action : knownActions()) {
      (void)(*policy)->allowed(action, who.credentials, Target{"p1"});
    }
    (void)isAdminContext(**policy, who.credentials);
  }
  (void)validateCheckString(text);
  return 0;
}
