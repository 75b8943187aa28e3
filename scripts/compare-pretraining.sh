#!/usr/bin/env bash
# Does MAMIM pretraining on the target data beat training from scratch? Paired seeds: for each
# seed, four arms on the same region-disjoint split of the nucleus patches and the same pretraining:
#   mamim          flows/pretrain-finetune.yaml: MAMIM pretraining, then fine-tuning from it
#   scratch        flows/finetune.yaml from random weights
#   probe-random   a linear probe (frozen encoder, head only) on random features
#   probe-mamim    a linear probe on the features the mamim arm pretrained
# The fine-tuning stage is the same in both flows (the scratch arm of flows/pretrain-finetune.yaml
# scores the same as flows/finetune.yaml's), so each seed pretrains once.
# It prints the test balanced accuracy per seed, the paired differences (mamim − scratch,
# probe-mamim − probe-random), their mean and a bootstrap 95 % interval over seeds, and the CPU
# seconds each arm took. `--set finetune.…` (and flow-level keys such as `seed`) apply to every
# arm, any other `--set` (pretrain, tiles, …) to the pretraining of the mamim arm;
# `--set-pretrained finetune.…` only to the fine-tuning of the mamim arm (a recipe for fine-tuning
# a pretrained encoder, e.g. layer-wise decay, which means nothing from scratch; the probes keep
# one recipe so that they compare features only):
#   scripts/compare-pretraining.sh [--seeds "0 1 2 3 4"] [--out runs/compare] [--bin path/to/ssmamba] [--encoders DIR] [--set step.param=value ...] [--set-pretrained finetune.param=value ...]
# `--encoders DIR` fine-tunes the encoders an earlier comparison pretrained (DIR/mamim-SEED) instead
# of pretraining again, and runs only the two fine-tuning arms: a fine-tuning recipe measured on
# the same encoders (the linear probes of those encoders are in DIR already).
# `--bin` runs a copy of the binary, so that rebuilding the checkout during an hour-long comparison
# does not change the program halfway (default .build/release/ssmamba, built if missing).
# Each run uses about one core: two instances with disjoint --seeds and the same --out and settings
# halve the wall time on two cores; then `--summarize --seeds "0 1 2 3 4" --out …` prints the summary
# of the runs already in the folder without running anything.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.build/release/ssmamba
seeds="0 1 2 3 4"
out=runs/compare
overrides=()        # every arm
pretraining=()      # the mamim arm only
pretrained=()       # the mamim arm's fine-tuning only
summarize_only=false
encoders=""         # an earlier comparison whose pretrained encoders the mamim arm fine-tunes
while [ $# -gt 0 ]; do
  case "$1" in
    --seeds) seeds="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --bin) bin="$2"; shift 2 ;;
    --encoders) encoders="$2"; shift 2 ;;
    --set)
      key=${2%%=*}
      if [[ $key == finetune.* || $key != *.* ]]; then overrides+=(--set "$2"); else pretraining+=(--set "$2"); fi
      shift 2 ;;
    --set-pretrained) pretrained+=(--set "$2"); shift 2 ;;
    --summarize) summarize_only=true; shift ;;
    *) echo "unknown argument $1 (use --seeds, --out, --bin, --encoders, --set, --set-pretrained, --summarize)" >&2; exit 64 ;;
  esac
