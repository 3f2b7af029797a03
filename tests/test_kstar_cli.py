"""``ldr kstar``: record, per-sample output, plot; bad input → exit code 2 and no output file."""

from __future__ import annotations

import csv
import json

import msgspec
import numpy as np
import pytest
from click.testing import CliRunner

from ldr_plugin.cli import cli, main
from ldr_plugin.errors import LdrError
from ldr_plugin.results import iter_record_paths, read_record


def _synthetic_npz(path, **extra):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 8))
    y = np.repeat(np.arange(3), 100)
    x[y == 1] += 1.5
    x[y == 2] += 3.0
    arrays = {"features": x, "labels": y, **extra}
    np.savez(path, **arrays)
    return path


def test_cli_writes_record_per_sample_and_plot(tmp_path):
    src = _synthetic_npz(tmp_path / "synth.npz", class_names=np.array(["ant", "bee", "cow"]))
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli,
        ["kstar", str(src), "--out", str(out), "--per-sample", "--per-sample-format", "csv",
         "--model-id", "demo:synthetic", "--dataset", "synth", "--layer", "logits", "--dtype", "float64"],
    )
    assert result.exit_code == 0, result.output
    assert "Γ′ = 0.5684" in result.output and "Fractured" in result.output
    (record_path,) = iter_record_paths(out)
    record = msgspec.to_builtins(read_record(record_path))
    assert record["kind"] == "kstar" and record["metric_family"] == "kstar" and record["layer"] == "logits"
    assert record["metrics"]["gamma_prime"] == {"value": pytest.approx(0.568450, abs=5e-7), "higher_is_better": False}
    assert record["metrics"]["gamma"]["value"] == pytest.approx(1.009334, abs=5e-7)
    assert record["metrics"]["n_fractured"]["value"] == 2 and record["n_per_class"] == {"ant": 100, "bee": 100, "cow": 100}
    per_class = record["detail"]["per_class"]
    assert [c["name"] for c in per_class] == ["ant", "bee", "cow"]
    assert per_class[0]["sigma"] == pytest.approx(0.249278, abs=5e-7)
    assert set(record["timings_s"]) >= {"load", "kstar", "total"}
    rows = list(csv.DictReader((out / record["detail"]["outputs"]["per_sample"]).open()))
    assert [int(r["kstar"]) for r in rows[:10]] == [1, 81, 19, 75, 3, 1, 10, 27, 9, 7]
    assert rows[150]["class_name"] == "bee"
    png = out / record["detail"]["outputs"]["plot"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_main_returns_zero_and_npz_per_sample(tmp_path):
    src = _synthetic_npz(tmp_path / "s.npz")
    out = tmp_path / "o"
    assert main(["kstar", str(src), "--out", str(out), "--per-sample", "--no-plot"]) == 0
    (per_sample,) = out.glob("*.per_sample.npz")
    with np.load(per_sample) as data:
        assert data["kstar"][:10].tolist() == [1, 81, 19, 75, 3, 1, 10, 27, 9, 7]
    assert not list(out.glob("*.png"))
    record = json.loads(next(out.glob("*.result.json")).read_text())
    assert record["model_id"] == "file:s"


def _bad_inputs(tmp_path):
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(20, 4)), np.arange(20) % 2
    nan_x = x.copy()
    nan_x[3, 0] = np.nan
    cases = {
        "missing array 'labels'.*the file has: feats, features": {"features": x, "feats": x},
        "NaN or Inf in 1 of 20 rows": {"features": nan_x, "labels": y},
        "single class": {"features": x, "labels": np.zeros(20, int)},
        "one sample: class '1'": {"features": x, "labels": np.r_[np.zeros(19, int), 1]},
        "19 labels, 20 feature rows": {"features": x, "labels": y[:19]},
        "empty input": {"features": np.zeros((0, 4)), "labels": np.zeros(0, int)},
        "non-integer value 0.5": {"features": x, "labels": np.full(20, 0.5)},
    }
    for i, (pattern, arrays) in enumerate(cases.items()):
        path = tmp_path / f"bad{i}.npz"
        np.savez(path, **arrays)
        yield pattern, path


