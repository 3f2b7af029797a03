"""Result records: schema, atomic write, validated read, safe unique file names."""

from __future__ import annotations

import json
import os

import msgspec
import numpy as np
import pytest

from ldr_plugin.results import (
    MetricValue,
    RecordError,
    expected_path,
    iter_record_paths,
    metric,
    new_record,
    read_record,
    record_filename,
    write_record,
)
from ldr_plugin.results.io import atomic_write_text


def _record(**over):
    fields = {
        "kind": "kstar",
        "model_id": "robustbench:cifar10/Linf/Standard",
        "dataset": "cifar10",
        "split": "test",
        "layer": "penultimate",
        "metric_family": "kstar",
        "seed": 0,
        "metrics": {"gamma_prime": metric(np.float32(0.25), higher_is_better=False), "n": metric(np.int64(3), higher_is_better=True)},
    }
    fields.update(over)
    return new_record(**fields)


def _record_like(record):
    """The record as the validator reads it from plain JSON (its own encoding)."""
    return msgspec.convert(json.loads(msgspec.json.encode(record)), type(record))


def test_round_trip_keeps_numbers_as_numbers(tmp_path):
    path = write_record(_record(), tmp_path)
    back = read_record(path)
    assert back.metrics["gamma_prime"] == MetricValue(value=0.25, higher_is_better=False)
    assert back.metrics["n"].value == 3 and isinstance(back.metrics["n"].value, int)
    assert back.provenance.producer == "ldr-plugin" and back.provenance.packages["numpy"]
    assert path == expected_path(tmp_path, **msgspec.structs.asdict(back))
    assert back == _record_like(back)  # everything written is read back
    assert iter_record_paths(tmp_path) == [path]


def test_nan_and_inf_are_stored_as_null():
    rec = _record(metrics={"g": metric(float("nan"), higher_is_better=False), "h": metric(float("-inf"), higher_is_better=False)})
    assert rec.metrics["g"].value is None and rec.metrics["h"].value is None
    json.dumps(msgspec.to_builtins(rec), allow_nan=False)


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda r: r.pop("dataset"), "dataset"),
        (lambda r: r.__setitem__("seed", "0"), "seed"),
        (lambda r: r.__setitem__("schema_version", 99), "schema_version"),
        (lambda r: r["metrics"].__setitem__("acc", {"value": "77.9", "higher_is_better": True}), "metrics.acc"),
        (lambda r: r["metrics"].__setitem__("acc", {"value": 1.0}), "metrics.acc"),
        (lambda r: r.__setitem__("model_id", "nocolon"), "model_id"),
    ],
)
def test_invalid_record_names_file_and_field(tmp_path, mutate, field):
    rec = msgspec.to_builtins(_record())
    mutate(rec)
    path = tmp_path / "bad.result.json"
    path.write_text(json.dumps(rec))
    with pytest.raises(RecordError) as info:
        read_record(path)
    assert str(path) in str(info.value) and field in str(info.value)


def test_truncated_file_is_named_with_position(tmp_path):
    path = write_record(_record(), tmp_path)
    path.write_text(path.read_text()[:50])
    with pytest.raises(RecordError, match="not valid JSON"):
        read_record(path)


def test_file_names_are_safe_and_unique():
    hostile = _record(model_id="x:../../etc/passwd; rm -rf / <b>&", dataset="a/b")
    name = record_filename(hostile)
    assert "/" not in name and ".." not in name and ";" not in name and " " not in name and "<" not in name
    # ids that slug alike still get different files
    a, b = record_filename(_record(model_id="m:a/b")), record_filename(_record(model_id="m:a_b"))
    assert a != b


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "f.txt"
    atomic_write_text(target, "old")

    class Boom(Exception):
        pass

    from ldr_plugin.results.io import atomic_open

    with pytest.raises(Boom), atomic_open(target) as handle:
        handle.write("partial")
        raise Boom
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["f.txt"]


def test_results_package_names_load_lazily():
    import importlib
    import subprocess
    import sys

    results = importlib.import_module("ldr_plugin.results")
    assert sorted(results.__all__) == sorted(results._HOMES)
    for name in results.__all__:
        assert callable(getattr(results, name)) or isinstance(getattr(results, name), type)
    code = "import sys, ldr_plugin.domainbed.runs; print('ldr_plugin.results.record' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
