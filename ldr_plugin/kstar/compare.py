"""Two models (or one before and after fine-tuning) on the same samples, class by class.

:func:`compare` takes two k* result records (``ldr kstar`` records; with ``--per-sample`` files for
the paired per-sample parts) or two feature files (.npz, computed here with the same options) and
returns a :class:`KStarComparison`: per-class μ, σ, γ and pattern of both with the change (B − A),
the classes whose pattern flipped, Γ′ and Γ with their change and a paired bootstrap CI over
samples (resampled within each class, the same samples for both models), the rank correlation of
the per-class γ between the two, and per-sample agreement. Inputs that are not on the same samples
(different sample count, labels, dataset, split or seed) or not under the same distance are an
error naming the difference.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> y = np.repeat(np.arange(3), 40)
>>> a = rng.normal(size=(120, 5)) + 2.0 * np.eye(3, 5)[y]
>>> b = a + rng.normal(scale=0.8, size=a.shape)  # the same samples, noisier features
>>> cmp = compare_features(a, y, b, y, n_resamples=200)
>>> cmp.gamma_prime.change > 0, len(cmp.classes)
(True, 3)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import scipy.stats

from ldr_plugin.errors import LdrError
from ldr_plugin.kstar.api import kstar_summary
from ldr_plugin.kstar.distance import record_distance
from ldr_plugin.kstar.gamma_rules import gamma_prime_rows, row_skewness
from ldr_plugin.kstar.inputs import map_classes
from ldr_plugin.kstar.job import load_features_file
from ldr_plugin.kstar.stats import pattern_of
from ldr_plugin.results import read_record


@dataclass
class Side:
    """One input of a comparison: per-class statistics and (when known) per-sample k̂*."""

    label: str
    distance: str
    class_names: list[str]
    per_class: list[dict[str, Any]]  # name, n, mu, sigma, gamma (None = infinite/undefined), pattern
    gamma_prime: float
    gamma: float
    kstar: np.ndarray | None = None  # raw k* per sample
    codes: np.ndarray | None = None  # class index per sample
    facts: dict[str, Any] = field(default_factory=dict)  # dataset, split, seed, n_samples … (must agree)
    infinite: str = "exclude"  # the rule Γ′ was computed with (must agree)


@dataclass
class Change:
    """A value for A and B, B − A, and (when per-sample k* are known) a bootstrap CI of B − A."""

    a: float
    b: float
    change: float
    ci_low: float = math.nan
    ci_high: float = math.nan


@dataclass
class KStarComparison:
    a: Side
    b: Side
    classes: list[dict[str, Any]]
    gamma_prime: Change
    gamma: Change
    flipped: list[str]
    class_gamma_spearman: float
    per_sample: dict[str, Any]
    bootstrap: dict[str, Any]
    notes: list[str]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (non-finite numbers as None)."""
        def num(v):
            return None if v is None or not math.isfinite(v) else float(v)

        def change(c: Change):
            return {k: num(getattr(c, k)) for k in ("a", "b", "change", "ci_low", "ci_high")}

        return {
            "a": self.a.label, "b": self.b.label, "distance": self.a.distance, "facts": self.a.facts,
            "gamma_prime": change(self.gamma_prime), "gamma": change(self.gamma), "flipped": self.flipped,
            "class_gamma_spearman": num(self.class_gamma_spearman), "per_sample": self.per_sample,
            "bootstrap": self.bootstrap, "notes": self.notes,
            "classes": [{k: (num(v) if isinstance(v, float) else v) for k, v in c.items()} for c in self.classes],
        }


def _float(value) -> float:
    return math.nan if value is None else float(value)


