"""Issue 16, part 2: the delayed start's grid point chosen by training-domain validation
(the decision rule of ``leaderboards/dg_delayed_start/STUDY.md``).

Per grid point (hparams seed k of ``--algorithm``, its ``ldr_start_step`` read from the runs) and
per dataset: the training-domain validation accuracy of the checkpoint DomainBed's training-domain
validation picks within that grid point's runs, averaged over the test domains of a trial, then
over trials (complete trials only: :func:`ldr_plugin.domainbed.paired.complete_trial_means`), with
the held-out accuracy of the same checkpoints beside it (reported, not used). The candidate is the
point with the highest mean over the datasets of these validation means (each dataset weighs the
same; ties: the smaller start). The candidate's per-trial validation accuracy minus the baseline's
(LatentDR, start 0) is paired over trials per dataset: mean, SE (ddof 1), n, detected iff
|mean| > 2 SE.

No candidate is named (exit 1, the table still printed) unless the grid is whole: every start
``round(f · steps)`` of ``--fractions`` present, and every point complete on the same trials of
every dataset. A grid whose later points have not run yet would otherwise choose among the first.

    python studies/grid_validation.py WORK/steps2000/sweep
    python studies/grid_validation.py WORK/steps5001/sweep CONTROLS/sweep --trials 0,1,2   # 5001: the baselines
        # are the controls' (6 trials on the corruptions there; the grid has trials 0-2)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from ldr_plugin.domainbed.paired import complete_trial_means, paired_difference
from ldr_plugin.domainbed.protocols import check_not_mixed, compared_differences
from ldr_plugin.domainbed.runs import Sweep, read_sweep
from ldr_plugin.domainbed.tables import SweepSelection
from ldr_plugin.errors import LdrError


def grid_point(sweep: Sweep, algorithm: str, seed: int) -> Sweep:
    """The sweep with ``algorithm``'s runs of hparams seed ``seed`` only (its other runs and expected
    runs dropped; every other algorithm kept whole)."""
    return sweep.only(lambda key: key[2] != algorithm or key[3] == seed)


def per_trial(sel: SweepSelection, dataset: str, algorithm: str) -> tuple[dict[int, float], dict[int, float]]:
    """({trial: mean validation accuracy %}, {trial: mean held-out accuracy %}) of the checkpoints
    training-domain validation picks, complete trials only."""
    choices = sel.choices["iid"]
    val = complete_trial_means(sel, dataset, algorithm, {k: 100 * c.val_acc for k, c in choices.items()})
    test = complete_trial_means(sel, dataset, algorithm, {k: 100 * c.test_acc for k, c in choices.items()})
    return val, test


def start_steps(sweep: Sweep, algorithm: str) -> dict[int, set[int]]:
    """{hparams seed: the ldr_start_step values its runs resolved} (one each in a well-formed grid)."""
    found: dict[int, set[int]] = {}
    for record in sweep.first_records().values():
        if record["args"]["algorithm"] == algorithm:
            found.setdefault(record["args"]["hparams_seed"], set()).add(record["hparams"]["ldr_start_step"])
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sweeps", nargs="+", type=Path, help="sweep folders (the grid's, and the baseline's if apart)")
    parser.add_argument("--algorithm", default="LatentDRDelayed")
    parser.add_argument("--baseline", default="LatentDR")
    parser.add_argument("--fractions", default="0.1,0.25,0.5", help="the grid's start fractions (the plan's)")
    parser.add_argument("--trials", default=None, help="comma-separated trial seeds, every algorithm (default: all)")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    sweep = read_sweep([str(s) for s in args.sweeps], progress=False)
    if args.trials is not None:
        sweep = sweep.only_trials({int(t) for t in args.trials.split(",")})
    try:  # a 2000-step grid beside 5001-step baselines would pool two budgets: refused, as ldr leaderboard build does
        check_not_mixed(sweep, ", ".join(map(str, args.sweeps)), frozenset({"ldr_start_step"}))
    except LdrError as exc:
        raise SystemExit(str(exc)) from None
    starts = start_steps(sweep, args.algorithm)
    if not starts:
        raise SystemExit(f"{', '.join(map(str, args.sweeps))}: no {args.algorithm} runs")
    for seed, values in starts.items():
        if len(values) != 1:
            raise SystemExit(f"{args.algorithm} hparams seed {seed}: runs with different ldr_start_step {sorted(values)}")
    steps = {r["args"]["steps"] for r in sweep.first_records().values() if r["args"]["algorithm"] == args.algorithm}
    expected = {round(float(f) * next(iter(steps))) for f in args.fractions.split(",")}  # as delayed_start.sh
    found_starts = {next(iter(v)) for v in starts.values()}
    whole = SweepSelection.build(sweep, ("iid",))
    datasets = sorted({key[1] for key in whole.choices["iid"] if key[2] == args.algorithm})
    for d in datasets:  # a 2000-step grid in one folder, 5001-step baselines in another: two rows, not comparable
        differ = compared_differences(sweep, d, args.baseline, args.algorithm)
        if differ:
            raise SystemExit(f"{args.algorithm} and {args.baseline} on {d} were trained under different protocols "
                             f"({differ}); give sweeps of one budget")
    base = {d: per_trial(whole, d, args.baseline) for d in datasets}
    points = {}
    print("training-domain validation accuracy (%) of the checkpoint training-domain validation picks, "
          "mean over test domains then trials (complete trials only)")
    for seed in sorted(starts):
        sel = SweepSelection.build(grid_point(sweep, args.algorithm, seed), ("iid",))
        points[seed] = {d: per_trial(sel, d, args.algorithm) for d in datasets}
    out = {"datasets": datasets, "points": {}, "baseline": args.baseline}
    for seed, by_dataset in points.items():
        start = next(iter(starts[seed]))
        cells, means = [], []
        for d in datasets:
            val, test = by_dataset[d]
            if not val:
                cells.append(f"{d}: no complete trial")
                continue
            means.append(float(np.mean(list(val.values()))))
            cells.append(f"{d}: val {means[-1]:.2f} (held-out {np.mean(list(test.values())):.2f}, n={len(val)})")
        overall = float(np.mean(means)) if len(means) == len(datasets) else None
        out["points"][seed] = {"ldr_start_step": start, "val_mean": overall,
                               "per_dataset": {d: {"val": by_dataset[d][0], "test": by_dataset[d][1]} for d in datasets}}
        shown = f"{overall:.2f}" if overall is not None else "—"
        print(f"  hparams seed {seed} (ldr_start_step {start}): mean over datasets {shown}; " + "; ".join(cells))
    others = sorted({key[2] for key in whole.choices["iid"]} - {args.algorithm})  # the baseline, ERM, ...
    for algorithm in others:
        for d in datasets:
            val, test = per_trial(whole, d, algorithm)
            if val:
                print(f"  {algorithm} {d}: val {np.mean(list(val.values())):.2f} "
                      f"(held-out {np.mean(list(test.values())):.2f}, n={len(val)})")
    gaps = [f"ldr_start_step {s} not run" for s in sorted(expected - found_starts)]
    gaps += [f"ldr_start_step {s} is not in the grid of --fractions {args.fractions}" for s in sorted(found_starts - expected)]
    for d in datasets:
        trials = {seed: sorted(by_dataset[d][0]) for seed, by_dataset in points.items()}
        if not all(trials.values()) or len({tuple(t) for t in trials.values()}) > 1:
            gaps.append(f"{d}: complete trials per hparams seed {trials}")
    if gaps:
        print("the grid is not complete, so no candidate: " + "; ".join(gaps), file=sys.stderr)
        return 1
    _, _, best = max((p["val_mean"], -p["ldr_start_step"], seed) for seed, p in out["points"].items())
    out["candidate"] = best
    print(f"candidate: hparams seed {best} (ldr_start_step {out['points'][best]['ldr_start_step']})")
    out["vs_baseline"] = {}
    for d in datasets:
        diff = paired_difference(base[d][0], points[best][d][0])
        if diff is None:
            print(f"  {d}: candidate − {args.baseline} (validation): no common complete trial")
            continue
        detected = diff.se is not None and abs(diff.mean) > 2 * diff.se
        out["vs_baseline"][d] = {"mean": diff.mean, "se": diff.se, "n": diff.n, "detected": detected,
                                 "per_trial": diff.per_trial}
        print(f"  {d}: candidate − {args.baseline} (validation) {diff.text()}, "
              f"{'detected' if detected else 'not detected'} (|mean| > 2 SE)")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
