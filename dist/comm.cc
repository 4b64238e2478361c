#include "dist/comm.h"

#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#if KILN_WITH_MPI
#include <mpi/mpi.h>
#endif

namespace kiln::dist {

namespace {

// A launcher's environment: Open MPI's mpirun, MPICH/Intel's mpiexec (PMI), PMIx (Slurm's srun --mpi=pmix).
bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "PMI_RANK"})
    if (const char* s = std::getenv(v); s && *s) return true;
  return false;
}

#if KILN_WITH_MPI
bool g_mpi = false;  // MPI_Init was called (and MPI_Finalize is due at exit)

void finalize_at_exit() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

void check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  throw std::runtime_error(std::string("MPI ") + what + " failed: " + std::string(msg, len));
}
#endif

}  // namespace

struct CommAccess {
  static Comm& instance() {
    static Comm c;
    return c;
  }
};

bool built_with_mpi() { return KILN_WITH_MPI; }

Comm* world_or_report(int* argc, char*** argv, const char* tool) {
  try {
    return &Comm::world(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: error: %s\n", tool, e.what());
    return nullptr;
  }
}

Comm& Comm::world() { return CommAccess::instance(); }

Comm& Comm::world(int* argc, char*** argv) {
  Comm& c = CommAccess::instance();
  static bool done = false;
  if (done) return c;
  done = true;
#if KILN_WITH_MPI
  if (launched_by_mpi()) {
    int provided = 0;
    MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
    g_mpi = true;
    std::atexit(finalize_at_exit);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &c.rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &c.size_);
    char version[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(version, &len);
    std::string v(version, len);
    c.backend_ = v.substr(0, v.find(','));
  } else {
    c.backend_ = "one process (not started by an MPI launcher)";
  }
#else
  (void)argc, (void)argv;
  if (launched_by_mpi())
    throw std::runtime_error(
        "this kiln was built without MPI (--define mpi=off) but was started by an MPI launcher; rebuild "
        "without --define mpi=off");
  c.backend_ = "one process (built without MPI)";
#endif
  return c;
}

void Comm::send(int dest, int tag, const std::string& bytes) {
  sent_ += static_cast<long long>(bytes.size());
  if (size_ == 1) {
    if (dest != 0) throw std::runtime_error("send to rank " + std::to_string(dest) + " of a single rank");
    self_queue_.push_back({tag, bytes});
    return;
  }
#if KILN_WITH_MPI
  check(MPI_Send(bytes.data(), static_cast<int>(bytes.size()), MPI_BYTE, dest, tag, MPI_COMM_WORLD), "send");
#endif
}

bool Comm::probe(int source, int tag, int* from, int* tag_out) {
  if (size_ == 1) {
    for (const auto& [t, b] : self_queue_)
      if (tag == kAnyTag || t == tag) {
        if (from) *from = 0;
        if (tag_out) *tag_out = t;
        return true;
      }
    return false;
  }
#if KILN_WITH_MPI
  int flag = 0;
  MPI_Status st;
  check(MPI_Iprobe(source == kAnySource ? MPI_ANY_SOURCE : source, tag == kAnyTag ? MPI_ANY_TAG : tag,
                   MPI_COMM_WORLD, &flag, &st),
        "probe");
  if (flag) {
    if (from) *from = st.MPI_SOURCE;
    if (tag_out) *tag_out = st.MPI_TAG;
  }
  return flag != 0;
#else
  (void)source;
  return false;
#endif
}

std::string Comm::recv(int source, int tag, int* from, int* tag_out) {
  if (size_ == 1) {
    for (size_t i = 0; i < self_queue_.size(); ++i)
      if (tag == kAnyTag || self_queue_[i].first == tag) {
        std::string b = std::move(self_queue_[i].second);
        if (from) *from = 0;
        if (tag_out) *tag_out = self_queue_[i].first;
        self_queue_.erase(self_queue_.begin() + static_cast<long>(i));
        received_ += static_cast<long long>(b.size());
        return b;
      }
    throw std::runtime_error("recv on a single rank with no message queued (it would wait forever)");
  }
#if KILN_WITH_MPI
  MPI_Status st;
  check(MPI_Probe(source == kAnySource ? MPI_ANY_SOURCE : source, tag == kAnyTag ? MPI_ANY_TAG : tag,
                  MPI_COMM_WORLD, &st),
        "probe");
  int n = 0;
  MPI_Get_count(&st, MPI_BYTE, &n);
  std::string b(static_cast<size_t>(n), '\0');
  check(MPI_Recv(b.data(), n, MPI_BYTE, st.MPI_SOURCE, st.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE),
        "recv");
  if (from) *from = st.MPI_SOURCE;
  if (tag_out) *tag_out = st.MPI_TAG;
  received_ += n;
  return b;
#else
  (void)source;
  return {};
#endif
}

std::vector<std::string> Comm::allgather(const std::string& bytes) {
  if (size_ == 1) return {bytes};
  std::vector<std::string> out(static_cast<size_t>(size_));
#if KILN_WITH_MPI
  int n = static_cast<int>(bytes.size());
  std::vector<int> counts(static_cast<size_t>(size_)), displs(static_cast<size_t>(size_));
  check(MPI_Allgather(&n, 1, MPI_INT, counts.data(), 1, MPI_INT, MPI_COMM_WORLD), "allgather");
  long long total = 0;
  for (int r = 0; r < size_; ++r) {
    displs[static_cast<size_t>(r)] = static_cast<int>(total);
    total += counts[static_cast<size_t>(r)];
  }
  if (total > 2147483647LL) throw std::runtime_error("allgather of more than 2 GiB");
  std::string all(static_cast<size_t>(total), '\0');
  check(MPI_Allgatherv(bytes.data(), n, MPI_BYTE, all.data(), counts.data(), displs.data(), MPI_BYTE,
                       MPI_COMM_WORLD),
        "allgatherv");
  for (int r = 0; r < size_; ++r)
    out[static_cast<size_t>(r)] = all.substr(static_cast<size_t>(displs[static_cast<size_t>(r)]),
                                             static_cast<size_t>(counts[static_cast<size_t>(r)]));
  sent_ += n;
  received_ += total - n;
#endif
  return out;
}

std::string Comm::broadcast(const std::string& bytes, int root) {
  if (size_ == 1) return bytes;
#if KILN_WITH_MPI
  long long n = static_cast<long long>(bytes.size());
  check(MPI_Bcast(&n, 1, MPI_LONG_LONG, root, MPI_COMM_WORLD), "broadcast");
  std::string b = rank_ == root ? bytes : std::string(static_cast<size_t>(n), '\0');
  check(MPI_Bcast(b.data(), static_cast<int>(n), MPI_BYTE, root, MPI_COMM_WORLD), "broadcast");
  (rank_ == root ? sent_ : received_) += n;
  return b;
#else
  (void)root;
  return bytes;
#endif
}

double Comm::max(double v) {
  if (size_ == 1) return v;
#if KILN_WITH_MPI
  double out = v;
  check(MPI_Allreduce(&v, &out, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD), "allreduce");
  return out;
#else
  return v;
#endif
}

void Comm::barrier() {
#if KILN_WITH_MPI
  if (size_ > 1) check(MPI_Barrier(MPI_COMM_WORLD), "barrier");
#endif
}

void Comm::abort(int code) {
#if KILN_WITH_MPI
  if (g_mpi && size_ > 1) MPI_Abort(MPI_COMM_WORLD, code);
#endif
  std::exit(code);
}

}  // namespace kiln::dist
