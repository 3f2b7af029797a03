"""The aggregate rules for classes with constant k* (exclude / clip / the authors' notebook rule) and
the spread of the per-class γ, against the spec's toy vectors and cases computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ldr_plugin.kstar import kstar_summary
from ldr_plugin.kstar.stats import notebook_gammas, summarise

G = 2 / math.sqrt(3)  # |g1| of four values, three equal: (0.75, 0.75, 0.75, 0.25) -> -1.1547

TOY1 = (np.array([[0.0], [1], [2], [3], [2.6], [10], [11], [12]]), np.repeat([0, 1], 4))
TOY2 = (np.array([[0, 0], [0, 1], [1, 0], [5, 5], [5, 6], [6, 5], [0.5, 0.4], [9, 9], [9, 10], [10, 9]], float),
        np.array([0, 0, 0, 1, 1, 1, 1, 2, 2, 2]))


def test_toy2_under_each_rule():
    # spec §4 toy 2: class 0 constant 1/3 (γ undefined), class 1 γ = −1.1547, class 2 constant 1.0 (γ = −∞)
    x, y = TOY2
    exclude = kstar_summary(x, y, dtype="float64")
    assert exclude.gamma_prime == pytest.approx(-G) and exclude.gamma_excluded_classes == ["0", "2"]
    notebook = kstar_summary(x, y, dtype="float64", infinite="notebook")
    # by hand: undefined -> 0.0, −∞ -> the smallest finite γ (−1.1547): (0 − 1.1547 − 1.1547) / 3
    assert notebook.gamma_prime == pytest.approx(-2 * G / 3) == pytest.approx(-0.7698, abs=1e-4)
    assert notebook.n_gamma_excluded == 0
    assert [c.gamma_in_mean for c in notebook.classes] == pytest.approx([0.0, -G, -G])
    assert [c.pattern for c in notebook.classes] == ["Overlapped", "Clustered", "Clustered"]  # from the raw γ
    clip = kstar_summary(x, y, dtype="float64", infinite="clip")
    assert clip.gamma_prime == pytest.approx((0.0 - G - 1 / math.sqrt(2)) / 3)  # −∞ -> −(n−2)/√(n−1), n = 3


def test_toy1_has_no_constant_class_so_every_rule_agrees():
    x, y = TOY1
    values = {rule: kstar_summary(x, y, infinite=rule).gamma_prime for rule in ("exclude", "clip", "notebook")}
    assert values == pytest.approx({"exclude": -0.57735, "clip": -0.57735, "notebook": -0.57735}, abs=1e-5)


def test_notebook_rule_hand_case_where_the_smallest_finite_gamma_is_positive():
    # class A raw k* (1, 1, 1, 4) of 4 -> k̂* (.25, .25, .25, 1): γ = +1.1547 (fractured);
    # class B (4, 4, 4, 4): all 1.0 -> −∞, replaced by the smallest finite γ, which is A's +1.1547;
    # class C (2, 2, 2) of 3: constant 2/3 -> undefined -> 0.0.  Γ′ = (1.1547 + 1.1547 + 0) / 3
    kstar = np.array([1, 1, 1, 4, 4, 4, 4, 4, 2, 2, 2])
    codes = np.array([0] * 4 + [1] * 4 + [2] * 3)
    s = summarise(kstar, codes, ["A", "B", "C"], infinite="notebook")
    assert s.classes[0].gamma == pytest.approx(G)
    assert s.classes[1].gamma == -math.inf and math.isnan(s.classes[2].gamma)
    assert s.gamma_prime == pytest.approx(2 * G / 3)
    assert summarise(kstar, codes, ["A", "B", "C"]).gamma_prime == pytest.approx(G)  # exclude: A only
    assert summarise(kstar, codes, ["A", "B", "C"], infinite="clip").gamma_prime == pytest.approx(0.0)


def test_notebook_rule_without_any_finite_gamma_leaves_gamma_prime_undefined():
    s = summarise(np.array([2, 2, 2, 3, 3, 3]), np.array([0, 0, 0, 1, 1, 1]), ["a", "b"], infinite="notebook")
    # class a: constant 2/3 (undefined -> 0.0); class b: all 1.0 (−∞, nothing to replace it with)
    assert math.isnan(s.gamma_prime) and s.gamma_excluded_classes == ["b"]


def test_notebook_gammas_is_numpy_nan_to_num_as_the_notebook_applies_it():
    rng = np.random.default_rng(0)
    for _ in range(50):
        g = rng.normal(size=6)
        g[rng.random(6) < 0.3] = -np.inf
        g[rng.random(6) < 0.2] = np.nan
        finite = g[np.isfinite(g)]
        if finite.size == 0:
            continue
        expected = np.nan_to_num(g, nan=0.0, neginf=np.nanmin(g[g != -np.inf]), posinf=np.nanmax(g[g != np.inf]))
        np.testing.assert_array_equal(notebook_gammas(list(g)), expected)


def test_class_skew_spread_reports_the_range_averaged_into_gamma_prime():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 8))
    y = np.repeat(np.arange(3), 100)
    x[y == 1] += 1.5
    x[y == 2] += 3.0
    s = kstar_summary(x, y)
    gammas = np.array([c.gamma for c in s.classes])  # spec §4: 0.220553, 0.802978, 0.681819
    assert s.class_skew["std"] == pytest.approx(gammas.std())
    assert (s.class_skew["min"], s.class_skew["max"]) == pytest.approx((0.220553, 0.802978), abs=1e-6)
    assert (s.class_skew["min_class"], s.class_skew["max_class"]) == ("0", "1")
    assert s.class_skew["range"] == pytest.approx(0.802978 - 0.220553, abs=1e-6)
