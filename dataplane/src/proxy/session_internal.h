// Pieces several of ClientSession's source files share (session.cc,
// session_io.cc, session_request.cc, session_upstream.cc, session_response.cc,
// session_tunnel.cc). Internal to the proxy module: include only from those.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "http/parser.h"
#include "proxy/session.h"

namespace banyan::dp::proxy {

struct ClientSession::SplicePipe {
  int r = -1;
  int w = -1;
  size_t pending = 0;  // bytes in the pipe not yet written out
  ~SplicePipe() {
    if (r >= 0) ::close(r);
    if (w >= 0) ::close(w);
  }
};

namespace session_detail {

constexpr size_t kStreamCap = 65536;  // bytes buffered per direction before reading pauses

inline const char* reasonPhrase(int status) {
  switch (status) {
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 408: return "Request Time-out";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Time-out";
  }
  return "Error";
}

inline bool ieq(std::string_view a, std::string_view b) { return http::equalsIgnoreCase(a, b); }

// True when `token` appears in a comma-separated header value.
inline bool listHas(std::string_view list, std::string_view token) {
  size_t i = 0;
  while (i < list.size()) {
    size_t j = list.find(',', i);
    if (j == std::string_view::npos) j = list.size();
    std::string_view t = list.substr(i, j - i);
    while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.remove_prefix(1);
    while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.remove_suffix(1);
    if (ieq(t, token)) return true;
    i = j + 1;
  }
  return false;
}

// Hop-by-hop fields Banyan never forwards as received (RFC 9110 section 7.6.1).
// Runs for every header of every message: compare only names of a matching length.
inline bool isHopByHop(std::string_view name) {
  switch (name.size()) {
    case 2: return ieq(name, "te");
    case 7: return ieq(name, "upgrade");
    case 10: return ieq(name, "connection") || ieq(name, "keep-alive");
    case 16: return ieq(name, "proxy-connection");
    default: return false;
  }
}

// Removes a header named by a Connection token (RFC 9110 section 7.6.1).
inline bool namedByConnection(const std::vector<http::Header>& headers, std::string_view name) {
  for (const auto& h : headers)
    if (ieq(h.name, "connection") && listHas(h.value, name)) return true;
  return false;
}

inline void appendHeader(std::string& out, std::string_view name, std::string_view value) {
  out.append(name);
  out.append(": ");
  out.append(value);
  out.append("\r\n");
}

}  // namespace session_detail
}  // namespace banyan::dp::proxy