def _check_same_samples(a: Side, b: Side) -> None:
    if a.distance != b.distance:
        raise LdrError(f"cannot compare k* under different distances: {a.label} used {a.distance}, "
                       f"{b.label} used {b.distance}")
    if a.infinite != b.infinite:
        raise LdrError(f"cannot compare Γ′ computed with different rules for infinite γ: {a.label} used "
                       f"infinite={a.infinite}, {b.label} infinite={b.infinite}")
    for key in sorted(set(a.facts) | set(b.facts)):
        if a.facts.get(key) != b.facts.get(key):
            raise LdrError(f"{a.label} and {b.label} are not on the same samples: {key} "
                           f"{a.facts.get(key)!r} vs {b.facts.get(key)!r}")
    if a.class_names != b.class_names:
        only_a = sorted(set(a.class_names) - set(b.class_names))
        only_b = sorted(set(b.class_names) - set(a.class_names))
        raise LdrError(f"{a.label} and {b.label} have different classes (only in A: {only_a[:5]}, "
                       f"only in B: {only_b[:5]})" if only_a or only_b else
                       f"{a.label} and {b.label} order their classes differently")
    if a.codes is not None and b.codes is not None:
        if a.codes.size != b.codes.size:
            raise LdrError(f"{a.label} has {a.codes.size} samples, {b.label} has {b.codes.size}")
        differ = np.flatnonzero(a.codes != b.codes)
        if differ.size:
            row = int(differ[0])
            raise LdrError(f"{a.label} and {b.label} are not on the same samples: labels differ at {differ.size} "
                           f"of {a.codes.size} rows (first: row {row}, {a.class_names[a.codes[row]]!r} vs "
                           f"{b.class_names[b.codes[row]]!r})")


