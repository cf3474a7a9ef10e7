#include "bindings/pybind.hpp"
#include "runtime/dispatch.hpp"
#include "runtime/threads.hpp"
#include "runtime/worker_pool.hpp"

#ifndef RELUSCOPE_VERSION
#define RELUSCOPE_VERSION "unknown"
#endif

namespace rs {

void bind_runtime(py::module_& m) {
  m.attr("__version__") = RELUSCOPE_VERSION;
  m.def("compiled_targets", &compiled_targets, "SIMD targets compiled into this build.");
  m.def("supported_targets", &supported_targets, "Compiled targets this CPU can run.");
  m.def("best_target", &best_target, "The best target this CPU can run.");
  m.def("select_target", &select_target, py::arg("name"), "Use the named SIMD target.");
  m.def("selected_target", &selected_target, "The SIMD target in use.");
  m.def("get_num_threads", &num_threads, "Threads each kernel call uses.");
  m.def(
      "set_num_threads",
      [](int n) {
        if (n < 1)
          throw py::value_error("number of threads must be >= 1, got " + std::to_string(n));
        return set_num_threads(n);
      },
      py::arg("n"),
      "Set the threads each kernel call uses, at most available_processors(); returns the "
      "count applied.");
  m.def(
      "set_threads_for_this_thread",
      [](int n) {
        if (n < 0)
          throw py::value_error("number of threads must be >= 0, got " + std::to_string(n));
        return set_threads_for_this_thread(n);
      },
      py::arg("n"),
      "Threads the kernel calls of the calling thread use (0: the process-wide count); "
      "returns the count applied.");
  m.def("available_processors", &available_processors,
        "The processors this process may run on: the most threads a kernel call uses.");
  m.def("requested_threads_at_start", &requested_threads_at_start,
        "The thread count asked for at start (OMP_NUM_THREADS, else the processors), before "
        "the cap.");
  m.def("thread_count_from_environment_ignored", &thread_count_from_environment_ignored,
        "Whether OMP_NUM_THREADS held something that is not a thread count.");
  m.attr("MAX_IDLE_SPIN_US") = kMaxIdleSpinMicroseconds;
  m.def("idle_spin_us", &idle_spin_microseconds,
        "Microseconds an idle worker watches for work, yielding its CPU, before it sleeps.");
  m.def(
      "set_idle_spin_us",
      [](int us) {
        if (us < 0 || us > kMaxIdleSpinMicroseconds)
          throw py::value_error("idle spin must be from 0 to " +
                                std::to_string(kMaxIdleSpinMicroseconds) + " microseconds, got " +
                                std::to_string(us));
        set_idle_spin_microseconds(us);
      },
      py::arg("us"), "Set how long idle workers watch for work before they sleep.");
  m.def("workers_started", &workers_started,
        "Worker threads started so far in this process, over all calling threads.");
}

}  // namespace rs
