// The FMA peak probe at the vector width of the avx512 kernels (flags:
// bench/native/CMakeLists.txt).
#define RS_PEAK_FUNCTION peak_gflops_avx512
#include "peak_fma.inl"
