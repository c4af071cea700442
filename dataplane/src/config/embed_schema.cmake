# Turns proxy-config.schema.json into a C++ source holding it as a raw string, so
# banyan-proxy validates against exactly the schema that lives in the repo.
# Usage: cmake -DINPUT=<schema.json> -DOUTPUT=<file.cc> -P embed_schema.cmake
file(READ "${INPUT}" _text)
string(FIND "${_text}" ")banyan_schema\"" _clash)
if(NOT _clash EQUAL -1)
  message(FATAL_ERROR "${INPUT} contains the raw-string delimiter )banyan_schema\"")
endif()
file(WRITE "${OUTPUT}.tmp"
"// Generated from ${INPUT} by embed_schema.cmake; do not edit.
#include <cstddef>

namespace banyan::dp::config::detail {
extern const char kProxyConfigSchema[];
extern const std::size_t kProxyConfigSchemaSize;
const char kProxyConfigSchema[] = R\"banyan_schema(${_text})banyan_schema\";
const std::size_t kProxyConfigSchemaSize = sizeof(kProxyConfigSchema) - 1;
}  // namespace banyan::dp::config::detail
")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUTPUT}.tmp")
