#include "auth/policy_check.h"

#include <algorithm>
#include <cctype>
#include <optional>

namespace banyan::provider::auth::detail {
namespace {

using common::ErrorCode;
using common::makeError;

// oslo.policy's evaluation recurses through rule: references; cycles are refused at load
// time, so this bound only stops a pathological (very deep) policy file.
constexpr int kMaxDepth = 64;

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

enum class TokKind { kOpen, kClose, kAnd, kOr, kNot, kCheck };
struct Token {
  TokKind kind;
  std::string text;
};

bool isSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// Like oslo.policy's _parse_tokenize: split on whitespace, peel leading "(" and
// trailing ")" off each word, recognise and/or/not case-insensitively.
Result<std::vector<Token>> tokenize(std::string_view text) {
  std::vector<Token> out;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && isSpace(text[i])) ++i;
    size_t start = i;
    while (i < text.size() && !isSpace(text[i])) ++i;
    if (start == i) break;
    std::string_view word = text.substr(start, i - start);
    size_t lead = 0;
    while (lead < word.size() && word[lead] == '(') ++lead;
    for (size_t k = 0; k < lead; ++k) out.push_back({TokKind::kOpen, "("});
    word.remove_prefix(lead);
    if (word.empty()) continue;
    size_t trail = 0;
    while (trail < word.size() && word[word.size() - 1 - trail] == ')') ++trail;
    std::string_view clean = word.substr(0, word.size() - trail);
    if (!clean.empty()) {
      std::string low = lower(clean);
      if (low == "and") {
        out.push_back({TokKind::kAnd, low});
      } else if (low == "or") {
        out.push_back({TokKind::kOr, low});
      } else if (low == "not") {
        out.push_back({TokKind::kNot, low});
      } else if (word.size() >= 2 && ((word.front() == '"' && word.back() == '"') ||
                                      (word.front() == '\'' && word.back() == '\''))) {
        // oslo.policy yields a "string" token here, which no grammar rule accepts.
        return makeError(ErrorCode::kInvalidArgument,
                         "a quoted string is not a check: " + std::string(word));
      } else {
        out.push_back({TokKind::kCheck, std::string(clean)});
      }
    }
    for (size_t k = 0; k < trail; ++k) out.push_back({TokKind::kClose, ")"});
  }
  return out;
}

// A %(name)s template must only use named %s conversions and %% (Python's % operator
// raises anything but KeyError for other forms, which oslo.policy does not catch).
Result<void> validateTemplate(std::string_view match) {
  for (size_t i = 0; i < match.size(); ++i) {
    if (match[i] != '%') continue;
    if (i + 1 < match.size() && match[i + 1] == '%') {
      ++i;
      continue;
    }
    if (i + 1 >= match.size() || match[i + 1] != '(') {
      return makeError(ErrorCode::kInvalidArgument,
                       "only %(name)s substitutions are supported in '" + std::string(match) + "'");
    }
    size_t close = match.find(')', i + 2);
    if (close == std::string_view::npos || close + 1 >= match.size() || match[close + 1] != 's') {
      return makeError(ErrorCode::kInvalidArgument,
                       "bad %(name)s substitution in '" + std::string(match) + "'");
    }
    i = close + 1;
  }
  return {};
}

Result<CheckPtr> makeLeaf(const std::string& text) {
  auto node = std::make_shared<CheckNode>();
  if (text == "!") {
    node->kind = CheckNode::Kind::kFalse;
    return CheckPtr(node);
  }
  if (text == "@") {
    node->kind = CheckNode::Kind::kTrue;
    return CheckPtr(node);
  }
  size_t colon = text.find(':');
  if (colon == std::string::npos) {
    return makeError(ErrorCode::kInvalidArgument,
                     "check '" + text + "' has no ':' (expected kind:match, '@' or '!')");
  }
  std::string kind = text.substr(0, colon);
  node->match = text.substr(colon + 1);
  if (kind == "rule") {
    node->kind = CheckNode::Kind::kRule;
    if (node->match.empty())
      return makeError(ErrorCode::kInvalidArgument, "rule: needs a rule name");
  } else if (kind == "role") {
    node->kind = CheckNode::Kind::kRole;
  } else if (kind == "is_admin") {
    // Octavia registers is_admin as its own check: only "True" (any case) means true.
    node->kind = CheckNode::Kind::kIsAdmin;
    node->expected = lower(node->match) == "true";
  } else if (kind == "http" || kind == "https") {
    return makeError(ErrorCode::kInvalidArgument,
                     "remote '" + kind + ":' checks are not supported: '" + text + "'");
  } else if (kind.empty()) {
    return makeError(ErrorCode::kInvalidArgument, "check '" + text + "' has an empty kind");
  } else {
    node->kind = CheckNode::Kind::kGeneric;
    node->kind_text = kind;
  }
  if (node->kind == CheckNode::Kind::kRole || node->kind == CheckNode::Kind::kGeneric) {
    auto valid = validateTemplate(node->match);
    if (!valid) return valid.error();
  }
  return CheckPtr(node);
}

