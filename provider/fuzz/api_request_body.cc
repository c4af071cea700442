// libFuzzer target: untrusted API request bodies and query strings through the API's
// parsers and validators (validation.h, list_query.h). Every input must end in a value
// or an ApiError, never a crash, a hang or undefined behaviour.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/api_error.h"
#include "api/api_impl.h"
#include "api/list_query.h"
#include "api/validation.h"

using namespace banyan::provider::api;

namespace {

void tryBody(std::string_view text, const char* root, const std::vector<FieldSpec>& fields) {
  for (BodyMode mode : {BodyMode::kPost, BodyMode::kPut}) {
    try {
      JsonDoc doc = parseRootBody(text, root);
      validateBody(doc, fields, mode, root, doc.GetAllocator());
      (void)toJson(doc);
    } catch (const ApiError&) {
    }
  }
}

void tryQuery(std::string_view text) {
  std::vector<std::pair<std::string, std::string>> params;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('&', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view item = text.substr(start, end - start);
    size_t eq = item.find('=');
    params.emplace_back(std::string(item.substr(0, eq)),
                        eq == std::string_view::npos ? "" : std::string(item.substr(eq + 1)));
    start = end + 1;
  }
  try {
    ListParams p = parseListParams(params, 3);
    std::vector<JsonDoc> items;
    for (const char* j : {R"({"id":"a","name":"x","tags":["t"],"weight":1})", R"({"id":"b","name":"y","tags":[]})"})
      items.push_back(std::move(*parseJson(j)));
    (void)applyListParams(std::move(items), p, "http://h/x", {{"loadbalancer_id", "loadbalancers"}}, {});
  } catch (const ApiError&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  tryBody(in, "listener", listenerFields());
  tryBody(in, "pool", poolFields());
  tryBody(in, "member", memberFields());
  tryBody(in, "healthmonitor", hmFields());
  tryBody(in, "l7policy", l7PolicyFields());
  tryBody(in, "rule", l7RuleFields());
  tryQuery(in);
  (void)normalizeCidr(in);
  (void)isValidUrl(in);
  (void)isValidHostname(in);
  (void)isValidExpectedCodes(in.substr(0, 64));
  return 0;
}
