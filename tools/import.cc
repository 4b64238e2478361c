// kiln import: a model trained elsewhere (Keras JSON + HDF5 weights or a whole-model .h5; ONNX) as a kiln
// checkpoint that //tools:train --resume, //tools:export and HGQ fine-tuning read.
//
//   bazel run //tools:import -- --keras KERAS_3layer.json --weights KERAS_3layer_weights.h5 --out imp/jet
//   bazel run //tools:import -- --onnx three_layer_pytorch.onnx --out imp/jet_onnx --class-names g,q,t,w,z
//       --check x.npy --expect y.npy      (kiln's forward against the framework's outputs)
//   bazel run //tools:import -- --keras M.json --weights W.h5 --config hgq.yaml --out imp/jet_hgq
//
// Writes DIR/model.ckpt, DIR/model.yaml (the `model:` section), DIR/summary.txt and DIR/import.txt; with
// --config BASE.yaml also DIR/train.yaml, for `kiln train --config DIR/train.yaml --resume DIR/model.ckpt`
// (import/finetune.h). Unsupported or broken input gives one line naming the file, the layer or node and its
// type, and exit 1.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>

#include "import/check.h"
#include "import/finetune.h"
#include "import/imported.h"
#include "tools/run_dir.h"
#include "tools/tool_main.h"

namespace {

struct Flags {
  std::string keras, weights, onnx, out, check, expect, config;
  std::vector<float> input_scale, input_offset;
  std::vector<std::string> class_names;
  double tolerance = 1e-4;
  bool overwrite = false;
};

// "identity", or the offsets and scales (one value when all features share it).
std::string describe(const kiln::data::Standardizer& st) {
  auto list = [](const std::vector<float>& v) {
    std::ostringstream os;
    if (std::all_of(v.begin(), v.end(), [&](float x) { return x == v[0]; }))
      os << v[0];
    else
      for (size_t i = 0; i < v.size(); ++i) os << (i ? "," : "") << v[i];
    return os.str();
  };
  const std::string offset = list(st.mean), scale = list(st.scale);
  if (offset == "0" && scale == "1") return "identity";
  return "offset " + offset + ", scale " + scale;
}

int run(const Flags& f) {
  using namespace kiln;
  if (f.keras.empty() == f.onnx.empty()) throw InputError("give one of --keras MODEL and --onnx MODEL.onnx");
  if (!f.weights.empty() && f.keras.empty()) throw InputError("--weights goes with --keras");
  if (f.check.empty() != f.expect.empty())
    throw InputError("give both --check INPUTS.npy and --expect OUTPUTS.npy");
  RunDir::check(f.out, "kiln import", f.overwrite);
  import::Imported m =
      f.keras.empty() ? import::import_onnx(f.onnx) : import::import_keras(f.keras, f.weights);
  import::ImportOptions o;
  o.input_scale = f.input_scale;
  o.input_offset = f.input_offset;
  o.class_names = f.class_names;
  const train::Checkpoint plain = import::to_checkpoint(m, o);  // float weights only: what --check runs
  std::ostringstream report;
  report << "source: " << m.source << "\n";
  for (const std::string& n : m.notes) report << "note: " << n << "\n";
  report << "input " << shape_str(plain.input_shape)
         << ", standardisation (x - offset) * scale: " << describe(plain.standardizer) << "\n";
  if (!f.check.empty()) {
    import::CheckResult r = import::check_forward(plain, f.check, f.expect, m.channels_first_input);
    report << "check: " << r.samples << " samples, max abs difference " << std::setprecision(3)
           << std::scientific << r.max_abs_diff << " (sample " << r.worst_sample << ", output "
           << r.worst_output << ")\n";
    if (!(r.max_abs_diff <= f.tolerance)) {
      std::cout << report.str();
      std::ostringstream msg;
      msg << f.expect << ": kiln's forward differs from the expected outputs by up to " << std::scientific
          << std::setprecision(3) << r.max_abs_diff << " (sample " << r.worst_sample << ", output "
          << r.worst_output << "), more than --tolerance " << f.tolerance;
      throw InputError(msg.str());
    }
  }
  train::Checkpoint ck = plain;
  // The model the checkpoint holds (emplaced, not assigned: YAML nodes alias on assignment).
  std::optional<import::Imported> trainable;
  if (!f.config.empty()) trainable.emplace(import::for_training(m, f.config));
  const import::Imported& tuned = trainable ? *trainable : m;
  if (!f.config.empty()) {
    for (size_t i = m.notes.size(); i < tuned.notes.size(); ++i) report << "note: " << tuned.notes[i] << "\n";
    o.config_text = import::config_with_model(f.config, tuned);
    o.config_name = f.config + " (with the imported model)";
    ck = import::to_checkpoint(tuned, o);
  }
  RunDir rd(f.out, "kiln import", f.overwrite);
  auto model = train::restore_model(plain);
  try {
    train::save_checkpoint(ck, rd.path("model.ckpt"));
    write_text(rd.path("model.yaml"), import::model_section_yaml(tuned));
    if (!f.config.empty()) write_text(rd.path("train.yaml"), o.config_text);
    write_text(rd.path("summary.txt"), model->summary_text());
    write_text(rd.path("import.txt"), report.str());
    rd.commit();
  } catch (const std::exception& e) {
    rd.fail(e.what());
    throw;
  }
  std::cout << model->summary_text() << report.str() << "wrote " << f.out << "/model.ckpt ("
            << (ck.class_names.empty() ? "regression" : "classes " + join(ck.class_names)) << "), model.yaml";
  if (!f.config.empty())
    std::cout << ", train.yaml; fine-tune with: kiln train --config " << f.out << "/train.yaml --resume "
              << f.out << "/model.ckpt --out DIR";
  std::cout << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"kiln import: a Keras or ONNX model as a kiln checkpoint"};
  Flags f;
  app.add_option("--keras", f.keras, "Keras model: MODEL.json (with --weights) or a whole-model MODEL.h5");
  app.add_option("--weights", f.weights, "Keras weights (HDF5), e.g. MODEL_weights.h5");
  app.add_option("--onnx", f.onnx, "ONNX model (opset 9-17)");
  app.add_option("--out", f.out, "run directory for model.ckpt")->required();
  app.add_option(
         "--input-scale", f.input_scale,
         "kiln's standardisation x' = (x - offset) * scale applied to data before the model: one value "
         "or one per feature (default 1)")
      ->delimiter(',');
  app.add_option("--input-offset", f.input_offset, "the offset of --input-scale (default 0)")->delimiter(',');
  app.add_option("--class-names", f.class_names, "class names in output order (default 0..K-1)")
      ->delimiter(',');
  app.add_option("--check", f.check,
                 "inputs (.npy) to compare kiln's forward on, as the source model takes them");
  app.add_option("--expect", f.expect, "the source framework's outputs (.npy) for --check");
  app.add_option("--tolerance", f.tolerance, "largest accepted abs difference for --check (default 1e-4)");
  app.add_option(
      "--config", f.config,
      "a run config (data, training, compression) to fine-tune with: written as DIR/train.yaml with "
      "the imported model as its model: section; its quantizers and pruning are attached");
  app.add_flag("--overwrite", f.overwrite, "replace an earlier import in --out");
  return kiln::run_tool("kiln import", app, argc, argv, [&] { return run(f); });
}
