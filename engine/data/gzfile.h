// Whole-file reads through zlib's gzread, which passes plain files through unchanged: the same call
// reads "digits.csv" and "digits.csv.gz" (detected from the content, not the name).
//
//   std::string bytes = kiln::data::read_file("train-images-idx3-ubyte.gz");
#pragma once
#include <string>

namespace kiln::data {

// The file's (decompressed) bytes. Throws InputError with one line naming the file:
//   cannot open 'x.csv': No such file or directory
//   x.csv.gz: truncated gzip data (unexpected end of file)
//   x.csv.gz: corrupt gzip data (incorrect data check)
std::string read_file(const std::string& path);

}  // namespace kiln::data
