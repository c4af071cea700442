// OpenStack-style INI options (STYLE.md, "Configuration"): each option is declared once
// with its group, type, default, bounds and help; files are parsed and checked against
// the declarations at startup; sample .conf files are generated from them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "banyan/common/result.h"

namespace banyan::common {

enum class OptionType { kString, kInt, kFloat, kBool, kList };  // kList: comma-separated

// Every member has a default so declarations can name only what they need:
// {.group = "api_settings", .name = "bind_port", .type = OptionType::kInt, ...}.
struct OptionDecl {
  std::string group{};        // "DEFAULT", "api_settings", ...
  std::string name{};
  OptionType type = OptionType::kString;
  std::string default_value{};  // in file syntax: "9876", "true", "a,b", "" (unset)
  std::string help{};         // one or more sentences; goes into the sample file
  std::optional<double> min{};  // for kInt and kFloat
  std::optional<double> max{};
  std::vector<std::string> choices{};  // for kString (and each kList item) when non-empty
  bool secret = false;        // redacted in dump()
};

// Declarations plus the values read. Not thread-safe while loading; read-only after.
class OptionSet {
 public:
  void declare(OptionDecl decl);  // a second declaration of group/name is a broken invariant

  // Parses INI text: [group] headers, "name = value" lines, '#' and ';' comments,
  // indented continuation lines. Every value is checked against its declaration; the
  // first bad one fails the load with context "FILE: [group] name". Unknown groups or
  // keys are not errors: each adds a line to warnings().
  Result<void> loadFile(const std::string& path);
  Result<void> loadText(std::string_view text, std::string_view source_name);
  // One value from elsewhere (a command-line override), checked like a file value.
  Result<void> set(std::string_view group, std::string_view name, std::string_view value);

  // Typed reads of a declared option (undeclared is a broken invariant). Booleans accept
  // true/false/yes/no/on/off/1/0, case-insensitive.
  std::string getString(std::string_view group, std::string_view name) const;
  int64_t getInt(std::string_view group, std::string_view name) const;
  double getFloat(std::string_view group, std::string_view name) const;
  bool getBool(std::string_view group, std::string_view name) const;
  std::vector<std::string> getList(std::string_view group, std::string_view name) const;
  bool isSet(std::string_view group, std::string_view name) const;  // given in a file or set()

  const std::vector<std::string>& warnings() const { return warnings_; }
  // A commented sample file: every group, every option with its help, type, bounds and
  // default, commented out.
  std::string sampleConfig() const;
  // The effective values, one "[group] name = value" per line, secrets as "****".
  std::string dump() const;

 private:
  struct Entry {
    OptionDecl decl;
    std::optional<std::string> value;
  };
  const Entry& entry(std::string_view group, std::string_view name) const;
  Entry* find(std::string_view group, std::string_view name);
  std::string effective(const Entry& e) const;

  std::vector<Entry> entries_;  // declaration order, for the sample file
  std::vector<std::string> warnings_;
};

}  // namespace banyan::common
