#!/usr/bin/env bash
# Issue 16, part 3: DomainBed's random hyperparameter search at its default budget (plan:
# leaderboards/dg_search_5001/STUDY.md). About 15-21 hours of both cores on the project's 2-core build
# machine (measured per draw: benchmarks/search_cost.py), so there it runs session by session with
# studies/keep_runs.sh (the plan's amendment 1); on a Slurm cluster --launcher slurm. Resumable.
# Usage: studies/random_search_5001.sh WORK_DIR [LAUNCHER_ARGS...]
# To end a session without losing the runs in flight: touch WORK_DIR/sweep/STOP (they finish, no new one starts,
# the sweep exits with an error counting the jobs not started); delete it before the next session's run.
set -euo pipefail
work=${1:?usage: studies/random_search_5001.sh WORK_DIR [--launcher slurm | --workers N]}
shift
launcher=("$@")
[ ${#launcher[@]} -gt 0 ] || launcher=(--workers 2)
ldr train --sweep --engine builtin "${launcher[@]}" --algorithms ERM,Mixup,LatentDR \
    --datasets RotatedDigitsFlat,CorruptedDigitsFlat --n_trials 3 --n_hparams 5 --steps 5001 \
    --single_test_envs --output_dir "$work/sweep"
