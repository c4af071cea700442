// Character classes shared by the HTTP/1.x parsers (internal to this module).
#pragma once

#include <cstdint>
#include <string_view>

namespace banyan::dp::http::detail {

// Character classes, RFC 9110 section 5.6.2 (tchar), 5.5 (field-vchar),
// RFC 9112 section 3.2 (request-target bytes), RFC 5234 (HEXDIG).
constexpr uint8_t kTchar = 1;
constexpr uint8_t kTargetChar = 2;  // VCHAR: 0x21-0x7e
constexpr uint8_t kFieldChar = 4;   // HTAB / SP / VCHAR / obs-text
constexpr uint8_t kHexDigit = 8;
constexpr uint8_t kQdtext = 16;     // HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text

struct CharTable {
  uint8_t cls[256];
  char lower[256];
};

constexpr CharTable makeCharTable() {
  CharTable t{};
  for (int c = 0; c < 256; ++c) {
    uint8_t v = 0;
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    const bool digit = c >= '0' && c <= '9';
    if (alpha || digit) v |= kTchar;
    for (char x : std::string_view("!#$%&'*+-.^_`|~")) {
      if (c == static_cast<unsigned char>(x)) v |= kTchar;
    }
    if (c >= 0x21 && c <= 0x7e) v |= kTargetChar;
    if (c == '\t' || (c >= 0x20 && c <= 0x7e) || c >= 0x80) v |= kFieldChar;
    if (digit || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) v |= kHexDigit;
    if ((v & kFieldChar) && c != '"' && c != '\\') v |= kQdtext;
    t.cls[c] = v;
    t.lower[c] = static_cast<char>((c >= 'A' && c <= 'Z') ? c + 32 : c);
  }
  return t;
}

constexpr CharTable kChars = makeCharTable();

inline bool is(uint8_t cls, unsigned char c) { return (kChars.cls[c] & cls) != 0; }
inline bool isWs(unsigned char c) { return c == ' ' || c == '\t'; }

}  // namespace banyan::dp::http::detail
