// Peak FP32 multiply-add throughput probe: independent chains held in
// registers, no memory traffic, on every OpenMP thread. Shared by
// bench/peak_flops.cpp (compiled by bench/peak.py) and the native benchmark
// (bench/native/peak_*.cpp); the includer defines RS_PEAK_FUNCTION, the name of
//   double RS_PEAK_FUNCTION(int threads)  // best of 3 trials, GFLOP/s
// and compiles it with the flags of one vector width: -mavx512f, -mavx2 -mfma,
// or none (SSE2: a multiply and an add per pair of flops), with
// -ffp-contract=fast so that a * x + x is one FMA where there is one.
#include <omp.h>

#include <chrono>

namespace {

// Chains: enough to cover FMA latency x throughput, few enough to stay in
// registers (16 ymm registers under AVX2: 16 chains spilled and read 80 GFLOP/s).
#if defined(__AVX512F__)
constexpr int kPeakBytes = 64;
constexpr int kPeakChains = 16;
#elif defined(__AVX2__)
constexpr int kPeakBytes = 32;
constexpr int kPeakChains = 12;
#else
constexpr int kPeakBytes = 16;
constexpr int kPeakChains = 12;
#endif
typedef float PeakVec __attribute__((vector_size(kPeakBytes)));
constexpr int kPeakLanes = kPeakBytes / 4;

}  // namespace

double RS_PEAK_FUNCTION(int threads) {
  const long iterations = 20000000;
  double best = 0.0;
  for (int trial = 0; trial < 3; ++trial) {
    float sink = 0.0f;
    const auto start = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(threads) reduction(+ : sink)
    {
      PeakVec acc[kPeakChains];
      const PeakVec x = PeakVec{} + 0.999999f;
      for (int i = 0; i < kPeakChains; ++i) acc[i] = PeakVec{} + (1.0f + omp_get_thread_num() + i);
      for (long it = 0; it < iterations; ++it) {
#pragma GCC unroll 16
        for (int i = 0; i < kPeakChains; ++i) acc[i] = acc[i] * x + x;  // one FMA
      }
      PeakVec total = acc[0];
      for (int i = 1; i < kPeakChains; ++i) total += acc[i];
      sink += total[0];
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double gflops = 2.0 * kPeakChains * kPeakLanes * iterations * threads / seconds / 1e9;
    if (gflops > best) best = gflops;
    // Keeps the chains alive: the compiler cannot drop work whose sum is used.
    if (sink == 12345.0f) best += 1e-9;
  }
  return best;
}
