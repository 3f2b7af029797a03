#!/usr/bin/env bash
# Issue 16, part 2b: the 28x28 CNN on the two extreme rotations at 2000 steps (plan:
# leaderboards/dg_delayed_start/STUDY.md). Resumable. Usage: studies/cnn_extremes.sh WORK_DIR START_STEP
# It spans sessions on the build machine (about 8 hours of both cores), which keeps nothing but the repository:
#   studies/keep_runs.sh leaderboards/dg_delayed_start/cnn2000/runs WORK_DIR/cnn   # first: the runs kept so far
#   studies/cnn_extremes.sh WORK_DIR 500                                          # skips those, trains the rest
#   studies/keep_runs.sh WORK_DIR/cnn leaderboards/dg_delayed_start/cnn2000/runs   # last: keep what finished
set -euo pipefail
work=${1:?usage: studies/cnn_extremes.sh WORK_DIR START_STEP}
start=${2:?the delayed start chosen on the MLP at 2000 steps}
for trial in 0 1 2; do
  for env in 0 5; do
    echo "ERM $env $trial {\"batch_size\": 32}"
    echo "LatentDR $env $trial {\"batch_size\": 32}"
    echo "LatentDRDelayed $env $trial {\"batch_size\": 32, \"ldr_start_step\": $start}"
  done
done | OMP_NUM_THREADS=1 xargs -P 2 -L 1 -d '\n' sh -c \
  'set -- $0; alg=$1 env=$2 trial=$3; shift 3; ldr train --algorithm "$alg" --dataset RotatedDigits --test_envs "$env" \
     --trial_seed "$trial" --seed "$trial" --steps 2000 --hparams "$*" --save_model_every_checkpoint \
     --output_dir "'"$work"'/cnn/${alg}_env${env}_trial${trial}" > /dev/null'
