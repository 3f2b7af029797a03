"""Per-class k* statistics, patterns and the aggregates Γ and Γ′ (spec §2–3).

γ is the biased Fisher–Pearson skewness g1 = m3 / m2^{3/2} (``scipy.stats.skew`` with
``bias=True``); zero variance is detected explicitly: all values 1.0 → −∞ (perfectly clustered),
any other constant → NaN (undefined, counted as Overlapped).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

FRACTURED, OVERLAPPED, CLUSTERED = "Fractured", "Overlapped", "Clustered"
INFINITE_MODES = ("exclude", "clip", "notebook")
POOLING_MODES = ("normalised", "raw")


def skewness(values: np.ndarray, *, perfect: float = 1.0) -> float:
    """Biased g1 of ``values``; −∞ if all equal ``perfect``, NaN for any other constant."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return math.nan
    if np.all(x == x[0]):
        return -math.inf if x[0] == perfect else math.nan
    dev = x - x.mean()
    m2 = np.mean(dev**2)
    m3 = np.mean(dev**3)
    return float(m3 / m2**1.5)


def adjusted_skewness(g1: float, n: int) -> float:
    """Adjusted Fisher–Pearson G1 = g1·√(n(n−1))/(n−2) (NaN for n ≤ 2; ±∞ and NaN pass through)."""
    if n <= 2:
        return math.nan
    return g1 * math.sqrt(n * (n - 1)) / (n - 2)


def pattern_of(gamma: float, threshold: float = 0.5) -> str:
    """Fractured if γ > t, Clustered if γ < −t, otherwise (NaN included) Overlapped."""
    if gamma > threshold:
        return FRACTURED
    if gamma < -threshold:
        return CLUSTERED
    return OVERLAPPED


@dataclass
class ClassStats:
    """k̂* statistics of one class."""

    name: str
    n: int
    mu: float
    sigma: float
    gamma: float
    pattern: str
    adjusted_gamma: float | None = None
    mu_raw: float = math.nan
    gamma_in_mean: float = math.nan  # the value this class contributes to Γ′ (NaN: left out)


@dataclass
class KStarSummary:
    """Everything ``kstar_summary`` reports; ``to_dict()`` gives JSON-ready numbers (±∞/NaN → None)."""

    classes: list[ClassStats]
    n_samples: int
    n_classes: int
    gamma_pooled: float  # Γ
    gamma_prime: float  # Γ′
    mu: float  # mean k̂* over all samples
    n_fractured: int
    n_overlapped: int
    n_clustered: int
    n_ties: int
    n_gamma_excluded: int  # classes left out of Γ′ (γ infinite or undefined, after the `infinite` rule)
    gamma_excluded_classes: list[str]
    options: dict[str, Any]
    backend: str = "exact"
    kstar: np.ndarray | None = field(default=None, repr=False)  # raw k* per sample, input order
    kstar_normalised: np.ndarray | None = field(default=None, repr=False)
    codes: np.ndarray | None = field(default=None, repr=False)
    search: dict[str, Any] = field(default_factory=dict)
    distance_from_exact: dict[str, Any] | None = None
    distance: str = "euclidean"  # the metric neighbours were ranked by (see ldr_plugin.kstar.distance)
    distance_info: dict[str, Any] = field(default_factory=dict)
    class_skew: dict[str, Any] = field(default_factory=dict)  # spread of the per-class γ (class_skew_spread)

    def to_dict(self, *, per_sample: bool = False) -> dict[str, Any]:
        """Plain dict of numbers; infinite/undefined values become None (``gamma_state`` says which)."""
        skip = {"kstar", "kstar_normalised", "codes", "classes"}
        out = {k: _json(v) for k, v in asdict(self).items() if k not in skip}
        out["classes"] = [
            {**{k: _json(v) for k, v in asdict(c).items()}, "gamma_state": _state(c.gamma)} for c in self.classes
        ]
        if per_sample and self.kstar is not None:
            out["kstar"] = self.kstar.tolist()
        return out


def _state(value: float) -> str:
    if math.isnan(value):
        return "undefined"
    return "-inf" if value == -math.inf else ("inf" if value == math.inf else "finite")


