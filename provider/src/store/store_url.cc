#include "store/store_url.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <optional>

namespace banyan::provider::store {
namespace {

using common::ErrorCode;
using common::makeError;
using common::Result;

// libpq keywords an operator may put in the query string; anything else is a typo or a
// MySQL habit (charset=) that would be silently ignored, so it is rejected.
constexpr std::array<std::string_view, 19> kLibpqOptions = {
    "host",       "hostaddr",        "port",          "sslmode",       "sslrootcert",
    "sslcert",    "sslkey",          "sslcrl",        "connect_timeout", "application_name",
    "options",    "target_session_attrs", "keepalives", "keepalives_idle",
    "keepalives_interval", "keepalives_count", "client_encoding", "channel_binding",
    "gssencmode"};

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

common::Error invalid(std::string message) {
  return makeError(ErrorCode::kInvalidArgument, std::move(message), "[database] connection");
}

bool parsePort(std::string_view text, int& port) {
  if (text.empty()) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
  return ec == std::errc() && end == text.data() + text.size() && port > 0 && port < 65536;
}

Result<StoreUrl> parseSqlite(std::string_view rest) {
  // SQLAlchemy's form: "sqlite:///" + path, so an absolute path shows four slashes.
  if (rest.substr(0, 1) != "/")
    return invalid("sqlite URL must look like sqlite:////absolute/path or sqlite:///relative/path");
  std::string_view raw = rest.substr(1);
  if (raw.empty()) return invalid("sqlite URL has no database file (in-memory databases are not supported)");
  if (raw.find('?') != std::string_view::npos) return invalid("sqlite URL options are not supported");
  StoreUrl out;
  out.backend = Backend::kSqlite;
  if (!percentDecode(raw, out.sqlite_path)) return invalid("sqlite URL has a malformed %-escape");
  if (out.sqlite_path.back() == '/') return invalid("sqlite URL names a directory, not a file");
  if (out.sqlite_path.find('\0') != std::string::npos) return invalid("sqlite URL has a NUL byte");
  return out;
}

Result<StoreUrl> parsePostgres(std::string_view rest) {
  StoreUrl out;
  out.backend = Backend::kPostgres;
  std::string_view query;
  if (size_t q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  std::string_view authority = rest;
  std::string_view path;
  if (size_t slash = rest.find('/'); slash != std::string_view::npos) {
    authority = rest.substr(0, slash);
    path = rest.substr(slash + 1);
  }
  // The password may contain '@' only percent-encoded, so the last '@' ends userinfo.
  std::string_view hostport = authority;
  if (size_t at = authority.rfind('@'); at != std::string_view::npos) {
    std::string_view userinfo = authority.substr(0, at);
    hostport = authority.substr(at + 1);
    std::string_view user = userinfo;
    std::optional<std::string_view> password;
    if (size_t colon = userinfo.find(':'); colon != std::string_view::npos) {
      user = userinfo.substr(0, colon);
      password = userinfo.substr(colon + 1);
    }
    std::string decoded;
    if (!percentDecode(user, decoded)) return invalid("postgresql URL: malformed %-escape in the user name");
    if (!decoded.empty()) out.pg_params.emplace_back("user", decoded);
    if (password) {
      if (!percentDecode(*password, decoded))
        return invalid("postgresql URL: malformed %-escape in the password");
      out.pg_params.emplace_back("password", decoded);
    }
  }
  std::string_view host = hostport;
  std::string_view port;
  if (!hostport.empty() && hostport.front() == '[') {
    size_t close = hostport.find(']');
    if (close == std::string_view::npos) return invalid("postgresql URL: unterminated [IPv6] host");
    host = hostport.substr(1, close - 1);
    std::string_view after = hostport.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return invalid("postgresql URL: junk after [IPv6] host");
      port = after.substr(1);
      if (port.empty()) return invalid("postgresql URL: empty port");
    }
  } else if (size_t colon = hostport.rfind(':'); colon != std::string_view::npos) {
    host = hostport.substr(0, colon);
    port = hostport.substr(colon + 1);
    if (port.empty()) return invalid("postgresql URL: empty port");
  }
  if (!host.empty()) {
    std::string decoded;
    if (!percentDecode(host, decoded)) return invalid("postgresql URL: malformed %-escape in the host");
    out.pg_params.emplace_back("host", decoded);
  }
  if (!port.empty()) {
    int value = 0;
    if (!parsePort(port, value))
      return invalid("postgresql URL: port '" + std::string(port) + "' is not a number in 1-65535");
    out.pg_params.emplace_back("port", std::to_string(value));
  }
  std::string dbname;
  if (!percentDecode(path, dbname)) return invalid("postgresql URL: malformed %-escape in the database name");
  if (dbname.empty()) return invalid("postgresql URL has no database name (postgresql://user:pw@host/dbname)");
  if (dbname.find('/') != std::string::npos) return invalid("postgresql URL: database name contains '/'");
  out.pg_params.emplace_back("dbname", dbname);

  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view item = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (item.empty()) continue;
    size_t eq = item.find('=');
    if (eq == std::string_view::npos)
      return invalid("postgresql URL: option '" + std::string(item) + "' has no value");
    std::string key, value;
    if (!percentDecode(item.substr(0, eq), key) || !percentDecode(item.substr(eq + 1), value))
      return invalid("postgresql URL: malformed %-escape in an option");
    if (key == "pool_size") {
      int n = 0;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec != std::errc() || end != value.data() + value.size() || n < 1 || n > 256)
        return invalid("postgresql URL: pool_size must be a number in 1-256");
      out.pool_size = n;
      continue;
    }
    if (std::find(kLibpqOptions.begin(), kLibpqOptions.end(), key) == kLibpqOptions.end())
      return invalid("postgresql URL: unsupported option '" + key + "'");
    // A query host/port (e.g. a socket directory) overrides the authority's.
    std::erase_if(out.pg_params, [&](const auto& p) { return p.first == key; });
    out.pg_params.emplace_back(key, value);
  }
  return out;
}

}  // namespace

bool percentDecode(std::string_view in, std::string& out) {
  out.clear();
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out.push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) return false;
    int hi = hexValue(in[i + 1]);
    int lo = hexValue(in[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return true;
}

Result<StoreUrl> parseStoreUrl(std::string_view url) {
  size_t sep = url.find("://");
  if (sep == std::string_view::npos)
    return invalid("database URL has no scheme (expected sqlite:///path or postgresql://...)");
  std::string scheme(url.substr(0, sep));
  std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  std::string_view rest = url.substr(sep + 3);
  if (scheme == "sqlite") return parseSqlite(rest);
  // SQLAlchemy driver suffixes name a Python driver; we always use libpq.
  if (scheme == "postgresql" || scheme == "postgres" || scheme == "postgresql+psycopg2")
    return parsePostgres(rest);
  return invalid("unsupported database scheme '" + scheme +
                 "' (Banyan supports sqlite:// and postgresql://)");
}

}  // namespace banyan::provider::store
