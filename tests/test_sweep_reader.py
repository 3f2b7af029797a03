"""The DomainBed sweep-folder reader: real sweep, and every kind of bad input the issue lists."""

from __future__ import annotations

import json
import shutil

import pytest

from ldr_plugin.domainbed.runs import read_run_records, read_sweep
from ldr_plugin.errors import LdrError


@pytest.fixture
def sweep_copy(shared_data, tmp_path):
    dst = tmp_path / "sweep"
    shutil.copytree(shared_data / "domainbed" / "test_sweep_data", dst)
    return dst


def _first_run(root):
    return min(p for p in root.iterdir() if p.is_dir())


def test_reads_real_sweep(shared_data):
    sweep = read_sweep(shared_data / "domainbed" / "test_sweep_data", progress=False)
    assert len(sweep.records) == 200  # the count collect_results prints
    assert len(sweep.runs) == 40 and not sweep.problems and not sweep.incomplete_runs()
    assert {r["args"]["dataset"] for r in sweep.records} == {"VLCS"}


def test_one_run_read_like_the_sweep_reader_reads_it(sweep_copy, tmp_path):
    run = _first_run(sweep_copy)
    lines = (run / "results.jsonl").read_text().splitlines()
    expected = [json.loads(line) for line in lines]
    assert read_run_records(run) == expected
    lines[1] = lines[1][:40] + "}{garbage"  # a bad line and a torn last line are skipped
    (run / "results.jsonl").write_text("\n".join(lines) + "\n" + lines[-1][:30])
    assert read_run_records(run) == expected[:1] + expected[2:]
    assert read_run_records(tmp_path / "no_such_run") == []


def test_malformed_line_named_and_rest_read(sweep_copy):
    run = _first_run(sweep_copy)
    lines = (run / "results.jsonl").read_text().splitlines()
    lines[1] = lines[1][:40] + "}{garbage"
    (run / "results.jsonl").write_text("\n".join(lines) + "\n")
    sweep = read_sweep(sweep_copy, progress=False)
    assert len(sweep.records) == 199 and sweep.skipped_lines() == 1
    (problem,) = sweep.problems
    assert problem.kind == "malformed_line" and problem.line == 2
    assert str(run / "results.jsonl") + ":2" in str(problem)


def test_truncated_file(sweep_copy):
    run = _first_run(sweep_copy)
    data = (run / "results.jsonl").read_bytes()
    (run / "results.jsonl").write_bytes(data[: len(data) - 100])  # cut inside the last record
    sweep = read_sweep(sweep_copy, progress=False)
    assert len(sweep.records) == 199
    assert [p.kind for p in sweep.problems] == ["truncated_file"]
    assert sweep.runs[run.name].truncated


def test_run_without_done_is_kept_and_marked(sweep_copy):
    run = _first_run(sweep_copy)
    (run / "done").unlink()
    sweep = read_sweep(sweep_copy, progress=False)
    assert len(sweep.records) == 200  # DomainBed counts them too
    assert sweep.incomplete_runs() == [run.name]


def test_mixed_schema_versions_and_missing_fields(sweep_copy):
    run = _first_run(sweep_copy)
    lines = (run / "results.jsonl").read_text().splitlines()
    recs = [json.loads(x) for x in lines]
    recs[0]["schema_version"] = 1  # a version we read
    recs[1]["schema_version"] = 99  # a future one: skipped, named
    del recs[2]["args"]["trial_seed"]  # an older/other schema: skipped with the field named
    (run / "results.jsonl").write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    sweep = read_sweep(sweep_copy, progress=False)
    assert len(sweep.records) == 198
    kinds = {p.line: (p.kind, p.message) for p in sweep.problems}
    assert kinds[2][0] == "schema_version" and "99" in kinds[2][1]
    assert kinds[3][0] == "bad_record" and "args.trial_seed" in kinds[3][1]


def test_duplicates_detected(sweep_copy):
    run = _first_run(sweep_copy)
    text = (run / "results.jsonl").read_text()
    (run / "results.jsonl").write_text(text + text)  # relaunched into the same folder
    shutil.copytree(run, sweep_copy / "zz_copy_of_run")  # same run copied under another name
    sweep = read_sweep(sweep_copy, progress=False)
    assert len(sweep.records) == 200
    assert sorted(p.kind for p in sweep.problems) == ["duplicate_run", "duplicate_step", "duplicate_step"]
    raw = read_sweep(sweep_copy, progress=False, keep_duplicates=True)
    assert len(raw.records) == 200 + 3 * 5  # as DomainBed would count them


def test_missing_folder_is_an_error(tmp_path):
    with pytest.raises(LdrError, match="does not exist"):
        read_sweep(tmp_path / "nope", progress=False)


def _rewrite_args(run, **changes):
    lines = (run / "results.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    for r in records:
        r["args"].update(changes)
    (run / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def test_same_selection_key_other_arguments_is_not_a_duplicate(sweep_copy):
    run = _first_run(sweep_copy)
    copy = sweep_copy / "zz_other_steps"
    shutil.copytree(run, copy)
    _rewrite_args(copy, steps=12345, output_dir=str(copy))  # same trial/dataset/algorithm/hparams/test envs
    sweep = read_sweep(sweep_copy, progress=False)
    assert not [p for p in sweep.problems if p.kind == "duplicate_run"]
    assert len(sweep.records) == 205  # both runs counted, as DomainBed counts them


def test_finished_copy_replaces_unfinished_run_and_third_copy_is_named(sweep_copy):
    run = _first_run(sweep_copy)
    (run / "done").unlink()  # the original is unfinished
    shutil.copytree(run, sweep_copy / "zz_finished")
    (sweep_copy / "zz_finished" / "done").write_text("done")
    shutil.copytree(run, sweep_copy / "zzz_third")
    _rewrite_args(sweep_copy / "zzz_third", output_dir="/elsewhere")  # output_dir is not an argument that counts
    sweep = read_sweep(sweep_copy, progress=False)
    dup = {p.path.rsplit("/", 1)[-1]: p.message for p in sweep.problems if p.kind == "duplicate_run"}
    assert set(dup) == {run.name, "zzz_third"}
    assert "zz_finished" in dup[run.name] and "zz_finished" in dup["zzz_third"]
    assert sweep.runs[run.name].duplicate_of == "zz_finished" and sweep.runs["zz_finished"].done
    assert len(sweep.records) == 200 and not sweep.incomplete_runs()
