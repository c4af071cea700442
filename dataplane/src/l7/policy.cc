#include "l7/policy.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstring>
#include <limits>
#include <unordered_map>

#include "banyan/common/logging.h"

namespace banyan::dp::l7 {

using common::Error;
using common::ErrorCode;
using common::makeError;
using common::Result;

namespace {

constexpr uint32_t kNoPolicy = std::numeric_limits<uint32_t>::max();
// DNS names are at most 253 bytes; a longer Host with capitals takes the linear path.
constexpr size_t kMaxLoweredHost = 256;

char lowerAscii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

std::string lowered(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = lowerAscii(c);
  return out;
}

bool hasUpper(std::string_view s) {
  for (char c : s)
    if (c >= 'A' && c <= 'Z') return true;
  return false;
}

// Octavia's INVALID_CONFIG_CHARS_RE, [\x00-\x1f\x7f-\x9f] over Python code points:
// C0 controls, DEL, and C1 controls (U+0080..U+009F, UTF-8 C2 80..C2 9F).
bool hasControlChars(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) return true;
    if (c == 0xc2 && i + 1 < s.size()) {
      auto n = static_cast<unsigned char>(s[i + 1]);
      if (n >= 0x80 && n <= 0x9f) return true;
    }
  }
  return false;
}

// Thread-local PCRE2 match data: created on a thread's first regex evaluation,
// then reused, so matching does not allocate. One ovector pair: only "did it
// match" matters.
struct ThreadMatchData {
  pcre2_match_data* data = pcre2_match_data_create(1, nullptr);
  ~ThreadMatchData() { pcre2_match_data_free(data); }
};

pcre2_match_data* threadMatchData() {
  thread_local ThreadMatchData holder;
  LB_CHECK(holder.data != nullptr, "out of memory");
  return holder.data;
}

struct Regex {
  pcre2_code* code = nullptr;
  Regex() = default;
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;
  Regex(Regex&& o) noexcept : code(o.code) { o.code = nullptr; }
  Regex& operator=(Regex&& o) noexcept {
    std::swap(code, o.code);
    return *this;
  }
  ~Regex() { pcre2_code_free(code); }
};

struct CompiledRule {
  RuleType type = RuleType::kPath;
  CompareType compare = CompareType::kEqualTo;
  bool invert = false;
  std::string key;
  std::string value;   // HOST_NAME: lowercased; FILE_TYPE EQUAL_TO: "." + extension
  int64_t number = 0;  // SSL_VERIFY_RESULT
  Regex regex;
};

struct CompiledPolicy {
  std::vector<CompiledRule> rules;
  bool passthrough = false;  // can match passthrough traffic (see passthroughCount)
};

// A hash index from a string (a whole host or path, or one of its prefixes or
// suffixes) to the ordinals of the policies anchored on it, ascending. For
// prefixes and suffixes, `lengths` lists the distinct key lengths so a lookup
// probes only lengths that exist.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
struct StringIndex {
  std::unordered_map<std::string, std::vector<uint32_t>, StringHash, std::equal_to<>> map;
  std::vector<size_t> lengths;

  void add(std::string key, uint32_t ordinal) {
    auto& list = map[key];
    list.push_back(ordinal);
    if (std::find(lengths.begin(), lengths.end(), key.size()) == lengths.end())
      lengths.push_back(key.size());
  }
  void finish() { std::sort(lengths.begin(), lengths.end()); }
  const std::vector<uint32_t>* find(std::string_view key) const {
    auto it = map.find(key);
    return it == map.end() ? nullptr : &it->second;
  }
};

// Case-insensitive (ASCII) comparisons for HOST_NAME; `pattern` is lowercased.
bool ciEqual(std::string_view s, std::string_view pattern) {
  if (s.size() != pattern.size()) return false;
  for (size_t i = 0; i < s.size(); ++i)
    if (lowerAscii(s[i]) != pattern[i]) return false;
  return true;
}
bool ciContains(std::string_view s, std::string_view pattern) {
  if (pattern.size() > s.size()) return false;
  for (size_t i = 0; i + pattern.size() <= s.size(); ++i)
    if (ciEqual(s.substr(i, pattern.size()), pattern)) return true;
  return false;
}

}  // namespace

