// The thread count every kernel call uses. Kept here rather than in OpenMP's
// per-thread ICV so that a value set from one Python thread holds for calls
// made from any other. Starts at omp_get_max_threads() (so OMP_NUM_THREADS
// is respected), capped at the processors this process may run on: libgomp
// calls exit(1) when the OS refuses a thread, so asking for 100000 threads
// would kill the process that imported us.
#pragma once

namespace rs {

bool openmp_enabled();
// The processors this process may run on (1 without OpenMP).
int available_processors();
// The thread count OpenMP asked for at start (OMP_NUM_THREADS), before the cap.
int requested_threads_at_start();
int num_threads();
// n >= 1 (the caller validates); sets and returns min(n, available_processors()).
int set_num_threads(int n);
// The count kernel calls made from the calling thread use, instead of the process-wide
// one: n >= 1, capped as above; 0 goes back to the process-wide count. For a Python
// thread pool that runs independent pieces of work side by side, each on one thread.
int set_threads_for_this_thread(int n);

}  // namespace rs
