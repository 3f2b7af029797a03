#!/usr/bin/env bash
# Issue 16, part 2: the paper's regime by proxy, a delayed start (plan:
# leaderboards/dg_delayed_start/STUDY.md). Resumable. Usage: studies/delayed_start.sh WORK_DIR
# (STEPS="600" studies/delayed_start.sh WORK_DIR: only those budgets; default 600 2000 5001)
set -euo pipefail
work=${1:?usage: studies/delayed_start.sh WORK_DIR}
datasets=RotatedDigitsFlat,CorruptedDigitsFlat
common=(--engine builtin --workers 2 --datasets "$datasets" --n_trials 3 --single_test_envs
        --save_model_every_checkpoint)
# Every hparam fixed to its default, so that the hparams seed k only labels the grid point k.
fixed() {  # fixed START_STEP -> the --hparams JSON
  python - "$1" <<'PY'
import json, sys
from ldr_plugin.latentdr.config import LatentDRConfig
hp = {"batch_size": 32, "lr": 0.001, "mlp_width": 256, "mlp_depth": 3, "mlp_dropout": 0.0,
      "resnet_dropout": 0.0, "vit_dropout": 0.0, **LatentDRConfig().to_hparams()}
hp["ldr_start_step"] = int(sys.argv[1])
print(json.dumps(hp))
PY
}
for steps in ${STEPS:-600 2000 5001}; do
  sweep="$work/steps$steps/sweep"
  if [ "$steps" != 5001 ]; then  # the 5001-step ERM and LatentDR runs are the controls study's
    ldr train --sweep --algorithms ERM,LatentDR --n_hparams 1 --steps "$steps" --hparams '{"batch_size": 32}' \
        --output_dir "$sweep" "${common[@]}"
  fi
  k=1
  for fraction in 0.1 0.25 0.5; do  # grid point k = hparams seed k of LatentDRDelayed
    start=$(python -c "print(round($fraction * $steps))")
    ldr train --sweep --algorithms LatentDRDelayed --n_hparams_from "$k" --n_hparams "$((k + 1))" \
        --steps "$steps" --hparams "$(fixed "$start")" --output_dir "$sweep" "${common[@]}"
    k=$((k + 1))
  done
done
