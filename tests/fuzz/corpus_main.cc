// corpus_test: replays every file of tests/corpus/<target>/ (seeds and regression inputs) through the
// entry point of each fuzz target, in the normal build and without libFuzzer, so that `bazel test //...`
// runs them all. tests/fuzz/BUILD compiles each target's LLVMFuzzerTestOneInput as kiln_fuzz_<target>.
//
//   corpus_test [CORPUS_DIR]     (default tests/corpus, as in the Bazel runfiles)
//
// A target signals a failure by throwing anything but InputError/ShapeError (or by crashing); this prints
// the target, the file and the message, and the test fails. Every target needs a corpus directory, and
// every corpus directory a target.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#define KILN_FUZZ_TARGETS(X) \
  X(csv)                     \
  X(idx)                     \
  X(npy)                     \
  X(config)                  \
  X(quantization)            \
  X(checkpoint)              \
  X(symreg_data)             \
  X(symreg_ops)

#define KILN_DECLARE(name) extern "C" int kiln_fuzz_##name(const uint8_t* data, size_t size);
KILN_FUZZ_TARGETS(KILN_DECLARE)
#undef KILN_DECLARE

namespace {

namespace fs = std::filesystem;

struct Target {
  const char* name;
  int (*fn)(const uint8_t*, size_t);
};

#define KILN_ENTRY(name) {#name, kiln_fuzz_##name},
const Target kTargets[] = {KILN_FUZZ_TARGETS(KILN_ENTRY)};
#undef KILN_ENTRY

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

int main(int argc, char** argv) {
  const fs::path root = argc > 1 ? argv[1] : "tests/corpus";
  int inputs = 0, failures = 0;
  std::set<std::string> names;
  for (const Target& t : kTargets) {
    names.insert(t.name);
    const fs::path dir = root / t.name;
    std::vector<fs::path> files;
    if (fs::is_directory(dir))
      for (const auto& e : fs::directory_iterator(dir))
        if (e.is_regular_file()) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    if (files.empty()) {
      std::fprintf(stderr, "FAIL %s: no inputs in %s\n", t.name, dir.c_str());
      ++failures;
    }
    for (const fs::path& f : files) {
      const std::string bytes = read_bytes(f);
      ++inputs;
      try {
        t.fn(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
      } catch (const std::exception& e) {
        std::fprintf(stderr, "FAIL %s/%s: %s\n", t.name, f.filename().c_str(), e.what());
        ++failures;
      } catch (...) {
        std::fprintf(stderr, "FAIL %s/%s: an exception that is not a std::exception\n", t.name,
                     f.filename().c_str());
        ++failures;
      }
    }
  }
  if (fs::is_directory(root))
    for (const auto& e : fs::directory_iterator(root))
      if (e.is_directory() && !names.count(e.path().filename().string())) {
        std::fprintf(stderr, "FAIL %s: a corpus directory without a fuzz target\n", e.path().c_str());
        ++failures;
      }
  std::printf("corpus_test: %d inputs replayed through %zu targets, %d failures\n", inputs,
              std::size(kTargets), failures);
  return failures ? 1 : 0;
}
