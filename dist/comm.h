// The ranks of a distributed run: MPI when kiln is built with it (the default; `--define mpi=off` builds
// without) and the process was started by an MPI launcher (mpirun, mpiexec, Slurm's srun); otherwise one
// rank, so every command that uses Comm also runs as a plain process.
//
//   dist::Comm& comm = dist::Comm::world(&argc, &argv);  // once, first thing in main
//   if (comm.rank() == 0) comm.send(1, kTagWork, bytes);  // messages are byte strings (JSON, cereal)
//   std::string m = comm.recv(dist::kAnySource, kTagWork, &from);
//
// Only the main thread calls Comm (MPI_THREAD_FUNNELED): OpenMP threads inside a rank never do. MPI is
// finalized at exit; Comm::abort() ends every rank (a rank that throws must not leave the others waiting).
#pragma once
#include <string>
#include <vector>

namespace kiln::dist {

constexpr int kAnySource = -1;
constexpr int kAnyTag = -1;

class Comm {
 public:
  // The process's communicator; MPI_Init on the first call when launched by an MPI launcher.
  static Comm& world(int* argc, char*** argv);
  static Comm& world();  // after world(argc, argv); a single rank if that was never called

  int rank() const { return rank_; }
  int size() const { return size_; }
  bool distributed() const { return size_ > 1; }
  // "Open MPI 4.1.4" or "no MPI (built with --define mpi=off)" or "MPI, not launched by mpirun".
  const std::string& backend() const { return backend_; }

  // Point-to-point, blocking, in order between two ranks. A single rank may send to itself (queued).
  void send(int dest, int tag, const std::string& bytes);
  std::string recv(int source, int tag, int* from = nullptr, int* tag_out = nullptr);
  // Whether a message is waiting (without receiving it); source/tag of the first one.
  bool probe(int source, int tag, int* from = nullptr, int* tag_out = nullptr);

  // Collectives: every rank calls them in the same order.
  std::vector<std::string> allgather(const std::string& bytes);  // [rank] -> that rank's bytes
  std::string broadcast(const std::string& bytes, int root);     // root's bytes on every rank
  double max(double v);                                          // the maximum over ranks
  void barrier();

  [[noreturn]] void abort(int code);

  // Bytes sent and received by this rank so far (scaling reports).
  long long bytes_sent() const { return sent_; }
  long long bytes_received() const { return received_; }

 private:
  Comm() = default;
  int rank_ = 0, size_ = 1;
  std::string backend_;
  long long sent_ = 0, received_ = 0;
  std::vector<std::pair<int, std::string>> self_queue_;  // a single rank's messages to itself
  friend struct CommAccess;
};

// Whether this binary was built with MPI.
bool built_with_mpi();

// Comm::world(argc, argv) for a command's main: on failure (e.g. a build without MPI started by mpirun)
// prints "TOOL: error: ..." as one line and returns null, and main returns 1.
Comm* world_or_report(int* argc, char*** argv, const char* tool);

}  // namespace kiln::dist