def test_bad_input_exit_code_2_and_no_output(tmp_path, capsys):
    for pattern, path in _bad_inputs(tmp_path):
        out = tmp_path / ("out_" + path.stem)
        assert main(["kstar", str(path), "--out", str(out), "--per-sample"]) == 2, pattern
        err = capsys.readouterr().err
        assert err.startswith("error: ") and __import__("re").search(pattern, err), (pattern, err)
        assert not out.exists() or not any(out.iterdir()), f"partial output for {pattern}"
    assert main(["kstar", str(tmp_path / "nope.npz"), "--out", str(tmp_path / "x")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_cli_runner_surfaces_ldrerror(tmp_path):
    _pattern, path = next(_bad_inputs(tmp_path))
    result = CliRunner().invoke(cli, ["kstar", str(path), "--out", str(tmp_path / "o")])
    assert result.exit_code != 0 and isinstance(result.exception, LdrError)
    assert "missing array 'labels'" in str(result.exception)
    assert not (tmp_path / "o").exists()


def test_cli_hnsw_backend_records_distance_from_exact(tmp_path):
    src = _synthetic_npz(tmp_path / "s.npz")
    out = tmp_path / "o"
    assert main(["kstar", str(src), "--out", str(out), "--backend", "hnsw", "--no-plot", "--seed", "3"]) == 0
    record = msgspec.to_builtins(read_record(next(out.glob("*.result.json"))))
    dist = record["detail"]["distance_from_exact"]
    assert record["detail"]["backend"] == "hnsw" and dist["n_checked"] == 300
    assert dist["agreement"] >= 0.99 and record["detail"]["search"]["hnsw"]["seed"] == 3
    assert record["metrics"]["gamma_prime"]["value"] == pytest.approx(0.568450, abs=0.02)


def test_bad_model_id_writes_nothing(tmp_path, capsys):
    src = _synthetic_npz(tmp_path / "s.npz")
    out = tmp_path / "o"
    assert main(["kstar", str(src), "--out", str(out), "--per-sample", "--model-id", "no-colon"]) == 2
    assert "source:identifier" in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())


def test_cli_distance_and_notebook_rule_are_recorded(tmp_path):
    src = _synthetic_npz(tmp_path / "s.npz")
    out = tmp_path / "o"
    assert main(["kstar", str(src), "--out", str(out), "--no-plot", "--distance", "mahalanobis",
                 "--infinite", "notebook"]) == 0
    (path,) = iter_record_paths(out)
    record = msgspec.to_builtins(read_record(path))
    assert record["metric_family"] == "kstar-mahalanobis" and "kstar-mahalanobis" in path.name
    assert record["preprocessing"]["distance"] == "mahalanobis" and record["detail"]["distance"] == "mahalanobis"
    assert 0 <= record["detail"]["distance_info"]["shrinkage"] <= 1
    assert record["detail"]["options"]["infinite"] == "notebook"
    assert record["detail"]["class_skew"]["n_finite"] == 3
    assert main(["kstar", str(src), "--out", str(out), "--no-plot"]) == 0  # Euclidean: its own record
    assert sorted(read_record(p).metric_family for p in iter_record_paths(out)) == ["kstar", "kstar-mahalanobis"]


def test_cli_cosine_zero_row_fails_naming_it_and_writes_nothing(tmp_path, capsys):
    x = np.random.default_rng(0).normal(size=(40, 3))
    x[9] = 0.0
    np.savez(tmp_path / "z.npz", features=x, labels=np.arange(40) % 2)
    assert main(["kstar", str(tmp_path / "z.npz"), "--out", str(tmp_path / "o"), "--distance", "cosine"]) == 2
    assert "rows [9]" in capsys.readouterr().err and not (tmp_path / "o").exists()
