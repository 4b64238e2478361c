// UTF-8 validation (engine/utf8.h): every class of ill-formed sequence, and well-formed text of 1-4 bytes.
#include "engine/utf8.h"

#include <doctest/doctest.h>

using kiln::invalid_utf8_at;
constexpr size_t npos = std::string_view::npos;

TEST_CASE("well-formed UTF-8 passes: ASCII, 2-, 3- and 4-byte sequences, the edges of the code space") {
  CHECK(invalid_utf8_at("") == npos);
  CHECK(invalid_utf8_at("plain ascii, tab\t") == npos);
  CHECK(invalid_utf8_at("b\xc3\xa9ta") == npos);              // é
  CHECK(invalid_utf8_at("\xe2\x82\xac 5") == npos);           // €
  CHECK(invalid_utf8_at("\xf0\x9f\x98\x80") == npos);         // U+1F600
  CHECK(invalid_utf8_at("\xed\x9f\xbf") == npos);             // U+D7FF, below the surrogates
  CHECK(invalid_utf8_at("\xf4\x8f\xbf\xbf") == npos);         // U+10FFFF, the last code point
}

TEST_CASE("ill-formed UTF-8 is found at its first byte") {
  CHECK(invalid_utf8_at("b\xe9ta") == 1);                     // Latin-1 é
  CHECK(invalid_utf8_at("ab\x80") == 2);                      // a lone continuation byte
  CHECK(invalid_utf8_at("\xc0\xaf") == 0);                    // overlong '/'
  CHECK(invalid_utf8_at("\xe0\x80\xaf") == 0);                // overlong, 3 bytes
  CHECK(invalid_utf8_at("x\xed\xa0\x80") == 1);               // a surrogate, U+D800
  CHECK(invalid_utf8_at("\xf4\x90\x80\x80") == 0);            // past U+10FFFF
  CHECK(invalid_utf8_at("\xf5\x80\x80\x80") == 0);            // no such lead byte
  CHECK(invalid_utf8_at("ok\xe2\x82") == 2);                  // cut short at the end
  CHECK(invalid_utf8_at("\xc3(") == 0);                       // a continuation that is not one
  std::string msg;
  try {
    kiln::require_utf8("b\xe9ta", "data.csv: class label");
  } catch (const kiln::InputError& e) {
    msg = e.what();
  }
  CHECK(msg == "data.csv: class label is not valid UTF-8 (byte 0xE9 at offset 1 of 'b?ta'); save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)");
}
