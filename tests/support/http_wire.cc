#include "http_wire.h"

#include <cctype>
#include <cstdlib>

namespace banyan::test {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

}  // namespace

std::optional<size_t> findHeadEnd(std::string_view buffer) {
  size_t pos = buffer.find("\r\n\r\n");
  if (pos == std::string_view::npos) return std::nullopt;
  return pos + 4;
}

HttpHead parseHead(std::string_view raw_head) {
  HttpHead head;
  head.raw = std::string(raw_head);
  size_t pos = 0;
  bool first = true;
  while (pos < raw_head.size()) {
    size_t eol = raw_head.find('\n', pos);
    if (eol == std::string_view::npos) eol = raw_head.size();
    std::string_view line = raw_head.substr(pos, eol - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos = eol + 1;
    if (first) {
      head.start_line = std::string(line);
      first = false;
      continue;
    }
    if (line.empty()) break;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    head.headers.emplace_back(std::string(line.substr(0, colon)),
                              std::string(trim(line.substr(colon + 1))));
  }
  return head;
}

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  }
  return true;
}

std::string headerValue(const HeaderList& headers, std::string_view name) {
  for (const auto& [n, v] : headers)
    if (equalsIgnoreCase(n, name)) return v;
  return "";
}

std::string joinedHeaderValues(const HeaderList& headers, std::string_view name) {
  std::string out;
  for (const auto& [n, v] : headers) {
    if (!equalsIgnoreCase(n, name)) continue;
    if (!out.empty()) out += ", ";
    out += v;
  }
  return out;
}

size_t headerCount(const HeaderList& headers, std::string_view name) {
  size_t count = 0;
  for (const auto& [n, v] : headers)
    if (equalsIgnoreCase(n, name)) ++count;
  return count;
}

bool headerHasToken(const HeaderList& headers, std::string_view name, std::string_view token) {
  for (const auto& [n, v] : headers) {
    if (!equalsIgnoreCase(n, name)) continue;
    std::string_view rest = v;
    while (!rest.empty()) {
      size_t comma = rest.find(',');
      std::string_view item = trim(rest.substr(0, comma));
      if (equalsIgnoreCase(item, token)) return true;
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  return false;
}

ChunkedStatus decodeChunked(std::string_view buffer, std::string& body, size_t& consumed) {
  std::string out;
  size_t pos = 0;
  while (true) {
    size_t eol = buffer.find("\r\n", pos);
    if (eol == std::string_view::npos)
      return buffer.size() - pos > 1024 ? ChunkedStatus::Invalid : ChunkedStatus::NeedMore;
    std::string_view size_line = buffer.substr(pos, eol - pos);
    size_t semi = size_line.find(';');
    std::string size_text(trim(size_line.substr(0, semi)));
    if (size_text.empty()) return ChunkedStatus::Invalid;
    char* end = nullptr;
    unsigned long long size = std::strtoull(size_text.c_str(), &end, 16);
    if (*end != '\0') return ChunkedStatus::Invalid;
    pos = eol + 2;
    if (size == 0) {
      // Trailers until an empty line.
      while (true) {
        size_t tl = buffer.find("\r\n", pos);
        if (tl == std::string_view::npos) return ChunkedStatus::NeedMore;
        bool empty = tl == pos;
        pos = tl + 2;
        if (empty) break;
      }
      body = std::move(out);
      consumed = pos;
      return ChunkedStatus::Done;
    }
    if (buffer.size() < pos + size + 2) return ChunkedStatus::NeedMore;
    out.append(buffer.substr(pos, size));
    pos += size;
    if (buffer.substr(pos, 2) != "\r\n") return ChunkedStatus::Invalid;
    pos += 2;
  }
}

std::string encodeChunked(std::string_view body, size_t chunk_size) {
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (size_t off = 0; off < body.size(); off += chunk_size) {
    size_t n = std::min(chunk_size, body.size() - off);
    std::string hex;
    for (size_t v = n; v > 0; v >>= 4) hex.insert(hex.begin(), kHex[v & 15]);
    out += hex + "\r\n";
    out.append(body.substr(off, n));
    out += "\r\n";
  }
  out += "0\r\n\r\n";
  return out;
}

}  // namespace banyan::test