def _bootstrap(a: Side, b: Side, infinite: str, n_resamples: int, seed: int, confidence: float):
    """Paired, class-stratified bootstrap of (ΔΓ′, ΔΓ): the same resampled samples for A and B."""
    rng = np.random.default_rng(seed)
    codes = a.codes
    sizes = np.bincount(codes, minlength=len(a.class_names))
    norm_a, norm_b = a.kstar / sizes[codes], b.kstar / sizes[codes]
    members = [np.flatnonzero(codes == c) for c in range(len(sizes))]
    d_prime, d_pooled = [], []
    step = max(1, (1 << 24) // max(1, codes.size))
    for r0 in range(0, n_resamples, step):
        r = min(step, n_resamples - r0)
        picks = np.concatenate([idx[rng.integers(0, idx.size, size=(r, idx.size))] for idx in members], axis=1)
        ga = np.stack([row_skewness(norm_a[picks[:, s:e]]) for s, e in _spans(sizes)], axis=1)
        gb = np.stack([row_skewness(norm_b[picks[:, s:e]]) for s, e in _spans(sizes)], axis=1)
        d_prime.append(gamma_prime_rows(gb, sizes, infinite) - gamma_prime_rows(ga, sizes, infinite))
        d_pooled.append(row_skewness(norm_b[picks]) - row_skewness(norm_a[picks]))
    alpha = (1 - confidence) / 2
    out = []
    for values in (np.concatenate(d_prime), np.concatenate(d_pooled)):
        ok = values[np.isfinite(values)]
        out.append(tuple(np.quantile(ok, [alpha, 1 - alpha])) if ok.size else (math.nan, math.nan))
    return out


def _spans(sizes: np.ndarray) -> list[tuple[int, int]]:
    ends = np.cumsum(sizes)
    return [(int(e - n), int(e)) for n, e in zip(sizes, ends)]


def compare_sides(a: Side, b: Side, *, n_resamples: int = 1000, seed: int = 0,
                  confidence: float = 0.95) -> KStarComparison:
    """The comparison of two prepared sides (see :func:`compare`); Γ′ under the sides' own rule."""
    _check_same_samples(a, b)
    classes, flipped = [], []
    for ca, cb in zip(a.per_class, b.per_class):
        row = {"name": ca["name"], "n": ca["n"]}
        for key in ("mu", "sigma", "gamma"):
            va, vb = _float(ca.get(key)), _float(cb.get(key))
            row.update({f"{key}_a": va, f"{key}_b": vb, f"{key}_change": vb - va})
        row["pattern_a"], row["pattern_b"] = ca["pattern"], cb["pattern"]
        row["flipped"] = ca["pattern"] != cb["pattern"]
        flipped += [ca["name"]] if row["flipped"] else []
        classes.append(row)
    ga = np.array([c["gamma_a"] for c in classes])
    gb = np.array([c["gamma_b"] for c in classes])
    both = np.isfinite(ga) & np.isfinite(gb)
    rho = float(scipy.stats.spearmanr(ga[both], gb[both]).statistic) if both.sum() >= 3 else math.nan
    gp = Change(a.gamma_prime, b.gamma_prime, b.gamma_prime - a.gamma_prime)
    gg = Change(a.gamma, b.gamma, b.gamma - a.gamma)
    notes, per_sample, boot = [], {}, {"n_resamples": 0}
    if a.kstar is not None and b.kstar is not None:
        (gp.ci_low, gp.ci_high), (gg.ci_low, gg.ci_high) = _bootstrap(a, b, a.infinite, n_resamples, seed,
                                                                      confidence)
        boot = {"n_resamples": n_resamples, "seed": seed, "confidence": confidence,
                "method": "paired percentile bootstrap, samples resampled within each class"}
        sizes = np.bincount(a.codes, minlength=len(a.class_names))
        na, nb = a.kstar / sizes[a.codes], b.kstar / sizes[b.codes]
        per_sample = {"n": int(a.kstar.size), "equal_kstar": float(np.mean(a.kstar == b.kstar)),
                      "spearman": float(scipy.stats.spearmanr(na, nb).statistic),
                      "mean_change_normalised": float(np.mean(nb - na))}
    else:
        missing = [s.label for s in (a, b) if s.kstar is None]
        notes.append(f"no per-sample k* for {', '.join(missing)}: the bootstrap CI, the paired scatter and the "
                     "violins need records written with `ldr kstar --per-sample` (or two feature files)")
    return KStarComparison(a, b, classes, gp, gg, flipped, rho, per_sample, boot, notes)


def compare_features(features_a: Any, labels_a: Any, features_b: Any, labels_b: Any, *, class_names: Any = None,
                     labels: tuple[str, str] = ("A", "B"), infinite: str = "exclude", threshold: float = 0.5,
                     n_resamples: int = 1000, seed: int = 0, confidence: float = 0.95,
                     **options: Any) -> KStarComparison:
    """Compare k* of two feature sets on the same samples (``options`` — ``distance``, ``backend`` …
    — go to :func:`~ldr_plugin.kstar.kstar_summary`, the same for both)."""
    codes_a, names_a = map_classes(labels_a, class_names)
    codes_b, names_b = map_classes(labels_b, class_names)
    pre = [Side(lbl, "?", names, [], math.nan, math.nan, None, codes)
           for lbl, names, codes in ((labels[0], names_a, codes_a), (labels[1], names_b, codes_b))]
    pre[0].distance = pre[1].distance = options.get("distance", "euclidean")
    pre[0].infinite = pre[1].infinite = infinite
    _check_same_samples(*pre)  # before any search: different samples are an error, not a long wait
    sides = []
    for lbl, feats, lab in ((labels[0], features_a, labels_a), (labels[1], features_b, labels_b)):
        s = kstar_summary(feats, lab, class_names=class_names, infinite=infinite, threshold=threshold, **options)
        sides.append(side_from_summary(s, lbl))
    return compare_sides(*sides, n_resamples=n_resamples, seed=seed, confidence=confidence)


def side_from_summary(summary, label: str, facts: dict[str, Any] | None = None) -> Side:
    per_class = [{"name": c.name, "n": c.n, "mu": c.mu, "sigma": c.sigma, "gamma": c.gamma, "pattern": c.pattern}
                 for c in summary.classes]
    return Side(label, summary.distance, [c.name for c in summary.classes], per_class, summary.gamma_prime,
                summary.gamma_pooled, summary.kstar, summary.codes, dict(facts or {}),
                summary.options.get("infinite", "exclude"))


def side_from_record(path: str | Path, threshold: float = 0.5) -> Side:
    """A side from a k* result record (and its per-sample file when the record names one)."""
    path = Path(path)
    record = msgspec.to_builtins(read_record(path))
    if not str(record.get("metric_family", "")).startswith("kstar"):
        raise LdrError(f"{path}: not a k* record (metric_family {record.get('metric_family')!r})")
    detail = record["detail"].get("metric", record["detail"])  # ldr score nests the metric's detail
    per_class = detail.get("per_class")
    if not per_class:
        raise LdrError(f"{path}: the record has no per-class k* statistics (detail.per_class)")
    rows = [{**c, "gamma": _gamma_of(c), "pattern": c.get("pattern") or pattern_of(_gamma_of(c), threshold)}
            for c in per_class]
    metrics = record["metrics"]
    facts = {"dataset": record["dataset"], "split": record["split"], "seed": record["seed"],
             "n_samples": record.get("n_samples"), "n_per_class": record.get("n_per_class") or None}
    side = Side(f"{record['model_id']} [{record['layer']}]", record_distance(record), [c["name"] for c in rows], rows,
                _float(metrics.get("gamma_prime", {}).get("value")), _float(metrics.get("gamma", {}).get("value")),
                facts=facts, infinite=(detail.get("options") or {}).get("infinite", "exclude"))
    per_sample = (detail.get("outputs") or {}).get("per_sample")
    if per_sample:
        side.kstar, side.codes = _read_per_sample(path.parent / per_sample)
    return side


def _gamma_of(entry: dict[str, Any]) -> float:
    state = entry.get("gamma_state", "finite")
    if entry.get("gamma") is not None:
        return float(entry["gamma"])
    return -math.inf if state == "-inf" else math.inf if state == "inf" else math.nan


def _read_per_sample(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise LdrError(f"per-sample file {path} named by its record does not exist")
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            return data["kstar"].astype(np.int64), data["class_index"].astype(np.int64)
    table = np.genfromtxt(path, delimiter=",", names=True, dtype=None, encoding="utf-8", usecols=(1, 3))
    return table["kstar"].astype(np.int64), table["class_index"].astype(np.int64)


def compare(a: str | Path, b: str | Path, *, infinite: str = "exclude", threshold: float = 0.5,
            n_resamples: int = 1000, seed: int = 0, confidence: float = 0.95, **options: Any) -> KStarComparison:
    """Compare two k* result records (``*.result.json``) or two feature files (``.npz`` with
    ``features``, ``labels``, optional ``class_names``; ``infinite``, ``threshold`` and ``options``
    — ``distance``, ``backend`` … — go to ``kstar_summary``; records keep the rules they were made with)."""

    a, b = Path(a), Path(b)
    kinds = {p.suffix for p in (a, b)}
    if kinds == {".npz"}:
        fa, la, na = load_features_file(a)
        fb, lb, nb = load_features_file(b)
        if (na is None) != (nb is None) or (na is not None and list(na) != list(nb)):
            raise LdrError(f"{a} and {b} name their classes differently (class_names)")
        return compare_features(fa, la, fb, lb, class_names=na, labels=(a.stem, b.stem), infinite=infinite,
                                threshold=threshold, n_resamples=n_resamples, seed=seed, confidence=confidence,
                                **options)
    if kinds == {".json"}:
        if options:
            raise LdrError(f"options {sorted(options)} apply to feature files, not to result records")
        return compare_sides(side_from_record(a, threshold), side_from_record(b, threshold),
                             n_resamples=n_resamples, seed=seed, confidence=confidence)
    raise LdrError(f"compare needs two result records (.result.json) or two feature files (.npz); got {a.name}, {b.name}")
