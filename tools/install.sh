#!/usr/bin/env bash
# Install everything mmdet_joindet needs into the active Python environment.
#
#   bash tools/install.sh          # runtime: torch, mmcv (with ops), mmengine,
#                                  # mmdet, openmim, opencv-contrib
#   bash tools/install.sh --tests  # the above plus the test/lint tools
#
# Idempotent: every step checks first and is skipped when already satisfied,
# so a second run on a ready machine takes seconds. Order matters:
#   1. build tools + torch 2.13.0 (CPU build on disk; never a CUDA download)
#   2. mmcv 2.1.0 compiled from its sdist with ops (~9 min on 2 cores, then
#      pip's wheel cache makes it seconds)
#   3. mmengine, mmdet, openmim without its opendatalab chain
#   4. opencv-contrib-python-headless last, so cv2.ximgproc exists
#   5. this package, as a regular (non-editable) install: `mim train
#      mmdet_joindet` runs the tools/ and configs/ packaged in it. Tests run
#      from the checkout (`python -m pytest` puts it first on sys.path).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
PIP="$PY -m pip --disable-pip-version-check"
with_tests=0
for arg in "$@"; do
  case "$arg" in
    --tests) with_tests=1 ;;
    *) echo "install.sh: unknown option '$arg' (use --tests)" >&2; exit 2 ;;
  esac
done

have() { "$PY" - "$@" >/dev/null 2>&1; }
step() { printf '\n== %s\n' "$*"; }

step "build tools and torch 2.13.0"
if have <<'PY'
import importlib.metadata as m, sys
import torch, wheel, ninja
from packaging.version import Version
v = Version(m.version('setuptools'))
sys.exit(not (torch.__version__.startswith('2.13.')
              and Version('77.0.3') <= v < Version('82')))
PY
then echo "already installed"; else $PIP install -r requirements/build.txt; fi

step "runtime requirements"
$PIP install -q -r requirements/runtime.txt

step "mmcv 2.1.0 with ops"
if have <<'PY'
import mmcv, mmcv.ops, sys
sys.exit(mmcv.__version__ != '2.1.0')
PY
then echo "already installed"
else
  MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-2} \
    $PIP install --no-build-isolation 'mmcv==2.1.0'
fi

step "mmengine, mmdet, openmim"
$PIP install -q -r requirements/mminstall.txt -r requirements/mim.txt
if ! have <<'PY'
import importlib.metadata as m, sys
sys.exit(m.version('openmim') != '0.3.9')
PY
then $PIP install -q --no-deps 'openmim==0.3.9'; fi

step "opencv-contrib (cv2.ximgproc), installed last"
if ! have <<'PY'
import cv2
cv2.ximgproc.segmentation.createSelectiveSearchSegmentation
PY
then
  ver=$($PY -c "import importlib.metadata as m; print(m.version('opencv-python'))" 2>/dev/null || true)
  spec=opencv-contrib-python-headless${ver:+==$ver}
  $PIP install -q --force-reinstall --no-deps "$spec" \
    || $PIP install -q --force-reinstall --no-deps opencv-contrib-python-headless
fi

if [ "$with_tests" = 1 ]; then
  step "test and lint tools"
  $PIP install -q -r requirements/tests.txt
  # Reference Weighted Boxes Fusion for the Box Smooth tests. Only its numpy
  # module is used (loaded by file path): skip its numba dependency.
  $PIP install -q --no-deps 'ensemble-boxes==1.0.9'
fi

step "mmdet_joindet itself (regular install: mim needs configs and tools in it)"
$PIP install -q --no-deps --no-build-isolation .

step "check"
$PY - <<'PY'
import cv2, mmcv, mmcv.ops, mmdet, mmengine, setuptools, torch
import pkg_resources  # noqa: F401  (mmengine's mmdet:: bases need it)
import mmdet_joindet
assert hasattr(cv2, 'ximgproc'), 'cv2.ximgproc missing: reinstall opencv-contrib'
print(f'torch {torch.__version__}, mmcv {mmcv.__version__}, '
      f'mmengine {mmengine.__version__}, mmdet {mmdet.__version__}, '
      f'setuptools {setuptools.__version__}, opencv {cv2.__version__}, '
      f'mmdet_joindet {mmdet_joindet.__version__}')
PY
# the environment's own mim (a venv need not be activated)
"$($PY -c 'import os, sys; print(os.path.dirname(sys.executable))')/mim" --version
