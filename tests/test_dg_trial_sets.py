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
