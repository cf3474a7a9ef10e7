// The thread count every kernel call uses. Kept here rather than in OpenMP's
// per-thread ICV so that a value set from one Python thread holds for calls
// made from any other. Starts at omp_get_max_threads() (so OMP_NUM_THREADS
// is respected).
#pragma once

namespace rs {

bool openmp_enabled();
int num_threads();
// n >= 1; the caller validates.
void set_num_threads(int n);

}  // namespace rs
