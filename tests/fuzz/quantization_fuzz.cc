// libFuzzer target: the `compression: quantization:` mapping of a run config (compress::parse_quantization)
// and the quantizers it attaches (compress::QuantizedModel), on a fixed small model with every kind of
// quantizable layer: Dense, Conv2D and DepthwiseConv2D, folded and unfolded BatchNorm, pooling, a residual
// block, and sigmoid/tanh/softmax activations (lookup tables). config_fuzz reaches the same code through
// whole configs; this target spends all its inputs on the section.
#include <cstddef>
#include <cstdint>
#include <string>

#include "compress/hgq.h"
#include "engine/config.h"
#include "engine/nn/model.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using namespace kiln;

constexpr const char* kModel = R"(
layers:
  - {type: conv2d, name: conv1, filters: 3, kernel_size: 3, activation: linear}
  - {type: batch_norm, name: bn1}
  - {type: relu, name: relu1}
  - {type: max_pool2d, name: pool1}
  - {type: depthwise_conv2d, name: dw1, kernel_size: 2, padding: same, activation: tanh}
  - {type: avg_pool2d, name: pool2, pool_size: 2}
  - {type: flatten, name: flat}
  - {type: dense, name: fc1, units: 6, activation: relu}
  - {type: batch_norm, name: bn2}
  - {type: residual, name: res1, layers: [{type: dense, name: fc, units: 6, activation: sigmoid}]}
  - {type: dense, name: out, units: 3, activation: softmax}
)";
const Shape kInput = {8, 8, 2};

void run(const std::string& text) {
  Config q = Config::parse(text, "fuzz.yaml", "'quantization'");
  compress::HgqOptions o = compress::parse_quantization(q);
  // A fresh model per input: the quantizers attach to its layers.
  std::unique_ptr<nn::Model> m = nn::Model::from_yaml(kModel, kInput, 1);
  if (o.enable) compress::QuantizedModel qm(*m, o);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  // Messages come from files other than the data readers: not checked for length here.
  kiln::fuzz::expect_rejection([&] { run(text); }, 0, false);
  return 0;
}