// Recursive descent with oslo.policy's precedence: not > and > or.
class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

  Result<CheckPtr> parseAll() {
    auto expr = parseOr();
    if (!expr) return expr;
    if (pos_ != tokens_.size()) {
      return makeError(ErrorCode::kInvalidArgument, "unexpected '" + tokens_[pos_].text +
                                                        "' at token " + std::to_string(pos_ + 1));
    }
    return expr;
  }

 private:
  bool at(TokKind kind) const { return pos_ < tokens_.size() && tokens_[pos_].kind == kind; }

  Result<CheckPtr> parseOr() {
    auto first = parseAnd();
    if (!first) return first;
    if (!at(TokKind::kOr)) return first;
    auto node = std::make_shared<CheckNode>();
    node->kind = CheckNode::Kind::kOr;
    node->children.push_back(first.value());
    while (at(TokKind::kOr)) {
      ++pos_;
      auto next = parseAnd();
      if (!next) return next;
      node->children.push_back(next.value());
    }
    return CheckPtr(node);
  }

  Result<CheckPtr> parseAnd() {
    auto first = parseNot();
    if (!first) return first;
    if (!at(TokKind::kAnd)) return first;
    auto node = std::make_shared<CheckNode>();
    node->kind = CheckNode::Kind::kAnd;
    node->children.push_back(first.value());
    while (at(TokKind::kAnd)) {
      ++pos_;
      auto next = parseNot();
      if (!next) return next;
      node->children.push_back(next.value());
    }
    return CheckPtr(node);
  }

  Result<CheckPtr> parseNot() {
    if (at(TokKind::kNot)) {
      ++pos_;
      auto inner = parseNot();
      if (!inner) return inner;
      auto node = std::make_shared<CheckNode>();
      node->kind = CheckNode::Kind::kNot;
      node->children.push_back(inner.value());
      return CheckPtr(node);
    }
    return parsePrimary();
  }

  Result<CheckPtr> parsePrimary() {
    if (pos_ >= tokens_.size()) {
      return makeError(ErrorCode::kInvalidArgument, "check string ends where a check was expected");
    }
    if (at(TokKind::kOpen)) {
      if (++depth_ > kMaxDepth)
        return makeError(ErrorCode::kInvalidArgument, "parentheses nest too deep");
      ++pos_;
      auto inner = parseOr();
      if (!inner) return inner;
      if (!at(TokKind::kClose)) return makeError(ErrorCode::kInvalidArgument, "missing ')'");
      ++pos_;
      --depth_;
      return inner;
    }
    if (at(TokKind::kCheck)) return makeLeaf(tokens_[pos_++].text);
    return makeError(ErrorCode::kInvalidArgument, "unexpected '" + tokens_[pos_].text +
                                                      "' at token " + std::to_string(pos_ + 1));
  }

  std::vector<Token> tokens_;
  size_t pos_ = 0;
  int depth_ = 0;
};

// Python's "template % target" for the only target key Octavia passes, project_id.
// nullopt when a key is unknown or empty (oslo.policy: KeyError → the check fails).
std::optional<std::string> substitute(const std::string& match, const Target& target) {
  std::string out;
  for (size_t i = 0; i < match.size(); ++i) {
    if (match[i] != '%') {
      out.push_back(match[i]);
      continue;
    }
    if (i + 1 < match.size() && match[i + 1] == '%') {
      out.push_back('%');
      ++i;
      continue;
    }
    size_t close = match.find(')', i + 2);
    if (close == std::string::npos) return std::nullopt;  // refused by validateTemplate
    std::string key = match.substr(i + 2, close - i - 2);
    if (key != "project_id" || target.project_id.empty()) return std::nullopt;
    out += target.project_id;
    i = close + 1;  // skip the 's'
  }
  return out;
}

// ast.literal_eval of a check's kind: quoted strings, True/False/None and integers.
std::optional<std::string> literalKind(const std::string& kind) {
  if (kind.size() >= 2 && ((kind.front() == '\'' && kind.back() == '\'') ||
                           (kind.front() == '"' && kind.back() == '"'))) {
    return kind.substr(1, kind.size() - 2);
  }
  if (kind == "True" || kind == "False" || kind == "None") return kind;
  size_t start = (kind[0] == '-') ? 1 : 0;
  if (start < kind.size() && std::all_of(kind.begin() + static_cast<long>(start), kind.end(),
                                         [](unsigned char c) { return std::isdigit(c); })) {
    return kind;
  }
  return std::nullopt;
}

