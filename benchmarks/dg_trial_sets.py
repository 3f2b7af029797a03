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
"""

from __future__ import annotations

import argparse

import numpy as np

from ldr_plugin.domainbed.manifest import expected_files
from ldr_plugin.domainbed.runs import Sweep, read_sweep
from ldr_plugin.domainbed.tables import SweepSelection


def trial_means(sweep: Sweep, trials: set[int], dataset: str | None = None) -> dict[str, dict[int, float]]:
    """{algorithm: {trial: mean held-out accuracy (%) over the test domains}}, complete trials only:
    a trial of an algorithm with a run unfinished or missing (one its sweep expects) is left out."""
    def wanted(args_dataset: str, trial: int) -> bool:
        return trial in trials and (dataset is None or args_dataset == dataset)

    records = [r for r, run in zip(sweep.records, sweep.record_runs)
               if wanted(r["args"]["dataset"], r["args"]["trial_seed"]) and sweep.runs[run].done]
    unfinished = {(k[2], k[0]) for k in sweep.missing.values() if wanted(k[1], k[0])}
    unfinished |= {(r["args"]["algorithm"], r["args"]["trial_seed"]) for r, run in zip(sweep.records, sweep.record_runs)
                   if wanted(r["args"]["dataset"], r["args"]["trial_seed"]) and not sweep.runs[run].done}
    choices = SweepSelection.build(Sweep(records=records), ("iid",)).choices["iid"] if records else {}
    n_envs = {}
    per: dict[str, dict[int, list[float]]] = {}
    for (trial, name, algorithm, env), choice in choices.items():
        per.setdefault(algorithm, {}).setdefault(trial, []).append(100 * choice.test_acc)
        n_envs[name] = max(n_envs.get(name, 0), env + 1)
    if len(n_envs) > 1:
        raise SystemExit(f"the sweep holds several datasets, {sorted(n_envs)}: choose one with --dataset")
    full = max(n_envs.values(), default=0)
    return {a: {t: float(np.mean(v)) for t, v in d.items() if len(v) == full and (a, t) not in unfinished}
            for a, d in per.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir")
    parser.add_argument("--sets", nargs="+", default=["0,1,2"], help="comma-separated trial seeds, one set each")
    parser.add_argument("--method", default="LatentDR")
    parser.add_argument("--baseline", default="ERM")
    parser.add_argument("--dataset", default=None, help="the dataset, when the sweep holds several")
    args = parser.parse_args()
    sweep = read_sweep(args.sweep_dir, progress=False)
    datasets = {record["args"]["dataset"] for record in sweep.records}
    if args.dataset is not None and args.dataset not in datasets:
        raise SystemExit(f"{args.sweep_dir}: no runs of dataset {args.dataset!r}; found {sorted(datasets)}")
    algorithms = {record["args"]["algorithm"] for record in sweep.records}
    for name in (args.method, args.baseline):
        if name not in algorithms:
            raise SystemExit(f"{args.sweep_dir}: no runs of algorithm {name!r}; found {sorted(algorithms)}")
    if sweep.unfinished_runs():
        print(f"note: {len(sweep.incomplete_runs())} runs without `done` and {len(sweep.missing)} expected runs "
              "without results: the trials of algorithms they belong to are left out")
    if not expected_files(args.sweep_dir):  # a sweep not written by `ldr train --sweep`
        print("note: the sweep has no list of expected runs, so runs not yet started cannot be seen; "
              "a hyperparameter grid still running would be selected over its finished points only")
    for text in args.sets:
        trials = {int(t) for t in text.split(",")}
        means = trial_means(sweep, trials, args.dataset)
        print(f"trials {text}:")
        for algorithm, by_trial in sorted(means.items()):
            v = np.array(list(by_trial.values()))
            if len(v):
                print(f"  {algorithm:<22} {v.mean():6.2f} ± {v.std() / np.sqrt(len(v)):.2f}  ({len(v)} trials)")
        common = sorted(set(means.get(args.method, {})) & set(means.get(args.baseline, {})))
        if common:
            diff = np.array([means[args.method][t] - means[args.baseline][t] for t in common])
            se = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else float("nan")
            print(f"  {args.method} - {args.baseline}: {diff.mean():+.2f} (paired SE {se:.2f}, {len(diff)} trials; "
                  f"per trial {', '.join(f'{d:+.2f}' for d in diff)})")


if __name__ == "__main__":
    main()
