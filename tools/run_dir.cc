#include "tools/run_dir.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "engine/check.h"

namespace kiln {

namespace fs = std::filesystem;

RunDir::RunDir(std::string dir) : dir_(std::move(dir)) {
  while (dir_.size() > 1 && dir_.back() == '/') dir_.pop_back();
  staging_ = dir_ + ".partial";
  std::error_code ec;
  fs::remove_all(staging_, ec);
  if (!fs::create_directories(staging_, ec) && ec)
    throw InputError("cannot create output directory '" + staging_ + "': " + ec.message());
}

void RunDir::commit() {
  std::error_code ec;
  fs::remove_all(dir_, ec);
  if (ec) throw InputError("cannot replace output directory '" + dir_ + "': " + ec.message());
  fs::rename(staging_, dir_, ec);
  if (ec) throw InputError("cannot move '" + staging_ + "' to '" + dir_ + "': " + ec.message());
}

void RunDir::fail(const std::string& message) {
  std::ofstream out(staging_ + "/error.txt");
  out << message << '\n';
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  if (!out) throw InputError("cannot write '" + path + "': " + std::strerror(errno));
  out << text;
  if (!out) throw InputError("cannot write '" + path + "': " + std::strerror(errno));
}

}  // namespace kiln
