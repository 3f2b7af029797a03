"""A cross-model page with a scatter of n points, for the interactive-scatter tests: DomainBed-style
run folders with k* records, the CSV's points and the page's points read independently."""

from __future__ import annotations

import csv
import hashlib
import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np

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
