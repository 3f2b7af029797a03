#!/usr/bin/env bash
# Issue 16, part 1: the controls at DomainBed's default 5001 steps on both embedded shifts
# (plan and decision rule: leaderboards/dg_controls_5001/STUDY.md). Resumable: re-running skips
# finished runs. Usage: studies/controls_5001.sh WORK_DIR [N_TRIALS]   (default 3 trials)
set -euo pipefail
work=${1:?usage: studies/controls_5001.sh WORK_DIR [N_TRIALS]}
trials=${2:-3}
sweep="$work/sweep"
# DATASETS=RotatedDigitsFlat: one dataset first (the same run folders as the full list)
common=(--engine builtin --workers 2 --datasets "${DATASETS:-RotatedDigitsFlat,CorruptedDigitsFlat}" --n_trials "$trials"
        --steps 5001 --single_test_envs --save_model_every_checkpoint --output_dir "$sweep")
# ERM with DomainBed's weight-decay range: 4 hparams seeds (0 = 1e-4, 1-3 drawn from 10**U(-6, -2));
# every other key is fixed to the defaults, so only the weight decay varies across seeds.
ldr train --sweep --algorithms ERMWeightDecay --n_hparams 4 "${common[@]}" \
    --hparams '{"batch_size": 32, "lr": 0.001, "mlp_width": 256, "mlp_depth": 3, "mlp_dropout": 0.0, "resnet_dropout": 0.0, "vit_dropout": 0.0}'
# everything else at DomainBed's defaults (hparams_seed 0), batch 32 per domain. STAGE=1: only the
# algorithms of the regularisation and Mixup verdicts and D-only (the plan's amendment); a subset
# gives the same run folders, so the full list later skips what stage 1 trained.
algorithms=ERM,ERMLabelSmoothing,Mixup,LatentDR,LatentDRDegradeOnly
[ "${STAGE:-}" = 1 ] || algorithms=$algorithms,LatentDRRestoreOnly,LatentDRNoise,LatentDRSeparateHeads,LatentDRCrossDomain
# ALGORITHMS=LatentDRNoise: one stage-2 variant at a time (same run folders; finished ones are skipped)
algorithms=${ALGORITHMS:-$algorithms}
ldr train --sweep --n_hparams 1 "${common[@]}" --hparams '{"batch_size": 32}' --algorithms "$algorithms"
