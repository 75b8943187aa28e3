#!/usr/bin/env bash
# A cohort on a Slurm cluster, in three jobs that wait for each other:
#   1. cache warm-up as a job array (each task warms every n-th slide into its own cache shard,
#      then the last step merges the shards),
#   2. training on several nodes with srun (data-parallel: every rank reads its share of each batch
#      from the merged cache; the flow's `batch` is the whole batch),
#   3. evaluation of new slides, shared out between the ranks (rank r takes slides r, r + R, …).
#
#   scripts/slurm/submit.sh WARM_FLOW TRAIN_FLOW CHECKPOINT SLIDES [TASKS] [NODES]
#
# WARM_FLOW holds the data stages ending in a `cache` stage; TRAIN_FLOW reads that cache (a `cache`
# step at the same path, or a `cached_tiles` source) and trains; CHECKPOINT is the training run's
# best checkpoint folder (e.g. runs/train/finetune/best); SLIDES the slides to evaluate.
# Adapt the #SBATCH resources (partition, time, memory) to your cluster.
set -euo pipefail
warm=$1 train=$2 checkpoint=$3 slides=$4 tasks=${5:-8} nodes=${6:-2}
bin=${SSMAMBA:-$(cd "$(dirname "$0")/../.." && pwd)/.build/release/ssmamba}
cache=$(sed -n 's/^ *path: *//p' "$warm" | tail -1)   # the warm flow's cache path (its last `path:`)

# 1. Warm-up: task i of n warms shard i into $cache.shard-i (SLURM_ARRAY_TASK_ID/COUNT give the share).
warm_job=$(sbatch --parsable --array=0-$((tasks - 1)) --cpus-per-task=4 --time=04:00:00 --job-name=ssmamba-warm \
  --wrap "$bin cache warm $warm --set cache.path=$cache.shard-\$SLURM_ARRAY_TASK_ID")
merge_job=$(sbatch --parsable --dependency=afterok:$warm_job --time=01:00:00 --job-name=ssmamba-merge \
  --wrap "$bin cache merge --into $cache $(for i in $(seq 0 $((tasks - 1))); do printf '%s ' "$cache.shard-$i"; done)")

# 2. Training: one rank per node (each uses the node's cores for its GEMMs), gradients averaged over MPI.
train_job=$(sbatch --parsable --dependency=afterok:$merge_job --nodes=$nodes --ntasks-per-node=1 --cpus-per-task=16 \
  --time=24:00:00 --job-name=ssmamba-train --wrap "srun --mpi=pmix $bin run $train")

# 3. Evaluation of new slides with the trained classifier, slides shared out between the ranks.
sbatch --dependency=afterok:$train_job --nodes=$nodes --ntasks-per-node=1 --cpus-per-task=16 --time=08:00:00 --job-name=ssmamba-eval \
  --wrap "srun --mpi=pmix $bin eval --checkpoint $checkpoint --slides $slides"
echo "submitted: warm-up $warm_job (array of $tasks), merge $merge_job, training $train_job on $nodes nodes, then evaluation"
