// UTF-8 validation for text that kiln copies into its outputs (names from configs, CSV headers and class
// labels end up in JSON reports, SVG plots and comments of generated C): invalid bytes there would make
// metrics.json unreadable, so such input is refused where it is read, naming the file and position.
#pragma once
#include <cstddef>
#include <cstdio>
#include <string>
#include <string_view>

#include "engine/check.h"

namespace kiln {

// The offset of the first byte that does not start or continue a well-formed UTF-8 sequence (overlong
// forms, surrogates and code points past U+10FFFF included), or npos when `s` is valid UTF-8.
inline size_t invalid_utf8_at(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = 0;
    unsigned lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF) {
      n = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2;
      if (c == 0xE0) lo = 0xA0;  // overlong
      if (c == 0xED) hi = 0x9F;  // surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3;
      if (c == 0xF0) lo = 0x90;  // overlong
      if (c == 0xF4) hi = 0x8F;  // past U+10FFFF
    } else {
      return i;
    }
    if (i + n >= s.size()) return i;  // cut short
    for (size_t k = 1; k <= n; ++k) {
      const unsigned char b = static_cast<unsigned char>(s[i + k]);
      if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return i;
    }
    i += n + 1;
  }
  return std::string_view::npos;
}

// InputError "WHAT is not valid UTF-8 (byte 0xE9 at offset 4 of 'b?ta'); ..." unless `s` is valid.
inline void require_utf8(std::string_view s, const std::string& what) {
  const size_t at = invalid_utf8_at(s);
  if (at == std::string_view::npos) return;
  char byte[8];
  std::snprintf(byte, sizeof byte, "0x%02X", static_cast<unsigned char>(s[at]));
  std::string shown;
  for (unsigned char c : s.substr(0, 60)) shown += c < 0x20 || c >= 0x80 ? '?' : static_cast<char>(c);
  throw InputError(what + " is not valid UTF-8 (byte " + byte + " at offset " + std::to_string(at) + " of '" +
                   shown + "'); save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)");
}

}  // namespace kiln
