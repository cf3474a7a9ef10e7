#include "runtime/threads.hpp"

#include <atomic>

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace rs {
namespace {

int initial_threads() {
#if defined(_OPENMP)
  return omp_get_max_threads();
#else
  return 1;
#endif
}

std::atomic<int> g_threads{initial_threads()};

}  // namespace

bool openmp_enabled() {
#if defined(_OPENMP)
  return true;
#else
  return false;
#endif
}

int num_threads() { return g_threads.load(std::memory_order_relaxed); }

void set_num_threads(int n) {
#if defined(_OPENMP)
  g_threads.store(n, std::memory_order_relaxed);
#else
  (void)n;
#endif
}

}  // namespace rs
