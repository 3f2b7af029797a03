"""``studies/grid_validation.py`` (the delayed start's decision rule): per grid point, the
training-domain validation accuracy of the checkpoint that selection picks within the point's runs,
checked against a brute-force reading of the records (DomainBed's rule: per held-out domain, the
single-test-env record with the best mean validation accuracy over the training domains), and the
candidate and its paired difference against the baseline recomputed from those numbers."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ldr_plugin.domainbed.runs import read_sweep
from ldr_plugin.domainbed.synthetic_sweep import write_synthetic_sweep

SCRIPT = Path(__file__).resolve().parents[1] / "studies" / "grid_validation.py"
# hparams seed -> ldr_start_step: the plan's fractions 0.5, 0.1, 0.25 of the synthetic runs' 1500 steps (not in seed
# order: the script must read them)
STARTS = {0: 750, 1: 150, 2: 375}


def _sweep(root: Path) -> Path:
    write_synthetic_sweep(root, n_records=2 * 2 * 3 * 3 * 10 * 5, seed=3, datasets={"VLCS": 4, "PACS": 4},
                          algorithms=("LatentDR", "LatentDRDelayed"), n_trials=3)
    for path in root.glob("*/results.jsonl"):
        records = [json.loads(line) for line in path.read_text().splitlines()]
        for record in records:
            start = STARTS[record["args"]["hparams_seed"]] if record["args"]["algorithm"] == "LatentDRDelayed" else 0
            record["hparams"]["ldr_start_step"] = start
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return root


def _brute_force(records: list[dict], dataset: str, algorithm: str, seed: int | None,
                 trials: tuple[int, ...] = (0, 1, 2)) -> dict[int, float]:
    """{trial: mean over the 4 held-out domains of the best validation accuracy (%)} (seed None: all seeds)."""
    best: dict[tuple[int, int], float] = {}
    for r in records:
        a = r["args"]
        if (a["dataset"], a["algorithm"]) != (dataset, algorithm) or len(a["test_envs"]) != 1:
            continue
        if seed is not None and a["hparams_seed"] != seed:
            continue
        env = a["test_envs"][0]
        val = np.mean([r[f"env{j}_out_acc"] for j in range(4) if j != env])
        key = (a["trial_seed"], env)
        best[key] = max(best.get(key, -1.0), 100 * val)
    return {t: float(np.mean([best[(t, e)] for e in range(4)])) for t in trials}


def test_grid_points_candidate_and_paired_difference_match_a_brute_force(tmp_path):
    sweep = _sweep(tmp_path / "sweep")
    out = tmp_path / "grid.json"
    done = subprocess.run([sys.executable, str(SCRIPT), str(sweep), "--json", str(out)], check=False, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    got = json.loads(out.read_text())
    records = read_sweep(str(sweep), progress=False).records
    datasets = ["PACS", "VLCS"]
    assert got["datasets"] == datasets
    means = {}
    for seed, start in STARTS.items():
        point = got["points"][str(seed)]
        assert point["ldr_start_step"] == start
        expected = {d: _brute_force(records, d, "LatentDRDelayed", seed) for d in datasets}
        for d in datasets:
            assert {int(t): v for t, v in point["per_dataset"][d]["val"].items()} == pytest.approx(expected[d])
        means[seed] = np.mean([np.mean(list(expected[d].values())) for d in datasets])
        assert point["val_mean"] == pytest.approx(means[seed])
    assert len({round(m, 6) for m in means.values()}) == 3  # the candidate below is not a tie
    best = max(means, key=means.get)
    assert got["candidate"] == best
    assert f"candidate: hparams seed {best} (ldr_start_step {STARTS[best]})" in done.stdout
    for d in datasets:
        d_trials = np.array([_brute_force(records, d, "LatentDRDelayed", best)[t]
                             - _brute_force(records, d, "LatentDR", None)[t] for t in range(3)])
        vs = got["vs_baseline"][d]
        assert vs["n"] == 3 and vs["mean"] == pytest.approx(d_trials.mean())
        assert vs["se"] == pytest.approx(d_trials.std(ddof=1) / np.sqrt(3))
        assert vs["detected"] == bool(abs(d_trials.mean()) > 2 * vs["se"])


def test_a_grid_point_with_two_start_steps_is_refused(tmp_path):
    """Within one (hparams seed, trial) the protocol check refuses it; across trials (every run of seed 1 in
    trial 0 at another start) only the script's own check can, and it names the values."""
    sweep = _sweep(tmp_path / "sweep")
    for path in sweep.glob("*/results.jsonl"):
        records = [json.loads(line) for line in path.read_text().splitlines()]
        a = records[0]["args"]
        if (a["algorithm"], a["hparams_seed"], a["trial_seed"]) == ("LatentDRDelayed", 1, 0):
            for record in records:
                record["hparams"]["ldr_start_step"] = 999
            path.write_text("".join(json.dumps(r) + "\n" for r in records))
    done = subprocess.run([sys.executable, str(SCRIPT), str(sweep)], check=False, capture_output=True, text=True)
    assert done.returncode != 0 and "different ldr_start_step [150, 999]" in done.stderr
    one = min(p for p in sweep.glob("*/results.jsonl")
              if json.loads(p.read_text().splitlines()[0])["args"]["hparams_seed"] == 2)
    records = [json.loads(line) for line in one.read_text().splitlines()]
    for record in records:
        record["hparams"]["ldr_start_step"] = 7
    one.write_text("".join(json.dumps(r) + "\n" for r in records))
    done = subprocess.run([sys.executable, str(SCRIPT), str(sweep)], check=False, capture_output=True, text=True)
    assert done.returncode != 0 and "resolved different hyperparameters (ldr_start_step" in done.stderr


