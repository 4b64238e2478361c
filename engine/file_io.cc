#include "engine/file_io.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "engine/check.h"

namespace kiln {

namespace {

std::string parent_of(const std::string& path) {
  std::string p = std::filesystem::path(path).parent_path().string();
  return p.empty() ? "." : p;
}

// SIGXFSZ (a write past `ulimit -f`) would kill the process; ignored, the write fails with EFBIG instead
// and becomes an error message.
void ignore_sigxfsz() {
  static const bool once = [] {
    std::signal(SIGXFSZ, SIG_IGN);
    return true;
  }();
  (void)once;
}

}  // namespace

void sync_path(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  ignore_sigxfsz();
  const std::string tmp = path + ".tmp";
  auto fail = [&](const std::string& what, int err) {
    ::unlink(tmp.c_str());
    throw InputError("cannot write '" + path + "': " + what + std::strerror(err));
  };
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    int err = errno;
    throw InputError("cannot write '" + path + "': " + std::strerror(err));
  }
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      fail("", err);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 && errno != EINVAL) {
    int err = errno;
    ::close(fd);
    fail("fsync: ", err);
  }
  if (::close(fd) != 0) fail("close: ", errno);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) fail("rename: ", errno);
  sync_path(parent_of(path));
}

}  // namespace kiln
