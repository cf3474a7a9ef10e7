// Peak FP32 FMA throughput probe: independent FMA chains held in registers,
// no memory traffic, on every OpenMP thread. Compiled once per vector width by
// bench/peak.py (-mavx512f or -mavx2 -mfma) and prints GFLOP/s.
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

// Chains: enough to cover FMA latency x throughput, few enough to stay in
// registers (16 ymm registers under AVX2: 16 chains spilled and read 80 GFLOP/s).
#if defined(__AVX512F__)
constexpr int kBytes = 64;
constexpr int kChains = 16;
#else
constexpr int kBytes = 32;
constexpr int kChains = 12;
#endif
typedef float Vec __attribute__((vector_size(kBytes)));
constexpr int kLanes = kBytes / 4;

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 1;
  const long iterations = 20000000;
  double best = 0.0;
  for (int trial = 0; trial < 3; ++trial) {
    float sink = 0.0f;
    const auto start = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(threads) reduction(+ : sink)
    {
      Vec acc[kChains];
      const Vec x = Vec{} + 0.999999f;
      for (int i = 0; i < kChains; ++i) acc[i] = Vec{} + (1.0f + omp_get_thread_num() + i);
      for (long it = 0; it < iterations; ++it) {
#pragma GCC unroll 16
        for (int i = 0; i < kChains; ++i) acc[i] = acc[i] * x + x;  // one FMA (-ffp-contract)
      }
      Vec total = acc[0];
      for (int i = 1; i < kChains; ++i) total += acc[i];
      sink += total[0];
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double gflops = 2.0 * kChains * kLanes * iterations * threads / seconds / 1e9;
    if (gflops > best) best = gflops;
    if (sink == 12345.0f) std::printf("#");
  }
  std::printf("%.1f\n", best);
  return 0;
}
