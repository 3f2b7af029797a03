"""Model selection identical to DomainBed: golden output, DomainBed's own collect_results, tie-breaking."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ldr_plugin.domainbed.runs import read_sweep
from ldr_plugin.domainbed.selection import group_records, select
from ldr_plugin.domainbed.synthetic_sweep import write_synthetic_sweep
from ldr_plugin.domainbed.tables import SweepSelection, domainbed_tables, render_domainbed_text

NUMBER = re.compile(r"-?\d+\.\d+|\bX\b")


def _ours(path, **kw) -> str:
    sweep = read_sweep(path, progress=False, **kw)
    return render_domainbed_text(domainbed_tables(SweepSelection.build(sweep), domainbed_only=True), len(sweep.records))


def test_golden_output_byte_for_byte(shared_data):
    golden = (shared_data / "domainbed" / "collect_results_output.txt").read_text()
    ours = _ours(shared_data / "domainbed" / "test_sweep_data")
    assert NUMBER.findall(ours) == NUMBER.findall(golden)  # every number, in order
    assert ours == golden


def _domainbed_collect(folder: Path) -> str:
    root = os.environ.get("DOMAINBED_DIR") or str(Path(__import__("domainbed").__file__).parents[1])
    env = {**os.environ, "PYTHONPATH": root, "DOMAINBED_PLUGINS_DISABLE": "1"}
    subprocess.run([sys.executable, "-m", "domainbed.scripts.collect_results", "--input_dir", str(folder)],
                   cwd=root, env=env, check=True, capture_output=True)
    return (folder / "results.txt").read_text()


@pytest.mark.domainbed
@pytest.mark.slow
def test_same_as_domainbed_collect_results_on_shared_sweep(shared_data, tmp_path):
    copy = tmp_path / "sweep"
    shutil.copytree(shared_data / "domainbed" / "test_sweep_data", copy)
    theirs = _domainbed_collect(copy)  # writes results.txt into the copy, not into shared data
    assert _ours(copy, order="listdir") == theirs


@pytest.mark.domainbed
@pytest.mark.slow
def test_same_as_domainbed_on_synthetic_sweep_with_ties_and_gaps(tmp_path):
    folder = tmp_path / "sweep"
    write_synthetic_sweep(folder, n_records=3000, seed=3, grid=20, drop_fraction=0.1)
    theirs = _domainbed_collect(folder)
    assert "X" in theirs  # the dropped runs produce missing cells
    assert _ours(folder, order="listdir") == theirs


def _rec(seed, envs, step, outs, ins, trial=0):
    rec = {"args": {"algorithm": "ERM", "dataset": "Toy", "trial_seed": trial, "hparams_seed": seed,
                    "test_envs": envs}, "step": step}
    for e, (o, i) in enumerate(zip(outs, ins)):
        rec[f"env{e}_out_acc"], rec[f"env{e}_in_acc"] = o, i
    return rec


def test_ties_break_as_domainbed():
    # two hparams seeds with equal validation: DomainBed's stable sort + reversal takes the higher seed;
    # two checkpoints with equal validation in one run: Python max takes the first.
    records = [
        _rec(0, [0], 0, [0.1, 0.5, 0.5], [0.11, 0, 0]),
        _rec(0, [0], 1, [0.2, 0.5, 0.5], [0.22, 0, 0]),
        _rec(1, [0], 0, [0.3, 0.5, 0.5], [0.33, 0, 0]),
        _rec(1, [0], 1, [0.4, 0.5, 0.5], [0.44, 0, 0]),
    ]
    iid = select(records, group_records(records), "iid")[(0, "Toy", "ERM", 0)]
    assert iid.test_acc == 0.33 and iid.record_index == 2
    oracle = select(records, group_records(records), "oracle")[(0, "Toy", "ERM", 0)]
    assert oracle.test_acc == 0.44  # last checkpoint of the seed with the best test-env out accuracy


def test_leave_one_out_needs_every_pair_run():
    single = [_rec(0, [0], s, [0.5] * 3, [0.6, 0.7, 0.8]) for s in (0, 1)]
    pair01 = [_rec(0, [0, 1], s, [0.5] * 3, [0.1, 0.2 + s / 10, 0.3]) for s in (0, 1)]
    pair02 = [_rec(0, [0, 2], s, [0.5] * 3, [0.1, 0.2, 0.4 - s / 10]) for s in (0, 1)]
    records = single + pair01
    assert (0, "Toy", "ERM", 0) not in select(records, group_records(records), "loo")
    records = single + pair01 + pair02
    choice = select(records, group_records(records), "loo")[(0, "Toy", "ERM", 0)]
    # step 0: (0.2 + 0.4) / 2 = 0.3; step 1: (0.3 + 0.3) / 2 = 0.3 -> tie, first step wins
    assert choice.val_acc == pytest.approx(0.3) and choice.record_index == 0


def test_unknown_dataset_kept_with_inferred_envs():
    records = [_rec(0, [e], 0, [0.5, 0.6, 0.7], [0.1, 0.2, 0.3]) for e in range(3)]
    from ldr_plugin.domainbed.runs import Sweep

    sweep = Sweep(records=records, record_runs=["r"] * 3)
    tables = domainbed_tables(SweepSelection.build(sweep))
    assert [t.title.split(",")[0] for t in tables[:2]] == ["Dataset: Toy", "Averages"]
    assert [c.name for c in tables[0].columns] == ["env0", "env1", "env2", "Avg"]
    assert tables[0].rows[0].cells[1].plain() == "20.0 ± 0.0"
    # DomainBed drops datasets it does not know; the compatible mode does too
    assert "Toy" not in render_domainbed_text(domainbed_tables(SweepSelection.build(sweep), domainbed_only=True), 3)


def test_incomplete_runs_flagged(shared_data, tmp_path):
    copy = tmp_path / "sweep"
    shutil.copytree(shared_data / "domainbed" / "test_sweep_data", copy)
    run = min(p for p in copy.iterdir() if p.is_dir())
    (run / "done").unlink()
    tables = domainbed_tables(SweepSelection.build(read_sweep(copy, progress=False)))
    flagged = [c for t in tables for r in t.rows for c in r.cells if "incomplete" in c.flags]
    assert flagged  # visible, and numbers unchanged (DomainBed reads unfinished runs too)
    assert _ours(copy) == (shared_data / "domainbed" / "collect_results_output.txt").read_text()


def test_registered_dataset_environment_names():
    # RotatedDigits is not in DomainBed's list; its names come from the domainbed.datasets entry point
    records = [_rec(0, [e], 0, [0.5] * 6, [0.1 * (e + 1)] * 6) for e in range(6)]
    for r in records:
        r["args"]["dataset"] = "RotatedDigits"
    from ldr_plugin.domainbed.runs import Sweep

    tables = domainbed_tables(SweepSelection.build(Sweep(records=records, record_runs=["r"] * 6)))
    assert [c.name for c in tables[0].columns] == ["0", "15", "30", "45", "60", "75", "Avg"]