struct PolicySet::Impl {
  std::vector<Policy> policies;  // in the order they are tried; ordinal = index
  std::vector<CompiledPolicy> compiled;
  pcre2_match_context* match_context = nullptr;
  StringIndex host_exact, host_prefix, host_suffix;
  StringIndex path_exact, path_prefix, path_suffix;
  std::vector<uint32_t> unindexed;
  size_t skipped_rules = 0;
  size_t passthrough_count = 0;
  bool passthrough_needs_host = false;
  mutable std::atomic<uint64_t> regex_limit_hits{0};

  ~Impl() { pcre2_match_context_free(match_context); }

  bool regexMatches(const CompiledRule& rule, std::string_view subject) const {
    int rc = pcre2_match(rule.regex.code, reinterpret_cast<PCRE2_SPTR>(subject.data()),
                         subject.size(), 0, 0, threadMatchData(), match_context);
    if (rc >= 0) return true;  // 0: matched, ovector too small for the groups
    if (rc != PCRE2_ERROR_NOMATCH) regex_limit_hits.fetch_add(1, std::memory_order_relaxed);
    return false;
  }

  bool compare(const CompiledRule& rule, std::string_view s, bool caseless) const {
    const std::string& v = rule.value;
    switch (rule.compare) {
      case CompareType::kEqualTo:
        return caseless ? ciEqual(s, v) : s == v;
      case CompareType::kStartsWith:
        return s.size() >= v.size() &&
               (caseless ? ciEqual(s.substr(0, v.size()), v) : s.starts_with(v));
      case CompareType::kEndsWith:
        return s.size() >= v.size() &&
               (caseless ? ciEqual(s.substr(s.size() - v.size()), v) : s.ends_with(v));
      case CompareType::kContains:
        return caseless ? ciContains(s, v) : s.find(v) != std::string_view::npos;
      case CompareType::kRegex:
        return regexMatches(rule, s);
    }
    return false;
  }

