// A parallel loop over independent tasks that keeps a static schedule's locality and still evens out threads
// of unequal speed.
//
// With schedule(static) each thread gets the same rows in every op of a step, so what one op writes the next
// one reads from the same core's cache. But on a shared host one vCPU often runs slower than the other for a
// while (the host's other load), and every static split then waits for the slower thread: in a 2-thread
// profile of the Fashion-MNIST CNN on an AMD EPYC, one thread spent 19% of the training time waiting for the
// other at the ends of products and pools. schedule(dynamic) evens that out but deals tasks alternately, so
// half of every op's input sits in the other core's cache (reading 512 KB another core wrote took 2.4x as
// long as reading one's own there), and it measured slower.
//
// balanced_for does both: thread i runs the tasks schedule(static) gives it, in order, and a thread that runs
// out takes the last tasks left in another thread's range, one at a time. When the threads keep pace nothing
// moves; when one lags the other takes over the end of its range only. Which thread runs a task never
// changes what it computes, so results are those of the static loop.
#pragma once
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <utility>

namespace kiln::par {

// side(), then f(t) for every t in [0, n), across the OpenMP threads (serially inside a parallel region):
// the first thread runs side() before its tasks, and the others take over what it then has no time for.
// side() is independent serial work, such as a bias gradient summed in row order, that would otherwise
// leave the other threads idle. Neither may throw.
template <class Side, class F>
void balanced_for_with(int64_t n, Side&& side, F&& f) {
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  if (threads <= 1 || n < 1 || n > int64_t{0xffffffff}) {  // past 32 bits a range does not pack
    side();
    for (int64_t t = 0; t < n; ++t) f(t);
    return;
  }
  // One range [front, back) per thread, packed in one word so that the owner (taking the front) and a
  // thief (taking the back) agree through a single compare-and-swap; a cache line each.
  struct alignas(64) Range {
    std::atomic<uint64_t> v;
  };
  const auto pack = [](uint64_t front, uint64_t back) { return front << 32 | back; };
  std::unique_ptr<Range[]> ranges(new Range[static_cast<size_t>(threads)]);
  const int64_t q = n / threads, rem = n % threads;  // schedule(static)'s split: the first rem get one more
  for (int i = 0; i < threads; ++i) {
    const int64_t lo = i * q + std::min<int64_t>(i, rem), hi = lo + q + (i < rem ? 1 : 0);
    ranges[static_cast<size_t>(i)].v.store(pack(static_cast<uint64_t>(lo), static_cast<uint64_t>(hi)),
                                           std::memory_order_relaxed);
  }
  // Takes one task of range r (the front when own, else the back); -1 when the range is empty.
  const auto take = [&](int r, bool own) -> int64_t {
    std::atomic<uint64_t>& v = ranges[static_cast<size_t>(r)].v;
    uint64_t cur = v.load(std::memory_order_relaxed);
    for (;;) {
      const uint64_t front = cur >> 32, back = cur & 0xffffffffu;
      if (front >= back) return -1;
      const uint64_t next = own ? pack(front + 1, back) : pack(front, back - 1);
      if (v.compare_exchange_weak(cur, next, std::memory_order_acq_rel, std::memory_order_relaxed))
        return static_cast<int64_t>(own ? front : back - 1);
    }
  };
#pragma omp parallel num_threads(threads)
  {
    // A team smaller than asked for leaves ranges without an owner: the others take them as thieves.
    const int me = omp_get_thread_num();
    if (me == 0) side();
    for (int64_t t; (t = take(me, true)) >= 0;) f(t);
    for (int k = 1; k < threads; ++k)
      for (int64_t t; (t = take((me + k) % threads, false)) >= 0;) f(t);
  }
}

// f(t) for every t in [0, n), as above without the side work.
template <class F>
void balanced_for(int64_t n, F&& f) {
  if (n == 1) return f(int64_t{0});  // no team for a single task
  balanced_for_with(
      n, [] {}, std::forward<F>(f));
}

}  // namespace kiln::par
