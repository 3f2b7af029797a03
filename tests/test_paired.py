"""Per-trial means count complete trials only (every test domain of the dataset, no run unfinished or
missing), for accuracies and for metrics of the selected checkpoints alike; checked against DomainBed's
own formula on each trial's records alone."""

from __future__ import annotations

import json
import shutil

import pytest

from ldr_plugin.domainbed.paired import complete_trial_means, incomplete_trials, trial_means
from ldr_plugin.domainbed.runs import Sweep, read_sweep
from ldr_plugin.domainbed.synthetic_sweep import write_synthetic_sweep
from ldr_plugin.domainbed.tables import SweepSelection, domainbed_tables


def _sweep(root):
    write_synthetic_sweep(root, n_records=2 * 3 * 10 * 5, seed=0, datasets={"VLCS": 4},
                          algorithms=("ERM", "LatentDR"), n_trials=3)
    return root


def _args(root) -> dict:
    return {p.parent: json.loads(p.read_text().splitlines()[0])["args"] for p in root.glob("*/results.jsonl")}


def _domainbed_avg(records: list[dict], algorithm: str) -> float:
    table = next(t for t in domainbed_tables(SweepSelection.build(Sweep(records=records))) if t.table_id == "averages__iid")
    return next(r.cells[-1].value for r in table.rows if r.label == algorithm)


def test_trial_means_are_domainbeds_average_of_each_trial(tmp_path):
    sweep = read_sweep(str(_sweep(tmp_path / "s")), progress=False)
    sel = SweepSelection.build(sweep, ("iid",))
    for algorithm in ("ERM", "LatentDR"):
        got = trial_means(sel, "iid", "VLCS", algorithm)
        assert set(got) == {0, 1, 2}
        for trial, value in got.items():
            alone = [r for r in sweep.records if r["args"]["trial_seed"] == trial]
            assert value == pytest.approx(_domainbed_avg(alone, algorithm), abs=0.051)  # the table rounds to 0.1


def test_a_domain_never_run_leaves_every_trial_out(tmp_path):
    """LatentDR's last domain has no run in any trial and the sweep has no list of expected runs: no
    trial of LatentDR is complete (VLCS has 4 domains), though every run it has finished."""
    root = _sweep(tmp_path / "s")
    for run, args in _args(root).items():
        if args["algorithm"] == "LatentDR" and 3 in args["test_envs"]:
            shutil.rmtree(run)
    sel = SweepSelection.build(read_sweep(str(root), progress=False), ("iid",))
    assert not incomplete_trials(sel, "VLCS", "LatentDR")  # nothing says a run is missing ...
    assert trial_means(sel, "iid", "VLCS", "LatentDR") == {}  # ... yet no trial has every domain
    assert set(trial_means(sel, "iid", "VLCS", "ERM")) == {0, 1, 2}


def test_a_metric_not_measured_or_a_run_unfinished_leaves_its_trial_out(tmp_path):
    root = _sweep(tmp_path / "s")
    sel = SweepSelection.build(read_sweep(str(root), progress=False), ("iid",))
    values = {key: float(key[3]) for key in sel.choices["iid"]}  # env index as the metric: mean 1.5
    values[next(k for k in values if k[:3] == (1, "VLCS", "LatentDR"))] = None  # trial 1: one not scored
    assert complete_trial_means(sel, "VLCS", "LatentDR", values) == {0: 1.5, 2: 1.5}
    assert complete_trial_means(sel, "VLCS", "ERM", values) == {0: 1.5, 1: 1.5, 2: 1.5}

    unfinished = min(run for run, a in _args(root).items()
                     if (a["algorithm"], a["trial_seed"], a["test_envs"]) == ("ERM", 2, [0]))
    (unfinished / "done").unlink()
    sel = SweepSelection.build(read_sweep(str(root), progress=False), ("iid",))
    assert incomplete_trials(sel, "VLCS", "ERM") == {2}
    assert complete_trial_means(sel, "VLCS", "ERM", values) == {0: 1.5, 1: 1.5}
    assert set(trial_means(sel, "iid", "VLCS", "ERM")) == {0, 1}
    assert set(trial_means(sel, "iid", "VLCS", "LatentDR")) == {0, 1, 2}
