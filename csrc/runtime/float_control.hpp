// The calling thread's floating-point control state: on x86 the MXCSR register
// (rounding mode, flush-to-zero, denormals-are-zero, exception masks), on
// AArch64 the FPCR. Each thread has its own, and a library the caller uses may
// change the caller's (PyTorch's torch.set_flush_denormal sets flush-to-zero).
// The worker pool (worker_pool.cpp) runs each share of a job under the state of
// the thread that called, so that a share computes the same bits whichever
// thread claims it.
#pragma once

#include <cstdint>

namespace rs {

inline std::uint64_t float_control() {
#if defined(__x86_64__) || defined(__i386__)
  return __builtin_ia32_stmxcsr();
#elif defined(__aarch64__)
  std::uint64_t fpcr;
  asm volatile("mrs %0, fpcr" : "=r"(fpcr));
  return fpcr;
#else
  return 0;
#endif
}

inline void set_float_control(std::uint64_t state) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_ldmxcsr(static_cast<unsigned>(state));
#elif defined(__aarch64__)
  asm volatile("msr fpcr, %0" : : "r"(state));
#else
  (void)state;
#endif
}

}  // namespace rs