  // HAProxy's req.hdr() in an ACL: each comma-separated element of each
  // occurrence, trimmed of spaces and tabs, is a sample; any may match.
  bool headerMatches(const CompiledRule& rule, const ValuesLookup& lookup) const {
    std::string_view line;
    for (size_t i = 0; lookup.get(rule.key, i, &line); ++i) {
      size_t start = 0;
      while (true) {
        size_t comma = line.find(',', start);
        std::string_view element = line.substr(
            start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
        while (!element.empty() && (element.front() == ' ' || element.front() == '\t'))
          element.remove_prefix(1);
        while (!element.empty() && (element.back() == ' ' || element.back() == '\t'))
          element.remove_suffix(1);
        if (compare(rule, element, false)) return true;
        if (comma == std::string_view::npos) break;
        start = comma + 1;
      }
    }
    return false;
  }

  // The rule's ACL before `invert`.
  bool sampleMatches(const CompiledRule& rule, const MatchInput& in) const {
    // Passthrough bytes carry no HTTP request and no terminated TLS: the SNI
    // (as the host) is the only sample.
    if (in.passthrough && rule.type != RuleType::kHostName) return false;
    switch (rule.type) {
      case RuleType::kHostName:
        return !in.host.empty() && compare(rule, in.host, true);
      case RuleType::kPath:
        return compare(rule, in.path, false);
      case RuleType::kFileType:
        if (rule.compare == CompareType::kRegex) return regexMatches(rule, in.path);
        return in.path.ends_with(rule.value);
      case RuleType::kHeader:
        return headerMatches(rule, in.headers);
      case RuleType::kCookie: {
        std::string_view value;
        for (size_t i = 0; in.cookies.get(rule.key, i, &value); ++i)
          if (compare(rule, value, false)) return true;
        return false;
      }
      case RuleType::kSslConnHasCert:
        return in.tls && in.has_client_cert;
      case RuleType::kSslVerifyResult:
        return in.tls && in.verify_result == rule.number;
      case RuleType::kSslDnField: {
        std::string_view value;
        return in.tls && in.has_client_cert && in.client_dn.get(rule.key, 0, &value) &&
               compare(rule, value, false);
      }
    }
    return false;
  }

  bool policyMatches(uint32_t ordinal, const MatchInput& in) const {
    if (in.passthrough && !compiled[ordinal].passthrough) return false;
    for (const CompiledRule& rule : compiled[ordinal].rules)
      if (sampleMatches(rule, in) == rule.invert) return false;
    return true;
  }

  // Lowest ordinal in `list` below `best` that matches; lists are ascending.
  void scan(const std::vector<uint32_t>* list, const MatchInput& in, uint32_t& best) const {
    if (list == nullptr) return;
    for (uint32_t ordinal : *list) {
      if (ordinal >= best) return;
      if (policyMatches(ordinal, in)) {
        best = ordinal;
        return;
      }
    }
  }

  void scanAffixes(const StringIndex& index, std::string_view s, bool prefix, const MatchInput& in,
                   uint32_t& best) const {
    for (size_t len : index.lengths) {
      if (len > s.size()) break;
      scan(index.find(prefix ? s.substr(0, len) : s.substr(s.size() - len)), in, best);
    }
  }
};

PolicySet::PolicySet(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PolicySet::~PolicySet() = default;

const std::vector<Policy>& PolicySet::policies() const { return impl_->policies; }
size_t PolicySet::unindexedCount() const { return impl_->unindexed.size(); }
size_t PolicySet::skippedRuleCount() const { return impl_->skipped_rules; }
uint64_t PolicySet::regexLimitHits() const {
  return impl_->regex_limit_hits.load(std::memory_order_relaxed);
}
size_t PolicySet::passthroughCount() const { return impl_->passthrough_count; }
bool PolicySet::passthroughNeedsHost() const { return impl_->passthrough_needs_host; }

const Policy* PolicySet::matchLinear(const MatchInput& input) const {
  for (uint32_t i = 0; i < impl_->policies.size(); ++i)
    if (impl_->policyMatches(i, input)) return &impl_->policies[i];
  return nullptr;
}

const Policy* PolicySet::match(const MatchInput& input) const {
  const Impl& m = *impl_;
  if (m.policies.empty()) return nullptr;
  // Index keys are lowercase hosts; lowercase a copy on the stack when needed.
  char host_buf[kMaxLoweredHost];
  MatchInput in = input;
  if (hasUpper(in.host)) {
    if (in.host.size() > sizeof host_buf) return matchLinear(input);
    for (size_t i = 0; i < in.host.size(); ++i) host_buf[i] = lowerAscii(in.host[i]);
    in.host = std::string_view(host_buf, in.host.size());
  }
  // Every policy sits in exactly one list: the index entry of one rule it needs
  // to match (its anchor), or `unindexed`. A policy can only match if its
  // anchor's list is probed, so the lowest matching ordinal across the probed
  // lists is the linear scan's answer.
  uint32_t best = kNoPolicy;
  m.scan(&m.unindexed, in, best);
  if (!in.host.empty()) {
    m.scan(m.host_exact.find(in.host), in, best);
    m.scanAffixes(m.host_prefix, in.host, true, in, best);
    m.scanAffixes(m.host_suffix, in.host, false, in, best);
  }
  // Path-anchored policies need a PATH or FILE_TYPE sample, which passthrough
  // traffic does not have.
  if (!in.passthrough) {
    m.scan(m.path_exact.find(in.path), in, best);
    m.scanAffixes(m.path_prefix, in.path, true, in, best);
    m.scanAffixes(m.path_suffix, in.path, false, in, best);
  }
  return best == kNoPolicy ? nullptr : &m.policies[best];
}

namespace {

std::string ruleContext(const Policy& policy, const Rule& rule, size_t index) {
  std::string ctx = "l7policy=" + policy.id + " l7rule=";
  ctx += rule.id.empty() ? "rules[" + std::to_string(index) + "]" : rule.id;
  return ctx;
}

bool needsKey(RuleType type) {
  return type == RuleType::kHeader || type == RuleType::kCookie || type == RuleType::kSslDnField;
}

Result<void> compileRegex(const std::string& pattern, bool caseless, const std::string& ctx,
                          Regex& out) {
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  uint32_t options = caseless ? PCRE2_CASELESS : 0;
  out.code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), options,
                           &error_code, &error_offset, nullptr);
  if (out.code == nullptr) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error_code, message, sizeof message);
    return makeError(ErrorCode::kInvalidArgument,
                     "invalid regex in L7 rule at offset " + std::to_string(error_offset) + ": " +
                         reinterpret_cast<const char*>(message),
                     ctx);
  }
  // JIT is an optimisation: without it (unsupported CPU, no executable memory)
  // pcre2_match interprets the same pattern.
  (void)pcre2_jit_compile(out.code, PCRE2_JIT_COMPLETE);
  return {};
}

