"""Issue 20, item 4: values that used to be accepted silently (or give a wrong number) are named problems."""

from __future__ import annotations

import re

import numpy as np
import pytest

from ldr_plugin.cli import main
from ldr_plugin.errors import LdrError
from ldr_plugin.kstar.api import kstar_summary


@pytest.mark.parametrize("backend", ["exact", "screened"])
def test_features_near_float32_max_give_the_float64_answer_not_undef(clustered_features, backend):
    feats, labels = clustered_features(n_per_class=25, n_classes=4, dim=8)
    reference = kstar_summary(feats.astype(np.float64), labels, dtype="float64")  # k* is scale-invariant
    huge = (feats.astype(np.float64) * (2.4e38 / np.abs(feats).max())).astype(np.float32)
    assert np.isfinite(huge).all()
    summary = kstar_summary(huge, labels, dtype="float32", backend=backend)
    assert summary.gamma_prime == pytest.approx(reference.gamma_prime, abs=1e-12)
    assert np.isfinite(summary.gamma_prime)
    assert summary.search["dtype"] == "float64"


def test_features_too_large_even_for_float64_are_bad_input(clustered_features):
    feats, labels = clustered_features(n_per_class=10, n_classes=2, dim=4)
    with pytest.raises(LdrError, match="overflow squared distances even in float64"):
        kstar_summary(feats.astype(np.float64) * 1e160, labels, dtype="float64")
    with pytest.raises(LdrError, match="hnswlib"):
        kstar_summary(feats.astype(np.float64) * 1e30, labels, backend="hnsw")


def test_huge_features_through_the_cli_give_the_table_of_unscaled_features(tmp_path, clustered_features, capsys):
    feats, labels = clustered_features(n_per_class=20, n_classes=3, dim=6, spread=1.0)
    np.savez(tmp_path / "small.npz", features=feats, labels=labels)
    np.savez(tmp_path / "huge.npz", features=(feats * (2.0e38 / np.abs(feats).max())).astype(np.float32),
             labels=labels)
    tables = []
    for name in ("small", "huge"):
        assert main(["kstar", str(tmp_path / f"{name}.npz"), "--out", str(tmp_path / name), "--no-plot",
                     "--dtype", "float64" if name == "small" else "float32"]) == 0
        out = capsys.readouterr()
        tables.append([line for line in out.out.splitlines() if not line.startswith("record:")])
    assert "float64" in out.err
    assert tables[0] == tables[1] and "Γ′ = undef" not in "\n".join(tables[1])


@pytest.mark.parametrize("threshold", ["nan", "-0.5", "inf"])
def test_a_threshold_that_is_not_a_finite_non_negative_number_is_bad_input(tmp_path, clustered_features,
                                                                           capsys, threshold):
    feats, labels = clustered_features(n_per_class=10, n_classes=2, dim=4)
    np.savez(tmp_path / "f.npz", features=feats, labels=labels)
    code = main(["kstar", str(tmp_path / "f.npz"), "--out", str(tmp_path / "out"), "--threshold", threshold])
    assert code == 2 and "threshold" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


SPEC_HEAD = 'id = "t"\ntitle = "T"\n'


