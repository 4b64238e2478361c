#include "tools/spawn.h"

#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "engine/check.h"

namespace kiln {

pid_t spawn_logged(const std::vector<std::string>& args, const std::string& log) {
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) throw InputError("cannot start '" + args.at(0) + "': fork failed");
  if (pid > 0) return pid;
  // The child: only async-signal-safe work until exec, beyond opening the log.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(127);  // the parent died before prctl
  FILE* lf = std::fopen(log.c_str(), "w");
  if (lf) dup2(fileno(lf), 1), dup2(fileno(lf), 2);
  unsetenv("BUILD_WORKING_DIRECTORY");
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  execv(argv[0], argv.data());
  std::fprintf(stderr, "cannot run %s\n", argv[0]);
  _exit(127);
}

std::string last_line(const std::string& path) {
  std::ifstream in(path);
  std::string line, last;
  while (std::getline(in, line))
    if (line.find_first_not_of(" \t\r") != std::string::npos) last = line;
  return last;
}

}  // namespace kiln
