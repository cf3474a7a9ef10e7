#!/usr/bin/env bash
# Runs the test suite against an extension built with AddressSanitizer and
# UBSan (CMake option RELUSCOPE_SANITIZE). The build and its virtual
# environment live in build/sanitize/; pytest arguments pass through, e.g.
#   scripts/test_sanitized.sh -x tests/test_step_hardening.py
# Takes several times as long as the normal run; not part of the default CI.
set -euo pipefail
cd "$(dirname "$0")/.."
root=build/sanitize
if [ ! -x "$root/venv/bin/python" ]; then
  python3 -m venv "$root/venv"
fi
"$root/venv/bin/pip" install -q \
  -Ccmake.define.RELUSCOPE_SANITIZE=ON -Ccmake.build-type=RelWithDebInfo \
  -Cbuild-dir="$root/cmake" ".[test]"
# The interpreter is not instrumented: the ASan runtime has to be loaded
# first. Python's own allocations are not leaks worth reporting here.
asan_runtime="$(g++ -print-file-name=libasan.so)"
ubsan_runtime="$(g++ -print-file-name=libubsan.so)"
export LD_PRELOAD="$asan_runtime $ubsan_runtime"
# allocator_may_return_null: a huge workspace is a MemoryError to catch (a test
# does), not an abort.
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export RELUSCOPE_SANITIZED=1  # the one test ASan cannot run (see test_step_hardening.py)
export PYTHONMALLOC=malloc  # let ASan see every Python-side buffer, too
# Outside the source tree's python/ folder, so the sanitized install is imported.
exec "$root/venv/bin/python" -m pytest -p no:cacheprovider "$@"
