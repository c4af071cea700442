// The Prometheus text format 0.0.4 as PROMETHEUS listeners serve it, checked line by
// line (HELP then TYPE once per family, sample syntax, label escaping) with GoogleTest
// failures for every violation, and looked up by metric name and labels.
#pragma once

#include <map>
#include <string>

namespace banyan::test {

// "name{labels}" (as written) -> value text, after checking every line's syntax.
using Samples = std::map<std::string, std::string>;

// Checks the whole exposition; `types`, when given, gets family -> TYPE.
Samples checkExposition(const std::string& text, std::map<std::string, std::string>* types = nullptr);

// The labels of a "name{labels}" key, values unescaped; `name` gets the metric name.
std::map<std::string, std::string> labelsOf(const std::string& key, std::string* name = nullptr);

}  // namespace banyan::test
