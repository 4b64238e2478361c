// Test helpers for files and input errors: a temporary directory per test case, whole-file reads, the
// InputError message of a call, and CHECK_INPUT_ERROR.
#pragma once
#include <doctest/doctest.h>
#include <unistd.h>
#include <zlib.h>

#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <random>
#include <string>
#include <system_error>
#include <vector>

#include "engine/check.h"

namespace kiln::testing {

// A fresh directory per test case (tests run in parallel), named from the pid and a random number and
// removed with everything in it when the TempDir goes out of scope.
struct TempDir {
  std::filesystem::path dir;
  TempDir() {
    std::random_device rd;
    dir = std::filesystem::temp_directory_path() /
          ("kiln_test_" + std::to_string(::getpid()) + "_" + std::to_string(rd()));
    std::filesystem::create_directories(dir);
  }
  ~TempDir() {
    std::error_code ec;
    if (!std::getenv("KILN_KEEP_TMP")) std::filesystem::remove_all(dir, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  // The path of a file named name in the directory (not created).
  std::string path(const std::string& name) const { return (dir / name).string(); }
  // Writes bytes to the file named name and returns its path.
  std::string write(const std::string& name, const std::string& bytes) const {
    std::string p = path(name);
    std::ofstream(p, std::ios::binary) << bytes;
    return p;
  }
  // Writes bytes gzip-compressed to the file named name and returns its path.
  std::string write_gz(const std::string& name, const std::string& bytes) const {
    std::string p = path(name);
    gzFile f = gzopen(p.c_str(), "wb");
    REQUIRE(f != nullptr);
    REQUIRE(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) == static_cast<int>(bytes.size()));
    REQUIRE(gzclose(f) == Z_OK);
    return p;
  }
};

// The bytes of the file at path, as stored (no decompression); empty if it cannot be read.
inline std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The InputError message thrown by f, or a marker that fails the substring checks.
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("<not an InputError> ") + e.what();
  }
  return "<no exception>";
}

// The message of whatever std::exception f throws, "" when it throws nothing.
inline std::string what_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace kiln::testing

// Checks that expr throws InputError with a one-line message containing every given substring.
#define CHECK_INPUT_ERROR(expr, ...)                                           \
  do {                                                                         \
    const std::string msg_ = ::kiln::testing::error_of([&] { (void)(expr); }); \
    INFO("message: ", msg_);                                                   \
    for (const std::string& part : std::vector<std::string>{__VA_ARGS__})      \
      CHECK_MESSAGE(msg_.find(part) != std::string::npos, "missing: ", part);  \
    CHECK(msg_.find('\n') == std::string::npos);                               \
    CHECK(msg_.rfind("<not an InputError>", 0) != 0);                          \
    CHECK(msg_ != "<no exception>");                                           \
  } while (0)