Result<void> compileRule(const Policy& policy, const Rule& rule, size_t index, CompiledRule& out) {
  const std::string ctx = ruleContext(policy, rule, index);
  auto invalid = [&](std::string message) {
    return makeError(ErrorCode::kInvalidArgument, std::move(message), ctx);
  };
  if (rule.value.empty()) return invalid("L7 rule type requires a value");
  if (needsKey(rule.type) && rule.key.empty()) return invalid("L7 rule type requires a key");
  out.type = rule.type;
  out.compare = rule.compare_type;
  out.invert = rule.invert;
  out.key = rule.key;
  out.value = rule.value;
  switch (rule.type) {
    case RuleType::kHostName:
      out.value = lowered(rule.value);
      break;
    case RuleType::kPath:
    case RuleType::kHeader:
    case RuleType::kCookie:
    case RuleType::kSslDnField:
      break;
    case RuleType::kFileType:
      if (rule.compare_type != CompareType::kEqualTo && rule.compare_type != CompareType::kRegex)
        return invalid("invalid comparison type for rule type FILE_TYPE");
      // HAProxy's `path_end -m str` would compare the whole path; Octavia means
      // the extension, so "jpg" (or ".jpg") matches "/a/b.jpg".
      if (rule.compare_type == CompareType::kEqualTo)
        out.value = rule.value.front() == '.' ? rule.value : "." + rule.value;
      break;
    case RuleType::kSslConnHasCert:
      if (rule.compare_type != CompareType::kEqualTo)
        return invalid("L7rule type SSL_CONN_HAS_CERT only supports the EQUAL_TO compare type");
      if (!ciEqual(rule.value, "true"))
        return invalid("L7rule value " + rule.value + " is not a boolean True string");
      break;
    case RuleType::kSslVerifyResult: {
      if (rule.compare_type != CompareType::kEqualTo)
        return invalid("L7rule type SSL_VERIFY_RESULT only supports the EQUAL_TO compare type");
      const char* first = rule.value.data();
      const char* last = first + rule.value.size();
      auto [ptr, ec] = std::from_chars(first, last, out.number);
      if (ec != std::errc() || ptr != last || out.number < 0)
        return invalid("L7rule type SSL_VERIFY_RESULT needs an int value, which is >= 0");
      break;
    }
  }
  if (rule.compare_type == CompareType::kRegex) {
    auto r = compileRegex(rule.value, rule.type == RuleType::kHostName, ctx, out.regex);
    if (!r.ok()) return r.error();
  }
  return {};
}

Result<void> validatePolicy(const Policy& p) {
  const std::string ctx = "l7policy=" + p.id;
  auto invalid = [&](std::string message) {
    return makeError(ErrorCode::kInvalidArgument, std::move(message), ctx);
  };
  auto validCode = [](int code) {
    return code == 301 || code == 302 || code == 303 || code == 307 || code == 308;
  };
  switch (p.action) {
    case PolicyAction::kReject:
      break;
    case PolicyAction::kRedirectToPool:
      if (p.redirect_pool_id.empty()) return invalid("REDIRECT_TO_POOL needs redirect_pool_id");
      break;
    case PolicyAction::kRedirectToUrl:
    case PolicyAction::kRedirectPrefix: {
      const std::string& url =
          p.action == PolicyAction::kRedirectToUrl ? p.redirect_url : p.redirect_prefix;
      if (url.empty()) return invalid("redirect policy needs a URL");
      // The URL becomes a Location header: never let it carry CR/LF or other
      // controls (Octavia's template clears such URLs too).
      if (hasControlChars(url)) return invalid("redirect URL holds control characters");
      if (!validCode(p.redirect_http_code))
        return invalid("redirect_http_code " + std::to_string(p.redirect_http_code) +
                       " is not one of 301, 302, 303, 307, 308");
      break;
    }
  }
  return {};
}

