#include "banyan/common/options.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "banyan/common/logging.h"

namespace banyan::common {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::optional<bool> parseBool(std::string_view s) {
  std::string v = lower(trim(s));
  if (v == "true" || v == "yes" || v == "on" || v == "1") return true;
  if (v == "false" || v == "no" || v == "off" || v == "0") return false;
  return std::nullopt;
}

std::optional<int64_t> parseInt(std::string_view s) {
  std::string v(trim(s));
  if (v.empty()) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  long long n = std::strtoll(v.c_str(), &end, 10);
  if (errno != 0 || end != v.c_str() + v.size()) return std::nullopt;
  return static_cast<int64_t>(n);
}

std::optional<double> parseFloat(std::string_view s) {
  std::string v(trim(s));
  if (v.empty()) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  double d = std::strtod(v.c_str(), &end);
  if (errno != 0 || end != v.c_str() + v.size() || !std::isfinite(d)) return std::nullopt;
  return d;
}

std::vector<std::string> splitList(std::string_view s) {
  std::vector<std::string> out;
  if (trim(s).empty()) return out;
  size_t start = 0;
  while (true) {
    size_t comma = s.find(',', start);
    auto item = trim(s.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
    if (!item.empty()) out.emplace_back(item);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

const char* typeName(OptionType t) {
  switch (t) {
    case OptionType::kString: return "string";
    case OptionType::kInt: return "integer";
    case OptionType::kFloat: return "floating point";
    case OptionType::kBool: return "boolean";
    case OptionType::kList: return "list";
  }
  return "?";
}

std::string formatNumber(double d) {
  std::ostringstream out;
  out << d;
  return out.str();
}

// Checks one value against its declaration; the message names what was expected.
std::optional<std::string> checkValue(const OptionDecl& d, std::string_view value) {
  auto inBounds = [&](double n) -> std::optional<std::string> {
    if (d.min && n < *d.min) return "must be at least " + formatNumber(*d.min);
    if (d.max && n > *d.max) return "must be at most " + formatNumber(*d.max);
    return std::nullopt;
  };
  auto inChoices = [&](std::string_view v) -> std::optional<std::string> {
    if (d.choices.empty() || std::find(d.choices.begin(), d.choices.end(), v) != d.choices.end()) {
      return std::nullopt;
    }
    std::string all;
    for (const auto& c : d.choices) all += (all.empty() ? "" : ", ") + c;
    return "'" + std::string(v) + "' is not one of: " + all;
  };
  switch (d.type) {
    case OptionType::kString:
      if (trim(value).empty()) return std::nullopt;
      return inChoices(trim(value));
    case OptionType::kInt: {
      if (trim(value).empty()) return std::nullopt;
      auto n = parseInt(value);
      if (!n) return "'" + std::string(value) + "' is not an integer";
      return inBounds(static_cast<double>(*n));
    }
    case OptionType::kFloat: {
      if (trim(value).empty()) return std::nullopt;
      auto n = parseFloat(value);
      if (!n) return "'" + std::string(value) + "' is not a number";
      return inBounds(*n);
    }
    case OptionType::kBool:
      if (!parseBool(value)) return "'" + std::string(value) + "' is not a boolean (true/false)";
      return std::nullopt;
    case OptionType::kList:
      for (const auto& item : splitList(value)) {
        if (auto e = inChoices(item)) return e;
      }
      return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace

void OptionSet::declare(OptionDecl decl) {
  LB_CHECK(find(decl.group, decl.name) == nullptr, "an option is declared once");
  if (!decl.default_value.empty()) {
    auto bad = checkValue(decl, decl.default_value);
    LB_CHECK(!bad.has_value(), "an option's default satisfies its own declaration");
  }
  entries_.push_back(Entry{std::move(decl), std::nullopt});
}

OptionSet::Entry* OptionSet::find(std::string_view group, std::string_view name) {
  for (auto& e : entries_) {
    if (e.decl.group == group && e.decl.name == name) return &e;
  }
  return nullptr;
}

const OptionSet::Entry& OptionSet::entry(std::string_view group, std::string_view name) const {
  for (const auto& e : entries_) {
    if (e.decl.group == group && e.decl.name == name) return e;
  }
  LB_CHECK(false, "options are read only after being declared");
  __builtin_unreachable();
}

Result<void> OptionSet::loadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return makeError(ErrorCode::kUnavailable, "cannot read configuration file", path);
  std::ostringstream text;
  text << in.rdbuf();
  return loadText(text.str(), path);
}

Result<void> OptionSet::loadText(std::string_view text, std::string_view source_name) {
  std::string group;
  Entry* last = nullptr;  // for continuation lines
  std::string last_key;
  size_t line_no = 0;
  // Values are checked only when the whole file is read, so a continuation line can
  // still extend a value.
  std::vector<std::pair<Entry*, size_t>> touched;
  std::vector<std::optional<std::string>> before;
  auto where = [&](size_t line) { return std::string(source_name) + ":" + std::to_string(line); };
  auto rollback = [&] {
    for (size_t i = touched.size(); i-- > 0;) touched[i].first->value = before[i];
  };

  size_t pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view raw = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() + 1 : nl + 1;
    ++line_no;
    if (!raw.empty() && raw.back() == '\r') raw.remove_suffix(1);
    std::string_view line = trim(raw);
    if (line.empty() || line.front() == '#' || line.front() == ';') continue;
    bool indented = std::isspace(static_cast<unsigned char>(raw.front()));
    if (indented && !last_key.empty()) {
      if (last) last->value = *last->value + "\n" + std::string(line);
      continue;
    }
    if (line.front() == '[') {
      if (line.back() != ']' || line.size() < 3) {
        rollback();
        return makeError(ErrorCode::kInvalidArgument, "malformed section header", where(line_no));
      }
      group = std::string(trim(line.substr(1, line.size() - 2)));
      last = nullptr;
      last_key.clear();
      continue;
    }
    size_t eq = line.find_first_of("=:");
    if (eq == std::string_view::npos) {
      rollback();
      return makeError(ErrorCode::kInvalidArgument, "expected 'name = value'", where(line_no));
    }
    if (group.empty()) {
      rollback();
      return makeError(ErrorCode::kInvalidArgument, "option before any [section]", where(line_no));
    }
    std::string key(trim(line.substr(0, eq)));
    std::string value(trim(line.substr(eq + 1)));
    last_key = key;
    last = find(group, key);
    if (!last) {
      warnings_.push_back(where(line_no) + ": unknown option [" + group + "] " + key + " ignored");
      continue;
    }
    touched.emplace_back(last, line_no);
    before.push_back(last->value);
    last->value = value;
  }
  for (auto& [e, line] : touched) {
    if (auto bad = checkValue(e->decl, *e->value)) {
      std::string context = where(line) + ": [" + e->decl.group + "] " + e->decl.name;
      rollback();
      return makeError(ErrorCode::kInvalidArgument, *bad, context);
    }
  }
  return {};
}

Result<void> OptionSet::set(std::string_view group, std::string_view name, std::string_view value) {
  Entry* e = find(group, name);
  if (!e) {
    return makeError(ErrorCode::kInvalidArgument, "unknown option",
                     "[" + std::string(group) + "] " + std::string(name));
  }
  if (auto bad = checkValue(e->decl, value)) {
    return makeError(ErrorCode::kInvalidArgument, *bad, "[" + std::string(group) + "] " + std::string(name));
  }
  e->value = std::string(value);
  return {};
}

std::string OptionSet::effective(const Entry& e) const { return e.value ? *e.value : e.decl.default_value; }

std::string OptionSet::getString(std::string_view group, std::string_view name) const {
  return std::string(trim(effective(entry(group, name))));
}

int64_t OptionSet::getInt(std::string_view group, std::string_view name) const {
  const auto& e = entry(group, name);
  LB_CHECK(e.decl.type == OptionType::kInt, "getInt reads integer options");
  auto n = parseInt(effective(e));
  return n ? *n : 0;
}

double OptionSet::getFloat(std::string_view group, std::string_view name) const {
  const auto& e = entry(group, name);
  LB_CHECK(e.decl.type == OptionType::kFloat || e.decl.type == OptionType::kInt,
           "getFloat reads numeric options");
  auto n = parseFloat(effective(e));
  return n ? *n : 0.0;
}

bool OptionSet::getBool(std::string_view group, std::string_view name) const {
  const auto& e = entry(group, name);
  LB_CHECK(e.decl.type == OptionType::kBool, "getBool reads boolean options");
  auto b = parseBool(effective(e));
  return b.value_or(false);
}

std::vector<std::string> OptionSet::getList(std::string_view group, std::string_view name) const {
  const auto& e = entry(group, name);
  LB_CHECK(e.decl.type == OptionType::kList, "getList reads list options");
  return splitList(effective(e));
}

bool OptionSet::isSet(std::string_view group, std::string_view name) const {
  return entry(group, name).value.has_value();
}

std::string OptionSet::sampleConfig() const {
  std::vector<std::string> groups;
  for (const auto& e : entries_) {
    if (std::find(groups.begin(), groups.end(), e.decl.group) == groups.end()) groups.push_back(e.decl.group);
  }
  // [DEFAULT] first, as oslo.config samples do; the rest in declaration order.
  std::stable_partition(groups.begin(), groups.end(), [](const std::string& g) { return g == "DEFAULT"; });
  std::ostringstream out;
  bool first_group = true;
  for (const auto& g : groups) {
    if (!first_group) out << "\n";
    first_group = false;
    out << "[" << g << "]\n";
    for (const auto& e : entries_) {
      if (e.decl.group != g) continue;
      out << "\n";
      std::istringstream help(e.decl.help);
      std::string help_line;
      while (std::getline(help, help_line)) out << "# " << help_line << "\n";
      out << "# (" << typeName(e.decl.type);
      if (e.decl.min) out << ", minimum " << formatNumber(*e.decl.min);
      if (e.decl.max) out << ", maximum " << formatNumber(*e.decl.max);
      if (!e.decl.choices.empty()) {
        out << ", one of:";
        for (const auto& c : e.decl.choices) out << " " << c;
      }
      if (e.decl.secret) out << ", secret";
      out << ")\n";
      out << "#" << e.decl.name << " = " << e.decl.default_value << "\n";
    }
  }
  return out.str();
}

std::string OptionSet::dump() const {
  std::ostringstream out;
  for (const auto& e : entries_) {
    std::string v = effective(e);
    if (e.decl.secret && !v.empty()) v = "****";
    out << "[" << e.decl.group << "] " << e.decl.name << " = " << v << "\n";
  }
  return out.str();
}

}  // namespace banyan::common
