#!/usr/bin/env bash
# Installs the wheel that scripts/build_wheel.sh left in wheelhouse/ into a fresh
# virtual environment outside the source tree, with the test extra, and runs the test
# suite there against the installed package (not against python/ in this checkout).
#
#   scripts/test_wheel.sh [pytest arguments]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python}
wheels=("$root"/wheelhouse/reluscope-*manylinux*.whl)
if [ ! -f "${wheels[0]}" ]; then
  echo "no manylinux wheel in $root/wheelhouse: run scripts/build_wheel.sh first" >&2
  exit 2
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$python" -m venv "$work/venv"
"$work/venv/bin/pip" install -q "${wheels[0]}[test]"
# The tests, their pytest settings, and the files some tests read (README.md, docs/).
cp -r "$root/tests" "$root/README.md" "$root/docs" "$work/"
sed -n '/^\[tool.pytest.ini_options\]/,/^\[/p' "$root/pyproject.toml" | sed '$d' \
  > "$work/pyproject.toml"
cd "$work"
"$work/venv/bin/python" - <<'PY'
import pathlib, sys
import reluscope
where = pathlib.Path(reluscope.__file__).resolve()
print(f"testing reluscope {reluscope.__version__} installed at {where.parent}")
sys.exit(0 if "site-packages" in where.parts else "reluscope was not imported from the wheel")
PY
"$work/venv/bin/python" -m pytest -q -p no:cacheprovider "$@"
