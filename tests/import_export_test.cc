// The hls4ml jet tagger imported from Keras (../shared/data/models/KERAS_3layer, softmax included) exports,
// as a float model, at hls4ml's default precision: the generated C and the HLS project's C-simulation test
// bench give 0 mismatches against kiln's deployed fixed-point model on 200 synthetic jet-format samples
// (16 features; the real jet file is not here). The test bench data comes, as for any export, from the
// checkpoint's run config: here a `data:` section naming .npy files this test writes.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "codegen/export.h"
#include "engine/train/run_config.h"
#include "import/imported.h"
#include "tests/codegen_harness.h"

using namespace kiln;
using namespace kiln::testing;

namespace {

// A little-endian float32 .npy of shape [n, d] (d = 0: [n]).
void write_npy(const std::string& path, const std::vector<float>& v, int64_t n, int64_t d) {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(n) +
                       (d ? ", " + std::to_string(d) + ")" : ",)") + ", }";
  while ((10 + header.size() + 1) % 64) header += ' ';
  header += '\n';
  std::ofstream f(path, std::ios::binary);
  f.write("\x93NUMPY\x01\x00", 8);
  const uint16_t len = static_cast<uint16_t>(header.size());
  f.put(static_cast<char>(len & 0xff)).put(static_cast<char>(len >> 8));
  f << header;
  f.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(float)));
  REQUIRE(f.good());
}

std::string models_dir() {
  // The runfiles link to the source tree; the models live beside the checkout, in ../shared/data/models.
  const auto src = std::filesystem::canonical("tests/import_reference.py").parent_path();
  return (src / "../../shared/data/models").lexically_normal().string();
}

std::vector<double> read_numbers(const std::string& path) {
  std::ifstream f(path);
  std::vector<double> v;
  for (double x; f >> x;) v.push_back(x);
  return v;
}

}  // namespace

TEST_CASE("imported KERAS_3layer: generated C and HLS == deployed model at hls4ml's default precision") {
  train::set_threads(1);
  const std::string models = models_dir();
  import::Imported m =
      import::import_keras(models + "/KERAS_3layer.json", models + "/KERAS_3layer_weights.h5");
  train::Checkpoint ck = import::to_checkpoint(m, import::ImportOptions{});
  REQUIRE(ck.model_yaml.find("softmax") != std::string::npos);  // the model as Keras has it

  TempDir dir;
  const int64_t n = 400, d = 16;
  std::mt19937 rng(17);
  std::normal_distribution<float> feature(0.f, 1.5f);
  std::vector<float> x(static_cast<size_t>(n * d)), y(static_cast<size_t>(n));
  for (float& v : x) v = feature(rng);
  for (int64_t i = 0; i < n; ++i) y[static_cast<size_t>(i)] = static_cast<float>(i % 5);
  write_npy(dir.path("x.npy"), x, n, d);
  write_npy(dir.path("y.npy"), y, n, 0);
  ck.config_yaml = "data: {format: npy, train_x: " + dir.path("x.npy") + ", train_y: " + dir.path("y.npy") +
                   ", standardize: false, validation_split: 0.0, test_split: 0.5}\n";

  codegen::ExportOptions hls;
  hls.target = "hls", hls.name = "jet", hls.out_dir = dir.path("hls"), hls.tb_samples = 200;
  codegen::ExportResult r = codegen::export_checkpoint(ck, hls);
  CHECK(r.note.find("default precision ap_fixed<16,6>") != std::string::npos);
  REQUIRE(std::filesystem::exists(dir.path("hls/tb_data/tb_output_predictions.dat")));
  const std::string hls_host = std::filesystem::absolute("codegen/hls_host").string();
  sh("g++ -std=c++14 -O0 -Wno-unknown-pragmas -isystem " + hls_host + " -I" + dir.path("hls/firmware") +
         " -o " + dir.path("csim") + " " + dir.path("hls/jet_test.cpp") + " " +
         dir.path("hls/firmware/jet.cpp"),
     dir);
  const std::string csim = sh("cd " + dir.path("hls") + " && " + dir.path("csim"), dir);
  MESSAGE("HLS C simulation: " << csim);
  CHECK(csim.find("200 samples, 0 mismatches") != std::string::npos);

  // The generated C on the same 200 samples (the run's test split, as the test bench has them).
  codegen::ExportOptions c;
  c.target = "c", c.name = "jet", c.out_dir = dir.path("c");
  codegen::ExportResult rc = codegen::export_checkpoint(ck, c);
  train::DataOptions o = train::parse_data(Config::parse(ck.config_yaml, "cfg").child("data"));
  const data::Dataset test = train::load_data(o, ck.seed).split.test;
  REQUIRE(test.size() == 200);
  write_file(dir.path("main.c"), samples_main("jet", test.x, 200));
  sh("cc -std=c99 -Wall -Wextra -Werror -pedantic -O2 -I" + dir.path("c") + " -o " + dir.path("host") + " " +
         dir.path("c/jet.c") + " " + dir.path("main.c"),
     dir);
  const std::vector<int64_t> got = parse_codes(sh(dir.path("host"), dir));
  const std::vector<double> want = read_numbers(dir.path("hls/tb_data/tb_output_predictions.dat"));
  REQUIRE(got.size() == want.size());
  REQUIRE(got.size() == 200 * 5);
  int64_t mismatches = 0;
  const int frac = rc.program.out().frac;
  for (size_t i = 0; i < got.size(); ++i)
    mismatches += std::ldexp(static_cast<double>(got[i]), -frac) != want[i];
  MESSAGE("generated C: 200 samples, " << mismatches << " mismatches");
  CHECK(mismatches == 0);
  // Not a constant model: the softmax outputs differ across samples.
  CHECK(std::count(want.begin(), want.end(), want[0]) < static_cast<std::ptrdiff_t>(want.size() / 2));
}
