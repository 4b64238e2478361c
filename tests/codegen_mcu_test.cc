// The generated C on an emulated Cortex-M4: built with arm-none-eabi-gcc -mcpu=cortex-m4 and run under
// qemu-system-arm (mps2-an386, semihosting), it gives the same outputs as the host build and as the deployed
// model for 100 test samples (with the SMLAD path and, built with -DNAME_NO_DSP, the portable loops), for a
// jet-style MLP, a CNN, a transformer and the two trigger anomaly detectors (an AXOL1TL-style VAE encoder
// score and a CICADA-style regression student); and the exporter's flash and RAM figures agree with
// arm-none-eabi-size (RAM exactly, flash within 10%, or 400 B on the ~2 kB anomaly models).
#include <random>

#include "tests/codegen_harness.h"

using namespace kiln;
using namespace kiln::testing;

namespace {

constexpr int64_t kSamples = 100;

void check_on_m4(const Trained& t) {
  TempDir dir;
  codegen::CFiles f = codegen::emit_c(t.program);
  const std::string c = dir.path(t.name + ".c");
  write_file(dir.path(t.name + ".h"), f.header);
  write_file(c, f.source);
  write_file(dir.path("main.c"), samples_main(t.name, t.test_raw, kSamples));
  // Host build.
  sh("cc -std=c99 -Wall -Wextra -Werror -pedantic -O2 -o " + dir.path("host") + " " + c + " " +
         dir.path("main.c"),
     dir);
  std::vector<int64_t> host = parse_codes(sh(dir.path("host"), dir));
  // Cortex-M4 object: sizes.
  const std::string arm = "arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16 -O2 ";
  sh(arm + "-std=c99 -Wall -Wextra -Werror -pedantic -c " + c + " -o " + dir.path("model.o"), dir);
  std::istringstream size(sh("arm-none-eabi-size " + dir.path("model.o"), dir));
  std::string header_line;
  std::getline(size, header_line);
  int64_t text = 0, data = 0, bss = 0;
  size >> text >> data >> bss;
  const int64_t flash = f.const_bytes + f.code_bytes;
  const double margin = static_cast<double>(flash - (text + data)) / static_cast<double>(text + data);
  MESSAGE(t.name << ": exporter flash " << flash << " B, RAM " << f.ram_bytes
                 << " B; arm-none-eabi-size text " << text << " data " << data << " bss " << bss
                 << " (flash margin " << 100 * margin << "%)");
  // Run now, not inside INFO: INFO is evaluated lazily, while doctest's reporter holds its lock to log a
  // message, and sh() logging its own MESSAGE there deadlocks.
  const std::string symbols = sh("arm-none-eabi-nm --size-sort -S " + dir.path("model.o"), dir);
  INFO("symbol sizes:\n" << symbols);
  CHECK(bss == f.ram_bytes);
  CHECK(data == 0);
  // The estimate has a fixed part of about 1.1 kB (the requantiser, NAME_run, the float layer: constants in
  // codegen/emit_c.cc); on the ~2.2 kB anomaly models it is 235-320 B high (11-15%). 10% binds from 4 kB up.
  CHECK(std::abs(static_cast<double>(flash - (text + data))) <
        std::max(0.10 * static_cast<double>(text + data), 400.));
  // The whole program under QEMU; `flags` "-DNAME_NO_DSP" builds the portable loops instead of SMLAD.
  const std::string mcu = std::filesystem::absolute("codegen/mcu").string();
  auto run_m4 = [&](const std::string& flags) {
    sh(arm + flags +
           " -ffunction-sections -fdata-sections --specs=nano.specs --specs=rdimon.specs -nostartfiles -T " +
           mcu + "/mps2.ld -Wl,--gc-sections -I" + dir.dir.string() + " " + mcu + "/startup.c " + c + " " +
           dir.path("main.c") + " -o " + dir.path("t.elf"),
       dir);
    // stdin from /dev/null: QEMU's semihosting console would otherwise read the terminal, and a process that
    // reads a terminal from the background is stopped (SIGTTIN) until the test's timeout. -k: KILL if TERM
    // does not end it (a stopped process ignores TERM), well inside the target's 300 s.
    return parse_codes(
        sh("timeout -k 5 100 qemu-system-arm -M mps2-an386 -nographic -monitor none "
           "-serial none -semihosting-config enable=on,target=native -kernel " +
               dir.path("t.elf") + " < /dev/null",
           dir));
  };
  std::vector<int64_t> m4 = run_m4("");
  // A model with an SMLAD layer: the portable build of the same C gives the same codes on the same core.
  if (f.source.find("#if KILN_DSP") != std::string::npos) {
    MESSAGE(t.name << ": SMLAD path against the portable loops (-D" << t.name << "_NO_DSP)");
    CHECK(run_m4("-D" + t.name + "_NO_DSP") == m4);
  }
  // The deployed model on the same (first kSamples) samples.
  std::vector<int64_t> want = deployed_codes(t, t.test_std);
  want.resize(static_cast<size_t>(kSamples * t.program.out().size));
  REQUIRE(host.size() == static_cast<size_t>(kSamples * t.program.out().size));
  CHECK(host == want);
  CHECK(m4 == host);
}

// AXOL1TL-style: an encoder (Dense + ReLU, Dense to 2L = mu and log-variance), the VAE latent (z = mu when
// deployed: a slice) and the score sum(mu^2) (an exact integer sum of squares), trained with HGQ and the KL
// term on synthetic events, standardised as data/ad_vae_hgq.yaml does (the generated C standardises the raw
// features): 12 features of different offsets and spreads, the score regressed on the squared norm of the
// first three, standardised.
Trained axol1tl_model(double* corr) {
  Trained t;
  t.name = "axol1tl";
  std::mt19937 rng(17);
  std::normal_distribution<float> normal(0.f, 1.f);
  auto make = [&](int64_t n) {
    data::Dataset d;
    d.x = Tensor({n, 12}), d.targets = Tensor({n, 1});
    for (int64_t r = 0; r < n; ++r)
      for (int64_t j = 0; j < 12; ++j) {
        const float z = normal(rng);
        d.x[r * 12 + j] = 10.f * static_cast<float>(j % 4) - 5.f + (0.5f + 0.5f * static_cast<float>(j)) * z;
        if (j < 3) d.targets[r] += z * z / 3.f;
      }
    return d;
  };
  data::Dataset train = make(800), test = make(kSamples);
  data::Standardizer st;
  st.fit(train.x);
  t.test_raw = test.x;
  st.apply(train.x), st.apply(test.x);
  t.model = nn::Model::from_yaml(kVaeScoreModel, {12}, 21);
  *corr = fit_score_model(t, kVaeScoreHgq, "mse", 40, train, test);
  t.program.mean = st.mean, t.program.scale = st.scale;
  return t;
}

// CICADA-style: a tiny student on [8, 8, 1] "calorimeter" images (average pooling to 4 x 4 regions, Flatten,
// Dense + ReLU, a Dense score), trained with HGQ and the MAE loss to regress a synthetic anomaly score: the
// log of the image's energy plus the share of it outside the central 4 x 4 (background deposits are central).
Trained cicada_model(double* corr) {
  Trained t;
  t.name = "cicada";
  std::mt19937 rng(29);
  std::normal_distribution<float> noise(0.f, 0.1f);
  std::uniform_int_distribution<int> pos(0, 7), central(2, 5), deposits(1, 4);
  std::exponential_distribution<float> energy(1.f);
  std::bernoulli_distribution anomalous(0.3);
  auto make = [&](int64_t n) {
    data::Dataset d;
    d.x = Tensor({n, 8, 8, 1}), d.targets = Tensor({n, 1});
    for (int64_t r = 0; r < n; ++r) {
      float* img = &d.x[r * 64];
      for (int64_t j = 0; j < 64; ++j) img[j] = noise(rng);
      const bool wide = anomalous(rng);
      for (int k = deposits(rng); k > 0; --k) {
        const int y = wide ? pos(rng) : central(rng), x = wide ? pos(rng) : central(rng);
        img[y * 8 + x] += 1.f + 2.f * energy(rng);
      }
      float total = 0.f, outside = 0.f;
      for (int y = 0; y < 8; ++y)
        for (int x = 0; x < 8; ++x) {
          const float e = std::max(img[y * 8 + x], 0.f);
          total += e, outside += (y < 2 || y > 5 || x < 2 || x > 5) ? e : 0.f;
        }
      d.targets[r] = std::log(1.f + total) + 2.f * outside / (total + 1e-3f);
    }
    return d;
  };
  const data::Dataset train = make(800), test = make(kSamples);
  t.model = nn::Model::from_yaml(R"(
layers:
  - {type: avg_pool2d, pool_size: 2}
  - {type: flatten}
  - {type: dense, name: fc1, units: 16, activation: relu}
  - {type: dense, name: score, units: 1}
)",
                                 {8, 8, 1}, 23);
  *corr = fit_score_model(t,
                          "default_fractional_bits: 6\ndefault_data_integer_bits: 4\n"
                          "default_data_fractional_bits: 4\noverflow_mode_data: SAT\nhgq_beta: 1.0e-6\n",
                          "mae", 20, train, test);
  t.test_raw = t.test_std;  // not standardised, as data/ad_cicada_student_hgq.yaml
  return t;
}

}  // namespace

