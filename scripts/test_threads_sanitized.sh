#!/usr/bin/env bash
# Builds the native kernel tests with ThreadSanitizer in build/tsan/ and runs those
# that use more than one thread: the worker threads' own tests and every kernel test
# at 2 threads. A race between the calling thread and the workers, or between two
# jobs, stops the run with TSan's report. Gtest arguments pass through, e.g.
#   scripts/test_threads_sanitized.sh --gtest_repeat=20
# Builds in about a minute on 2 cores; not part of the default CI.
set -euo pipefail
cd "$(dirname "$0")/.."
root=build/tsan
cmake -S . -B "$root" -DRELUSCOPE_NATIVE=ON -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_CXX_FLAGS="-fsanitize=thread -g -O1" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=thread"
cmake --build "$root" -j2 --target reluscope_kernel_tests
TSAN_OPTIONS="halt_on_error=1" exec "$root/reluscope_kernel_tests" \
  --gtest_filter='IdleSpin*:WorkerPool*:*_2threads*' "$@"