@pytest.mark.parametrize("kind, line, key", [
    ("cross_model", "confidence = 2.0", "confidence"),
    ("cross_model", 'confidence = "high"', "confidence"),
    ("published_openclip", "limit = -3", "limit"),
    ("published_openclip", 'limit = "ten"', "limit"),
    ("domainbed", 'columns = ["bogus"]', "columns"),
    ("domainbed", "extra_metrics = [5]", "extra_metrics"),
    ("published_robustbench", 'threat_models = ["../../x", 5]', "threat_models"),
    ("published_robustbench", 'threat_models = ["../../x"]', "threat_models"),
    ("domainbed", 'domainbed_only = "no"', "domainbed_only"),
    ("domainbed", "datasets = 5", "datasets"),
    ("domainbed", 'env_names = "VLCS"', "env_names"),
    ("cross_model", "metric = 5", "metric"),
    ("domainbed", 'description = ["x"]', "description"),
    ("cross_model", "n_resamples = 0", "n_resamples"),
    ("cross_model", "n_resamples = -1", "n_resamples"),
    ("cross_model", "n_resamples = 10000000000", "n_resamples"),
    ("cross_model", "n_resamples = 1e10", "n_resamples"),
    ("domainbed", 'selection = ["iid", "best"]', "selection"),
    ("cross_model", "seed = -1", "seed"),
])
def test_a_spec_value_of_the_wrong_type_or_range_is_bad_input_before_anything_is_written(tmp_path, capsys, kind,
                                                                                         line, key):
    spec = tmp_path / "bad.toml"
    spec.write_text(f'[leaderboard]\n{SPEC_HEAD}kind = "{kind}"\n{line}\n')
    out = tmp_path / "out"
    assert main(["leaderboard", "build", str(spec), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert str(spec) in err and key in err and "Traceback" not in err, err
    assert not out.exists()


def test_every_registered_spec_passes_the_schema():
    from pathlib import Path

    from ldr_plugin.leaderboard.spec import load_spec

    specs = sorted((Path(__file__).resolve().parents[1] / "registry" / "leaderboards").glob("*.toml"))
    assert len(specs) > 10
    assert all(load_spec(path).id for path in specs)


def _sweep_report(folder):
    from ldr_plugin.domainbed.runs import read_sweep
    from ldr_plugin.domainbed.tables import SweepSelection, domainbed_tables, render_domainbed_text

    sweep = read_sweep(folder, progress=False)
    return sweep, render_domainbed_text(domainbed_tables(SweepSelection.build(sweep)), len(sweep))


@pytest.mark.parametrize("field, value", [
    ("test_in", "-50"), ("test_in", "NaN"), ("test_out", "1e308"), ("train_out", "-0.5"), ("test_in", "9" * 400),
    ("train_out", '"0.9"'), ("hparams_seed", str(2**70)), ("test_envs", "[-1]"),
])
def test_an_out_of_range_accuracy_or_seed_is_a_named_problem_and_not_selected(tmp_path, field, value):
    import json

    from ldr_plugin.domainbed.synthetic_sweep import write_synthetic_sweep

    folder = tmp_path / "sweep"
    write_synthetic_sweep(folder, n_records=120, seed=3)
    run = sorted(p for p in folder.iterdir() if p.is_dir())[2]
    lines = (run / "results.jsonl").read_text().splitlines()
    record = json.loads(lines[1])
    test = record["args"]["test_envs"][0]
    train = next(e for e in range(4) if e not in record["args"]["test_envs"] and f"env{e}_out_acc" in record)
    key = {"test_in": f"env{test}_in_acc", "test_out": f"env{test}_out_acc", "train_out": f"env{train}_out_acc",
           "hparams_seed": "hparams_seed", "test_envs": "test_envs"}[field]
    placeholder = -12345.678
    if field in ("hparams_seed", "test_envs"):
        record["args"][key] = placeholder
    else:
        record[key] = placeholder
    hostile = json.dumps(record).replace(str(placeholder), value)

    (run / "results.jsonl").write_text("\n".join([lines[0], *lines[2:]]) + "\n")  # the reference: line left out
    _, reference = _sweep_report(folder)
    (run / "results.jsonl").write_text("\n".join([lines[0], hostile, *lines[2:]]) + "\n")
    sweep, text = _sweep_report(folder)
    assert text == reference
    [problem] = [p for p in sweep.problems if p.kind == "bad_record"]
    assert problem.line == 2 and str(run) in problem.path and key in problem.message and len(str(problem)) < 400


@pytest.mark.parametrize("option, value", [("--split", "../x"), ("--layer", "a/b"), ("--dataset", "..")])
def test_kstar_names_that_become_record_fields_are_checked(tmp_path, clustered_features, capsys, option, value):
    feats, labels = clustered_features(n_per_class=10, n_classes=2, dim=4)
    np.savez(tmp_path / "f.npz", features=feats, labels=labels)
    assert main(["kstar", str(tmp_path / "f.npz"), "--out", str(tmp_path / "out"), option, value]) == 2
    assert f"{option} {value!r} may hold only" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("line, named", [
    ('layers = "featurizer"', "'layers' should be a list"),
    ('layers = ["../up"]', "layer '../up'"),
    ('split = "../x"', "split '../x'"),
    ("seed = -1", "'seed'"),
    ('n_per_class = "ten"', "'n_per_class'"),
])
def test_a_selection_with_a_bad_layer_split_or_count_is_bad_input(tmp_path, line, named):
    from ldr_plugin.scoring.run import load_selection

    path = tmp_path / "sel.toml"
    path.write_text(f'models = ["x:y"]\ndatasets = ["digits"]\n{line}\n')
    with pytest.raises(LdrError, match=re.escape(named)):
        load_selection(path)
    path.write_text('models = ["x:y"]\ndatasets = ["digits"]\nlayers = ["featurizer", "network.0"]\nsplit = "test"\n')
    assert load_selection(path)["layers"] == ["featurizer", "network.0"]