def _json(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def _clip_gamma(gamma: float, n: int) -> float:
    # the most extreme finite g1 possible for n samples is ±(n−2)/√(n−1)
    bound = (n - 2) / math.sqrt(n - 1) if n > 1 else 0.0
    if math.isnan(gamma):
        return 0.0
    return max(-bound, min(bound, gamma))


def notebook_gammas(gammas: list[float]) -> list[float]:
    """The k* authors' rule (official notebook) for the γ that enter Γ′.

    Undefined γ (a constant class other than all 1.0) → 0.0; −∞ (all k̂* = 1.0) → the smallest
    finite γ of the classes; +∞ → the largest (cannot occur: k̂* > 0). This is
    ``numpy.nan_to_num(γ, nan=0.0, neginf=min finite γ, posinf=max finite γ)``, as the notebook
    applies it. With no finite γ at all the rule has no value: −∞ stays −∞ and Γ′ is undefined, as
    in the notebook (where the minimum of nothing is NaN).

    >>> notebook_gammas([float("-inf"), 1.2, float("nan"), 0.3])
    [0.3, 1.2, 0.0, 0.3]
    """
    finite = [g for g in gammas if math.isfinite(g)]
    low, high = (min(finite), max(finite)) if finite else (-math.inf, math.inf)
    return [0.0 if math.isnan(g) else low if g == -math.inf else high if g == math.inf else g for g in gammas]


def class_skew_spread(classes: list[ClassStats]) -> dict[str, Any]:
    """How different the per-class γ averaged into Γ′ are: count, population std, min, max, range and
    the classes at both ends, over classes with a finite γ (JSON-ready; None where undefined)."""
    finite = [(c.gamma, c.name) for c in classes if math.isfinite(c.gamma)]
    if not finite:
        return {"n_finite": 0, "std": None, "min": None, "max": None, "range": None,
                "min_class": None, "max_class": None}
    values = np.array([g for g, _ in finite])
    low, high = min(finite), max(finite)
    return {"n_finite": len(finite), "std": float(values.std()), "min": low[0], "max": high[0],
            "range": high[0] - low[0], "min_class": low[1], "max_class": high[1]}


def class_statistics(
    kstar: np.ndarray, codes: np.ndarray, names: list[str], *, threshold: float = 0.5, adjusted: bool = False
) -> list[ClassStats]:
    """Per-class μ, σ (ddof 0), γ (g1) and pattern of k̂* = k*/n_c."""
    out = []
    for c, name in enumerate(names):
        raw = kstar[codes == c].astype(np.float64)
        n = raw.size
        norm = raw / n
        gamma = skewness(norm)
        out.append(
            ClassStats(
                name=name,
                n=int(n),
                mu=float(norm.mean()),
                sigma=float(norm.std(ddof=0)),
                gamma=gamma,
                pattern=pattern_of(gamma, threshold),
                adjusted_gamma=adjusted_skewness(gamma, n) if adjusted else None,
                mu_raw=float(raw.mean()),
            )
        )
    return out


def summarise(
    kstar: np.ndarray,
    codes: np.ndarray,
    names: list[str],
    *,
    n_ties: int = 0,
    threshold: float = 0.5,
    adjusted: bool = False,
    infinite: str = "exclude",
    pooling: str = "normalised",
) -> KStarSummary:
    """Per-class statistics plus Γ (pooled g1), Γ′ (mean of per-class γ) and the pattern counts."""
    if infinite not in INFINITE_MODES:
        raise ValueError(f"infinite must be one of {INFINITE_MODES}, got {infinite!r}")
    if pooling not in POOLING_MODES:
        raise ValueError(f"pooling must be one of {POOLING_MODES}, got {pooling!r}")
    classes = class_statistics(kstar, codes, names, threshold=threshold, adjusted=adjusted)
    counts = np.array([c.n for c in classes])
    normalised = kstar / counts[codes]
    pooled = skewness(normalised if pooling == "normalised" else kstar.astype(np.float64), perfect=1.0)
    if pooling == "raw" and np.all(kstar == kstar[0]):  # constant raw k* is perfect iff every k̂* is 1
        pooled = -math.inf if np.all(normalised == 1.0) else math.nan
    gammas = [c.gamma for c in classes]
    if infinite == "clip":
        used = [_clip_gamma(c.gamma, c.n) for c in classes]
    elif infinite == "notebook":
        used = notebook_gammas(gammas)
    else:
        used = gammas
    for c, value in zip(classes, used):
        c.gamma_in_mean = value if math.isfinite(value) else math.nan
    excluded = [c.name for c, value in zip(classes, used) if not math.isfinite(value)]
    finite = [v for v in used if math.isfinite(v)]
    pats = [c.pattern for c in classes]
    return KStarSummary(
        classes=classes,
        n_samples=int(kstar.size),
        n_classes=len(names),
        gamma_pooled=pooled,
        gamma_prime=float(np.mean(finite)) if finite and not (infinite == "notebook" and excluded) else math.nan,
        mu=float(normalised.mean()),
        n_fractured=pats.count(FRACTURED),
        n_overlapped=pats.count(OVERLAPPED),
        n_clustered=pats.count(CLUSTERED),
        n_ties=int(n_ties),
        n_gamma_excluded=len(excluded),
        gamma_excluded_classes=excluded,
        options={"threshold": threshold, "adjusted": adjusted, "infinite": infinite, "pooling": pooling},
        kstar=kstar,
        kstar_normalised=normalised,
        codes=codes,
        class_skew=class_skew_spread(classes),
    )
