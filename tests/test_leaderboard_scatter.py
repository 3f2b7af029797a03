"""The page's interactive scatter: a cross-model page whose scatter has more than 200 points draws it
inline with one hoverable point per table row (label and values checked against the CSV, parsed
here), and keeps the static plot for Markdown; a scatter of 200 points stays a static image."""

from __future__ import annotations

import csv
import hashlib
import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np

from ldr_plugin.leaderboard.build import build_leaderboards
from ldr_plugin.results import metric, new_record, write_record

X_COLUMN, Y_COLUMN = "held-out domain acc (%)", "Γ′"


def scored_runs(tmp_path: Path, n: int, seed: int = 0) -> Path:
    """``n`` DomainBed-style run folders (final accuracy on their held-out domain) with a k* record
    of each run's featurizer; returns the spec of a cross-model board of Γ′ vs that accuracy."""
    rng = np.random.default_rng(seed)
    records = tmp_path / "records"
    for i in range(n):
        env = i % 3
        run = tmp_path / "sweep" / hashlib.md5(f"run{i}".encode()).hexdigest()
        run.mkdir(parents=True)
        args = {"dataset": "RotatedDigitsFlat", "test_envs": [env], "algorithm": ("ERM", "LatentDR")[i % 2],
                "trial_seed": i // 6, "hparams_seed": 0}
        last = {"args": args, "step": 100, f"env{env}_in_acc": float(rng.uniform(0.3, 0.95)),
                f"env{env}_out_acc": 0.5}
        (run / "results.jsonl").write_text(json.dumps(last) + "\n")
        rec = new_record(kind="kstar", model_id=f"domainbed:{run}", metric_family="kstar",
                         metrics={"gamma_prime": metric(float(rng.normal()), higher_is_better=False)},
                         command=["test"], dataset=f"run:env{env}", split="in", layer="featurizer", seed=0)
        write_record(rec, records)
    spec = tmp_path / "kh.toml"
    spec.write_text('[leaderboard]\nid = "kh"\ntitle = "k* vs held-out"\nkind = "cross_model"\n'
                    'accuracies = ["heldout_acc_pct"]\nlayer = "featurizer"\nstratify = "heldout_domain"\n'
                    'ci = "bootstrap"\nn_resamples = 100\n')
    return spec


class Points(HTMLParser):
    """Every ``<circle data-label>`` of the page: its attributes and its ``<title>`` text."""

    def __init__(self):
        super().__init__()
        self.points: list[dict[str, str]] = []
        self.figures = 0
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "figure" and attrs.get("class") == "iscatter":
            self.figures += 1
        if tag == "circle" and "data-label" in attrs:
            self.points.append({**attrs, "title": ""})
        self._in_title = tag == "title" and bool(self.points)

    def handle_endtag(self, tag):
        self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.points[-1]["title"] += data


def csv_points(path: Path) -> list[tuple[str, float, float]]:
    """(row label, accuracy, Γ′) of every model row of the CSV with both values."""
    cells: dict[str, dict[str, str]] = {}
    for r in csv.DictReader(path.open(encoding="utf-8")):
        if r["table"] == "kh__models":
            cells.setdefault(r["row"], {})[r["column"]] = r["value"]
    return sorted((label, float(c[X_COLUMN]), float(c[Y_COLUMN])) for label, c in cells.items()
                  if c.get(X_COLUMN) and c.get(Y_COLUMN))


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

