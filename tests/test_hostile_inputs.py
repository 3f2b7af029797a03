"""Issue 20, item 4: values that used to be accepted silently (or give a wrong number) are named problems."""

from __future__ import annotations

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
