// The generated C on an emulated Cortex-M4: built with arm-none-eabi-gcc -mcpu=cortex-m4 and run under
// qemu-system-arm (mps2-an386, semihosting), it gives the same outputs as the host build and as the deployed
// model for 100 test samples, for a jet-style MLP and a CNN; and the exporter's flash and RAM figures agree
// with arm-none-eabi-size (RAM exactly, flash within 10%).
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
  CHECK(std::abs(margin) < 0.10);
  // The whole program under QEMU.
  const std::string mcu = std::filesystem::absolute("codegen/mcu").string();
  sh(arm + "-ffunction-sections -fdata-sections --specs=nano.specs --specs=rdimon.specs -nostartfiles -T " +
         mcu + "/mps2.ld -Wl,--gc-sections -I" + dir.dir.string() + " " + mcu + "/startup.c " + c + " " +
         dir.path("main.c") + " -o " + dir.path("t.elf"),
     dir);
  // stdin from /dev/null: QEMU's semihosting console would otherwise read the terminal, and a process that
  // reads a terminal from the background is stopped (SIGTTIN) until the test's timeout. -k: KILL if TERM
  // does not end it (a stopped process ignores TERM), well inside the target's 300 s.
  std::vector<int64_t> m4 =
      parse_codes(sh("timeout -k 5 100 qemu-system-arm -M mps2-an386 -nographic -monitor none "
                     "-serial none -semihosting-config enable=on,target=native -kernel " +
                         dir.path("t.elf") + " < /dev/null",
                     dir));
  // The deployed model on the same (first kSamples) samples.
  std::vector<int64_t> want = deployed_codes(t, t.test_std);
  want.resize(static_cast<size_t>(kSamples * t.program.out().size));
  REQUIRE(host.size() == static_cast<size_t>(kSamples * t.program.out().size));
  CHECK(host == want);
  CHECK(m4 == host);
}

}  // namespace

TEST_CASE("jet-style MLP: Cortex-M4 (QEMU) == host == deployed model on 100 samples") {
  check_on_m4(dense_model());
}

TEST_CASE("CNN (Conv2D + BatchNorm + DepthwiseConv2D + pooling): Cortex-M4 (QEMU) == host == deployed") {
  check_on_m4(cnn_model());
}

TEST_CASE(
    "transformer (positional embedding, LayerNorm, attention, gelu table): Cortex-M4 (QEMU) == host == "
    "deployed") {
  check_on_m4(attention_model());
}
