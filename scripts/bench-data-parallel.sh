#!/usr/bin/env bash
# Data-parallel training on this machine: MAMIM pretraining of ssmamba_micro at batch 32 on the demo
# cache's tiles, one process (all cores for its GEMMs) against mpirun with one process per core
# (each binds to its core), in the same run; prints images/s of each and the share of the parallel
# run's training time spent averaging gradients (allreduce, waiting for the slower rank included).
#   scripts/bench-data-parallel.sh [STEPS] [RANKS]       (run `make demo` first: it fills cache/demo)
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-60} ranks=${2:-$(nproc)}
bin=.build/release/ssmamba
out=runs/bench-data-parallel
[ -d cache/demo ] || { echo "no cache/demo: run make demo first" >&2; exit 1; }
mkdir -p "$out"
cat > "$out/flow.yaml" <<FLOW
flow: bench-data-parallel
output: $out/one
source: {kind: cached_tiles, path: cache/demo}
stages:
  - stage: pretrain
    steps: $steps
    batch: 32
FLOW
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_plm_rsh_agent=${OMPI_MCA_plm_rsh_agent:-false}
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
for round in 1 2; do
  rm -rf "$out/one" "$out/many"
  $bin run "$out/flow.yaml" --out "$out/one" > /dev/null
  mpirun --oversubscribe -np "$ranks" $bin run "$out/flow.yaml" --out "$out/many" > /dev/null
  python3 - "$out" "$ranks" "$round" <<'PY'
import json, sys
out, ranks, round_ = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def report(name):
    return json.load(open(f"{out}/{name}/report.json"))
one, many = report("one"), report("many")
ips_one, ips_many = one["metrics"]["pretrain.images_per_second"], many["metrics"]["pretrain.images_per_second"]
busy = next(s["busy_seconds"] for s in many["stages"] if s["name"] == "pretrain")
averaging = max(many["metrics"].get(f"pretrain.rank{r}.averaging_gradients_seconds", 0) for r in range(ranks))
print(f"round {round_}: 1 process {ips_one:.1f} images/s; {ranks} processes {ips_many:.1f} images/s ({ips_many / ips_one:.2f}×); "
      f"averaging gradients {averaging:.2f} s of {busy:.1f} s training ({100 * averaging / busy:.1f} %)")
PY
done
