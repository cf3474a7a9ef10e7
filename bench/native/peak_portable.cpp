// The FMA peak probe at the vector width of the portable kernels (flags:
// bench/native/CMakeLists.txt).
#define RS_PEAK_FUNCTION peak_gflops_portable
#include "peak_fma.inl"
