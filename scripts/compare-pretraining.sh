#!/usr/bin/env bash
# Fine-tuning on the labelled nucleus patches from scratch, from MAMIM pretraining on three
# magnifications, and from MAMIM pretraining on one, over three seeds each; prints a table of
# test metrics (mean ± sample standard deviation). Usage: scripts/compare-pretraining.sh [SEEDS...]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.build/release/ssmamba
seeds=("${@:-0 1 2}")
seeds=(${seeds[@]})
declare -A variants=(
  [scratch]="--set finetune.init=scratch"
  [pretrained-3-scales]=""
  [pretrained-1-scale]="--set tiles.scales=[0.5]"
)
for variant in scratch pretrained-3-scales pretrained-1-scale; do
  for seed in "${seeds[@]}"; do
    # shellcheck disable=SC2086
    $bin run flows/pretrain-finetune.yaml --set seed="$seed" ${variants[$variant]} --out "runs/compare/$variant-$seed" 2>/dev/null | tail -1
  done
done
python3 - "${seeds[@]}" <<'PY'
import json, statistics, sys
seeds = sys.argv[1:]
print("| start | test accuracy | balanced accuracy | macro-F1 | macro AUC |")
print("|---|---|---|---|---|")
for variant in ["scratch", "pretrained-3-scales", "pretrained-1-scale"]:
    rows = [json.load(open(f"runs/compare/{variant}-{s}/finetune/metrics.json")) for s in seeds]
    cells = []
    for key in ["accuracy", "balanced_accuracy", "macro_f1", "auc"]:
        values = [r[key] for r in rows]
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        cells.append(f"{statistics.mean(values):.3f} ± {spread:.3f}")
    print(f"| {variant} | " + " | ".join(cells) + " |")
PY
