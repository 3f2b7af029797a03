"""How k* moves when the latents are perturbed: Γ′ under Gaussian noise of growing scale.

``kstar_under_noise(features, labels, sigmas)`` adds ``N(0, (σ·s)²)`` noise to every coordinate
(``s`` = the features' overall scale, the root mean square of the per-dimension standard deviations,
so σ is relative; ``relative=False`` uses σ as is), ``repeats`` times per σ with seeded noise, and
reports Γ′, Γ, the pattern counts and, against the unperturbed features, the rank correlation of
the per-class γ and the share of samples whose k* is unchanged. Noise drowns the class structure,
so Γ′ and the per-class ranking drift as σ grows; how soon says how fragile the measured
clustering is. ``plot_noise`` draws Γ′ (and Γ) against σ.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> y = np.repeat(np.arange(3), 50)
>>> x = rng.normal(size=(150, 4)) + 3 * np.eye(3, 4)[y]
>>> rows = kstar_under_noise(x, y, [0.0, 0.5, 2.0])
>>> [r.sigma for r in rows], rows[0].equal_kstar
([0.0, 0.5, 2.0], 1.0)
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.stats
import torch

from ldr_plugin.errors import LdrError
from ldr_plugin.kstar.api import kstar_summary
from ldr_plugin.kstar.plot import _pyplot, save_figure


@dataclass
class NoiseLevel:
    """k* aggregates at one noise scale (mean over repeats; ``*_std`` the spread over repeats)."""

    sigma: float  # as given (relative to ``scale`` unless relative=False)
    noise_std: float  # absolute standard deviation of the added noise
    gamma_prime: float
    gamma_prime_std: float
    gamma: float
    n_fractured: float
    n_overlapped: float
    n_clustered: float
    class_gamma_spearman: float  # per-class γ vs the unperturbed features (mean over repeats)
    equal_kstar: float  # share of samples with the same k* as unperturbed (mean over repeats)
    repeats: int

    def to_dict(self) -> dict[str, Any]:
        return {k: (v if not isinstance(v, float) or math.isfinite(v) else None) for k, v in asdict(self).items()}


def feature_scale(features: np.ndarray) -> float:
    """Root mean square of the per-dimension standard deviations (float64)."""
    return float(np.sqrt(np.mean(np.var(np.asarray(features, dtype=np.float64), axis=0))))


def kstar_under_noise(features: Any, labels: Any, sigmas: Any, *, relative: bool = True, repeats: int = 1,
                      seed: int = 0, **options: Any) -> list[NoiseLevel]:
    """Γ′ etc. of ``features + N(0, (σ·scale)²)`` for each σ (see the module docstring); ``options``
    (``distance``, ``backend``, ``infinite`` …) go to :func:`~ldr_plugin.kstar.kstar_summary`."""

    if isinstance(features, torch.Tensor):
        features = features.detach().cpu().numpy()
    x = np.asarray(features, dtype=np.float64)
    sig = [float(s) for s in np.atleast_1d(np.asarray(sigmas, dtype=np.float64))]
    if not sig or any(not math.isfinite(s) or s < 0 for s in sig):
        raise LdrError(f"sigmas must be finite numbers >= 0, got {list(np.atleast_1d(sigmas))}")
    if int(repeats) < 1:
        raise LdrError(f"repeats must be at least 1, got {repeats}")
    base = kstar_summary(x, labels, **options)
    base_gamma = np.array([c.gamma for c in base.classes])
    scale = feature_scale(x) if relative else 1.0
    rng = np.random.default_rng(seed)
    out = []
    for sigma in sig:
        runs = [base] if sigma == 0 else [
            kstar_summary(x + rng.normal(scale=sigma * scale, size=x.shape), labels, **options)
            for _ in range(int(repeats))]
        rhos = [_rank_corr(base_gamma, np.array([c.gamma for c in s.classes])) for s in runs]
        gp = np.array([s.gamma_prime for s in runs])
        out.append(NoiseLevel(
            sigma=sigma, noise_std=sigma * scale, gamma_prime=float(np.mean(gp)),
            gamma_prime_std=float(np.std(gp)) if len(runs) > 1 else 0.0,
            gamma=float(np.mean([s.gamma_pooled for s in runs])),
            n_fractured=float(np.mean([s.n_fractured for s in runs])),
            n_overlapped=float(np.mean([s.n_overlapped for s in runs])),
            n_clustered=float(np.mean([s.n_clustered for s in runs])),
            class_gamma_spearman=float(np.nanmean(rhos)) if not np.all(np.isnan(rhos)) else math.nan,
            equal_kstar=float(np.mean([np.mean(s.kstar == base.kstar) for s in runs])),
            repeats=len(runs)))
    return out


def _rank_corr(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or np.ptp(a[ok]) == 0 or np.ptp(b[ok]) == 0:
        return math.nan
    return float(scipy.stats.spearmanr(a[ok], b[ok]).statistic)


def plot_noise(levels: list[NoiseLevel], path: str | os.PathLike, *, title: str | None = None,
               relative: bool = True) -> Path:
    """Γ′ (± its spread over repeats) and Γ against σ, with the per-class γ rank correlation to the
    unperturbed features on a second axis. PNG or SVG by the suffix of ``path``."""

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    s = [lv.sigma for lv in levels]
    ax.errorbar(s, [lv.gamma_prime for lv in levels], yerr=[lv.gamma_prime_std for lv in levels], marker="o",
                capsize=3, label="Γ′ (mean per-class γ)")
    ax.plot(s, [lv.gamma for lv in levels], marker="s", ls="--", label="Γ (pooled)")
    ax.set_xlabel("noise σ" + (" (× feature scale)" if relative else ""))
    ax.set_ylabel("skewness of k̂* (lower = less fractured)")
    ax.grid(alpha=0.3)
    twin = ax.twinx()
    twin.plot(s, [lv.class_gamma_spearman for lv in levels], color="tab:gray", marker=".", lw=1,
              label="ρ per-class γ vs σ = 0")
    twin.set_ylim(-1.05, 1.05)
    twin.set_ylabel("Spearman ρ of per-class γ vs unperturbed", fontsize=8)
    lines = ax.get_legend_handles_labels()
    more = twin.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=8)
    ax.set_title(title or "k* under Gaussian noise on the latents", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)