bool genericMatches(const CheckNode& node, const EvalContext& ctx) {
  auto match = substitute(node.match, ctx.target);
  if (!match) return false;
  if (auto literal = literalKind(node.kind_text)) return *match == *literal;
  // Only the first path segment can resolve: every credential is a string or a list.
  std::string key = node.kind_text.substr(0, node.kind_text.find('.'));
  if (key.size() != node.kind_text.size()) return false;
  const Credentials& who = ctx.who;
  auto eq = [&](const std::string& value) { return !value.empty() && value == *match; };
  // The keys of oslo.context's to_policy_values() that Banyan knows.
  if (key == "user_id") return eq(who.user_id);
  if (key == "project_id") return eq(who.project_id);
  if (key == "user_domain_id") return eq(who.user_domain_id);
  if (key == "project_domain_id") return eq(who.project_domain_id);
  if (key == "system_scope") return who.system_scope && *match == "all";
  if (key == "roles") {
    return std::find(who.roles.begin(), who.roles.end(), *match) != who.roles.end();
  }
  return false;
}

void render(const CheckNode& node, std::string& out, bool nested) {
  using K = CheckNode::Kind;
  switch (node.kind) {
    case K::kTrue:
      out += "@";
      return;
    case K::kFalse:
      out += "!";
      return;
    case K::kRule:
      out += "rule:" + node.match;
      return;
    case K::kRole:
      out += "role:" + node.match;
      return;
    case K::kIsAdmin:
      out += std::string("is_admin:") + (node.expected ? "True" : "False");
      return;
    case K::kGeneric:
      out += node.kind_text + ":" + node.match;
      return;
    case K::kNot:
      out += "not ";
      render(*node.children[0], out, true);
      return;
    case K::kAnd:
    case K::kOr: {
      if (nested) out += "(";
      const char* op = node.kind == K::kAnd ? " and " : " or ";
      for (size_t i = 0; i < node.children.size(); ++i) {
        if (i) out += op;
        render(*node.children[i], out, true);
      }
      if (nested) out += ")";
      return;
    }
  }
}

}  // namespace

Result<CheckPtr> parseCheck(std::string_view text) {
  // oslo.policy: an empty check string always passes.
  if (text.empty()) {
    auto node = std::make_shared<CheckNode>();
    node->kind = CheckNode::Kind::kTrue;
    return CheckPtr(node);
  }
  auto tokens = tokenize(text);
  if (!tokens) return tokens.error();
  if (tokens->empty()) {
    return makeError(
        ErrorCode::kInvalidArgument,
        "blank check string (write \"\" or \"@\" to allow everyone, \"!\" to allow no one)");
  }
  Parser parser(std::move(tokens.value()));
  return parser.parseAll();
}

std::string renderCheck(const CheckNode& node) {
  std::string out;
  render(node, out, false);
  return out;
}

bool evaluateCheck(const CheckNode& node, const EvalContext& ctx, int depth) {
  if (depth > kMaxDepth) return false;
  using K = CheckNode::Kind;
  switch (node.kind) {
    case K::kTrue:
      return true;
    case K::kFalse:
      return false;
    case K::kAnd:
      for (const auto& child : node.children) {
        if (!evaluateCheck(*child, ctx, depth + 1)) return false;
      }
      return true;
    case K::kOr:
      for (const auto& child : node.children) {
        if (evaluateCheck(*child, ctx, depth + 1)) return true;
      }
      return false;
    case K::kNot:
      return !evaluateCheck(*node.children[0], ctx, depth + 1);
    case K::kRule: {
      const CheckNode* rule = ctx.resolve ? ctx.resolve(node.match) : nullptr;
      return rule != nullptr && evaluateCheck(*rule, ctx, depth + 1);
    }
    case K::kRole: {
      auto match = substitute(node.match, ctx.target);
      if (!match) return false;
      std::string wanted = lower(*match);
      for (const auto& role : ctx.who.roles) {
        if (lower(role) == wanted) return true;
      }
      return false;
    }
    case K::kIsAdmin:
      return ctx.is_admin == node.expected;
    case K::kGeneric:
      return genericMatches(node, ctx);
  }
  return false;
}

void collectRuleRefs(const CheckNode& node, std::vector<std::string>& out) {
  if (node.kind == CheckNode::Kind::kRule) out.push_back(node.match);
  for (const auto& child : node.children) collectRuleRefs(*child, out);
}

}  // namespace banyan::provider::auth::detail
