// Fuzzes L7 policy compilation and matching: the input bytes describe a few
// policies (rule types, compare types, hostile values and regexes) and then
// requests (host, path, headers, cookies, client cert). Checks the contract the
// proxy relies on: compilation either fails cleanly or yields a set whose
// indexed match() always agrees with the linear scan, and redirect Locations
// never carry CR or LF.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "l7/policy.h"
#include "persistence/cookie.h"

namespace l7 = banyan::dp::l7;

namespace {

void check(bool ok) {
  if (!ok) abort();
}

class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool empty() const { return pos_ >= size_; }
  uint8_t byte() { return pos_ < size_ ? data_[pos_++] : 0; }
  std::string str(size_t max_len) {
    size_t len = byte() % (max_len + 1);
    len = std::min(len, size_ - std::min(pos_, size_));
    std::string s(reinterpret_cast<const char*>(data_ + pos_), len);
    pos_ += len;
    return s;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

struct FuzzRequest {
  std::string host, path, header_name, header_value, cookie_header, dn_cn;
};

bool headerValues(const void* ctx, std::string_view name, size_t index, std::string_view* out) {
  const auto* r = static_cast<const FuzzRequest*>(ctx);
  if (index != 0 || name.size() != r->header_name.size()) return false;
  for (size_t i = 0; i < name.size(); ++i)
    if ((name[i] | 0x20) != (r->header_name[i] | 0x20)) return false;
  *out = r->header_value;
  return true;
}

bool cookieValues(const void* ctx, std::string_view name, size_t index, std::string_view* out) {
  auto v = banyan::dp::persistence::findCookie(static_cast<const FuzzRequest*>(ctx)->cookie_header,
                                               name, index);
  if (!v) return false;
  *out = *v;
  return true;
}

bool dnValues(const void* ctx, std::string_view name, size_t index, std::string_view* out) {
  if (name != "CN" || index != 0) return false;
  *out = static_cast<const FuzzRequest*>(ctx)->dn_cn;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Reader in(data, size);
  std::vector<l7::Policy> policies;
  int count = in.byte() % 8 + 1;
  for (int i = 0; i < count; ++i) {
    l7::Policy p;
    p.id = "p" + std::to_string(i);
    uint8_t flags = in.byte();
    p.action = static_cast<l7::PolicyAction>(flags % 4);
    p.admin_state_up = (flags & 0x10) == 0;
    p.redirect_pool_admin_state_up = (flags & 0x20) == 0;
    p.position = in.byte() % 8;
    p.redirect_pool_id = "pool";
    p.redirect_url = "https://example.com/x";
    p.redirect_prefix = (flags & 0x40) ? "/" : "https://example.com";
    int rules = in.byte() % 4 + 1;
    for (int j = 0; j < rules; ++j) {
      l7::Rule r;
      uint8_t rflags = in.byte();
      r.type = static_cast<l7::RuleType>(rflags % 8);
      r.compare_type = static_cast<l7::CompareType>((rflags >> 3) % 5);
      r.invert = (rflags & 0x80) != 0;
      r.admin_state_up = (in.byte() & 1) == 0;
      r.key = in.str(8);
      r.value = in.str(24);
      p.rules.push_back(std::move(r));
    }
    policies.push_back(std::move(p));
  }
  l7::CompileOptions options;
  options.precedence =
      (in.byte() & 1) ? l7::Precedence::kActionClassThenPosition : l7::Precedence::kPosition;
  auto set = l7::compilePolicies(std::move(policies), options);
  if (!set.ok()) return 0;

  for (int n = 0; n < 8 && !in.empty(); ++n) {
    FuzzRequest req;
    req.host = in.str(40);
    req.path = in.str(60);
    req.header_name = in.str(8);
    req.header_value = in.str(40);
    req.cookie_header = in.str(60);
    req.dn_cn = in.str(16);
    uint8_t tls = in.byte();
    l7::MatchInput mi;
    mi.host = req.host;
    mi.path = req.path;
    mi.headers = l7::ValuesLookup{&req, &headerValues};
    mi.cookies = l7::ValuesLookup{&req, &cookieValues};
    mi.tls = tls & 1;
    mi.has_client_cert = tls & 2;
    mi.verify_result = tls >> 4;
    mi.client_dn = l7::ValuesLookup{&req, &dnValues};
    const l7::Policy* indexed = (*set)->match(mi);
    const l7::Policy* linear = (*set)->matchLinear(mi);
    check(indexed == linear);
    if (indexed != nullptr) {
      std::string location = l7::buildRedirectLocation(*indexed, "https", "h.example.com", "/q");
      check(location.find_first_of("\r\n") == std::string::npos);
    }
  }
  return 0;
}
