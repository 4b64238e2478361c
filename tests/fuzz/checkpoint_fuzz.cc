// libFuzzer target: the checkpoint reader (train::load_checkpoint) and what --resume and //tools:export do
// with a checkpoint that loads: rebuild the model from its spec, with the quantizers of its run config's
// `compression:` section, and load the weights (compress::restore_quantized), and standardise inputs of
// its shape.
//
// Input: [mode byte][rest]. An even mode byte writes the rest as the file. An odd one writes it as the
// payload behind a valid header (magic, version, size, CRC-32): random bytes almost never pass the CRC,
// so without this the fuzzer would never get past the header into the cereal archive. Mode bit 1 picks
// format version 1 for that header instead of the current one.
#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "compress/hgq.h"
#include "engine/train/checkpoint.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using namespace kiln;

template <class T>
void put_le(std::string& s, T v) {
  for (size_t i = 0; i < sizeof(T); ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// The file layout of engine/train/checkpoint.h around a payload.
std::string with_header(std::string_view payload, uint32_t version) {
  std::string file = "KILNCKPT";
  put_le<uint32_t>(file, version);
  put_le<uint64_t>(file, payload.size());
  put_le<uint32_t>(file, static_cast<uint32_t>(crc32(0L, reinterpret_cast<const Bytef*>(payload.data()),
                                                     static_cast<uInt>(payload.size()))));
  file += payload;
  return file;
}

// Small enough to build: the config target covers layers asked to be huge (units: 1000000000); here a
// checkpoint's input shape of [1000000000] would only find that allocation again.
bool small_shape(const Shape& s) {
  if (s.empty() || s.size() > 4) return false;
  int64_t n = 1;
  for (int64_t d : s) {
    if (d < 1 || d > 4096) return false;
    n *= d;
  }
  return n <= 4096;
}

void run(const std::string& path) {
  train::Checkpoint c = train::load_checkpoint(path);
  if (!small_shape(c.input_shape)) return;
  compress::restore_quantized(c);
  if (c.standardizer.empty()) return;
  Shape batch = c.input_shape;
  batch.insert(batch.begin(), 2);
  Tensor x(batch);
  c.standardizer.apply(x);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  const uint32_t version = (data[0] & 2) ? 1 : train::kCheckpointVersion;
  const std::string path =
      fuzz::write_temp("model.ckpt", (data[0] & 1) ? with_header(rest, version) : std::string(rest));
  // Messages come from engine/train and engine/nn: not checked for length here.
  fuzz::expect_rejection([&] { run(path); }, 0, false);
  return 0;
}
