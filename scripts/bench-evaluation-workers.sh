#!/usr/bin/env bash
# Slide evaluation with one model shared by several threads: `evaluate_slides` on the demo's two
# slides (their tiles read from the warm demo cache, the demo's fine-tuned classifier), with
# `workers: 1` and `workers: W` alternately; prints the images/s of each round and their ratio.
#   scripts/bench-evaluation-workers.sh [W] [ROUNDS]      (run `make demo` first: cache and checkpoint)
set -euo pipefail
cd "$(dirname "$0")/.."
workers=${1:-2} rounds=${2:-3}
bin=.build/release/ssmamba
out=runs/bench-evaluation-workers
checkpoint=runs/demo/finetune/best
[ -d cache/demo ] && [ -d "$checkpoint" ] || { echo "no cache/demo or $checkpoint: run make demo first" >&2; exit 1; }
mkdir -p "$out"
flow() {  # $1: workers
  cat > "$out/flow-$1.yaml" <<FLOW
flow: bench-evaluation-workers
output: $out/workers-$1
source: {kind: slides, path: data/samples, pattern: "*.svs", mpp_override: 0.25}
stages:
  - stage: tissue
  - stage: tiles
    mpp: 0.5
    size: 64
    scales: [0.5, 1.0, 2.0]
    min_tissue: 0.5
  - stage: stain
    method: macenko
    target: data/samples/target_image.png
  - stage: cache
    path: cache/demo
  - stage: evaluate_slides
    checkpoint: $checkpoint
    mpp: 0.5
    workers: $1
FLOW
}
flow 1; flow "$workers"
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
for round in $(seq "$rounds"); do
  for w in 1 "$workers"; do
    rm -rf "$out/workers-$w"
    $bin run "$out/flow-$w.yaml" > "$out/workers-$w.log" 2>&1 || { cat "$out/workers-$w.log" >&2; exit 1; }
  done
  python3 - "$out" "$workers" "$round" <<'PY'
import json, sys
out, workers, round_ = sys.argv[1], sys.argv[2], sys.argv[3]
def rate(w):
    report = json.load(open(f"{out}/workers-{w}/report.json"))
    return report["metrics"]["evaluate_slides.images_per_second"], report["counters"]["evaluate_slides.tiles"]
(one, tiles), (many, _) = rate(1), rate(workers)
print(f"round {round_}: {tiles} tiles; workers 1 {one:.0f} images/s, workers {workers} {many:.0f} images/s ({many / one:.2f}×)")
PY
done
