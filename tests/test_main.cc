// doctest's main, with the engine on one thread: tests are deterministic, and OpenMP's spinning barriers
// cannot thrash when another process holds a core (CI machines are shared).
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <omp.h>

#include <Eigen/Core>

int main(int argc, char** argv) {
  omp_set_num_threads(1);
  Eigen::setNbThreads(1);
  return doctest::Context(argc, argv).run();
}
