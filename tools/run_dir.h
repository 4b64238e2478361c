// The output directory of a run, written so that nothing is lost and nothing looks complete too early.
//
//   RunDir rd("runs/digits", "kiln train", overwrite);  // checks DIR before any work; creates DIR.partial
//   write_text(rd.path("metrics.json"), ...);          // files go into DIR.partial/
//   rd.commit();                                       // DIR.partial -> DIR, the earlier run removed last
//
// A complete run holds a marker file, `.kiln-run`, whose first line names the command that wrote it. DIR
// may be replaced only when it is such a run of the same command, and only with `overwrite`; anything else
// at DIR (a user's directory or file, the current directory, another command's run) is refused with a
// message and left untouched. An empty directory counts as nothing. Replacing keeps the earlier run until
// the new one is in place: DIR is renamed to DIR.replaced, DIR.partial to DIR, then DIR.replaced is
// removed; a kill in between leaves DIR.replaced, which the next run of the command puts back or removes.
// A failed run leaves DIR.partial with error.txt (and, for training, its last checkpoint) and no marker.
#pragma once
#include <string>

namespace kiln {

class RunDir {
 public:
  // InputError, naming DIR and what is there, if DIR cannot be (re)placed; creates DIR.partial. An
  // unfinished run of the same command at DIR.partial is removed, or with `keep_unfinished` kept as it is
  // (a command that resumes its own work there, like kiln scan).
  RunDir(std::string dir, std::string command, bool overwrite, bool keep_unfinished = false);
  // The same checks, creating nothing (it may put back an earlier run a killed commit left aside): for a
  // command to fail before its work, not after it.
  static void check(const std::string& dir, const std::string& command, bool overwrite);
  std::string path(const std::string& file) const { return staging_ + "/" + file; }
  const std::string& staging() const { return staging_; }
  const std::string& dir() const { return dir_; }
  void commit();                             // marker, fsync, then the renames above
  void fail(const std::string& message);     // writes error.txt into DIR.partial
  bool resumed() const { return resumed_; }  // keep_unfinished found an unfinished run and kept it

 private:
  std::string dir_, staging_, command_;
  bool overwrite_;
  bool resumed_ = false;
};

// The command that wrote the complete run at `dir` ("kiln train"), or "" if `dir` is not one.
std::string run_command_at(const std::string& dir);

// Writes `text` to `path` through a temporary file, fsync and rename: a reader (or a kill) sees the old
// file or the new one, never half of one. InputError naming the path on failure (disk full, read-only).
void write_text(const std::string& path, const std::string& text);

}  // namespace kiln
