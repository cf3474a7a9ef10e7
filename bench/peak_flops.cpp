// Prints the peak FP32 FMA rate of the vector width it is compiled for, in
// GFLOP/s, on the thread count given (default 1). bench/peak.py compiles it
// once per width (-mavx512f or -mavx2 -mfma); the probe is bench/peak_fma.inl.
#include <cstdio>
#include <cstdlib>

#define RS_PEAK_FUNCTION peak_gflops
#include "peak_fma.inl"

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 1;
  std::printf("%.1f\n", peak_gflops(threads));
  return 0;
}
