// The frame every kiln command shares. `bazel run` starts a binary in its runfiles tree, so it first moves
// to the user's directory (paths on the command line are relative to it); then flag errors, input errors
// and anything unexpected each end as one line on stderr and exit status 1.
//
//   int main(int argc, char** argv) {
//     CLI::App app{"kiln foo: ..."};
//     ... app.add_option(...) ...
//     return kiln::run_tool("kiln foo", app, argc, argv, [&] { return run(flags); });
//   }
#pragma once
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <string>

#include "engine/check.h"

namespace kiln {

// One printable line of at most 1,000 characters: a message may quote a file's content (a 50 MB line, a
// binary header), which must not flood the terminal or break the one-line contract.
inline std::string one_line(const std::string& message) {
  constexpr size_t kMax = 1000;
  std::string out;
  for (unsigned char c : message) {
    if (out.size() >= kMax) return out + "... (" + std::to_string(message.size()) + " characters)";
    out += c == '\n' || c == '\r' || c == '\t' ? ' ' : (c < 0x20 || c == 0x7f ? '?' : static_cast<char>(c));
  }
  return out;
}

inline int run_tool(const std::string& tool, CLI::App& app, int argc, char** argv,
                    const std::function<int()>& body) {
  if (const char* wd = std::getenv("BUILD_WORKING_DIRECTORY")) {
    if (chdir(wd) != 0) std::cerr << tool << ": warning: cannot enter " << wd << "\n";
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << tool << ": error: " << one_line(e.what()) << " (see --help)\n";
    return 1;
  }
  try {
    return body();
  } catch (const InputError& e) {
    std::cerr << tool << ": error: " << one_line(e.what()) << "\n";
  } catch (const ShapeError& e) {
    std::cerr << tool << ": error: " << one_line(e.what()) << "\n";
  } catch (const std::bad_alloc&) {
    std::cerr << tool << ": error: out of memory (a model, batch or data set too large for this machine?)\n";
  } catch (const std::exception& e) {
    std::cerr << tool << ": internal error: " << one_line(e.what()) << "\n";
  }
  return 1;
}

}  // namespace kiln
