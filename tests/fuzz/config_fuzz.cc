// libFuzzer target: a run config (YAML) taken through everything //tools:train does with it before it
// loads data and trains: the top-level keys, `data:`, `training:`, `export:`, the model built from
// `model:`, `compression: quantization:` and `pruning:` attached to it (the masks then hardened). The
// data files are not read (the data targets fuzz the readers); the model is built for small input shapes of each rank a layer may want,
// and rebuilt from its own spec_yaml as a checkpoint restores it.
//
// A config may ask for huge layers (units: 1000000000). engine/nn refuses a parameter of more than 2^28
// elements; bench/fuzz.sh also caps every allocation (-malloc_limit_mb), so that whatever still asks for
// gigabytes is reported as a failure instead of exhausting the machine.
#include <cstddef>
#include <cstdint>
#include <string>

#include "codegen/export.h"
#include "compress/hgq.h"
#include "compress/pruner.h"
#include "engine/config.h"
#include "engine/nn/model.h"
#include "engine/train/run_config.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using namespace kiln;

// [features], [sequence, channels], [height, width, channels].
const Shape kInputShapes[] = {{4}, {8, 3}, {6, 6, 2}};

void build_model(const Config& cfg, const Config& model_cfg, const Shape& input, uint64_t seed) {
  std::unique_ptr<nn::Model> m = nn::Model::from_config(model_cfg, input, seed);
  // The checkpoint stores spec_yaml and restores the model from it: what was accepted must come back.
  try {
    nn::Model::from_yaml(m->spec_yaml(), input, seed);
  } catch (const std::exception& e) {
    fuzz::violated(std::string("the model's own spec_yaml does not rebuild it: ") + e.what());
  }
  // As tools/compression.cc's CompressionRun does: quantizers, then the pruner wrapping them.
  Config comp = cfg.child("compression");
  comp.check_unused({"quantization", "pruning"});
  std::unique_ptr<compress::QuantizedModel> qm;
  if (comp.has("quantization")) {
    compress::HgqOptions q = compress::parse_quantization(comp.child("quantization"));
    if (q.enable) qm = std::make_unique<compress::QuantizedModel>(*m, q);
  }
  if (!comp.has("pruning")) return;
  compress::PruningOptions po = compress::parse_pruning(comp.child("pruning"), cfg.child("training"));
  if (!po.enable) return;
  compress::Pruner p(*m, po, qm.get());
  p.finish();  // the masks hardened with nothing learned or collected: every method must cope
}

void run(const std::string& text) {
  Config cfg = Config::parse(text, "fuzz.yaml", "the top level");
  cfg.check_unused({"name", "data", "model", "training", "compression", "export", "output_dir"});
  train::parse_data(cfg.child("data", true));
  train::TrainOptions topt = train::parse_training(cfg.child("training"));
  Config model_cfg = cfg.child("model", true);
  const std::string out = cfg.get<std::string>("output_dir", "runs/fuzz");
  if (Config e = cfg.child("export"); e.defined()) codegen::parse_export(e, out).validate();
  for (const Shape& input : kInputShapes)
    fuzz::expect_rejection([&] { build_model(cfg, model_cfg, input, topt.seed); }, 0, false);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  // The messages come from engine/config.cc and the sections' parsers, outside the data readers: their
  // length is not checked here (they quote values whole today).
  kiln::fuzz::expect_rejection([&] { run(text); }, 0, false);
  return 0;
}
