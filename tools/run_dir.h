// The output directory of a run. Files are written into "<dir>.partial" and the directory is renamed
// to "<dir>" only when the run succeeded, so a failed run never leaves a directory that looks complete
// (it leaves "<dir>.partial" with error.txt saying why).
#pragma once
#include <string>

namespace kiln {

class RunDir {
 public:
  explicit RunDir(std::string dir);  // creates "<dir>.partial" (emptied first); InputError if impossible
  std::string path(const std::string& file) const { return staging_ + "/" + file; }
  std::string final_path(const std::string& file) const { return dir_ + "/" + file; }
  void commit();                          // replaces <dir> with the staging directory
  void fail(const std::string& message);  // writes error.txt into the staging directory
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_, staging_;
};

void write_text(const std::string& path, const std::string& text);  // InputError naming the path on failure

}  // namespace kiln
