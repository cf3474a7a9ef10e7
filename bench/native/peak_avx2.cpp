// The FMA peak probe at the vector width of the avx2 kernels (flags: bench/native/CMakeLists.txt).
#define RS_PEAK_FUNCTION peak_gflops_avx2
#include "peak_fma.inl"
