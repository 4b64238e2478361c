#include "tools/run_dir.h"

#include <filesystem>
#include <fstream>

#include "engine/check.h"
#include "engine/file_io.h"

namespace kiln {

namespace fs = std::filesystem;

namespace {

constexpr const char* kDoneMarker = ".kiln-run";         // a complete run
constexpr const char* kPartialMarker = ".kiln-partial";  // a run being written (or one that failed)

std::string first_line(const fs::path& file) {
  std::ifstream in(file);
  std::string line;
  if (in) std::getline(in, line);
  return line;
}

bool is_dir(const std::string& p) {
  std::error_code ec;
  return fs::is_directory(fs::symlink_status(p, ec));
}

bool exists(const std::string& p) {
  std::error_code ec;
  return fs::exists(fs::symlink_status(p, ec));
}

bool empty_dir(const std::string& p) {
  std::error_code ec;
  return is_dir(p) && fs::is_empty(p, ec) && !ec;
}

// Whether `p` is a staging directory of `command` (complete or not). A run killed right after creating it
// may have left it empty, or with only the marker's temporary file: nothing to lose, so it counts.
bool is_staging_of(const std::string& p, const std::string& command) {
  if (!is_dir(p)) return false;
  if (first_line(fs::path(p) / kPartialMarker) == command || first_line(fs::path(p) / kDoneMarker) == command)
    return true;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(p, ec))
    if (e.path().filename() != std::string(kPartialMarker) + ".tmp") return false;
  return !ec;
}

void remove_tree(const std::string& p) {
  std::error_code ec;
  fs::remove_all(p, ec);
  if (ec) throw InputError("cannot remove '" + p + "': " + ec.message());
}

void rename_or_throw(const std::string& from, const std::string& to) {
  std::error_code ec;
  fs::rename(from, to, ec);
  if (ec) throw InputError("cannot move '" + from + "' to '" + to + "': " + ec.message());
}

}  // namespace

std::string run_command_at(const std::string& dir) {
  if (!is_dir(dir)) return "";
  return first_line(fs::path(dir) / kDoneMarker);
}

namespace {

std::string strip_slashes(std::string d) {
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  return d;
}

}  // namespace

void RunDir::check(const std::string& dir_arg, const std::string& command, bool overwrite) {
  const std::string dir = strip_slashes(dir_arg);
  if (dir.empty()) throw InputError("the output directory is empty; give --out DIR");
  // The current directory, one of its parents or "/" can never be replaced by a rename (and holds the
  // user's files): refused before anything else is looked at.
  std::error_code ec;
  const fs::path abs = fs::weakly_canonical(fs::absolute(dir), ec), cwd = fs::current_path(ec);
  const std::string a = abs.string(), c = cwd.string();
  if (abs == abs.root_path() || c == a ||
      (c.size() > a.size() && c.compare(0, a.size(), a) == 0 && c[a.size()] == '/'))
    throw InputError(
        "output directory '" + dir +
        "' is the current directory or one of its parents; give --out a new directory for the run");
  const std::string staging = dir + ".partial", replaced = dir + ".replaced";
  // A kill during an earlier commit left the earlier run at DIR.replaced: put it back, or finish removing
  // it if the new run got in place. (Nothing else here changes anything.)
  if (run_command_at(replaced) == command) {
    if (!exists(dir))
      rename_or_throw(replaced, dir);
    else if (run_command_at(dir) == command)
      remove_tree(replaced);
  }
  if (exists(dir) && !empty_dir(dir)) {
    const std::string there = run_command_at(dir);
    if (there == command) {
      if (!overwrite)
        throw InputError("output directory '" + dir + "' holds an earlier '" + command +
                         "' run; pass --overwrite to replace it (it is kept until the new run is complete) "
                         "or choose another --out");
    } else if (!there.empty()) {
      throw InputError("output directory '" + dir + "' holds a '" + there + "' run, not a '" + command +
                       "' run; choose another --out");
    } else if (is_dir(dir)) {
      throw InputError("output directory '" + dir + "' exists and is not a kiln run (it has no " +
                       kDoneMarker + " marker); kiln never replaces it: choose another --out");
    } else {
      throw InputError("output directory '" + dir +
                       "' exists and is not a directory; kiln never replaces it: choose another --out");
    }
  }
  if (exists(staging) && !is_staging_of(staging, command))
    throw InputError("'" + staging + "' exists and is not an unfinished '" + command +
                     "' run; kiln never replaces it: remove it or choose another --out");
}

RunDir::RunDir(std::string dir, std::string command, bool overwrite, bool keep_unfinished)
    : dir_(strip_slashes(std::move(dir))), command_(std::move(command)), overwrite_(overwrite) {
  check(dir_, command_, overwrite_);
  staging_ = dir_ + ".partial";
  // An unfinished run of this command (check() made sure).
  if (exists(staging_) && keep_unfinished && !empty_dir(staging_))
    resumed_ = true;
  else if (exists(staging_))
    remove_tree(staging_);
  std::error_code ec;
  fs::create_directories(staging_, ec);
  if (ec) throw InputError("cannot create output directory '" + staging_ + "': " + ec.message());
  write_file_atomic((fs::path(staging_) / kPartialMarker).string(), command_ + "\n");
}

void RunDir::commit() {
  write_file_atomic((fs::path(staging_) / kDoneMarker).string(), command_ + "\n");
  std::error_code ec;
  fs::remove(fs::path(staging_) / kPartialMarker, ec);
  sync_path(staging_);
  const std::string replaced = dir_ + ".replaced";
  bool aside = false;
  if (empty_dir(dir_)) {
    fs::remove(dir_, ec);
  } else if (exists(dir_)) {
    // Checked when the run started; checked again, since the run may have taken hours.
    if (run_command_at(dir_) != command_ || !overwrite_)
      throw InputError("output directory '" + dir_ + "' appeared during the run and is not a '" + command_ +
                       "' run to replace; the new run is in '" + staging_ + "'");
    if (exists(replaced)) {
      if (run_command_at(replaced) != command_)
        throw InputError("'" + replaced +
                         "' exists and is not a kiln run; kiln needs that name to replace '" + dir_ +
                         "' safely: remove it yourself; the new run is in '" + staging_ + "'");
      remove_tree(replaced);
    }
    rename_or_throw(dir_, replaced);
    aside = true;
  }
  rename_or_throw(staging_, dir_);
  std::string parent = fs::path(dir_).parent_path().string();
  sync_path(parent.empty() ? "." : parent);
  if (aside) remove_tree(replaced);
}

void RunDir::fail(const std::string& message) {
  std::ofstream out(staging_ + "/error.txt");
  out << message << '\n';
}

void write_text(const std::string& path, const std::string& text) { write_file_atomic(path, text); }

}  // namespace kiln
