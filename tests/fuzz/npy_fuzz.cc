// libFuzzer target: the NumPy .npy reader (data::load_npy), plain or gzipped, for classification and
// for regression. Input: [u16 little-endian length L][L bytes: x.npy][rest: y.npy].
#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/data/loaders.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto [x, y] = kiln::fuzz::split2({reinterpret_cast<const char*>(data), size});
  const std::string xpath = kiln::fuzz::write_temp("x.npy", x);
  const std::string ypath = kiln::fuzz::write_temp("y.npy", y);
  for (bool regression : {false, true})
    kiln::fuzz::expect_rejection(
        [&] { kiln::fuzz::check_dataset(kiln::data::load_npy(xpath, ypath, regression)); },
        2 * (xpath.size() + ypath.size()));
  return 0;
}
