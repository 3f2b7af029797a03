"""``compare`` / ``ldr kstar compare`` on two tiny models, its bootstrap, its errors; ``kstar_under_noise``."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from ldr_plugin.cli import main
from ldr_plugin.errors import LdrError
from ldr_plugin.kstar import kstar_summary
from ldr_plugin.kstar.compare import compare, compare_features
from ldr_plugin.kstar.compare_report import comparison_table, plot_comparison
from ldr_plugin.kstar.gamma_rules import gamma_prime_rows, row_skewness
from ldr_plugin.kstar.noise import feature_scale, kstar_under_noise
from ldr_plugin.kstar.stats import summarise


def _tiny_model_features(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Penultimate features of a tiny randomly initialised MLP on 400 sklearn digits."""
    digits = load_digits()
    x = torch.as_tensor(digits.data[:400] / 16.0, dtype=torch.float32)
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 16), torch.nn.ReLU())
    with torch.no_grad():
        return net(x).numpy(), digits.target[:400]


@pytest.fixture(scope="module")
def two_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    (fa, y), (fb, _) = _tiny_model_features(0), _tiny_model_features(1)
    np.savez(root / "model_a.npz", features=fa, labels=y)
    np.savez(root / "model_b.npz", features=fb, labels=y)
    return root, fa, fb, y


def test_compare_two_tiny_models_matches_their_own_summaries(two_models):
    root, fa, fb, y = two_models
    cmp = compare(root / "model_a.npz", root / "model_b.npz", n_resamples=300)
    sa, sb = kstar_summary(fa, y), kstar_summary(fb, y)
    for row, ca, cb in zip(cmp.classes, sa.classes, sb.classes):
        assert (row["mu_a"], row["mu_b"]) == pytest.approx((ca.mu, cb.mu))
        assert row["sigma_change"] == pytest.approx(cb.sigma - ca.sigma)
        assert row["gamma_change"] == pytest.approx(cb.gamma - ca.gamma)
        assert row["flipped"] == (ca.pattern != cb.pattern)
    assert cmp.flipped == [c.name for c, d in zip(sa.classes, sb.classes) if c.pattern != d.pattern]
    assert cmp.gamma_prime.change == pytest.approx(sb.gamma_prime - sa.gamma_prime)
    assert cmp.gamma.change == pytest.approx(sb.gamma_pooled - sa.gamma_pooled)
    assert cmp.gamma_prime.ci_low < cmp.gamma_prime.ci_high
    assert cmp.per_sample["equal_kstar"] == pytest.approx(np.mean(sa.kstar == sb.kstar))
    text = comparison_table(cmp)
    assert "pattern A -> B" in text and "Γ′: " in text and "95% CI" in text and "pattern flipped in" in text


def test_cli_compare_writes_report_and_plot(two_models, tmp_path, capsys):
    root, *_ = two_models
    out = tmp_path / "cmp"
    args = ["kstar", "compare", str(root / "model_a.npz"), str(root / "model_b.npz"), "--out", str(out),
            "--bootstrap", "200"]
    assert main([*args, "--plot-format", "svg"]) == 0
    (report,) = out.glob("*.json")
    data = json.loads(report.read_text())
    assert data["distance"] == "euclidean" and len(data["classes"]) == 10
    (svg,) = out.glob("*.svg")
    first = svg.read_bytes()
    assert main([*args, "--plot-format", "svg"]) == 0
    assert svg.read_bytes() == first  # deterministic: same input, same bytes
    assert main([*args, "--plot-format", "png"]) == 0
    assert next(out.glob("*.png")).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "pattern A -> B" in capsys.readouterr().out


