"""Training curves of LatentDR's three branches and its soft-label purity, averaged over runs (a plot).

    python studies/branch_curves.py SWEEP_DIR --algorithm LatentDR --out leaderboards/X/plots/branches.png

Reads ``results.jsonl`` of every finished run of the algorithm in a sweep folder (DomainBed's
records average each ``update`` value over the steps since the previous checkpoint) and plots,
per dataset, the mean over runs of ``loss_clean``, ``loss_degraded``, ``loss_restored`` and, on a
second axis, ``soft_label_purity``, ``acc_degraded`` and ``acc_restored``, against the step.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

LOSSES = ("loss_clean", "loss_degraded", "loss_restored")
RATES = ("soft_label_purity", "acc_degraded", "acc_restored")


def curves(sweep: Path, algorithm: str) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray, int]]]:
    """dataset -> key -> (steps, mean over runs, number of runs) for every key of LOSSES + RATES."""
    series: dict[str, dict[str, dict[int, list[float]]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    runs: dict[str, int] = defaultdict(int)
    for results in sorted(sweep.glob("*/results.jsonl")):
        if not (results.parent / "done").exists():
            continue
        records = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
        if not records or records[0]["args"]["algorithm"] != algorithm:
            continue
        dataset = records[0]["args"]["dataset"]
        runs[dataset] += 1
        for rec in records:
            for key in LOSSES + RATES:
                if key in rec:
                    series[dataset][key][rec["step"]].append(rec[key])
    return {ds: {key: (np.array(sorted(v)), np.array([np.mean(v[s]) for s in sorted(v)]), runs[ds])
                 for key, v in keys.items()} for ds, keys in series.items()}


def plot(data: dict, algorithm: str, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(data), figsize=(6.5 * len(data), 4.2), squeeze=False)
    for ax, (dataset, keys) in zip(axes[0], sorted(data.items())):
        for key in LOSSES:
            if key in keys:
                steps, mean, _ = keys[key]
                ax.plot(steps, mean, label=key)
        ax.set_xlabel("step")
        ax.set_ylabel("loss (mean over runs)")
        right = ax.twinx()
        for key, style in zip(RATES, (":", "--", "-.")):
            if key in keys:
                steps, mean, _ = keys[key]
                right.plot(steps, mean, style, color="grey" if key == "soft_label_purity" else None, label=key)
        right.set_ylim(0, 1)
        right.set_ylabel("purity / branch accuracy")
        n_runs = next(iter(keys.values()))[2]
        ax.set_title(f"{algorithm} on {dataset} ({n_runs} runs)")
        lines = ax.get_legend_handles_labels()
        more = right.get_legend_handles_labels()
        ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=8, loc="center right")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", type=Path)
    parser.add_argument("--algorithm", default="LatentDR")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    data = curves(args.sweep, args.algorithm)
    if not data:
        raise SystemExit(f"no finished {args.algorithm} run with branch losses under {args.sweep}")
    plot(data, args.algorithm, args.out)
    for dataset, keys in sorted(data.items()):
        last = {k: round(float(v[1][-1]), 3) for k, v in keys.items()}
        first = {k: round(float(v[1][0]), 3) for k, v in keys.items()}
        print(f"{dataset}: first checkpoint {first}\n{dataset}: last checkpoint {last}")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
