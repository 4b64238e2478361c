// Crash-safe file writes: a reader, a kill or a power cut sees the old file or the new one, never half of
// one. Used for checkpoints and every file of a run directory.
//
//   write_file_atomic("runs/x.partial/model.ckpt", bytes);  // x.ckpt.tmp, write, fsync, rename, fsync dir
#pragma once
#include <string>

namespace kiln {

// InputError naming the path and the system's reason on failure (no space, file too large, read-only
// directory); the file at `path` is then unchanged and the temporary file removed.
void write_file_atomic(const std::string& path, const std::string& bytes);
// fsync of a file or a directory (a directory: so that renames inside it are durable). Errors ignored:
// some file systems cannot sync directories, and nothing is lost by trying.
void sync_path(const std::string& path);

}  // namespace kiln
