#include "runtime/threads.hpp"

#include <algorithm>
#include <atomic>

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace rs {
namespace {

int requested_threads() {
#if defined(_OPENMP)
  return omp_get_max_threads();
#else
  return 1;
#endif
}

std::atomic<int> g_threads{std::min(requested_threads(), available_processors())};

}  // namespace

bool openmp_enabled() {
#if defined(_OPENMP)
  return true;
#else
  return false;
#endif
}

int available_processors() {
#if defined(_OPENMP)
  // libgomp counts the processors of this process's affinity mask.
  return std::max(1, omp_get_num_procs());
#else
  return 1;
#endif
}

int requested_threads_at_start() {
  static const int requested = requested_threads();
  return requested;
}

namespace {
// A calling thread's own count, 0: none (see set_threads_for_this_thread).
thread_local int t_threads_for_this_thread = 0;
}  // namespace

int num_threads() {
  const int own = t_threads_for_this_thread;
  return own > 0 ? own : g_threads.load(std::memory_order_relaxed);
}

int set_threads_for_this_thread(int n) {
  const int applied = n > 0 ? std::min(n, available_processors()) : 0;
  t_threads_for_this_thread = applied;
  return applied;
}

int set_num_threads(int n) {
  const int applied = std::min(n, available_processors());
  g_threads.store(applied, std::memory_order_relaxed);
  return applied;
}

}  // namespace rs
