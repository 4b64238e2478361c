// libFuzzer target: the CSV reader (data::load_csv), plain or gzipped, under the option sets a run
// config can ask for: header or not, ',', ' ' (runs of blanks) or any other delimiter, the label by name,
// by index or by default, chosen features, classification or regression.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/data/loaders.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using kiln::data::CsvOptions;

std::vector<CsvOptions> option_sets() {
  auto make = [](bool header, char delim, std::string label, std::vector<std::string> features,
                 bool regression) {
    CsvOptions o;
    o.header = header, o.delimiter = delim, o.label = std::move(label);
    o.features = std::move(features), o.regression = regression;
    return o;
  };
  return {
      make(true, ',', "", {}, false),             // the last column is the class
      make(true, ',', "class", {}, false),        // by name, as in the jet-tagging configs
      make(true, ' ', "y", {"x"}, true),          // whitespace-separated, named features, regression
      make(false, ',', "-1", {"0", "1"}, false),  // headerless: indices, negative from the end
      make(false, ' ', "0", {}, true),
      make(true, '\t', "", {}, true),    // a config's delimiter may be any one character,
      make(false, '"', "1", {}, false),  // even the quote character
  };
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<CsvOptions> kOptions = option_sets();
  const std::string path = kiln::fuzz::write_temp("data.csv", {reinterpret_cast<const char*>(data), size});
  for (CsvOptions o : kOptions) {
    o.path = path;
    kiln::fuzz::expect_rejection([&] { kiln::fuzz::check_dataset(kiln::data::load_csv(o)); }, path.size());
  }
  return 0;
}
