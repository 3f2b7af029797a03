#!/usr/bin/env bash
# Issue 16, part 4: long-tailed digits (plan: leaderboards/long_tail/STUDY.md). Resumable: a run
# folder with `done` is skipped. Usage: studies/long_tail.sh WORK_DIR
set -euo pipefail
work=${1:?usage: studies/long_tail.sh WORK_DIR}
mkdir -p "$work/runs"
for seed in 0 1 2 3 4; do
  for dataset in LongTailDigits10 LongTailDigits50 LongTailDigits100; do
    for algorithm in ERM ERMLogitAdjusted LatentDR LatentDRLongTail; do
      echo "$algorithm $dataset $seed"
    done
  done
done | OMP_NUM_THREADS=1 xargs -P 2 -L 1 sh -c \
  'ldr train --algorithm "$0" --dataset "$1" --test_envs 1 --trial_seed "$2" --seed "$2" --output_dir "'"$work"'/runs/$0_$1_$2" > /dev/null'
python "$(dirname "$0")/long_tail_report.py" "$work/runs" --out "$(dirname "$0")/../leaderboards/long_tail"
