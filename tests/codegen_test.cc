// Generated code against the deployed fixed-point model, on every sample of a test split, 0 mismatches:
// the lowered integer program, the generated C compiled by the host compiler under
// -std=c99 -Wall -Wextra -Werror -pedantic, and the generated HLS project's C-simulation test bench compiled
// by the host compiler against kiln's ap_fixed model (codegen/hls_host).
#include <map>
#include <set>

#include "codegen/emit_hls.h"
#include "tests/codegen_harness.h"

using namespace kiln;
using namespace kiln::testing;

namespace {

// Compiles the generated C with a sample main on the host and returns its output codes.
std::vector<int64_t> host_c(const Trained& t, const codegen::CFiles& f, const TempDir& dir, int64_t n) {
  write_file(dir.path(t.name + ".h"), f.header);
  write_file(dir.path(t.name + ".c"), f.source);
  write_file(dir.path("main.c"), samples_main(t.name, t.test_raw, n));
  sh("cc -std=c99 -Wall -Wextra -Werror -pedantic -O2 -o " + dir.path("host") + " " +
         dir.path(t.name + ".c") + " " + dir.path("main.c"),
     dir);
  return parse_codes(sh(dir.path("host"), dir));
}

// Writes the HLS project with its test-bench data, compiles it with g++ and runs the test bench, which
// compares every output with the deployed model's and prints "N samples, M mismatches".
std::string host_hls(const Trained& t, const std::vector<int64_t>& want, const codegen::HlsOptions& o = {}) {
  TempDir dir;
  for (const auto& [path, text] : codegen::emit_hls(t.program, o)) {
    std::filesystem::create_directories(std::filesystem::path(dir.path(path)).parent_path());
    write_file(dir.path(path), text);
  }
  std::filesystem::create_directories(dir.path("tb_data"));
  const int64_t n = t.test_raw.dim(0), d = t.test_raw.size() / n;
  std::vector<double> raw(t.test_raw.data(), t.test_raw.data() + t.test_raw.size()), expect;
  for (int64_t c : want) expect.push_back(std::ldexp(static_cast<double>(c), -t.program.out().frac));
  write_file(dir.path("tb_data/tb_input_features.dat"), codegen::tb_lines(raw, d, 9));
  write_file(dir.path("tb_data/tb_output_predictions.dat"),
             codegen::tb_lines(expect, t.program.out().size, 17));
  const std::string hls_host = std::filesystem::absolute("codegen/hls_host").string();
  // -O0, as HLS C simulation compiles by default: a third of -O1's compile time (about 3 s instead of 9 for a
  // table model) and the same integer results; the C above is built -O2, as firmware is.
  sh("g++ -std=c++14 -O0 -Wall -Wextra -Werror -Wno-unknown-pragmas -isystem " + hls_host + " -I" +
         dir.path("firmware") + " -o " + dir.path("csim") + " " + dir.path(t.name + "_test.cpp") + " " +
         dir.path("firmware/" + t.name + ".cpp"),
     dir);
  std::string out = sh("cd " + dir.dir.string() + " && ./csim", dir);
  std::ifstream log(dir.path("tb_data/csim_results.log"));
  std::vector<double> got;
  for (double v; log >> v;) got.push_back(v);
  CHECK(got == expect);
  return out;
}

// `classifier`: the outputs are class scores (the deployed model must beat chance), else one regression
// output (it must not be constant).
void check_model(const Trained& t, bool classifier = true) {
  const int64_t n = t.test_std.dim(0);
  std::vector<int64_t> want = deployed_codes(t, t.test_std);
  // The lowering: integer evaluation of the program == the deployed model.
  int64_t bad = 0;
  const int64_t d = t.test_std.size() / n, outs = t.program.out().size;
  for (int64_t r = 0; r < n; ++r) {
    std::vector<int64_t> y =
        compress::run(t.program, compress::quantize_input(t.program, t.test_std.data() + r * d));
    for (int64_t j = 0; j < outs; ++j) {
      if (bad == 0 && y[static_cast<size_t>(j)] != want[static_cast<size_t>(r * outs + j)])
        MESSAGE("first mismatch: sample " << r << " output " << j << ": program " << y[static_cast<size_t>(j)]
                                          << ", deployed " << want[static_cast<size_t>(r * outs + j)]);
      bad += y[static_cast<size_t>(j)] != want[static_cast<size_t>(r * outs + j)];
    }
  }
  CHECK(bad == 0);
  // The model learned something (matching a constant model would prove little): well above chance (1/10
  // on digits, 1/3 on the sequences). The CNN trains only 4 epochs: 0.52, as its float twin (0.56).
  if (classifier) {
    int64_t right = 0;
    for (int64_t r = 0; r < n; ++r) {
      const auto* row = &want[static_cast<size_t>(r * outs)];
      right += std::max_element(row, row + outs) - row == t.test_labels[static_cast<size_t>(r)];
    }
    MESSAGE(t.name << ": deployed accuracy " << static_cast<double>(right) / static_cast<double>(n));
    CHECK(right > n / 3);
  } else {
    const size_t distinct = std::set<int64_t>(want.begin(), want.end()).size();
    MESSAGE(t.name << ": " << distinct << " distinct output codes on " << n << " samples");
    CHECK(distinct > 20);
  }
  // The generated C, from raw (unstandardised) features.
  TempDir dir;
  codegen::CFiles f = codegen::emit_c(t.program);
  std::vector<int64_t> got = host_c(t, f, dir, n);
  REQUIRE(got.size() == want.size());
  int64_t c_bad = 0;
  for (size_t j = 0; j < got.size(); ++j) c_bad += got[j] != want[j];
  MESSAGE(t.name << ": " << n << " test samples, " << c_bad << " mismatches; flash tables " << f.const_bytes
                 << " B, RAM " << f.ram_bytes << " B");
  CHECK(c_bad == 0);
  // The generated HLS, through its own test bench.
  const std::string tb = host_hls(t, want);
  MESSAGE(t.name << " HLS test bench: " << tb);
  CHECK(tb == std::to_string(n) + " samples, 0 mismatches\n");
  // The resource strategy, every multiply-accumulate with its smallest valid reuse factor above 1: the
  // products split over pipelined iterations must still sum to the same codes.
  codegen::HlsOptions res;
  res.strategy = "resource";
  for (const codegen::Op& op : t.program.ops) {
    if (op.kind != codegen::Op::kDense && op.kind != codegen::Op::kConv && op.kind != codegen::Op::kDepthwise)
      continue;
    const bool dw = op.kind == codegen::Op::kDepthwise;
    const int64_t in = op.kind == codegen::Op::kDense ? op.n_in : op.win.KH * op.win.KW * (dw ? 1 : op.win.C);
    for (int64_t rf : codegen::valid_reuse_factors(in, dw ? 1 : op.n_out))
      if (rf > 1) {
        res.layer_reuse[op.name] = static_cast<int>(rf);
        break;
      }
  }
  REQUIRE(!res.layer_reuse.empty());
  const std::string tb_res = host_hls(t, want, res);
  MESSAGE(t.name << " HLS test bench, resource strategy: " << tb_res);
  CHECK(tb_res == std::to_string(n) + " samples, 0 mismatches\n");
}

// An encoder with a VAE latent and the anomaly score sum(mu^2) (AXOL1TL's), trained with HGQ and the KL term
// on synthetic events: 12 features, the score regressed on the squared norm of the first three.
Trained vae_model() {
  Trained t;
  t.name = "vae_score";
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.f, 1.f);
  auto make = [&](int64_t n) {
    data::Dataset d;
    d.x = Tensor({n, 12}), d.targets = Tensor({n, 1});
    for (int64_t r = 0; r < n; ++r) {
      for (int64_t j = 0; j < 12; ++j) d.x[r * 12 + j] = normal(rng);
      for (int64_t j = 0; j < 3; ++j) d.targets[r] += d.x[r * 12 + j] * d.x[r * 12 + j] / 3.f;
    }
    return d;
  };
  data::Dataset train = make(800), test = make(200);
  t.model = nn::Model::from_yaml(kVaeScoreModel, {12}, 21);
  const double corr = fit_score_model(t, kVaeScoreHgq, "mse", 40, train, test);
  CHECK(corr > 0.5);    // it learned the score through the sampled latent
  t.test_raw = test.x;  // no standardisation
  return t;
}

}  // namespace

