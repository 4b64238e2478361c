#include "engine/data/gzfile.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "engine/data/util.h"

namespace kiln::data {

namespace {
// Closes the gzFile on every path out of read_file, including exceptions.
struct GzCloser {
  gzFile f;
  ~GzCloser() {
    if (f) gzclose(f);
  }
};
}  // namespace

std::string read_file(const std::string& path) {
  const std::string quoted = "'" + path + "'";
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) detail::fail("cannot open " + quoted + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
    std::string why = S_ISDIR(st.st_mode) ? "is a directory" : std::strerror(errno);
    ::close(fd);
    detail::fail("cannot open " + quoted + ": " + why);
  }
  gzFile f = gzdopen(fd, "rb");
  if (!f) {
    ::close(fd);
    detail::fail("cannot open " + quoted + ": out of memory in zlib");
  }
  GzCloser closer{f};
  // 1 MiB buffers for big files; a small file gets small ones (zlib allocates three times this size).
  gzbuffer(f, static_cast<unsigned>(std::clamp<off_t>(st.st_size, 1 << 14, 1 << 20)));

  std::string out;
  // A plain file's size is a good first guess; a gzip file grows the buffer geometrically.
  size_t capacity = st.st_size > 0 ? static_cast<size_t>(st.st_size) + 1 : (1 << 16);
  out.resize(capacity);
  size_t used = 0;
  for (;;) {
    if (used == out.size()) out.resize(out.size() * 2);
    size_t want = out.size() - used;
    if (want > (1u << 30)) want = 1u << 30;
    int got = gzread(f, &out[used], static_cast<unsigned>(want));
    if (got < 0) break;  // error: reported below
    if (got == 0) break;
    used += static_cast<size_t>(got);
  }
  int err = Z_OK;
  std::string msg = gzerror(f, &err);
  if (msg.rfind("<fd:", 0) == 0 && msg.find(": ") != std::string::npos) msg.erase(0, msg.find(": ") + 2);
  if (err == Z_ERRNO) detail::fail("cannot read " + quoted + ": " + std::strerror(errno));
  if (err == Z_BUF_ERROR) detail::fail(path + ": truncated gzip data (" + msg + ")");
  if (err != Z_OK) detail::fail(path + ": corrupt gzip data (" + msg + ")");
  out.resize(used);
  return out;
}

}  // namespace kiln::data
