// par::balanced_for: every task once, each thread's own range first and in order, a lagging thread's tasks
// taken from the back of its range, side work once on the first thread.
#include "engine/parallel.h"

#include <doctest/doctest.h>
#include <omp.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace {

struct Record {
  std::vector<int> thread;  // who ran task t (-1: nobody)
  std::vector<int> runs;    // how often
  std::vector<int64_t> order;
  std::atomic<int64_t> clock{0};
  std::vector<int64_t> when;  // the order in which tasks started, per task
  explicit Record(int64_t n) : thread(n, -1), runs(n, 0), when(n, -1) {}
  void run(int64_t t) {
    thread[t] = omp_get_thread_num();
    ++runs[t];
    when[t] = clock++;
  }
};

// The range schedule(static) gives thread i of `threads` over n tasks.
std::pair<int64_t, int64_t> static_range(int64_t n, int threads, int i) {
  const int64_t q = n / threads, rem = n % threads;
  const int64_t lo = i * q + std::min<int64_t>(i, rem);
  return {lo, lo + q + (i < rem ? 1 : 0)};
}

// Within each static range the owner ran a prefix, in order, and other threads the rest.
void check_ranges(const Record& r, int64_t n, int threads) {
  for (int i = 0; i < threads; ++i) {
    auto [lo, hi] = static_range(n, threads, i);
    int64_t t = lo;
    for (; t < hi && r.thread[t] == i; ++t)
      if (t > lo) CHECK(r.when[t] > r.when[t - 1]);
    for (; t < hi; ++t) CHECK_MESSAGE(r.thread[t] != i, "task " << t << " of thread " << i << "'s range");
  }
}

struct Threads {
  explicit Threads(int n) { omp_set_num_threads(n); }
  ~Threads() { omp_set_num_threads(1); }
};

}  // namespace

TEST_CASE("balanced_for runs every task once, each thread's own range first") {
  for (int threads : {1, 2, 3, 4}) {
    Threads guard(threads);
    for (int64_t n : {0, 1, 2, 3, 7, 64, 1001}) {
      Record r(n);
      kiln::par::balanced_for(n, [&](int64_t t) { r.run(t); });
      for (int64_t t = 0; t < n; ++t) REQUIRE_MESSAGE(r.runs[t] == 1, "n " << n << " task " << t);
      check_ranges(r, n, threads);
    }
  }
}

TEST_CASE("balanced_for: a lagging thread's last tasks go to the others") {
  Threads guard(2);
  if (omp_get_max_threads() < 2) return;
  const int64_t n = 40;
  Record r(n);
  // Thread 1 stalls in its first task until thread 0, done with its own 20, has taken one of thread 1's
  // (or for at most 2 s, after which the checks below fail).
  std::atomic<bool> taken{false};
  kiln::par::balanced_for(n, [&](int64_t t) {
    r.run(t);
    if (omp_get_thread_num() == 0 && t >= 20) taken = true;
    if (omp_get_thread_num() == 1 && t == 20) {
      const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(2);
      while (!taken && std::chrono::steady_clock::now() < give_up) std::this_thread::yield();
    }
  });
  for (int64_t t = 0; t < n; ++t) REQUIRE(r.runs[t] == 1);
  check_ranges(r, n, 2);
  if (r.thread[20] == 1) {  // thread 1 started its range (else thread 0 ran all of it, also a steal)
    CHECK(taken);
    CHECK(r.thread[n - 1] == 0);  // from the back
  }
}

TEST_CASE("balanced_for_with runs side() once on the first thread, before its tasks") {
  for (int threads : {1, 2, 3}) {
    Threads guard(threads);
    for (int64_t n : {0, 1, 2, 9}) {
      Record r(n);
      std::atomic<int> sides{0};
      int side_thread = -1;
      int64_t side_when = -1;
      kiln::par::balanced_for_with(
          n,
          [&] {
            ++sides;
            side_thread = omp_get_thread_num();
            side_when = r.clock++;
          },
          [&](int64_t t) { r.run(t); });
      CHECK(sides == 1);
      CHECK(side_thread == 0);
      for (int64_t t = 0; t < n; ++t) {
        REQUIRE(r.runs[t] == 1);
        if (r.thread[t] == 0) CHECK(r.when[t] > side_when);
      }
      check_ranges(r, n, threads);
    }
  }
}

TEST_CASE("balanced_for inside a parallel region runs the tasks on the calling thread") {
  Threads guard(2);
  std::vector<int> runs(2 * 10, 0), by(2 * 10, -1);
#pragma omp parallel num_threads(2)
  {
    const int me = omp_get_thread_num();
    kiln::par::balanced_for(10, [&](int64_t t) {
      ++runs[static_cast<size_t>(me * 10 + t)];
      by[static_cast<size_t>(me * 10 + t)] = omp_get_thread_num();
    });
  }
  const int team = omp_get_max_threads() >= 2 ? 2 : 1;
  for (int me = 0; me < team; ++me)
    for (int t = 0; t < 10; ++t) {
      CHECK(runs[static_cast<size_t>(me * 10 + t)] == 1);
      CHECK(by[static_cast<size_t>(me * 10 + t)] == me);
    }
}
