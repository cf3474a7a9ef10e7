// The worker threads (runtime/worker_pool.hpp): every share of every job runs exactly
// once, with the workers awake or asleep between jobs, jobs of different sizes on one
// pool, and calls from several threads at once; a share may wait for an earlier one.

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "runtime/float_control.hpp"
#include "runtime/worker_pool.hpp"

namespace rs::testing {
namespace {

// Runs `jobs` jobs of n_shares shares each and checks that each share ran once.
void expect_each_share_once(int n_shares, int jobs) {
  std::vector<std::atomic<int>> runs(static_cast<std::size_t>(n_shares));
  for (int job = 1; job <= jobs; ++job) {
    run_shares(n_shares, [&](int share) { runs[static_cast<std::size_t>(share)].fetch_add(1); });
    for (int s = 0; s < n_shares; ++s)
      ASSERT_EQ(runs[static_cast<std::size_t>(s)].load(), job)
          << "share " << s << " of " << n_shares << ", job " << job;
  }
}

class IdleSpin : public ::testing::Test {
 protected:
  void TearDown() override { set_idle_spin_microseconds(kDefaultIdleSpinMicroseconds); }
};

TEST_F(IdleSpin, EveryShareRunsOnceWithWorkersAwake) {
  for (int n_shares : {0, 1, 2, 3, 8}) expect_each_share_once(n_shares, 500);
}

TEST_F(IdleSpin, EveryShareRunsOnceWithWorkersAsleep) {
  set_idle_spin_microseconds(0);  // every job wakes the workers from their sleep
  for (int n_shares : {2, 3, 8}) expect_each_share_once(n_shares, 300);
}

TEST_F(IdleSpin, JobsOfChangingSizeShareOnePool) {
  std::atomic<long> total{0};
  long expected = 0;
  for (int job = 0; job < 2000; ++job) {
    const int n_shares = 2 + job % 5;
    expected += n_shares;
    run_shares(n_shares, [&](int) { total.fetch_add(1); });
    ASSERT_EQ(total.load(), expected) << "job " << job;
  }
}

TEST(WorkerPool, CallsFromSeveralThreadsAtOnceDoNotMix) {
  constexpr int kCallers = 4, kJobs = 300, kShares = 3;
  std::vector<std::thread> callers;
  std::atomic<int> failures{0};
  for (int c = 0; c < kCallers; ++c)
    callers.emplace_back([&] {
      for (int job = 0; job < kJobs; ++job) {
        std::atomic<int> runs[kShares] = {};
        run_shares(kShares, [&](int share) { runs[share].fetch_add(1); });
        for (const std::atomic<int>& r : runs)
          if (r.load() != 1) failures.fetch_add(1);
      }
    });
  for (std::thread& t : callers) t.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST(WorkerPool, WorkersAreStartedOnlyForMoreThanOneShare) {
  const int before = workers_started();
  run_shares(1, [](int) {});
  EXPECT_EQ(workers_started(), before);
  run_shares(2, [](int) {});
  EXPECT_GE(workers_started(), 1);
}

// A share that waits for a flag set by an earlier share sees what that share
// wrote before setting it, whether the earlier share runs on another thread or
// before it on the same one (8 shares on the 2 or so threads a test machine
// has: some run in turn). ThreadSanitizer (scripts/test_threads_sanitized.sh)
// checks that the flag orders the writes.
TEST(WorkerPool, ALaterShareWaitsForAFlagOfAnEarlierOne) {
  constexpr int kShares = 8;
  for (int job = 0; job < 200; ++job) {
    std::vector<int> written(kShares, 0), seen(kShares, -1);
    std::atomic<bool> ready[kShares];
    for (std::atomic<bool>& flag : ready) flag.store(false);
    run_shares(kShares, [&](int share) {
      const std::size_t s = static_cast<std::size_t>(share);
      if (share > 0) {
        wait_for_earlier_share(ready[share - 1]);
        seen[s] = written[s - 1];
      }
      written[s] = job + share;
      ready[share].store(true, std::memory_order_release);
    });
    for (int share = 1; share < kShares; ++share)
      ASSERT_EQ(seen[static_cast<std::size_t>(share)], job + share - 1) << "job " << job;
  }
}

// A worker runs its shares under the calling thread's floating-point control
// state, so a share computes the same bits on whichever thread claims it. Each
// job's first share waits for the second to start, so the two run on two threads.
TEST(WorkerPool, SharesRunUnderTheCallersFloatControl) {
#if defined(__x86_64__) || defined(__i386__)
  constexpr std::uint64_t kFlushToZero = 0x8000, kDenormalsAreZero = 0x40;
  // The low six bits are sticky status flags (a subnormal result sets two), not control.
  constexpr std::uint64_t kControlBits = ~std::uint64_t{0x3f};
  const std::uint64_t before = float_control();
  struct Restore {
    std::uint64_t state;
    ~Restore() { set_float_control(state); }
  } restore{before};
  run_shares(2, [](int) {});  // the worker starts under the caller's state of now
  for (const std::uint64_t state : {before | kFlushToZero | kDenormalsAreZero, before}) {
    set_float_control(state);
    for (int job = 0; job < 50; ++job) {
      std::atomic<bool> second_started{false};
      std::uint64_t seen[2] = {};
      volatile float smallest_normal = 1.17549435e-38f;
      float halves[2] = {};
      run_shares(2, [&](int share) {
        if (share == 1)
          second_started.store(true);
        else
          while (!second_started.load()) std::this_thread::yield();
        seen[share] = float_control();
        halves[share] = smallest_normal * 0.5f;  // subnormal, or 0 under flush-to-zero
      });
      ASSERT_EQ(seen[0] & kControlBits, state & kControlBits) << "job " << job;
      ASSERT_EQ(seen[1] & kControlBits, state & kControlBits) << "job " << job;
      ASSERT_EQ(halves[0], halves[1]) << "job " << job;
      ASSERT_EQ(halves[0] == 0.0f, state != before) << "job " << job;
    }
  }
#else
  GTEST_SKIP() << "the flush-to-zero bits set here are x86's (MXCSR)";
#endif
}

}  // namespace
}  // namespace rs::testing