int actionClass(PolicyAction action) {
  switch (action) {
    case PolicyAction::kReject:
      return 0;
    case PolicyAction::kRedirectToUrl:
    case PolicyAction::kRedirectPrefix:
      return 1;
    case PolicyAction::kRedirectToPool:
      return 2;
  }
  return 3;
}

// How much narrowing an index entry on this rule gives; 0: not indexable.
// Exact keys beat affixes; longer affixes beat shorter ones.
size_t anchorScore(const CompiledRule& r) {
  if (r.invert) return 0;
  bool host = r.type == RuleType::kHostName;
  bool path = r.type == RuleType::kPath;
  bool ext = r.type == RuleType::kFileType && r.compare == CompareType::kEqualTo;
  if (ext) return r.value.size();
  if (!host && !path) return 0;
  switch (r.compare) {
    case CompareType::kEqualTo:
      return 100000 + r.value.size() + (host ? 1 : 0);
    case CompareType::kStartsWith:
    case CompareType::kEndsWith:
      return r.value.size();
    case CompareType::kContains:
    case CompareType::kRegex:
      return 0;
  }
  return 0;
}

void indexPolicy(PolicySet::Impl& m, uint32_t ordinal) {
  const CompiledRule* anchor = nullptr;
  size_t best_score = 0;
  for (const CompiledRule& r : m.compiled[ordinal].rules) {
    size_t score = anchorScore(r);
    if (score > best_score) {
      best_score = score;
      anchor = &r;
    }
  }
  if (anchor == nullptr) {
    m.unindexed.push_back(ordinal);
    return;
  }
  bool host = anchor->type == RuleType::kHostName;
  StringIndex* index = nullptr;
  switch (anchor->compare) {
    case CompareType::kEqualTo:
      index = anchor->type == RuleType::kFileType ? &m.path_suffix
              : host                              ? &m.host_exact
                                                  : &m.path_exact;
      break;
    case CompareType::kStartsWith:
      index = host ? &m.host_prefix : &m.path_prefix;
      break;
    case CompareType::kEndsWith:
      index = host ? &m.host_suffix : &m.path_suffix;
      break;
    default:
      LB_CHECK(false, "anchorScore only picks EQUAL_TO, STARTS_WITH and ENDS_WITH rules");
  }
  index->add(anchor->value, ordinal);
}

}  // namespace