done
[ -x "$bin" ] || swift build -c release
# The arm's command line after `ssmamba run`; probe-mamim reads the mamim arm's pretrained encoder.
arm_command() {
  local arm=$1 seed=$2
  case "$arm" in
    mamim)
      if [ -n "$encoders" ]; then echo "flows/finetune.yaml --set finetune.init=$encoders/mamim-$seed/pretrain/checkpoint"
      else echo "flows/pretrain-finetune.yaml"; fi ;;
    scratch) echo "flows/finetune.yaml --set finetune.init=scratch" ;;
    probe-random) echo "flows/finetune.yaml --set finetune.init=scratch --set finetune.freeze_encoder=true" ;;
    probe-mamim) echo "flows/finetune.yaml --set finetune.init=$out/mamim-$seed/pretrain/checkpoint --set finetune.freeze_encoder=true" ;;
  esac
}
if [ -n "$encoders" ]; then
  arms="mamim scratch"
  [ ${#pretraining[@]} -eq 0 ] || { echo "compare-pretraining: --encoders reuses $encoders's pretraining; drop ${pretraining[*]}" >&2; exit 64; }
  for seed in $seeds; do
    [ -f "$encoders/mamim-$seed/pretrain/checkpoint/model.safetensors" ] || { echo "compare-pretraining: no pretrained encoder $encoders/mamim-$seed/pretrain/checkpoint; run that seed without --encoders first" >&2; exit 66; }
  done
else
  arms="mamim scratch probe-random probe-mamim"
fi
mkdir -p "$out"
# Runs a command and writes its CPU seconds (user + system, children included) to the file $1.
timed() {
  python3 -c 'import resource, subprocess, sys
code = subprocess.run(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=open(sys.argv[1] + ".log", "w")).returncode
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
open(sys.argv[1], "w").write(str(usage.ru_utime + usage.ru_stime))
sys.exit(code)' "$@"
}
for seed in $seeds; do
  $summarize_only && break
  for arm in $arms; do
    extra=()
    [ "$arm" = mamim ] && extra=("${pretraining[@]}")
    [ "$arm" = mamim ] && extra+=("${pretrained[@]}")
    # shellcheck disable=SC2046
    if ! timed "$out/$arm-$seed.cpu" $bin run $(arm_command "$arm" "$seed") --set seed="$seed" "${overrides[@]}" "${extra[@]}" --out "$out/$arm-$seed" --overwrite; then
      echo "compare-pretraining: $arm, seed $seed failed; see $out/$arm-$seed.cpu.log" >&2
      exit 1
    fi
    echo "$arm seed $seed: balanced accuracy $(python3 -c "import json,sys; print(round(json.load(open(sys.argv[1]))['balanced_accuracy'], 4))" "$out/$arm-$seed/finetune/metrics.json"), $(cat "$out/$arm-$seed.cpu") CPU s"
  done
done
python3 - "$out" $seeds <<'PY'
import json, os, random, statistics, sys
out, seeds = sys.argv[1], sys.argv[2:]
# The probes are left out when the folder has none (a comparison run with --encoders).
arms = ["scratch", "mamim", "probe-random", "probe-mamim"]
if not any(os.path.exists(f"{out}/probe-random-{s}") for s in seeds):
    arms = ["scratch", "mamim"]
missing = [f"{a}-{s}" for s in seeds for a in arms if not os.path.exists(f"{out}/{a}-{s}/finetune/metrics.json")]
if missing:
    sys.exit(f"compare-pretraining: no finished run for {', '.join(missing)} in {out}; run those seeds first (without --summarize)")
score = {a: [json.load(open(f"{out}/{a}-{s}/finetune/metrics.json"))["balanced_accuracy"] for s in seeds] for a in arms}
seconds = {a: [float(open(f"{out}/{a}-{s}.cpu").read()) for s in seeds] for a in arms}

def interval(differences, resamples=10000):
    rng = random.Random(0)
    means = sorted(statistics.mean(rng.choices(differences, k=len(differences))) for _ in range(resamples))
    return means[int(0.025 * resamples)], means[int(0.975 * resamples) - 1]

pairs = [("fine-tuning", "mamim", "scratch"), ("linear probe", "probe-mamim", "probe-random")][:len(arms) // 2]
print("| seed | " + " | ".join(arms) + " | " + " | ".join(f"{a} − {b}" for _, a, b in pairs) + " |")
print("|---" * (len(arms) + len(pairs) + 1) + "|")
for i, s in enumerate(seeds):
    cells = [f"{score[a][i]:.3f}" for a in arms] + [f"{score[a][i] - score[b][i]:+.3f}" for _, a, b in pairs]
    print(f"| {s} | " + " | ".join(cells) + " |")
summary = {"seeds": seeds, "balanced_accuracy": score, "cpu_seconds": seconds}
for name, a, b in pairs:
    differences = [x - y for x, y in zip(score[a], score[b])]
    low, high = interval(differences)
    summary[name] = {"mean_difference": statistics.mean(differences), "interval_95": [low, high]}
    print(f"{name}: {a} − {b} = {statistics.mean(differences):+.4f} balanced accuracy on average over {len(seeds)} paired seeds, "
          f"bootstrap 95 % interval [{low:+.4f}, {high:+.4f}]")
print("CPU seconds per run (user + system): " + ", ".join(f"{a} {statistics.mean(seconds[a]):.0f}" for a in arms)
      + (" (the mamim arm includes the pretraining)" if len(arms) == 4 else " (the mamim arm fine-tuned earlier encoders)"))
json.dump(summary, open(f"{out}/summary.json", "w"), indent=2)
print(f"summary: {out}/summary.json")
PY