TEST_CASE("dense MLP (HGQ, digits): generated C == generated HLS == deployed model on the whole test split") {
  Trained t = dense_model();
  check_model(t);
}

TEST_CASE("dense MLP at hls4ml's default precision: accumulators wider than 32 bits export (as int64)") {
  // ap_fixed<16,6> inputs and weights: products on 2^-20; 300 of them reach 2^38 on that grid.
  auto m = nn::Model::from_yaml("layers: [{type: dense, name: wide, units: 4}]", {300}, 1);
  Tensor& w = m->layers()[0]->param("weight")->var.value();
  for (int64_t j = 0; j < w.size(); ++j) w[j] = j % 2 ? 20.f : -20.f;  // codes of 2^14.3 on 2^-10
  compress::QuantizedModel qm(
      *m, hgq_options("use_high_granularity_quantization: false\ndefault_integer_bits: 5\n"
                      "default_fractional_bits: 10\ndefault_data_integer_bits: 5\n"
                      "default_data_fractional_bits: 10\n"));
  compress::DeployedModel d = compress::DeployedModel::freeze(*m, qm);
  codegen::Program p = codegen::prepare(d, "wide");
  CHECK(codegen::signed_bits(p.out().min(), p.out().max()) > 32);
  codegen::CFiles f = codegen::emit_c(p);
  CHECK(f.header.find("int64_t") != std::string::npos);
}