Result<std::shared_ptr<const PolicySet>> compilePolicies(std::vector<Policy> policies,
                                                         const CompileOptions& options) {
  auto impl = std::make_unique<PolicySet::Impl>();
  // Sort first (stable: equal positions keep the document's order), then compile.
  std::vector<size_t> order(policies.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const Policy& pa = policies[a];
    const Policy& pb = policies[b];
    if (options.precedence == Precedence::kActionClassThenPosition &&
        actionClass(pa.action) != actionClass(pb.action))
      return actionClass(pa.action) < actionClass(pb.action);
    return pa.position < pb.position;
  });
  for (size_t idx : order) {
    Policy& policy = policies[idx];
    if (!policy.admin_state_up) continue;
    if (policy.action == PolicyAction::kRedirectToPool && !policy.redirect_pool_admin_state_up)
      continue;
    auto valid = validatePolicy(policy);
    if (!valid.ok()) return valid.error();
    CompiledPolicy compiled;
    for (size_t i = 0; i < policy.rules.size(); ++i) {
      const Rule& rule = policy.rules[i];
      if (!rule.admin_state_up) continue;
      if (hasControlChars(rule.value)) {
        ++impl->skipped_rules;
        continue;
      }
      CompiledRule cr;
      auto r = compileRule(policy, rule, i, cr);
      if (!r.ok()) return r.error();
      compiled.rules.push_back(std::move(cr));
    }
    if (compiled.rules.empty()) continue;  // not rendered by Octavia: never matches
    bool has_host = false;
    compiled.passthrough = policy.action == PolicyAction::kReject ||
                           policy.action == PolicyAction::kRedirectToPool;
    for (const CompiledRule& cr : compiled.rules) {
      if (cr.type == RuleType::kHostName) {
        has_host = true;
      } else if (!cr.invert) {
        compiled.passthrough = false;  // its sample is missing on passthrough traffic
      }
    }
    if (compiled.passthrough) {
      ++impl->passthrough_count;
      impl->passthrough_needs_host |= has_host;
    }
    impl->policies.push_back(std::move(policy));
    impl->compiled.push_back(std::move(compiled));
  }
  impl->match_context = pcre2_match_context_create(nullptr);
  LB_CHECK(impl->match_context != nullptr, "out of memory");
  pcre2_set_match_limit(impl->match_context, options.regex_match_limit);
  pcre2_set_depth_limit(impl->match_context, options.regex_depth_limit);
  pcre2_set_heap_limit(impl->match_context, options.regex_heap_limit_kib);
  for (uint32_t i = 0; i < impl->policies.size(); ++i) indexPolicy(*impl, i);
  for (StringIndex* index : {&impl->host_exact, &impl->host_prefix, &impl->host_suffix,
                             &impl->path_exact, &impl->path_prefix, &impl->path_suffix})
    index->finish();
  return std::shared_ptr<const PolicySet>(new PolicySet(std::move(impl)));
}

std::string buildRedirectLocation(const Policy& policy, std::string_view scheme,
                                  std::string_view host, std::string_view path_and_query) {
  switch (policy.action) {
    case PolicyAction::kRedirectToUrl:
      return policy.redirect_url;
    case PolicyAction::kRedirectPrefix: {
      std::string location;
      if (policy.redirect_prefix == "/") {
        // HAProxy's special prefix: same scheme and host, original URI.
        location.append(scheme).append("://").append(host);
      } else {
        location = policy.redirect_prefix;
      }
      location.append(path_and_query);
      return location;
    }
    case PolicyAction::kReject:
    case PolicyAction::kRedirectToPool:
      break;
  }
  return {};
}

std::string_view ruleTypeName(RuleType type) {
  switch (type) {
    case RuleType::kHostName:
      return "HOST_NAME";
    case RuleType::kPath:
      return "PATH";
    case RuleType::kFileType:
      return "FILE_TYPE";
    case RuleType::kHeader:
      return "HEADER";
    case RuleType::kCookie:
      return "COOKIE";
    case RuleType::kSslConnHasCert:
      return "SSL_CONN_HAS_CERT";
    case RuleType::kSslVerifyResult:
      return "SSL_VERIFY_RESULT";
    case RuleType::kSslDnField:
      return "SSL_DN_FIELD";
  }
  return "?";
}

std::string_view compareTypeName(CompareType type) {
  switch (type) {
    case CompareType::kEqualTo:
      return "EQUAL_TO";
    case CompareType::kStartsWith:
      return "STARTS_WITH";
    case CompareType::kEndsWith:
      return "ENDS_WITH";
    case CompareType::kContains:
      return "CONTAINS";
    case CompareType::kRegex:
      return "REGEX";
  }
  return "?";
}

std::string_view policyActionName(PolicyAction action) {
  switch (action) {
    case PolicyAction::kReject:
      return "REJECT";
    case PolicyAction::kRedirectToUrl:
      return "REDIRECT_TO_URL";
    case PolicyAction::kRedirectPrefix:
      return "REDIRECT_PREFIX";
    case PolicyAction::kRedirectToPool:
      return "REDIRECT_TO_POOL";
  }
  return "?";
}

}  // namespace banyan::dp::l7
