"""``ldr results check``: every kind of problem is found, named, and reflected in the exit code."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from ldr_plugin.check import check_results, load_expectation
from ldr_plugin.cli import main
from ldr_plugin.errors import LdrError
from ldr_plugin.results import metric, new_record, write_record


def _record(model="toy:a", dataset="digits", seed=0):
    return new_record(
        kind="kstar", model_id=model, dataset=dataset, split="test", layer="penultimate",
        metric_family="kstar", seed=seed, metrics={"gamma_prime": metric(0.5, higher_is_better=False)},
    )


def _kinds(report):
    return sorted((p.kind, os.path.basename(p.path)) for p in report.problems)


@pytest.fixture
def folder(tmp_path):
    paths = [write_record(_record(model=f"toy:m{i}"), tmp_path) for i in range(4)]
    return tmp_path, paths


def test_clean_folder_is_ok_and_counts_every_record(folder, capsys):
    root, _ = folder
    report = check_results(root)
    # independent count: files on disk with the record suffix
    assert report.ok and report.n_valid == len([f for f in os.listdir(root) if f.endswith(".result.json")]) == 4
    assert main(["results", "check", str(root)]) == 0
    assert "4 valid record(s)" in capsys.readouterr().out


def test_invalid_record_names_file_and_field(folder):
    root, paths = folder
    data = json.loads(paths[1].read_text())
    data["seed"] = "zero"
    paths[1].write_text(json.dumps(data))
    report = check_results(root)
    assert _kinds(report) == [("invalid", paths[1].name)]
    assert "'seed'" in report.problems[0].message and report.n_valid == 3


def test_truncated_json_and_leftover_temp_files_are_partial(folder):
    root, paths = folder
    text = paths[0].read_text()
    paths[0].write_text(text[: len(text) // 2])
    (root / f".tmp-{paths[2].name}.abc123").write_text(text[:10])
    report = check_results(root)
    assert _kinds(report) == [("partial", f".tmp-{paths[2].name}.abc123"), ("partial", paths[0].name)]
    assert "truncated" in next(p.message for p in report.problems if p.path == str(paths[0]))


def test_same_cell_under_two_names_is_a_duplicate(folder):
    root, paths = folder
    old_name = root / "written-by-an-older-version.result.json"
    shutil.copy(paths[3], old_name)
    report = check_results(root)
    assert [p.kind for p in report.problems] == ["duplicate"]
    assert {str(paths[3]), str(old_name)} <= set(report.problems[0].path.split() + report.problems[0].message.split())
    assert "model_id=toy:m3" in report.problems[0].message


def test_same_model_on_two_datasets_is_not_a_duplicate(tmp_path):
    write_record(_record(dataset="a"), tmp_path)
    write_record(_record(dataset="b"), tmp_path)
    assert check_results(tmp_path).ok


def test_missing_cells_from_text_and_jsonl_expectations(folder, tmp_path_factory, capsys):
    root, _ = folder
    spec_dir = tmp_path_factory.mktemp("spec")
    text = spec_dir / "cells.txt"
    text.write_text("# model dataset\ntoy:m0 digits\ntoy:m9 digits\ntoy:m1 otherset\n")
    jsonl = spec_dir / "cells.jsonl"
    jsonl.write_text('{"model_id": "toy:m2", "seed": 0}\n{"model_id": "toy:m2", "seed": 7}\n')
    missing = sorted(p.path for p in check_results(root, load_expectation(text)).problems)
    assert missing == ["model_id=toy:m1, dataset=otherset", "model_id=toy:m9, dataset=digits"]
    assert [p.path for p in check_results(root, load_expectation(jsonl)).problems] == ["model_id=toy:m2, seed=7"]
    assert main(["results", "check", str(root), "--expect", str(text)]) == 1
    assert "2 missing" in capsys.readouterr().out


def test_bad_expectation_is_a_clear_error(tmp_path):
    bad = tmp_path / "cells.json"
    bad.write_text('[{"model": "x"}]')
    with pytest.raises(LdrError, match="cell 0"):
        load_expectation(bad)
    with pytest.raises(LdrError, match="not a file"):
        load_expectation(tmp_path / "nope.txt")


def test_domainbed_runs_without_done_are_reported(shared_data, tmp_path):
    sweep = tmp_path / "sweep"
    shutil.copytree(shared_data / "domainbed" / "test_sweep_data", sweep)
    n_done = sum(1 for _, _, files in os.walk(sweep) if "done" in files)
    assert check_results(sweep).ok and check_results(sweep).n_runs_done == n_done == 40
    crashed = sweep / ("a" * 32)  # a run that crashed: out/err but no done
    crashed.mkdir()
    (crashed / "err.txt").write_text("Traceback ...")
    never = sweep / ("b" * 32)  # made by sweep.py, job never started
    never.mkdir()
    some_run = next(p.parent for p in sweep.rglob("done"))
    (some_run / "done").unlink()
    report = check_results(sweep)
    assert sorted((p.kind, os.path.basename(p.path)) for p in report.problems) == sorted(
        [("incomplete_run", "a" * 32), ("incomplete_run", "b" * 32), ("incomplete_run", some_run.name)]
    )
    assert "err.txt" in next(p.message for p in report.problems if p.path.endswith("a" * 32))
    assert report.n_runs_done == 39


def test_lock_folder_is_not_reported(folder):
    root, _ = folder
    assert (root / ".locks").is_dir() and check_results(root).ok


def test_not_a_directory(tmp_path):
    assert main(["results", "check", str(tmp_path / "absent")]) == 2


def test_selection_toml_as_expectation(folder, tmp_path_factory, monkeypatch):
    root, _ = folder
    monkeypatch.delenv("LDR_DATA_ROOT", raising=False)
    selection = tmp_path_factory.mktemp("sel") / "small.toml"
    selection.write_text('models = ["toy:m0", "toy:m1"]\ndatasets = ["digits", "cifar10:{data_root}/c10"]\nseed = 0\n')
    expected = load_expectation(selection)
    assert expected == [
        {"model_id": m, "dataset": d, "seed": 0} for m in ("toy:m0", "toy:m1") for d in ("digits", "cifar10")
    ]
    missing = sorted(p.path for p in check_results(root, expected).problems)
    assert missing == ["model_id=toy:m0, dataset=cifar10, seed=0", "model_id=toy:m1, dataset=cifar10, seed=0"]


def _as_schema_1(path, **extra):
    """Rewrite a record file as schema 1 wrote it: no identity, no weights, no accuracy."""
    data = json.loads(path.read_text())
    for key in ("identity", "identity_digest", "weights", "accuracy"):
        data.pop(key, None)
    data.update(schema_version=1, **extra)
    path.write_text(json.dumps(data))


def test_schema_1_records_are_flagged_with_what_to_do_and_exit_1(folder, capsys):
    root, paths = folder
    _as_schema_1(paths[0], features_from_cache=False, n_per_class_requested=None)  # as `ldr score` wrote it
    _as_schema_1(paths[2])  # as `ldr kstar` wrote it
    report = check_results(root)
    assert _kinds(report) == sorted([("old_schema", paths[0].name), ("old_schema", paths[2].name)])
    assert report.n_valid == 4 and not report.ok  # they still read, and are reported
    by_file = {os.path.basename(p.path): p.message for p in report.problems}
    assert "schema 1" in by_file[paths[0].name] and "dataset 'digits'" in by_file[paths[0].name]
    assert "re-score the cell" in by_file[paths[0].name] and "then delete this file" in by_file[paths[0].name]
    assert "re-run the command that wrote it" in by_file[paths[2].name]
    assert main(["results", "check", str(root)]) == 1
    out = capsys.readouterr()
    assert f"old_schema     {paths[0]}: schema 1" in out.out and "2 old_schema" in out.out
    assert main(["results", "check", "--json", str(root)]) == 1
    listed = json.loads(capsys.readouterr().out)["problems"]
    assert sorted(p["kind"] for p in listed) == ["old_schema", "old_schema"]


def test_schema_2_records_without_identity_are_not_flagged(folder):
    """``ldr kstar`` writes schema-2 records without a cell identity (features, not a dataset): sound."""
    root, paths = folder
    assert not json.loads(paths[0].read_text()).get("identity_digest")
    assert check_results(root).ok
