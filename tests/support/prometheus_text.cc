#include "prometheus_text.h"

#include <gtest/gtest.h>

// libstdc++ 12's <regex> trips -Wmaybe-uninitialized under the sanitizers (a
// known false positive in _NFA::_M_insert_subexpr_*).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <regex>
#pragma GCC diagnostic pop
#include <set>
#include <sstream>

namespace banyan::test {

Samples checkExposition(const std::string& text, std::map<std::string, std::string>* types) {
  static const std::regex kHelp(R"(# HELP [a-zA-Z_:][a-zA-Z0-9_:]* ([^\\\n]|\\[\\n])*)");
  static const std::regex kType(R"(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|untyped))");
  static const std::regex kSample(
      R"(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*")"
      R"((,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*")*\})? (-?[0-9]+(\.[0-9]+)?))");
  Samples out;
  EXPECT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n') << "the exposition ends with a line feed";
  std::istringstream in(text);
  std::string line, family, typed;
  std::set<std::string> seen_families;
  std::smatch m;
  while (std::getline(in, line)) {
    if (std::regex_match(line, m, kType)) {
      family = m[1];
      if (types) (*types)[family] = m[2];
      EXPECT_EQ(typed, "help:" + family) << "TYPE follows the HELP of the same metric: " << line;
      EXPECT_TRUE(seen_families.insert(family).second) << "metric family twice: " << family;
      typed = family;
      continue;
    }
    if (line.rfind("# HELP ", 0) == 0) {
      EXPECT_TRUE(std::regex_match(line, kHelp)) << "bad HELP line: " << line;
      typed = "help:" + line.substr(7, line.find(' ', 7) - 7);
      continue;
    }
    if (!std::regex_match(line, m, kSample)) {
      ADD_FAILURE() << "bad sample line: " << line;
      continue;
    }
    EXPECT_EQ(std::string(m[1]), family) << "sample outside its family: " << line;
    size_t space = line.rfind(' ');
    EXPECT_TRUE(out.emplace(line.substr(0, space), line.substr(space + 1)).second)
        << "duplicate sample: " << line;
  }
  return out;
}

std::map<std::string, std::string> labelsOf(const std::string& key, std::string* name) {
  std::map<std::string, std::string> labels;
  size_t i = key.find('{');
  if (name) *name = key.substr(0, i);
  if (i == std::string::npos) return labels;
  ++i;
  while (i < key.size() && key[i] != '}') {
    size_t eq = key.find("=\"", i);
    if (eq == std::string::npos) break;
    std::string label = key.substr(i, eq - i), value;
    for (i = eq + 2; i < key.size() && key[i] != '"'; ++i) {
      if (key[i] == '\\' && i + 1 < key.size()) {
        char e = key[++i];
        value += e == 'n' ? '\n' : e;
      } else {
        value += key[i];
      }
    }
    ++i;  // the closing quote
    if (i < key.size() && key[i] == ',') ++i;
    labels.emplace(std::move(label), std::move(value));
  }
  return labels;
}

}  // namespace banyan::test
