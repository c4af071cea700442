// Parsing and validation of the banyan-proxy configuration document (JSON, see
// docs/proxy-config.md) into the immutable model of config/model.h.
//
// Validation runs in two stages: the document must first satisfy the JSON schema
// schema/proxy-config.schema.json (embedded into this library at build time),
// then the semantic rules the schema cannot express (unique ids, references,
// listener/pool protocol compatibility, IP literals, bind conflicts,
// expected_codes syntax). The first violation found is reported.
//
// All functions are pure apart from loadConfigFile's read, and are safe to call
// from any thread: the schema is compiled once, on first use.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "banyan/common/result.h"
#include "config/model.h"

namespace banyan::dp::config {

// Documents larger than this are refused before parsing: a real document is a
// few hundred kilobytes at most, and the agent is the only writer.
inline constexpr size_t kMaxDocumentBytes = 64u << 20;

// Parses and validates a document; on failure Error.context is the JSON pointer of
// the offending value (e.g. "/listeners/0/protocol_port", "" for the root) and
// Error.message the reason in words. Syntax errors have context "" and a message
// naming the line and column. Error.code is kInvalidArgument.
common::Result<Config> parseConfig(std::string_view json);

// Reads the file and parses it with parseConfig. On I/O errors Error.context is
// the path (code kNotFound for a missing file, kUnavailable otherwise).
common::Result<Config> loadConfigFile(const std::string& path);

// The embedded JSON schema, byte for byte the file in the repository.
const std::string& schemaText();

// Parses a health monitor's expected_codes in Octavia's forms: "200",
// "200,202" (spaces around commas allowed) or "200-204"; codes are 100-599.
// Returns the codes sorted and without duplicates. Error.context is "".
common::Result<std::vector<uint16_t>> parseExpectedCodes(std::string_view text);

}  // namespace banyan::dp::config