def test_records_compare_like_feature_files(two_models, tmp_path):
    root, *_ = two_models
    out = tmp_path / "rec"
    for name in ("model_a", "model_b"):
        assert main(["kstar", str(root / f"{name}.npz"), "--out", str(out), "--per-sample", "--no-plot",
                     "--model-id", f"tiny:{name}", "--dataset", "digits400"]) == 0
    rec_a, rec_b = sorted(out.glob("*.result.json"))
    by_record = compare(rec_a, rec_b, n_resamples=200)
    by_file = compare(root / "model_a.npz", root / "model_b.npz", n_resamples=200)
    assert by_record.gamma_prime.change == pytest.approx(by_file.gamma_prime.change)
    assert (by_record.gamma_prime.ci_low, by_record.gamma_prime.ci_high) == pytest.approx(
        (by_file.gamma_prime.ci_low, by_file.gamma_prime.ci_high))
    # without per-sample files: the per-class table, and a note saying what is missing
    for path in out.glob("*.per_sample.npz"):
        path.unlink()
    for rec in (rec_a, rec_b):
        data = json.loads(rec.read_text())
        data["detail"]["outputs"]["per_sample"] = None
        rec.write_text(json.dumps(data))
    table_only = compare(rec_a, rec_b)
    assert math.isnan(table_only.gamma_prime.ci_low) and "per-sample" in table_only.notes[0]
    with pytest.raises(LdrError, match="needs per-sample k"):
        plot_comparison(table_only, tmp_path / "x.png")


def test_identical_inputs_change_nothing():
    a, y = _tiny_model_features(0)
    cmp = compare_features(a, y, a.copy(), y, n_resamples=100)
    assert cmp.gamma_prime.change == 0 and (cmp.gamma_prime.ci_low, cmp.gamma_prime.ci_high) == (0, 0)
    assert cmp.flipped == [] and cmp.per_sample["equal_kstar"] == 1.0


def test_bootstrap_ci_covers_the_resampling_distribution_by_brute_force():
    # the vectorised bootstrap against a plain loop over resamples with summarise()
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 30)
    a = rng.normal(size=(90, 4)) + 1.5 * np.eye(3, 4)[y]
    b = a + rng.normal(scale=0.7, size=a.shape)
    cmp = compare_features(a, y, b, y, n_resamples=400, seed=3)
    ka, kb = kstar_summary(a, y).kstar, kstar_summary(b, y).kstar
    sizes = np.bincount(y)
    loop = []
    r = np.random.default_rng(3)
    members = [np.flatnonzero(y == c) for c in range(3)]
    picks = np.concatenate([m[r.integers(0, m.size, size=(400, m.size))] for m in members], axis=1)
    for row in picks:  # resampled k* keep their class's normalisation: summarise on k̂*·n_c
        sa = summarise(ka[row], y[row], ["0", "1", "2"])
        sb = summarise(kb[row], y[row], ["0", "1", "2"])
        loop.append(sb.gamma_prime - sa.gamma_prime)
    assert sizes.tolist() == [30, 30, 30]
    assert (cmp.gamma_prime.ci_low, cmp.gamma_prime.ci_high) == pytest.approx(tuple(np.quantile(loop, [0.025, 0.975])))


def test_vectorised_gamma_rules_equal_summarise():
    rng = np.random.default_rng(1)
    for _ in range(200):
        sizes = rng.integers(2, 6, size=4)
        codes = np.repeat(np.arange(4), sizes)
        k = np.concatenate([rng.integers(1, n + 1, size=n) if rng.random() > 0.4 else np.full(n, rng.integers(1, n + 1))
                            for n in sizes])
        norm = k / sizes[codes]
        g = np.array([[row_skewness(norm[codes == c][None])[0] for c in range(4)]])
        for mode in ("exclude", "clip", "notebook"):
            expected = summarise(k, codes, list("abcd"), infinite=mode).gamma_prime
            got = gamma_prime_rows(g, sizes, mode)[0]
            assert (math.isnan(got) and math.isnan(expected)) or got == pytest.approx(expected, abs=1e-12)


