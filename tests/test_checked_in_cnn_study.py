"""The checked-in CNN extremes table (issue 16, part 2b) against its checked-in run records.

``leaderboards/dg_delayed_start/cnn2000/runs/`` holds the 18 finished runs and ``cnn2000/`` the table
built from them. Here every number of the table is recomputed by a brute-force reading of the records
(DomainBed's selection written out by hand, not the project's selection code), and the table is rebuilt
to check that the checked-in files are not stale.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from ldr_plugin.leaderboard.build import build_leaderboards

ROOT = Path(__file__).resolve().parents[1]
BOARD = ROOT / "leaderboards" / "dg_delayed_start" / "cnn2000"
RUNS = BOARD / "runs"
SPEC = ROOT / "registry" / "leaderboards" / "dg_delayed_start_cnn.toml"
ALGORITHMS = ("ERM", "LatentDR", "LatentDRDelayed")
ENVS = (0, 5)
NAMES = {0: "0", 5: "75"}


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]


def _held_out(select: str) -> dict[tuple[str, int, int], float]:
    """{(algorithm, trial, test env): held-out in-split accuracy (%)} of the checkpoint `select` picks:
    "iid" the first record with the highest mean training-domain out-split accuracy, "oracle" the last."""
    picked = {}
    for run in sorted(p.parent for p in RUNS.glob("*/results.jsonl")):
        records = _records(run)
        args = records[0]["args"]
        (env,) = args["test_envs"]
        if select == "iid":
            val = [np.mean([r[k] for k in r if k.startswith("env") and k.endswith("_out_acc")
                            and int(k[3:-len("_out_acc")]) != env]) for r in records]
            record = records[int(np.argmax(val))]
        else:
            record = records[-1]
        picked[(args["algorithm"], args["trial_seed"], env)] = 100 * record[f"env{env}_in_acc"]
    return picked


def _table(table_id: str) -> dict[tuple[str, str], tuple[float, float]]:
    """{(row, column): (value, err)} of one table of the checked-in csv (cells shown as — left out)."""
    with open(BOARD / "dg_delayed_start_cnn.csv", newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["table"] == table_id and r["value"]]
    return {(r["row"], r["column"]): (float(r["value"]), float(r["err"]) if r["err"] else float("nan")) for r in rows}


def test_every_run_is_there_and_matches_its_folder_name():
    names = sorted(p.name for p in RUNS.iterdir() if p.is_dir())
    assert names == sorted(f"{a}_env{e}_trial{t}" for a in ALGORITHMS for e in ENVS for t in range(3))
    for name in names:
        assert (RUNS / name / "done").exists(), name
        records = _records(RUNS / name)
        args, hparams = records[0]["args"], records[0]["hparams"]
        assert f"{args['algorithm']}_env{args['test_envs'][0]}_trial{args['trial_seed']}" == name
        assert (len(records), records[-1]["step"], args["steps"], args["seed"]) == (21, 1999, 2000, args["trial_seed"])
        assert hparams["batch_size"] == 32
        assert hparams.get("ldr_start_step") == {"ERM": None, "LatentDR": 0, "LatentDRDelayed": 500}[args["algorithm"]]


@pytest.mark.parametrize("select", ["iid", "oracle"])
def test_checked_in_table_equals_a_brute_force_reading_of_the_records(select):
    acc = _held_out(select)
    table, averages = _table(f"RotatedDigits__{select}"), _table(f"averages__{select}")
    trial_mean = {(a, t): np.mean([acc[(a, t, e)] for e in ENVS]) for a in ALGORITHMS for t in range(3)}
    for a in ALGORITHMS:
        for e in ENVS:  # DomainBed's cell: mean and population std / sqrt(n) over trials
            x = np.array([acc[(a, t, e)] for t in range(3)])
            assert table[(a, NAMES[e])] == pytest.approx((x.mean(), x.std() / np.sqrt(3)), abs=1e-6)
        # the headline: per trial the mean over the two held-out domains, then mean and population SE
        m = np.array([trial_mean[(a, t)] for t in range(3)])
        assert averages[(a, "RotatedDigits")] == pytest.approx((m.mean(), m.std() / np.sqrt(3)), abs=1e-6)
        for board in (table, averages):
            assert board[(a, "Avg")][0] == pytest.approx(m.mean(), abs=1e-6)
        if a != "LatentDR":  # the paired difference against the spec's baseline, sample SE
            d = np.array([trial_mean[(a, t)] - trial_mean[("LatentDR", t)] for t in range(3)])
            for board in (table, averages):
                got = board[(a, "Δ vs LatentDR (paired over trials)")]
                assert got == pytest.approx((d.mean(), d.std(ddof=1) / np.sqrt(3)), abs=1e-6)


def test_checked_in_table_is_not_stale(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # the table names its records by the relative path its README gives
    build_leaderboards([SPEC], [Path("leaderboards/dg_delayed_start/cnn2000/runs")], tmp_path, progress=False)
    for name in ("dg_delayed_start_cnn.csv", "dg_delayed_start_cnn.md"):
        assert (tmp_path / name).read_text(encoding="utf-8") == (BOARD / name).read_text(encoding="utf-8"), name
