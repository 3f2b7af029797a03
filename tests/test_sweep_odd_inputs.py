"""The one sweep reader on every kind of odd input at once: the same problems, records and tables as
the two-path reader it replaced (msgspec fast path + line-by-line path, which agreed with each other
on this sweep); ``golden/odd_sweep*.txt`` were written by that reader."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from ldr_plugin.domainbed.runs import Columns, read_sweep
from ldr_plugin.domainbed.synthetic_sweep import write_synthetic_sweep
from ldr_plugin.domainbed.tables import SweepSelection, domainbed_tables, render_domainbed_text

GOLDEN = Path(__file__).resolve().parent / "golden"


def _edit_run(run, edit) -> None:
    lines = (run / "results.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    edit(records)
    (run / "results.jsonl").write_text("\n".join(json.dumps(r, sort_keys=True) for r in records) + "\n")


@pytest.fixture
def odd_sweep(tmp_path):
    """A synthetic sweep where a few runs are odd in different ways."""
    folder = tmp_path / "sweep"
    write_synthetic_sweep(folder, n_records=1500, seed=5, grid=20, drop_fraction=0.1)
    runs = sorted(p for p in folder.iterdir() if p.is_dir())

    def non_test_null(records):
        test = set(records[0]["args"]["test_envs"])
        other = next(e for e in range(4) if e not in test)
        records[1][f"env{other}_in_acc"] = None  # not read by selection: kept

    def other_args(records):
        records[2]["args"] = {**records[2]["args"], "seed": 12345}  # same run keys, other text

    def nan_value(records):
        records[0]["loss"] = float("nan")  # NaN literal: orjson refuses it, the stdlib reads it

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


def _report(folder, **kw) -> str:
    sweep = read_sweep(folder, progress=False, **kw)
    # a decode error's column depends on the length of the folder's path (written into each record)
    problems = [re.sub(r"column \d+ \(char \d+\)", "column N (char N)", f"{p.kind} {p}").replace(f"{folder}/", "")
                for p in sweep.problems]
    text = render_domainbed_text(domainbed_tables(SweepSelection.build(sweep)), len(sweep))
    return "\n".join(problems) + "\n---\n" + f"records {len(sweep.records)}\n" + text


@pytest.mark.parametrize(("options", "golden"), [({}, "odd_sweep.txt"),
                                                  ({"keep_duplicates": True}, "odd_sweep_keep_duplicates.txt")])
def test_odd_inputs_give_what_the_two_path_reader_gave(odd_sweep, options, golden):
    assert _report(odd_sweep, **options) == (GOLDEN / golden).read_text()


def test_columns_are_the_records_fields(odd_sweep):
    sweep = read_sweep(odd_sweep, progress=False, order="listdir")
    columns = sweep.columns
    assert len(columns) == len(sweep.records) == len(sweep.record_runs)
    for i in range(0, len(sweep.records), 37):  # against the record dicts, field by field
        record = sweep.records[i]
        key = columns.args_keys[columns.args_ix[i]]
        assert key[1:3] == (record["args"]["dataset"], record["args"]["algorithm"]) and columns.step[i] == record["step"]
        for e in key[4]:
            assert columns.acc_in[i, e] == record[f"env{e}_in_acc"] and columns.acc_out[i, e] == record[f"env{e}_out_acc"]
        assert columns.n_out[i] == sum(f"env{e}_out_acc" in record for e in range(10))
    again = Columns.of(sweep.records)
    assert np.array_equal(again.acc_out, columns.acc_out, equal_nan=True) and again.args_keys == columns.args_keys


def test_records_are_the_file_lines(tmp_path):
    folder = tmp_path / "sweep"
    write_synthetic_sweep(folder, n_records=60, seed=1)
    sweep = read_sweep(folder, progress=False)
    expected = [json.loads(line) for run in sorted(p for p in folder.iterdir() if p.is_dir())
                for line in (run / "results.jsonl").read_text().splitlines()]
    assert sweep.records == expected