def test_compare_errors_name_the_difference(two_models, tmp_path):
    root, fa, fb, y = two_models
    with pytest.raises(LdrError, match="400 samples, B has 300"):
        compare_features(fa, y, fb[:300], y[:300])
    y2 = y.copy()
    y2[7] = (y2[7] + 1) % 10
    with pytest.raises(LdrError, match="labels differ at 1 of 400 rows \\(first: row 7"):
        compare_features(fa, y, fb, y2)
    out = tmp_path / "r"
    main(["kstar", str(root / "model_a.npz"), "--out", str(out), "--no-plot", "--model-id", "t:a", "--dataset", "d"])
    main(["kstar", str(root / "model_b.npz"), "--out", str(out), "--no-plot", "--model-id", "t:b", "--dataset", "d",
          "--distance", "cosine"])
    main(["kstar", str(root / "model_b.npz"), "--out", str(out), "--no-plot", "--model-id", "t:b", "--dataset", "e"])
    eu = next(out.glob("t_a__d__*.result.json"))
    with pytest.raises(LdrError, match="different distances: t:a \\[features\\] used euclidean, .* used cosine"):
        compare(eu, next(out.glob("t_b__d__*kstar-cosine*.result.json")))
    with pytest.raises(LdrError, match="not on the same samples: dataset 'd' vs 'e'"):
        compare(eu, next(out.glob("t_b__e__*.result.json")))
    assert main(["kstar", "compare", str(eu), str(root / "model_b.npz")]) == 2  # a record and a features file


def test_kstar_under_noise():
    a, y = _tiny_model_features(0)
    levels = kstar_under_noise(a, y, [0.0, 0.05, 2.0], repeats=2, seed=1)
    base = kstar_summary(a, y)
    assert levels[0].gamma_prime == base.gamma_prime and levels[0].equal_kstar == 1.0 and levels[0].repeats == 1
    assert levels[1].noise_std == pytest.approx(0.05 * np.sqrt(np.mean(np.var(a.astype(float), axis=0))))
    assert feature_scale(a) == pytest.approx(levels[2].noise_std / 2.0)
    assert levels[2].equal_kstar < levels[1].equal_kstar < 1.0  # more noise, more samples move
    assert levels[2].repeats == 2 and levels[2].gamma_prime_std >= 0
    with pytest.raises(LdrError, match="sigmas must be finite numbers >= 0"):
        kstar_under_noise(a, y, [0.1, -1])


def test_cli_noise(two_models, tmp_path):
    root, *_ = two_models
    out = tmp_path / "n"
    assert main(["kstar", "noise", str(root / "model_a.npz"), "--sigmas", "0,0.5", "--repeats", "1", "--out",
                 str(out)]) == 0
    report = json.loads(next(out.glob("*.json")).read_text())
    assert [lv["sigma"] for lv in report["levels"]] == [0.0, 0.5]
    assert next(out.glob("*.png")).stat().st_size > 0
    assert main(["kstar", "noise", str(root / "model_a.npz"), "--sigmas", "a,b"]) == 2


def test_docs_table_is_what_compare_prints(two_models, tmp_path, capsys):
    """docs/kstar.md shows `ldr kstar compare tiny_a.npz tiny_b.npz` on these two tiny models."""
    from pathlib import Path

    root, *_ = two_models
    for name in ("a", "b"):
        (tmp_path / f"tiny_{name}.npz").write_bytes((root / f"model_{name}.npz").read_bytes())
    assert main(["kstar", "compare", str(tmp_path / "tiny_a.npz"), str(tmp_path / "tiny_b.npz"), "--out",
                 str(tmp_path / "o"), "--no-plot"]) == 0
    printed = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("report:")]
    docs = (Path(__file__).resolve().parents[1] / "docs" / "kstar.md").read_text()
    block = docs.split("ldr kstar compare tiny_a.npz tiny_b.npz`):\n\n```\n", 1)[1].split("\n```", 1)[0]
    assert printed == block.splitlines()