TEST_CASE(
    "Conv1D + max, average and global average pooling model (HGQ): generated C == generated HLS == deployed "
    "model on the whole test split") {
  Trained t = conv1d_model();
  check_model(t);
}

TEST_CASE(
    "Conv2D + BatchNorm + DepthwiseConv2D + pooling CNN (HGQ, digits): generated C == generated HLS == "
    "deployed model") {
  Trained t = cnn_model();
  check_model(t);
}

TEST_CASE(
    "hard tanh, sigmoid table and softmax (HGQ, digits): generated C == generated HLS == deployed model") {
  Trained t = lut_model(false);
  check_model(t);
}

TEST_CASE("tanh table (use_real_tanh): generated C == generated HLS == deployed model") {
  Trained t = lut_model(true);
  check_model(t);
}

TEST_CASE(
    "attention (Q K^T, the scaled softmax table, P V) on digits: generated C == generated HLS == deployed "
    "model") {
  Trained t = attention_model();
  check_model(t);
}

TEST_CASE(
    "residual blocks, nested, and an unfolded BatchNorm (HGQ, digits): generated C == generated HLS == "
    "deployed model") {
  Trained t = residual_model();
  check_model(t);
}

TEST_CASE(
    "pruned (structured PDP) + HGQ CNN (digits): generated C == generated HLS == deployed model; only the "
    "remaining multiplications count") {
  Trained t = pruned_model();
  REQUIRE(t.pruner);
  CHECK(t.pruner->stage() == compress::Pruner::kFinal);
  check_model(t);
  // Every multiplication by a pruned weight is gone from the program the generators emit and the report
  // counts: a MAC layer's nonzero weights are at most what the pruner kept (HGQ may zero more).
  std::map<std::string, int64_t> kept, units, kept_units;
  for (const auto& s : t.pruner->layer_stats())
    kept[s.layer] = s.kept, units[s.layer] = s.units, kept_units[s.layer] = s.kept_units;
  int64_t checked = 0, weights = 0, nonzero = 0;
  for (const codegen::Op& op : t.program.ops) {
    if (op.kind != codegen::Op::kDense && op.kind != codegen::Op::kConv) continue;
    REQUIRE(kept.count(op.name));
    CHECK(op.nonzero() <= kept[op.name]);
    weights += static_cast<int64_t>(op.weights.size()), nonzero += op.nonzero();
    ++checked;
  }
  CHECK(checked == 3);
  MESSAGE("pruned: " << nonzero << " of " << weights << " weights multiply; conv keeps " << kept_units["conv"]
                     << " of " << units["conv"] << " channels, fc " << kept_units["fc"] << " of "
                     << units["fc"] << " neurons");
  CHECK(kept_units["conv"] == 4);
  CHECK(kept_units["fc"] == 8);
  CHECK(nonzero * 2 < weights);  // half the channels and neurons, and the inputs they fed
}

TEST_CASE("reuse factors are validated as hls4ml does; an invalid one names the valid choices") {
  CHECK(codegen::valid_reuse_factors(4, 3) == std::vector<int64_t>{1, 2, 4, 12});
  CHECK(codegen::valid_reuse_factor(16, 64, 16));
  CHECK_FALSE(codegen::valid_reuse_factor(16, 64, 5));
  CHECK_FALSE(codegen::valid_reuse_factor(16, 64, 0));
  Trained t = dense_model();
  codegen::HlsOptions o;
  o.reuse_factor = 7;
  std::string msg = error_of([&] { codegen::emit_hls(t.program, o); });
  CHECK(msg.find("reuse factor 7 is not valid") != std::string::npos);
  CHECK(msg.find("valid: 1, 2, 4, 8") != std::string::npos);
  o.reuse_factor = 2;
  auto files = codegen::emit_hls(t.program, o);
  CHECK(files.at("firmware/parameters.h").find("reuse_factor = 2;") != std::string::npos);
}

TEST_CASE(
    "VAE encoder with the anomaly score sum(mu^2) (HGQ, KL term): generated C == generated HLS == deployed "
    "model; z = mu is a slice, the score an exact sum of squares") {
  Trained t = vae_model();
  int slices = 0, scores = 0;
  for (const codegen::Op& op : t.program.ops)
    slices += op.kind == codegen::Op::kSlice, scores += op.kind == codegen::Op::kSumSquares;
  CHECK((slices == 1 && scores == 1));
  CHECK(t.program.out().size == 1);
  check_model(t, false);
}
