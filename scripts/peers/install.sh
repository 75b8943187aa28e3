#!/usr/bin/env bash
# The peers the benchmarks compare against, pinned, in .venv-peers (never needed by the tests).
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -x .venv-peers/bin/python ] && .venv-peers/bin/python -c "import torch, numpy, tifffile, imagecodecs, openslide, lmdb, torchstain, staintools" 2>/dev/null; then exit 0; fi
python3 -m venv .venv-peers
# The CPU wheel of PyTorch (a plain `pip install torch` brings the CUDA build and ~20 packages).
.venv-peers/bin/pip install --quiet "torch==2.13.0+cpu" "numpy==2.4.6" "tifffile==2026.3.3" "imagecodecs==2026.3.6" \
  "openslide-python==1.4.7" "openslide-bin==4.0.1.2" "lmdb==3.0.0" "torchstain==1.4.1" "pillow==13.0.0" \
  "staintools==2.1.2" "spams-bin==2.6.14" "opencv-python-headless==5.0.0.93"
echo "peers: installed into .venv-peers"
