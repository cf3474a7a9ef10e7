#include "runtime/threads.hpp"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <thread>

namespace rs {
namespace {

#if defined(__linux__)
struct CpusAtLoad {
  cpu_set_t mask;
  bool known;
};

CpusAtLoad cpus_of_this_thread() {
  CpusAtLoad cpus{};
  cpus.known = sched_getaffinity(0, sizeof(cpus.mask), &cpus.mask) == 0;
  return cpus;
}

// Initialised while the module loads, before g_threads below, whose initialiser
// counts it.
const CpusAtLoad g_cpus_at_load = cpus_of_this_thread();
#endif

// OMP_NUM_THREADS, the variable users already set for every threaded numerical
// library: its first entry when that is a positive integer ("4", " 4 " or "4,2");
// 0 when it is unset or blank, -1 when it holds something else.
int threads_from_environment() {
  const char* value = std::getenv("OMP_NUM_THREADS");
  if (value == nullptr) return 0;
  char* end = nullptr;
  const long n = std::strtol(value, &end, 10);
  const bool no_digits = end == value;
  while (*end == ' ' || *end == '\t') ++end;
  if (no_digits) return *end == '\0' ? 0 : -1;
  if ((*end != '\0' && *end != ',') || n < 1) return -1;
  return static_cast<int>(std::min<long>(n, 1L << 20));
}

const int g_threads_from_environment = threads_from_environment();

int requested_threads() {
  return g_threads_from_environment > 0 ? g_threads_from_environment : available_processors();
}

// Read once, at load, so that the start value and requested_threads_at_start agree.
const int g_requested_at_load = requested_threads();
std::atomic<int> g_threads{std::min(g_requested_at_load, available_processors())};

}  // namespace

int available_processors() {
#if defined(__linux__)
  if (g_cpus_at_load.known) return std::max(1, CPU_COUNT(&g_cpus_at_load.mask));
#endif
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

void allow_available_processors(std::thread& thread) {
#if defined(__linux__)
  if (g_cpus_at_load.known)
    pthread_setaffinity_np(thread.native_handle(), sizeof(g_cpus_at_load.mask),
                           &g_cpus_at_load.mask);
#else
  (void)thread;
#endif
}

int requested_threads_at_start() { return g_requested_at_load; }

bool thread_count_from_environment_ignored() { return g_threads_from_environment < 0; }

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
