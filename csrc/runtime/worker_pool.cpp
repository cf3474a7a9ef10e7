#include "runtime/worker_pool.hpp"

#include "runtime/float_control.hpp"
#include "runtime/threads.hpp"

#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace rs {
namespace {

std::atomic<int> g_idle_spin_us{kDefaultIdleSpinMicroseconds};
std::atomic<int> g_workers_started{0};

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Between polls a waiting thread pauses a few times (a fraction of a
// microsecond) and then offers its CPU to any other runnable thread.
constexpr unsigned kPausesPerYield = 8;

constexpr int kMaxShares = 0xFFFF;

// One calling thread's workers. A job is published by bumping job_; its shares
// are claimed from claims_, one word holding the job number, its number of shares
// and the next unclaimed share (Claims below). A claim is one compare-and-swap of
// that word, so a worker that read an older job can neither claim a share of the
// current one nor take a share number past the end of its own: with the count
// kept apart, a worker late from a job of 2 shares read the next job's count of 6
// and claimed a third share of the finished job (ThreadSanitizer, native tests).
struct Claims {
  std::uint32_t job;
  std::uint32_t n_shares;  // < 2^16
  std::uint32_t next;      // the next share to claim, <= n_shares

  static Claims of(std::uint64_t word) {
    return {static_cast<std::uint32_t>(word >> 32), static_cast<std::uint32_t>(word >> 16) & 0xFFFF,
            static_cast<std::uint32_t>(word) & 0xFFFF};
  }
  std::uint64_t word() const {
    return std::uint64_t{job} << 32 | std::uint64_t{n_shares} << 16 | next;
  }
};

class WorkerPool {
 public:
  void run(int n_shares, const void* closure, ShareFunction fn) {
    start_workers(n_shares - 1);
    closure_.store(closure, std::memory_order_relaxed);
    fn_.store(fn, std::memory_order_relaxed);
    float_control_.store(float_control(), std::memory_order_relaxed);
    done_.store(0, std::memory_order_relaxed);
    const std::uint32_t job = ++last_job_;
    claims_.store(Claims{job, static_cast<std::uint32_t>(n_shares), 0}.word(),
                  std::memory_order_release);
    job_.store(job, std::memory_order_seq_cst);
    if (sleepers_.load(std::memory_order_seq_cst) > 0) {
      // Taking the mutex orders this wake-up after a sleeper's last look at job_.
      pthread_mutex_lock(&sleep_mutex_);
      pthread_mutex_unlock(&sleep_mutex_);
      pthread_cond_broadcast(&wake_);
    }
    run_claimed_shares(job);
    for (unsigned i = 1; done_.load(std::memory_order_acquire) != n_shares; ++i) {
      if (i % kPausesPerYield == 0)
        sched_yield();
      else
        cpu_relax();
    }
  }

 private:
  void start_workers(int wanted) {
    while (static_cast<int>(workers_) < wanted) {
      const int index = static_cast<int>(workers_);
      const std::uint32_t seen = last_job_;
      try {
        std::thread worker([this, index, seen] { work(index, seen); });
        // From here, at once: a worker that did it itself first waited for the
        // calling thread's one core, if that is bound, until the caller let it go.
        allow_available_processors(worker);
        worker.detach();
      } catch (...) {  // std::system_error, or bad_alloc for the thread's state
        return;        // no more threads: the calling thread claims their shares
      }
      ++workers_;
      g_workers_started.fetch_add(1, std::memory_order_relaxed);
    }
  }

  void run_claimed_shares(std::uint32_t job) {
    std::uint64_t word = claims_.load(std::memory_order_acquire);
    for (;;) {
      const Claims claims = Claims::of(word);
      if (claims.job != job || claims.next >= claims.n_shares) return;
      Claims claimed = claims;
      ++claimed.next;
      if (claims_.compare_exchange_weak(word, claimed.word(), std::memory_order_acq_rel,
                                        std::memory_order_acquire)) {
        // The job cannot end before this share is counted done, so its closure stands.
        fn_.load(std::memory_order_relaxed)(closure_.load(std::memory_order_relaxed),
                                            static_cast<int>(claims.next));
        done_.fetch_add(1, std::memory_order_release);
        word = claims_.load(std::memory_order_acquire);
      }
    }
  }

  // Worker `index` takes part in jobs of more than index + 1 shares.
  [[noreturn]] void work(int index, std::uint32_t seen) {
    for (;;) {
      seen = wait_for_job_after(seen);
      const Claims claims = Claims::of(claims_.load(std::memory_order_acquire));
      if (claims.job == seen && static_cast<std::uint32_t>(index) + 1 < claims.n_shares) {
        // The calling thread's floating-point control state (float_control.hpp),
        // so that a share gives the same bits on any thread: with flush-to-zero
        // set on the calling thread only, a product on 2 threads came back with
        // half of its subnormal results flushed. Read once per job: if this job
        // has ended and the next one changed it, no share of this job is left
        // to claim, and the next job sets it again.
        set_float_control(float_control_.load(std::memory_order_relaxed));
        run_claimed_shares(seen);
      }
    }
  }

  std::uint32_t wait_for_job_after(std::uint32_t seen) {
    using Clock = std::chrono::steady_clock;
    const auto deadline =
        Clock::now() + std::chrono::microseconds(g_idle_spin_us.load(std::memory_order_relaxed));
    for (unsigned i = 1;; ++i) {
      const std::uint32_t job = job_.load(std::memory_order_acquire);
      if (job != seen) return job;
      if (i % kPausesPerYield != 0) {
        cpu_relax();
        continue;
      }
      if (Clock::now() >= deadline) break;
      sched_yield();
    }
    pthread_mutex_lock(&sleep_mutex_);
    sleepers_.fetch_add(1, std::memory_order_seq_cst);
    std::uint32_t job;
    while ((job = job_.load(std::memory_order_seq_cst)) == seen)
      pthread_cond_wait(&wake_, &sleep_mutex_);
    sleepers_.fetch_sub(1, std::memory_order_relaxed);
    pthread_mutex_unlock(&sleep_mutex_);
    return job;
  }

  // Touched by the calling thread only.
  std::uint32_t last_job_ = 0;
  unsigned workers_ = 0;

  std::atomic<std::uint32_t> job_{0};
  std::atomic<std::uint64_t> claims_{0};
  std::atomic<int> done_{0};
  std::atomic<const void*> closure_{nullptr};
  std::atomic<ShareFunction> fn_{nullptr};
  std::atomic<std::uint64_t> float_control_{0};

  // pthread's rather than std::condition_variable: libstdc++ 12 versions the latter's
  // wait GLIBCXX_3.4.30, which raised the wheel's manylinux tag from 2_34 to 2_35.
  pthread_mutex_t sleep_mutex_ = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t wake_ = PTHREAD_COND_INITIALIZER;
  std::atomic<int> sleepers_{0};
};

// Pools not in use. A call takes one (or makes one) and puts it back, so calls
// from different threads never share workers. Pools and their workers live as
// long as the process (never destroyed: nothing waits on a worker at exit).
struct IdlePools {
  std::mutex mutex;
  std::vector<WorkerPool*> pools;
};

IdlePools& idle_pools();

// A forked child has only the thread that forked: the workers of the parent's
// pools are not there, so the child forgets those pools (their memory stays
// allocated) and makes new ones. The list's mutex is held across fork so that
// the child never inherits it locked by a thread it does not have.
void lock_before_fork() { idle_pools().mutex.lock(); }
void unlock_in_parent() { idle_pools().mutex.unlock(); }
void forget_pools_in_child() {
  IdlePools& idle = idle_pools();
  idle.pools.clear();
  idle.mutex.unlock();
}

// Made, and the fork handlers registered, while the module loads: a fork during a
// first call's lazy initialisation would leave the child an initialisation guard
// held by a thread it does not have.
IdlePools* make_idle_pools() {
  auto* made = new IdlePools;
  pthread_atfork(lock_before_fork, unlock_in_parent, forget_pools_in_child);
  return made;
}
IdlePools* const g_idle_pools = make_idle_pools();

IdlePools& idle_pools() { return *g_idle_pools; }

WorkerPool* take_pool() {
  IdlePools& idle = idle_pools();
  {
    std::lock_guard<std::mutex> lock(idle.mutex);
    if (!idle.pools.empty()) {
      WorkerPool* pool = idle.pools.back();
      idle.pools.pop_back();
      return pool;
    }
  }
  return new WorkerPool;
}

void put_back(WorkerPool* pool) {
  IdlePools& idle = idle_pools();
  std::lock_guard<std::mutex> lock(idle.mutex);
  idle.pools.push_back(pool);
}

}  // namespace

void run_shares_on_workers(int n_shares, const void* closure, ShareFunction fn) {
  if (n_shares > kMaxShares) {  // more than a Claims word counts: one thread runs them all
    for (int share = 0; share < n_shares; ++share) fn(closure, share);
    return;
  }
  WorkerPool* pool = take_pool();
  pool->run(n_shares, closure, fn);
  put_back(pool);
}

void wait_for_earlier_share(const std::atomic<bool>& flag) {
  for (unsigned i = 1; !flag.load(std::memory_order_acquire); ++i) {
    if (i % kPausesPerYield == 0)
      sched_yield();
    else
      cpu_relax();
  }
}

int idle_spin_microseconds() { return g_idle_spin_us.load(std::memory_order_relaxed); }

void set_idle_spin_microseconds(int us) { g_idle_spin_us.store(us, std::memory_order_relaxed); }

int workers_started() { return g_workers_started.load(std::memory_order_relaxed); }

}  // namespace rs
