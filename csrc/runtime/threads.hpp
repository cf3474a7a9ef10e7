// The thread count every kernel call uses (the calling thread and the workers
// of worker_pool.hpp). Process-wide, so that a value set from one Python thread
// holds for calls made from any other. Starts at OMP_NUM_THREADS when that is
// set (the variable users set for every threaded numerical library), otherwise
// at the processors this process may run on, and is capped at those: more
// threads than processors only take turns.
#pragma once

#include <thread>

namespace rs {

// The processors this process may run on: the CPU affinity of the thread that
// loaded reluscope, taken at load. Not the calling thread's: a library that binds
// threads to cores (PyTorch's libgomp under OMP_PROC_BIND) binds the thread that
// loads it to one core, and every thread started later from it would inherit that.
int available_processors();
// Lets `thread` run on all of those processors, whatever it inherited from the
// thread that started it (worker_pool.hpp calls it on each worker it starts, as
// soon as it starts it); does nothing where affinity is unknown.
void allow_available_processors(std::thread& thread);
// The thread count asked for at start (OMP_NUM_THREADS, or the processors), before the cap.
int requested_threads_at_start();
// Whether OMP_NUM_THREADS was set to something that is not a thread count (then
// the start is the processors, as when it is unset).
bool thread_count_from_environment_ignored();
int num_threads();
// n >= 1 (the caller validates); sets and returns min(n, available_processors()).
int set_num_threads(int n);
// The count kernel calls made from the calling thread use, instead of the process-wide
// one: n >= 1, capped as above; 0 goes back to the process-wide count. For a Python
// thread pool that runs independent pieces of work side by side, each on one thread.
int set_threads_for_this_thread(int n);

}  // namespace rs