TEST_CASE("jet-style MLP: Cortex-M4 (QEMU, SMLAD and portable) == host == deployed model on 100 samples") {
  const Trained t = dense_model();
  // Its dense layers are packed with 8-bit weights and 16-bit inputs: the SMLAD path is compiled.
  CHECK(codegen::emit_c(t.program).source.find("__smlad(") != std::string::npos);
  check_on_m4(t);
}

TEST_CASE("CNN (Conv2D + BatchNorm + DepthwiseConv2D + pooling): Cortex-M4 (QEMU) == host == deployed") {
  check_on_m4(cnn_model());
}

TEST_CASE(
    "transformer (positional embedding, LayerNorm, attention, gelu table): Cortex-M4 (QEMU) == host == "
    "deployed") {
  check_on_m4(attention_model());
}

TEST_CASE(
    "AXOL1TL-style VAE encoder score sum(mu^2) (HGQ, KL term): Cortex-M4 (QEMU) == host == deployed on 100 "
    "samples") {
  double corr = 0;
  Trained t = axol1tl_model(&corr);
  CHECK(corr > 0.5);
  int slices = 0, scores = 0;
  for (const codegen::Op& op : t.program.ops)
    slices += op.kind == codegen::Op::kSlice, scores += op.kind == codegen::Op::kSumSquares;
  CHECK((slices == 1 && scores == 1));
  CHECK(t.program.out().size == 1);
  check_on_m4(t);
}

TEST_CASE(
    "CICADA-style student (average pooling, Dense; HGQ, MAE regression): Cortex-M4 (QEMU) == host == "
    "deployed on 100 samples") {
  double corr = 0;
  Trained t = cicada_model(&corr);
  CHECK(corr > 0.5);
  CHECK(t.program.out().size == 1);
  check_on_m4(t);
}
