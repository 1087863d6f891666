#!/usr/bin/env bash
# The GPU checks of issue 15, in one run of under 8 minutes on a machine with a CUDA GPU:
#   bash bench/gpu_check.sh [PYTHON]
# 1. the tests marked `gpu` (tests/test_torchengine.py: the torch engine on CUDA equal to
#    the step engine on random programs of every block kind, exact cuBLAS products, a
#    784-256-10 net at batch 64), then 2. the CUDA rows of bench/bench_emulator.py
#    (784-1024-1024-10 at batch 4096: sample-steps/s, synaptic events/s, snnTorch on the
#    same GPU). PYTHON (default: .venv/bin/python, else python3) needs torch with CUDA,
#    numpy, scipy, h5py, nir, networkx, pytest and hypothesis (snntorch for the snnTorch
#    row). snn2hw need not be installed: the repository's packages are put on the path
#    under their installed names. Nothing is downloaded. Exit status: the tests'.
set -u
cd "$(dirname "$0")/.."
PY="${1:-}"
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
echo "== gpu_check: $(date -u +%FT%TZ), python: $PY"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version \
  --format=csv,noheader
# snn2hw_emulator and snn2hw_targets are the folders emulator/ and targets/ (pyproject's
# package-dir): links under those names make the tree importable without installing it
LINKS="$(mktemp -d)"
trap 'rm -rf "$LINKS"' EXIT
ln -s "$PWD/snn2hw" "$LINKS/snn2hw"
ln -s "$PWD/emulator" "$LINKS/snn2hw_emulator"
ln -s "$PWD/targets" "$LINKS/snn2hw_targets"
export PYTHONPATH="$LINKS${PYTHONPATH:+:$PYTHONPATH}"
"$PY" - <<'PYEOF' || exit 3
import importlib, sys
missing = [m for m in ("numpy", "scipy", "h5py", "nir", "networkx", "pytest", "hypothesis",
                       "torch") if importlib.util.find_spec(m) is None]
if missing:
    sys.exit(f"gpu_check: missing Python packages: {', '.join(missing)}")
import torch
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, "
      f"device: {torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'}")
if not torch.cuda.is_available():
    sys.exit("gpu_check: torch sees no CUDA device")
PYEOF
echo "== 1. tests marked gpu"
timeout 300 "$PY" -m pytest tests/test_torchengine.py -m gpu -rs -q -p no:cacheprovider
status=$?
echo "== 2. CUDA bench rows"
timeout 150 "$PY" bench/bench_emulator.py --gpu-only --repeat 4 || echo "bench: exit $?"
echo "== gpu_check: tests exit $status"
exit $status
