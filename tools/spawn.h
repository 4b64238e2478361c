// Child processes of the commands that run other kiln commands (compare, scan): one training run each, its
// stdout and stderr in a log file, and the log's last line as the run's error when it fails.
#pragma once
#include <sys/types.h>

#include <string>
#include <vector>

namespace kiln {

// Starts args[0] with args, output to `log`, in the current directory (paths are relative to it: the
// child does not move to BUILD_WORKING_DIRECTORY again). The child is killed when this process dies
// (PR_SET_PDEATHSIG): no run outlives a killed compare or scan rank. InputError if fork fails.
pid_t spawn_logged(const std::vector<std::string>& args, const std::string& log);

// The last line of a file that is not blank ("" if none or unreadable).
std::string last_line(const std::string& path);

}  // namespace kiln
