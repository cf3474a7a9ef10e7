// reluscope's own worker threads: the kernels' parallel loops run on them.
//
// A kernel hands run_shares() a body and a number of shares; the calling thread
// and up to n_shares - 1 workers claim the shares one at a time, each share is
// run exactly once, and run_shares() returns when all have run. A share is a
// fixed piece of the work (a range of columns, of rows, of tasks), so which
// thread runs it never changes the result, and a worker that is slow to wake
// (descheduled, or queued behind another program's thread) holds nobody up: the
// calling thread claims the shares nobody has taken.
//
// Why not OpenMP: between parallel regions libgomp's idle workers spin without
// yielding their CPU, and a numpy (OpenBLAS) or PyTorch thread woken on that CPU
// waits for the spin to end. Ours yield it (sched_yield) while they spin, for a
// bounded time (idle_spin_microseconds), and then sleep; see docs/performance.md.
//
// Bodies must not throw. Calls from different threads run side by side, each on
// workers of its own; workers are never stopped (they sleep when idle), and a
// process forked from this one starts new ones when it needs them.
#pragma once

#include <atomic>

namespace rs {

using ShareFunction = void (*)(const void* closure, int share);

// Runs fn(closure, share) once for each share in [0, n_shares); n_shares >= 2.
void run_shares_on_workers(int n_shares, const void* closure, ShareFunction fn);

// Runs body(share) once for each share in [0, n_shares): in a plain loop on the
// calling thread for one share, on the workers for more.
template <class Body>
void run_shares(int n_shares, const Body& body) {
  if (n_shares <= 1) {
    if (n_shares == 1) body(0);
    return;
  }
  // noexcept: a body that threw would leave the workers running shares of a job
  // whose closure is gone; std::terminate instead.
  run_shares_on_workers(n_shares, &body, [](const void* closure, int share) noexcept {
    (*static_cast<const Body*>(closure))(share);
  });
}

// Waits until `flag` is set by a share with a lower number than the caller's
// (pausing, then yielding the CPU between looks). Shares are claimed in order,
// so that share is already running or done, whether on another thread or
// earlier on this one: the wait ends, as soon as that share's thread gets to
// it. Waiting on a later share could last forever.
void wait_for_earlier_share(const std::atomic<bool>& flag);

// How long an idle worker keeps watching for the next piece of work, yielding its
// CPU to any other thread that wants it, before it sleeps. Long enough to carry a
// worker from one kernel call of a training step to the next.
constexpr int kDefaultIdleSpinMicroseconds = 300;
constexpr int kMaxIdleSpinMicroseconds = 1000000;
int idle_spin_microseconds();
// 0 <= us <= kMaxIdleSpinMicroseconds (the caller validates); takes effect at
// each worker's next wait.
void set_idle_spin_microseconds(int us);

// Workers started so far in this process, over all calling threads.
int workers_started();

}  // namespace rs