def _set_steps(folder: Path, steps: int) -> None:
    """Every record of every run under ``folder`` made a run of ``steps`` steps (another budget)."""
    for path in folder.glob("*/results.jsonl"):
        records = [json.loads(line) for line in path.read_text().splitlines()]
        for record in records:
            record["args"]["steps"] = steps
        path.write_text("".join(json.dumps(r) + "\n" for r in records))


def test_sweeps_of_two_budgets_are_refused_not_pooled(tmp_path):
    sweep = _sweep(tmp_path / "grid")
    longer = _sweep(tmp_path / "longer")
    _set_steps(longer, 5001)
    done = subprocess.run([sys.executable, str(SCRIPT), str(sweep), str(longer)], check=False, capture_output=True,
                          text=True)
    assert done.returncode != 0 and "mix runs of different protocols" in done.stderr and "vs 5001" in done.stderr


def test_no_candidate_from_a_grid_that_is_not_whole(tmp_path):
    """A point not run yet, or one complete on fewer trials than the others: the table is printed, no
    candidate is named, exit 1 (choosing among the points that happen to be there would be wrong)."""
    sweep = _sweep(tmp_path / "sweep")
    args = {p.parent: json.loads(p.read_text().splitlines()[0])["args"] for p in sweep.glob("*/results.jsonl")}
    unfinished = min(run for run, a in args.items() if (a["algorithm"], a["hparams_seed"], a["trial_seed"],
                                                        a["dataset"]) == ("LatentDRDelayed", 2, 1, "PACS"))
    (unfinished / "done").unlink()
    done = subprocess.run([sys.executable, str(SCRIPT), str(sweep)], check=False, capture_output=True, text=True)
    assert done.returncode == 1 and "candidate:" not in done.stdout and "hparams seed 2" in done.stdout
    assert "the grid is not complete" in done.stderr and "PACS: complete trials per hparams seed" in done.stderr
    assert "2: [0, 2]" in done.stderr
    for run, a in args.items():  # the point at 0.5 (seed 0) never ran
        if (a["algorithm"], a["hparams_seed"]) == ("LatentDRDelayed", 0):
            shutil.rmtree(run)
    (unfinished / "done").write_text("done")
    done = subprocess.run([sys.executable, str(SCRIPT), str(sweep)], check=False, capture_output=True, text=True)
    assert done.returncode == 1 and "candidate:" not in done.stdout
    assert "ldr_start_step 750 not run" in done.stderr
    # with the grid given as the two points that ran, it is whole again
    done = subprocess.run([sys.executable, str(SCRIPT), str(sweep), "--fractions", "0.1,0.25"], check=False,
                          capture_output=True, text=True)
    assert done.returncode == 0 and "candidate: hparams seed" in done.stdout


def test_trials_restricts_every_algorithm_to_those_trials(tmp_path):
    """--trials 0,2 (the 5001-step grid has trials 0-2, its baselines' sweep more): points and baseline
    read from those trials only, the pairing over them (n = 2)."""
    sweep = _sweep(tmp_path / "sweep")
    out = tmp_path / "grid.json"
    done = subprocess.run([sys.executable, str(SCRIPT), str(sweep), "--trials", "0,2", "--json", str(out)],
                          check=False, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    got = json.loads(out.read_text())
    records = read_sweep(str(sweep), progress=False).records
    for seed in STARTS:
        for d in got["datasets"]:
            val = {int(t): v for t, v in got["points"][str(seed)]["per_dataset"][d]["val"].items()}
            assert val == pytest.approx(_brute_force(records, d, "LatentDRDelayed", seed, trials=(0, 2)))
    best = got["candidate"]
    for d in got["datasets"]:
        diff = [_brute_force(records, d, "LatentDRDelayed", best, (0, 2))[t]
                - _brute_force(records, d, "LatentDR", None, (0, 2))[t] for t in (0, 2)]
        assert got["vs_baseline"][d]["n"] == 2 and got["vs_baseline"][d]["mean"] == pytest.approx(np.mean(diff))


def test_a_grid_beside_baselines_of_another_budget_is_refused(tmp_path):
    """Grid and baseline in separate folders, each one protocol per row, at 1500 and 5001 steps: no row
    mixes, yet the paired difference would compare two budgets; refused, naming the difference."""
    sweep = _sweep(tmp_path / "sweep")
    grid, base = tmp_path / "grid", tmp_path / "base"
    for run in sweep.iterdir():
        if run.is_dir():
            algorithm = json.loads((run / "results.jsonl").read_text().splitlines()[0])["args"]["algorithm"]
            shutil.copytree(run, (grid if algorithm == "LatentDRDelayed" else base) / run.name)
    _set_steps(base, 5001)
    done = subprocess.run([sys.executable, str(SCRIPT), str(grid), str(base)], check=False, capture_output=True,
                          text=True)
    assert done.returncode != 0 and "different protocols (steps 5001 vs" in done.stderr
