"""Issue 16, part 5: k* Γ′, alignment and uniformity of the checkpoints a selection method picked,
each algorithm against a baseline, paired over (test domain, trial).

With ``--score`` it first scores what is missing, exactly as ``ldr demo`` does: every finished
single-test-domain run's final featurizer and every selected earlier checkpoint (``model_step<k>.pkl``)
on the held-out domain's ``in`` split, into ``SCORES`` (cells already scored are skipped). Then,
per algorithm, the metric of the selected checkpoint of each (test env, trial) is averaged over the
test envs of a trial, and ``baseline − algorithm`` is paired over trials: mean, SE (sd/√n, ddof 1), n.
The same pairing as the accuracy verdicts (``benchmarks/dg_trial_sets.py``).

    python studies/selected_metrics.py WORK/sweep WORK/scores --dataset RotatedDigitsFlat --score
    python studies/selected_metrics.py WORK/sweep WORK/scores --dataset CorruptedDigitsFlat --trials 0,1,2 --score
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

from ldr_plugin.demo import heldout_cells, score_stage, selected_cells
from ldr_plugin.domainbed.extras import index_records, last_steps, selected_metric_by_group
from ldr_plugin.domainbed.paired import complete_trial_means, paired_difference
from ldr_plugin.domainbed.runs import read_run_records, read_sweep
from ldr_plugin.domainbed.tables import SweepSelection
from ldr_plugin.leaderboard.records import read_project_records

METRICS = ("gamma_prime", "alignment", "uniformity")


def run_args(model_id: str) -> dict:
    """The arguments of the run of a ``domainbed:<run>[/model_step<k>.pkl]`` cell."""
    path = Path(model_id.split(":", 1)[1])
    records = read_run_records(path.parent if path.suffix == ".pkl" else path)
    return records[0]["args"] if records else {}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sweep", type=Path)
    parser.add_argument("scores", type=Path)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--baseline", default="LatentDR")
    parser.add_argument("--method", default="iid", choices=["iid", "oracle"])
    parser.add_argument("--score", action="store_true", help="score the missing cells first (as ldr demo does)")
    parser.add_argument("--trials", default=None, help="comma-separated trial seeds (default: all)")
    args = parser.parse_args()
    trials = None if args.trials is None else {int(t) for t in args.trials.split(",")}
    sel = SweepSelection.build(read_sweep(str(args.sweep), progress=False), methods=(args.method,))
    found: dict[str, set[str]] = {}  # dataset -> algorithms
    for _, dataset, algorithm, _ in sel.choices[args.method]:
        found.setdefault(dataset, set()).add(algorithm)
    if args.dataset not in found:
        raise SystemExit(f"{args.sweep}: no runs of dataset {args.dataset!r}; found {sorted(found)}")
    if args.baseline not in found[args.dataset]:
        raise SystemExit(f"{args.sweep}: no {args.baseline!r} runs on {args.dataset}; found {sorted(found[args.dataset])}")
    if args.score:
        cells = [c for c in heldout_cells(args.sweep) + selected_cells(args.sweep)
                 if (a := run_args(c.model_id)).get("dataset") == args.dataset
                 and (trials is None or a.get("trial_seed") in trials)]
        score_stage(cells, args.scores, lambda m: print(m, file=sys.stderr))
    index = index_records(read_project_records([args.scores]))
    final = last_steps(sel)
    algorithms = sorted(found[args.dataset])
    if sel.sweep.unfinished_runs():
        print(f"note: {len(sel.sweep.incomplete_runs())} runs without `done` and {len(sel.sweep.missing)} expected "
              "runs without results: the trials of algorithms they belong to are left out", file=sys.stderr)
    print(f"{args.dataset}, {args.method} selection: metric of the selected checkpoints' featurizers on the held-out "
          f"domain, mean over test domains per trial; {args.baseline} − X paired over trials (SE, n)")
    for metric in METRICS:
        per_algorithm: dict[str, dict[int, float]] = {}
        missing = []
        for algorithm in algorithms:
            by_group, _ = selected_metric_by_group(sel, args.method, index, metric, args.dataset, algorithm, None,
                                                   final, layer="featurizer")
            missing += [f"{algorithm} trial {key[0]} env {key[3]}" for key, value in by_group.items()
                        if value is None and key not in sel.incomplete_groups
                        and (trials is None or key[0] in trials)]
            # complete trials only: every domain scored, no run of the trial unfinished or not started
            per_algorithm[algorithm] = {t: v for t, v in complete_trial_means(sel, args.dataset, algorithm,
                                                                               by_group).items()
                                        if trials is None or t in trials}
        print(f"\n{metric}" + (f"  (not scored: {len(missing)}, e.g. {missing[0]})" if missing else ""))
        base = per_algorithm.get(args.baseline, {})
        for algorithm, per_trial in per_algorithm.items():
            values = list(per_trial.values())
            mean = float(np.mean(values)) if values else math.nan
            se = float(np.std(values, ddof=1) / math.sqrt(len(values))) if len(values) > 1 else math.nan
            line = f"  {algorithm:24s} {mean:9.4f} ± {se:.4f} (n={len(values)})"
            if algorithm != args.baseline:
                d = paired_difference(per_trial, base)
                if d is None:
                    line += f"   {args.baseline} − X: no common trial"
                else:
                    flag = "n/a" if d.se is None else "detected" if abs(d.mean) > 2 * d.se else "no difference detected"
                    se = math.nan if d.se is None else d.se
                    line += f"   {args.baseline} − X {d.mean:+.4f} (SE {se:.4f}, n={d.n}) {flag}"
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
