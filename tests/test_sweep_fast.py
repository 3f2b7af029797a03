"""The sweep reader's fast path (msgspec, columns only) agrees with its line-by-line path on every file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ldr_plugin.domainbed.synthetic_sweep import write_synthetic_sweep
from ldr_plugin.domainbed.tables import SweepSelection, domainbed_tables, render_domainbed_text
from ldr_plugin.results import sweep as sweep_module
from ldr_plugin.results.sweep import read_sweep
from ldr_plugin.results.sweep_columns import columns_from_records

pytest.importorskip("msgspec")


def _text(folder, **kw) -> str:
    sweep = read_sweep(folder, progress=False, **kw)
    return render_domainbed_text(domainbed_tables(SweepSelection.build(sweep)), len(sweep))


def _edit_run(run, edit) -> None:
    lines = (run / "results.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    edit(records)
    (run / "results.jsonl").write_text("\n".join(json.dumps(r, sort_keys=True) for r in records) + "\n")


@pytest.fixture
def odd_sweep(tmp_path):
    """A synthetic sweep where a few runs need the line-by-line path for different reasons."""
    folder = tmp_path / "sweep"
    write_synthetic_sweep(folder, n_records=1500, seed=5, grid=20, drop_fraction=0.1)
    runs = sorted(p for p in folder.iterdir() if p.is_dir())

    def non_test_null(records):
        test = set(records[0]["args"]["test_envs"])
        other = next(e for e in range(4) if e not in test)
        records[1][f"env{other}_in_acc"] = None  # not read by selection: kept by both paths

    def other_args(records):
        records[2]["args"] = {**records[2]["args"], "seed": 12345}  # same run keys, other text

    def nan_value(records):
        records[0]["loss"] = float("nan")  # NaN literal: msgspec refuses it, the stdlib reads it

    def repeated_step(records):
        records.append(dict(records[-1]))

    def schema_one(records):
        records[0]["schema_version"] = 1

    def seed_as_text(records):
        for r in records:
            r["args"] = {**r["args"], "trial_seed": str(r["args"]["trial_seed"])}

    def seed_as_bool(records):
        for r in records:
            r["args"] = {**r["args"], "hparams_seed": True}

    def no_test_envs(records):
        for r in records:
            r["args"] = {**r["args"], "test_envs": []}

    def test_acc_missing(records):
        del records[1][f"env{records[1]['args']['test_envs'][-1]}_in_acc"]

    def test_out_acc_missing(records):
        del records[-1][f"env{records[-1]['args']['test_envs'][0]}_out_acc"]

    edits = (non_test_null, other_args, nan_value, repeated_step, schema_one, seed_as_text, seed_as_bool, no_test_envs,
             test_acc_missing, test_out_acc_missing)
    for run, edit in zip(runs[:5] + runs[6:], edits):
        _edit_run(run, edit)
    (runs[5] / "results.jsonl").write_bytes((runs[5] / "results.jsonl").read_bytes()[:-30])  # truncated
    lines = (runs[20] / "results.jsonl").read_bytes().split(b"\n")
    # two records on one line plus a whitespace-only line: as many records as newlines, yet not JSON Lines
    (runs[20] / "results.jsonl").write_bytes(b"\n".join([lines[0] + b" " + lines[1], b"  \t"] + lines[2:]))
    return folder


def test_fast_and_line_paths_give_the_same_columns_and_tables(odd_sweep, monkeypatch):
    fast = read_sweep(odd_sweep, progress=False, order="listdir")
    assert 4 <= sum(part.parsed is not None for part in fast._parts) < len(fast._parts) - 100  # both paths ran
    slow_text_fast = _text(odd_sweep, order="listdir")
    reference = columns_from_records(fast.records)  # full dicts, parsed lazily by orjson / json
    for name in ("args_ix", "step", "n_out"):
        assert np.array_equal(getattr(fast.columns, name), getattr(reference, name)), name
    assert fast.columns.args_keys == reference.args_keys
    for name in ("acc_in", "acc_out"):  # test-env in accs and consecutive out accs are what selection reads
        ours, ref = getattr(fast.columns, name), getattr(reference, name)
        width = min(ours.shape[1], ref.shape[1])
        both = ~np.isnan(ref[:, :width])
        assert np.array_equal(ours[:, :width][both], ref[:, :width][both]), name
    monkeypatch.setattr(sweep_module, "decode_files", None)  # every file line by line
    slow = read_sweep(odd_sweep, progress=False, order="listdir")
    assert len(slow) == len(fast) and slow.record_runs == fast.record_runs
    assert [str(p) for p in slow.problems] == [str(p) for p in fast.problems]
    assert _text(odd_sweep, order="listdir") == slow_text_fast


def test_lazy_records_are_the_file_lines(tmp_path):
    folder = tmp_path / "sweep"
    write_synthetic_sweep(folder, n_records=60, seed=1)
    sweep = read_sweep(folder, progress=False)
    expected = [json.loads(line) for run in sorted(p for p in folder.iterdir() if p.is_dir())
                for line in (run / "results.jsonl").read_text().splitlines()]
    assert sweep.records == expected

