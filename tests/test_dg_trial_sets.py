"""``benchmarks/dg_trial_sets.py`` on several sweep folders: read as one sweep, a row pooling two budgets
refused, and a grid over ``ldr_start_step`` (one hparams seed per point) named with the values its runs
set, so a grid point never launched (no expected runs to miss) shows; the paired difference checked
against DomainBed's Averages formula on each trial's records."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ldr_plugin.domainbed.runs import Sweep, read_sweep
from ldr_plugin.domainbed.synthetic_sweep import write_synthetic_sweep
from ldr_plugin.domainbed.tables import SweepSelection, domainbed_tables

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "dg_trial_sets.py"


def _edit(root: Path, **args) -> None:
    for path in root.glob("*/results.jsonl"):
        records = [json.loads(line) for line in path.read_text().splitlines()]
        for record in records:
            record["args"].update(args)
            if record["args"]["algorithm"] == "LatentDRDelayed":  # grid point k = hparams seed k
                start = {0: 0, 1: 20, 2: 100}[record["args"]["hparams_seed"]]
                record["args"]["hparams"] = json.dumps({"batch_size": 32, "ldr_start_step": start})
                record["hparams"]["ldr_start_step"] = start
        path.write_text("".join(json.dumps(r) + "\n" for r in records))


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], check=False, capture_output=True, text=True)


def test_two_folders_grid_values_and_pooling(tmp_path):
    grid, base = tmp_path / "grid", tmp_path / "base"
    write_synthetic_sweep(grid, n_records=3 * 3 * 10 * 5, seed=0, datasets={"VLCS": 4},
                          algorithms=("LatentDRDelayed",), n_trials=3)
    write_synthetic_sweep(base, n_records=3 * 10 * 5, seed=1, datasets={"VLCS": 4}, algorithms=("LatentDR",), n_trials=3)
    _edit(grid, steps=200)
    _edit(base, steps=200)
    done = _run(str(grid), str(base), "--method", "LatentDRDelayed", "--baseline", "LatentDR", "--sets", "0,1,2")
    assert done.returncode == 0, done.stderr
    assert "note: a grid over ldr_start_step in {0, 20, 100}" in done.stdout

    records = read_sweep([str(grid), str(base)], progress=False).records

    def avg(trial: int, algorithm: str) -> float:  # DomainBed's Averages of one trial's records
        one = [r for r in records if r["args"]["trial_seed"] == trial]
        table = next(t for t in domainbed_tables(SweepSelection.build(Sweep(records=one)))
                     if t.table_id == "averages__iid")
        return next(r.cells[-1].value for r in table.rows if r.label == algorithm)

    per_trial = [avg(t, "LatentDRDelayed") - avg(t, "LatentDR") for t in range(3)]
    line = next(x for x in done.stdout.splitlines() if "LatentDRDelayed - LatentDR" in x)
    assert float(line.split(":")[1].split()[0]) == pytest.approx(sum(per_trial) / 3, abs=0.051)

    for run in grid.iterdir():  # the last grid point never launched: no expected run is missing, the note shows it
        if run.is_dir() and json.loads((run / "results.jsonl").read_text().splitlines()[0])["args"]["hparams_seed"] == 2:
            shutil.rmtree(run)
    done = _run(str(grid), str(base), "--method", "LatentDRDelayed", "--baseline", "LatentDR")
    assert done.returncode == 0 and "ldr_start_step in {0, 20} (its runs' --hparams)" in done.stdout

    _edit(base, steps=5001)  # the baseline of another budget: the row would pool two budgets
    refused = _run(str(grid), str(base), "--method", "LatentDRDelayed", "--baseline", "LatentDR")
    assert refused.returncode != 0 and "different protocols (steps 5001 vs 200)" in refused.stderr


def test_test_envs_pairs_trials_over_the_domains_a_study_holds_out(tmp_path):
    """`--test_envs 0,3`: runs of other test domains are left out, and a trial is complete over 0 and 3
    (without it, a sweep holding out only those has no complete trial and prints no difference)."""
    sweep = tmp_path / "s"
    write_synthetic_sweep(sweep, n_records=2 * 3 * 10 * 5, seed=0, datasets={"VLCS": 4},
                          algorithms=("ERM", "LatentDR"), n_trials=3)
    _edit(sweep, steps=200)
    for path in sweep.glob("*/results.jsonl"):
        args = json.loads(path.read_text().splitlines()[0])["args"]
        if args["test_envs"] not in ([0], [3]) and (len(args["test_envs"]) > 1 or args["algorithm"] == "LatentDR"):
            shutil.rmtree(path.parent)  # ERM keeps domains 1 and 2, which --test_envs leaves out
    kept = [r for r in read_sweep(str(sweep), progress=False).records if r["args"]["test_envs"] in ([0], [3])]

    def avg(trial: int, algorithm: str) -> float:
        one = [r for r in kept if r["args"]["trial_seed"] == trial]
        table = next(t for t in domainbed_tables(SweepSelection.build(Sweep(records=one)))
                     if t.table_id == "averages__iid")
        return next(r.cells[-1].value for r in table.rows if r.label == algorithm)

    done = _run(str(sweep), "--test_envs", "0,3")
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if "LatentDR - ERM" in x)
    per_trial = [float(v) for v in line.split("per trial ")[1].rstrip(")").split(", ")]
    assert per_trial == pytest.approx([avg(t, "LatentDR") - avg(t, "ERM") for t in range(3)], abs=0.0051)
    assert "held-out domains 0, 3 of VLCS only" in done.stdout
    without = _run(str(sweep))
    assert without.returncode == 0 and "LatentDR - ERM" not in without.stdout
    bad = _run(str(sweep), "--test_envs", "0,9")
    assert bad.returncode != 0 and "0..3" in bad.stderr
