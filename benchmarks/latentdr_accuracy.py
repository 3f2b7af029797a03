"""LatentDR vs ERM (and ablations) on RotatedDigits: leave-one-domain-out, trials, training-domain validation.

Every run is a DomainBed run folder (``results.jsonl``, ``done``) written by the project's built-in
loop (``ldr_plugin.domainbed.loop.train``), so ``collect_results`` and the leaderboard read them.
Selection is DomainBed's training-domain validation: per run, the checkpoint with the best mean
``env{i}_out_acc`` over the training domains; reported accuracy is ``env{t}_in_acc`` of the held-out
domain. Cells are mean ± SE over trials (population std / sqrt(n), as collect_results).

Usage:
  python benchmarks/latentdr_accuracy.py --algorithms ERM LatentDR --trials 0 1 2 --steps 300 \
      --batch-size 8 --jobs 2 --out /tmp/ldr_acc
  python benchmarks/latentdr_accuracy.py --summarize-only --out /tmp/ldr_acc
"""

from __future__ import annotations

import argparse
import json
import math
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

DATASET = "RotatedDigits"


def _algorithm(name: str):
    """Host-free twins for names the loop cannot resolve without DomainBed (Mixup)."""
    if name == "Mixup":
        from ldr_plugin.domainbed.host import import_domainbed

        if import_domainbed("domainbed.algorithms") is None:
            from ldr_plugin.domainbed.twins import Mixup

            return Mixup
    return name


def run_one(job: dict) -> str:
    """Train one (algorithm, test env, trial) with one torch thread; returns the run folder."""
    import torch

    from ldr_plugin.domainbed.loop import TrainConfig, train

    torch.set_num_threads(1)
    out = train(TrainConfig(_algorithm(job["algorithm"]), DATASET, [job["test_env"]], job["dir"], hparams=job["hparams"],
                trial_seed=job["trial"], seed=job["trial"], steps=job["steps"],
                checkpoint_freq=job["checkpoint_freq"]))
    return str(out)


def select_training_domain(records: list[dict], test_env: int) -> dict:
    """The checkpoint with the best mean training-domain out-split accuracy (DomainBed's IIDAccuracy)."""
    def val(r):
        envs = [k for k in r if k.startswith("env") and k.endswith("_out_acc") and k != f"env{test_env}_out_acc"]
        return sum(r[k] for k in envs) / len(envs)

    best = max(records, key=val)
    return {"val": val(best), "test": best[f"env{test_env}_in_acc"], "step": best["step"], "last": records[-1]}


def summarize(out: Path, algorithms: list[str] | None = None) -> str:
    """Markdown table: per test domain and average, mean ± SE over trials, for each algorithm folder."""
    cells: dict[str, dict[int, dict[int, dict]]] = defaultdict(lambda: defaultdict(dict))
    for results in sorted(out.glob("*/*/results.jsonl")):
        if not (results.parent / "done").exists():
            continue
        records = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
        args = records[0]["args"]
        label = results.parent.parent.name
        test_env = args["test_envs"][0]
        cells[label][test_env][args["trial_seed"]] = select_training_domain(records, test_env)
    labels = [a for a in (algorithms or sorted(cells)) if a in cells]
    envs = sorted({e for lab in labels for e in cells[lab]})
    head = "| algorithm | " + " | ".join(f"env{e}" for e in envs) + " | Avg | train-val | trials |"
    lines = [head, "|" + "---|" * (len(envs) + 4)]
    for lab in labels:
        row, per_trial, vals = [], defaultdict(list), []
        for e in envs:
            accs = [c["test"] for c in cells[lab][e].values()]
            vals += [c["val"] for c in cells[lab][e].values()]
            for t, c in cells[lab][e].items():
                per_trial[t].append(c["test"])
            row.append(_mean_se(accs))
        complete = [sum(v) / len(v) for v in per_trial.values() if len(v) == len(envs)]
        n = len(complete)
        lines.append(f"| {lab} | " + " | ".join(row) + f" | {_mean_se(complete)} | "
                     f"{100 * sum(vals) / max(len(vals), 1):.1f} | {n} |")
    return "\n".join(lines)


def _mean_se(accs: list[float]) -> str:
    if not accs:
        return "X"
    m = sum(accs) / len(accs)
    if len(accs) == 1:
        return f"{100 * m:.1f}"
    sd = math.sqrt(sum((a - m) ** 2 for a in accs) / len(accs))
    return f"{100 * m:.1f} ± {100 * sd / math.sqrt(len(accs)):.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algorithms", nargs="+", default=["ERM", "LatentDR"])
    parser.add_argument("--test-envs", nargs="+", type=int, default=[0, 1, 2, 3, 4, 5])
    parser.add_argument("--trials", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--checkpoint-freq", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--hparams", default="{}", help="JSON overrides for every algorithm")
    parser.add_argument("--label", default=None, help="folder name for the runs (default: algorithm name)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("/tmp/ldr_accuracy"))
    parser.add_argument("--summarize-only", action="store_true")
    args = parser.parse_args()
    if not args.summarize_only:
        jobs = []
        for trial in args.trials:
            for env in args.test_envs:
                for alg in args.algorithms:
                    label = args.label or alg
                    hp = {"batch_size": args.batch_size, **json.loads(args.hparams)}
                    jobs.append({"algorithm": alg, "test_env": env, "trial": trial, "steps": args.steps,
                                 "checkpoint_freq": args.checkpoint_freq, "hparams": hp,
                                 "dir": str(args.out / label / f"env{env}_trial{trial}")})
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            for done in pool.map(run_one, jobs):
                print("done", done, flush=True)
    print(f"{DATASET}, steps={args.steps}, batch={args.batch_size}/domain, training-domain validation")
    print(summarize(args.out))


if __name__ == "__main__":
    main()
