"""The page's interactive scatter: a cross-model page whose scatter has more than 200 points draws it
inline with one hoverable point per table row (label and values checked against the CSV, parsed
here), and keeps the static plot for Markdown; a scatter of 200 points stays a static image."""

from __future__ import annotations

import numpy as np
from scatter_pages import X_COLUMN, Y_COLUMN, Points, csv_points, scored_runs

from ldr_plugin.leaderboard.build import build_leaderboards


def test_scatter_of_more_than_200_points_is_interactive_one_point_per_row(tmp_path):
    spec = scored_runs(tmp_path, 201)
    out = tmp_path / "out"
    build_leaderboards([spec], [tmp_path / "records"], out, progress=False)
    page = (out / "index.html").read_text(encoding="utf-8")
    parsed = Points()
    parsed.feed(page)
    expected = csv_points(out / "kh.csv")
    assert len(expected) == 201 and len({p[0] for p in expected}) == 201  # one labelled row per run
    assert parsed.figures == 1 and len(parsed.points) == 201
    shown = sorted((p["data-label"], float(p["data-x"]), float(p["data-y"])) for p in parsed.points)
    assert [s[0] for s in shown] == [e[0] for e in expected]
    assert np.allclose([s[1:] for s in shown], [e[1:] for e in expected], rtol=0, atol=1e-9)
    for p in parsed.points:  # the tooltip text (and the no-script title) name the row and both values
        x, y = float(p["data-x"]), float(p["data-y"])
        assert p["data-xt"] == f"{x:.2f}" and p["data-yt"] == f"{y:.3f}"
        assert p["title"] == f"{p['data-label']}: {X_COLUMN} {x:.2f}, {Y_COLUMN} {y:.3f}"
    # coloured by algorithm, offline (inline script, no external file), static plot kept for Markdown
    fills: dict[str, set[str]] = {}
    for p in parsed.points:
        fills.setdefault(p["data-label"].split(" · ")[0], set()).add(p["fill"])
    assert sorted(fills) == ["ERM", "LatentDR"] and all(len(f) == 1 for f in fills.values())
    assert fills["ERM"] != fills["LatentDR"]
    assert "<script src" not in page and "figure.iscatter" in page and "data-ready" in page
    assert 'href="plots/kh__gamma_vs_1.svg"' in page and '<img class="plot"' not in page
    assert (out / "plots" / "kh__gamma_vs_1.svg").is_file()
    assert "plots/kh__gamma_vs_1.svg" in (out / "kh.md").read_text(encoding="utf-8")


def test_scatter_of_200_points_stays_a_static_image(tmp_path):
    spec = scored_runs(tmp_path, 200)
    out = tmp_path / "out"
    build_leaderboards([spec], [tmp_path / "records"], out, progress=False)
    page = (out / "index.html").read_text(encoding="utf-8")
    parsed = Points()
    parsed.feed(page)
    assert len(csv_points(out / "kh.csv")) == 200
    assert parsed.figures == 0 and parsed.points == [] and "figure.iscatter" not in page
    assert page.count('<img class="plot" src="plots/kh__gamma_vs_1.svg"') == 1

