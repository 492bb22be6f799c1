#!/usr/bin/env bash
# Run the test suite against the oldest torch initwise supports (torch 2.1), in its own venv.
# Not part of CI (.ci/run pins the CPU build of torch 2.13.0): PyPI's torch 2.1.2 for x86_64 is a
# CUDA build (~5 GB with its dependencies), and it needs numpy < 2 (and a pyarrow built for it).
# Usage: scripts/test-oldest-torch.sh [VENV_DIR]   (default /tmp/initwise-torch21)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${1:-/tmp/initwise-torch21}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q "torch==2.1.2" "numpy<2" "scipy<1.14" "pyarrow==17.0.0" \
  "rich>=12" "jinja2>=3" "matplotlib>=3.6" "scikit-learn>=1.2" "lsuv==0.3.0" "pytest>=7" \
  "playwright>=1.40" "safetensors>=0.4" "jsonschema>=4"
cd "$root"
PYTHONPATH="$root" "$venv/bin/python" -m pytest -q -p no:cacheprovider "${@:2}"
