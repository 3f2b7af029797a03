"""k* plots: valid PNG/SVG, deterministic bytes, γ/pattern text, several panels, Spearman ρ in the title."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest
import scipy.stats

from ldr_plugin.errors import LdrError
from ldr_plugin.kstar import kstar_summary
from ldr_plugin.kstar.plot import plot_gamma_scatter, plot_violins

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def toy2():
    x = np.array([[0, 0], [0, 1], [1, 0], [5, 5], [5, 6], [6, 5], [0.5, 0.4], [9, 9], [9, 10], [10, 9]], float)
    y = np.array(["a", "a", "a", "b", "b", "b", "b", "c", "c", "c"])
    return kstar_summary(x, y)


def test_violins_png_and_svg_are_valid_and_deterministic(tmp_path, toy2):
    png1 = plot_violins(toy2, tmp_path / "v1.png")
    png2 = plot_violins(toy2, tmp_path / "v2.png")
    assert png1.read_bytes()[:8] == PNG_MAGIC
    assert png1.read_bytes() == png2.read_bytes()
    svg1 = plot_violins(toy2, tmp_path / "v1.svg")
    svg2 = plot_violins(toy2, tmp_path / "v2.svg")
    ET.parse(svg1)  # well-formed XML
    text = svg1.read_text()
    assert text == svg2.read_text()
    assert "γ = −∞ Clustered" in text and "γ = undefined Overlapped" in text and "γ = -1.15 Clustered" in text
    assert "#2ca02c" in text and "#d62728" in text  # clustered green, overlapped red
    assert not list(tmp_path.glob(".tmp-*"))


def test_many_classes_go_to_several_panels(tmp_path, clustered_features):
    x, y = clustered_features(n_per_class=12, n_classes=45, dim=6, spread=1.0)
    s = kstar_summary(x, y)
    path = plot_violins(s, tmp_path / "many.svg", classes_per_panel=20)
    text = path.read_text()
    assert text.count('id="axes_') == 3  # 45 classes in 3 panels
    assert all(f">{c}<" in text for c in ("0", "44"))


def test_violins_need_per_sample_values_and_a_known_suffix(tmp_path, toy2):
    with pytest.raises(LdrError, match=r"\.png or \.svg"):
        plot_violins(toy2, tmp_path / "v.jpg")
    assert not (tmp_path / "v.jpg").exists()


def test_gamma_scatter_title_has_spearman(tmp_path):
    pts = [("m1", 60.0, 2.1), ("m2", 65.0, 1.7), ("m3", 71.5, 1.9), ("m4", 80.0, 0.4), ("m5", None, 1.0)]
    rho = scipy.stats.spearmanr([60, 65, 71.5, 80], [2.1, 1.7, 1.9, 0.4])[0]
    svg = plot_gamma_scatter(pts, "robust accuracy (%)", tmp_path / "s.svg", title="CIFAR-10 Linf")
    text = svg.read_text()
    assert f"Spearman ρ = {rho:.3f}" in text and "n = 4, 1 without values" in text
    assert "robust accuracy (%)" in text and ">m4<" in text
    png = plot_gamma_scatter(pts, "acc", tmp_path / "s.png")
    assert png.read_bytes()[:8] == PNG_MAGIC
    few = plot_gamma_scatter(pts[:2], "acc", tmp_path / "few.svg").read_text()
    assert "fewer than 3 models" in few


def test_gamma_scatter_colours_groups_with_a_legend(tmp_path):
    pts = [("m1", 60.0, 2.1), ("m2", 65.0, 1.7), ("m3", 71.5, 1.9), ("m4", 80.0, 0.4)]
    text = plot_gamma_scatter(pts, "acc", tmp_path / "g.svg", groups=["ERM", "LatentDR", "ERM", "LatentDR"],
                              annotate=False).read_text()
    assert ">ERM<" in text and ">LatentDR<" in text  # legend entries
    assert "#1f77b4" in text and "#ff7f0e" in text  # two colours (C0, C1)
    plain = plot_gamma_scatter(pts, "acc", tmp_path / "p.svg", annotate=False).read_text()
    assert "#ff7f0e" not in plain
    with pytest.raises(LdrError, match="3 groups for 4 points"):
        plot_gamma_scatter(pts, "acc", tmp_path / "bad.svg", groups=["a", "b", "c"])
