// libFuzzer target: the IDX reader (data::load_idx, MNIST's format), plain or gzipped.
// Input: [u16 little-endian length L][L bytes: the labels file][rest: the images file].
#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/data/loaders.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto [labels, images] = kiln::fuzz::split2({reinterpret_cast<const char*>(data), size});
  const std::string lpath = kiln::fuzz::write_temp("labels.idx1", labels);
  const std::string ipath = kiln::fuzz::write_temp("images.idx3", images);
  kiln::fuzz::expect_rejection([&] { kiln::fuzz::check_dataset(kiln::data::load_idx(ipath, lpath)); },
                               ipath.size() + lpath.size());
  return 0;
}
