// Helpers shared by the libFuzzer targets of tests/fuzz/ (each *_fuzz.cc is one target).
//
// A target feeds its bytes to one parser of user input. InputError and ShapeError are the expected
// answers to bad input; anything else (InternalError, std::bad_alloc, another exception, a crash, a
// sanitizer report, a hang) escapes the target and libFuzzer reports it. Readers we own must also keep
// their messages one short line: a message that quotes megabytes of the file is a bug too.
//
//   extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
//     std::string path = kiln::fuzz::write_temp("csv", {data, size});
//     kiln::fuzz::expect_rejection([&] { kiln::fuzz::check_dataset(load_csv(opt)); }, path.size());
//     return 0;
//   }
#pragma once
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include "engine/check.h"
#include "engine/data/dataset.h"

namespace kiln::fuzz {

// A message may quote a few values (clipped) and name the files; more means it copies the input.
constexpr size_t kMaxMessage = 1024;

// The temporary directory: Bazel's per-test one, else $TMPDIR, else /tmp.
inline std::string temp_dir() {
  for (const char* var : {"TEST_TMPDIR", "TMPDIR"})
    if (const char* d = std::getenv(var); d && *d) return d;
  return "/tmp";
}

// Writes bytes to a file of this process named by tag and returns its path. The readers take paths,
// so every input goes through a file; the same path is rewritten for each input.
inline std::string write_temp(const std::string& tag, std::string_view bytes) {
  const std::string path = temp_dir() + "/kiln_fuzz_" + std::to_string(::getpid()) + "_" + tag;
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) throw std::runtime_error("fuzz harness: cannot write " + path);
  const size_t written = bytes.empty() ? 0 : std::fwrite(bytes.data(), 1, bytes.size(), f);
  if (std::fclose(f) != 0 || written != bytes.size())
    throw std::runtime_error("fuzz harness: cannot write " + path);
  return path;
}

// Splits "[u16 little-endian length L][L bytes][rest]" into its two parts: the layout of the targets
// that read two files (IDX images + labels, .npy x + y). A short input gives empty parts.
inline std::pair<std::string_view, std::string_view> split2(std::string_view in) {
  if (in.size() < 2) return {{}, {}};
  size_t len = static_cast<unsigned char>(in[0]) | static_cast<size_t>(static_cast<unsigned char>(in[1]))
                                                       << 8;
  in.remove_prefix(2);
  if (len > in.size()) len = in.size();
  return {in.substr(0, len), in.substr(len)};
}

// A failure of the harness's own checks: not an InputError, so it escapes to libFuzzer.
[[noreturn]] inline void violated(const std::string& what) { throw std::logic_error("fuzz check: " + what); }

// Runs f. InputError and ShapeError are expected rejections; with check_message, their message must be
// one line of at most kMaxMessage + allowance characters (allowance: the paths the message may name).
template <class F>
void expect_rejection(F&& f, size_t allowance, bool check_message = true) {
  std::string msg;
  try {
    f();
    return;
  } catch (const InputError& e) {
    msg = e.what();
  } catch (const ShapeError& e) {
    msg = e.what();
  }
  // KILN_FUZZ_VERBOSE=1 prints every rejection: to see why a seed does not get through.
  static const bool verbose = std::getenv("KILN_FUZZ_VERBOSE") != nullptr;
  if (verbose) std::fprintf(stderr, "rejected (%zu chars): %s\n", msg.size(), msg.substr(0, 300).c_str());
  if (!check_message) return;
  if (msg.find('\n') != std::string::npos) violated("a message of more than one line: " + msg.substr(0, 200));
  if (msg.size() > kMaxMessage + allowance)
    violated("a message of " + std::to_string(msg.size()) + " characters: " + msg.substr(0, 200) + "...");
}

// What a loaded dataset promises its users (training, splits, the symreg columns): x is [N, ...] with
// N > 0 and finite values, and either N class labels in [0, classes) or N rows of finite targets.
inline void check_dataset(const data::Dataset& d) {
  const int64_t n = d.size();
  if (n <= 0) violated("a dataset without samples was accepted");
  for (int64_t i = 0; i < d.x.size(); ++i)
    if (!std::isfinite(d.x.data()[i])) violated("a non-finite feature was accepted");
  if (d.labels.empty()) {
    if (d.targets.ndim() != 2 || d.targets.dim(0) != n) violated("targets are not [N, T]");
    for (int64_t i = 0; i < d.targets.size(); ++i)
      if (!std::isfinite(d.targets.data()[i])) violated("a non-finite target was accepted");
    return;
  }
  if (static_cast<int64_t>(d.labels.size()) != n) violated("labels are not [N]");
  const int classes = d.num_classes();
  for (int l : d.labels)
    if (l < 0 || l >= classes)
      violated("label " + std::to_string(l) + " outside [0, " + std::to_string(classes) + ")");
}

}  // namespace kiln::fuzz
