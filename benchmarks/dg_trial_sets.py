"""Training-domain-validation accuracy of a DomainBed sweep, by set of trials.

DomainBed's "Averages" computation (per trial the mean over the held-out domains of the checkpoint
training-domain validation picks, then mean ± SE over trials, SE = population std / sqrt(n) as in
``collect_results``), restricted to each given set of trials; plus the per-trial (paired)
difference of two algorithms with its sample SE. Only trials with every held-out domain finished
count. Used for the 5001-step study, whose trials 3-5 were added after trials 0-2
(``leaderboards/dg_study_5001/STUDY.md``).

Usage:
  python benchmarks/dg_trial_sets.py study5001/RotatedDigitsFlat/sweep --sets 0,1,2 3,4,5 0,1,2,3,4,5
  python benchmarks/dg_trial_sets.py WORK/sweep --dataset CorruptedDigitsFlat --method LatentDR --baseline ERM
  python benchmarks/dg_trial_sets.py GRID/sweep CONTROLS/sweep --dataset RotatedDigitsFlat --method LatentDRDelayed
      # several folders are read as one sweep (the algorithms must not overlap with different protocols)
  python benchmarks/dg_trial_sets.py WORK/cnn --method LatentDRDelayed --baseline ERM --test_envs 0,5
      # a study holding out only some domains: a trial is complete, and averaged, over these
"""

from __future__ import annotations

import argparse

import numpy as np

from ldr_plugin.domainbed import paired
from ldr_plugin.domainbed.manifest import expected_files
from ldr_plugin.domainbed.protocols import check_not_mixed, compared_differences, grid_values
from ldr_plugin.domainbed.runs import read_sweep
from ldr_plugin.domainbed.tables import SweepSelection
from ldr_plugin.errors import LdrError

GRID = frozenset({"ldr_start_step"})  # the delayed start's grid (studies/delayed_start.sh), one hparams seed per point


def trial_means(sel: SweepSelection, trials: set[int], dataset: str) -> dict[str, dict[int, float]]:
    """{algorithm: {trial: mean held-out accuracy (%) over the test domains}} of these trials, complete
    trials only (:func:`ldr_plugin.domainbed.paired.trial_means`: a trial with a run unfinished, or one
    its sweep expects and has not started, is left out)."""
    algorithms = sorted({key[2] for key in sel.choices["iid"] if key[1] == dataset})
    means = {a: {t: v for t, v in paired.trial_means(sel, "iid", dataset, a).items() if t in trials}
             for a in algorithms}
    return {a: m for a, m in means.items() if m}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dirs", nargs="+", metavar="sweep_dir")
    parser.add_argument("--sets", nargs="+", default=["0,1,2"], help="comma-separated trial seeds, one set each")
    parser.add_argument("--method", default="LatentDR")
    parser.add_argument("--baseline", default="ERM")
    parser.add_argument("--dataset", default=None, help="the dataset, when the sweep holds several")
    parser.add_argument("--test_envs", default=None, help="comma-separated held-out domains a study holds out "
                        "(default: every domain of the dataset); runs with other test domains are left out")
    args = parser.parse_args()
    where = ", ".join(args.sweep_dirs)
    sweep = read_sweep(args.sweep_dirs, progress=False)
    try:  # a row pooling two budgets (a 2000-step grid beside 5001-step baselines) is refused; the delayed
        # start's grid over ldr_start_step (one hparams seed per point) is selected over, as DomainBed would
        check_not_mixed(sweep, where, GRID)
    except LdrError as exc:
        raise SystemExit(str(exc)) from None
    datasets = {record["args"]["dataset"] for record in sweep.records}
    if args.dataset is not None and args.dataset not in datasets:
        raise SystemExit(f"{where}: no runs of dataset {args.dataset!r}; found {sorted(datasets)}")
    if args.dataset is None and len(datasets) > 1:
        raise SystemExit(f"the sweep holds several datasets, {sorted(datasets)}: choose one with --dataset")
    dataset = args.dataset or next(iter(datasets))
    algorithms = {record["args"]["algorithm"] for record in sweep.records}
    for name in (args.method, args.baseline):
        if name not in algorithms:
            raise SystemExit(f"{where}: no runs of algorithm {name!r}; found {sorted(algorithms)}")
    differ = compared_differences(sweep, dataset, args.baseline, args.method)
    if differ:  # e.g. a 2000-step grid beside 5001-step baselines: two rows, each one protocol, not comparable
        raise SystemExit(f"{where}: {args.method} and {args.baseline} on {dataset} were trained under different "
                         f"protocols ({differ}); compare runs of one budget")
    if sweep.unfinished_runs():
        print(f"note: {len(sweep.incomplete_runs())} runs without `done` and {len(sweep.missing)} expected runs "
              "without results: the trials of algorithms they belong to are left out")
    if not all(expected_files(d) for d in args.sweep_dirs):  # a sweep not written by `ldr train --sweep`
        print("note: the sweep has no list of expected runs, so runs not yet started cannot be seen; "
              "a hyperparameter grid still running would be selected over its finished points only")
    for name, values in grid_values(sweep, GRID).items():  # a grid point never launched has no expected runs
        print(f"note: a grid over {name} in {{{', '.join(map(str, values))}}} (its runs' --hparams), selected over "
              "as among hparams seeds")
    held_out = {dataset: [int(e) for e in args.test_envs.split(",")]} if args.test_envs else None
    try:
        sel = SweepSelection.build(sweep, ("iid",), held_out=held_out)
    except LdrError as exc:
        raise SystemExit(f"--test_envs: {exc}") from None
    if held_out:
        print(f"note: held-out domains {', '.join(map(str, sel.test_domains(dataset)))} of {dataset} only "
              f"(--test_envs): {len(sel.sweep.runs)} of {len(sweep.runs)} runs")
    for text in args.sets:
        trials = {int(t) for t in text.split(",")}
        means = trial_means(sel, trials, dataset)
        print(f"trials {text}:")
        for algorithm, by_trial in sorted(means.items()):
            v = np.array(list(by_trial.values()))
            if len(v):
                print(f"  {algorithm:<22} {v.mean():6.2f} ± {v.std() / np.sqrt(len(v)):.2f}  ({len(v)} trials)")
        diff = paired.paired_difference(means.get(args.baseline, {}), means.get(args.method, {}))
        if diff is not None:
            se = float("nan") if diff.se is None else diff.se
            print(f"  {args.method} - {args.baseline}: {diff.mean:+.2f} (paired SE {se:.2f}, {diff.n} trials; "
                  f"per trial {', '.join(f'{d:+.2f}' for d in diff.per_trial.values())})")


if __name__ == "__main__":
    main()
