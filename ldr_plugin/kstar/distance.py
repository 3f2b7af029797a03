"""The distance k* ranks neighbours by: Euclidean (the papers'), cosine or Mahalanobis.

Each distance is a change of coordinates followed by the same Euclidean search, so every backend
(exact, screened, hnsw) supports all three and the exact backend's rounding guard holds for the
transformed features:

- ``euclidean``: the raw features (spec §1).
- ``cosine``: every row divided by its L2 norm (float64). Cosine distance 1 − cos θ = ‖â − b̂‖²/2 is
  a monotone function of the Euclidean distance between normalised rows, so neighbour ranks are
  the same. A zero row has no direction: an error naming the rows.
- ``mahalanobis``: ``z = x·W`` with ``W Wᵀ = Σ⁻¹``, Σ the *pooled within-class covariance*
  (each sample minus its class mean) shrunk by Ledoit–Wolf
  (:func:`sklearn.covariance.ledoit_wolf_shrinkage`, ``assume_centered=True`` on the
  class-centred samples): ``Σ = (1 − δ)·S + δ·(tr S / d)·I``. Shrinkage keeps Σ invertible when
  there are fewer samples than dimensions or a direction without variance. k* only ranks
  distances, so the scale of Σ (denominator N or N − C) does not matter.

>>> import numpy as np
>>> from ldr_plugin.kstar import kstar_values
>>> x = np.array([[1., 0.], [2., 0.1], [0., 1.], [0.1, 3.]])
>>> kstar_values(x, [0, 0, 1, 1], distance="cosine").tolist()
[2, 2, 2, 2]
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import torch

from ldr_plugin.errors import LdrError
from ldr_plugin.kstar.inputs import Prepared

DISTANCES = ("euclidean", "cosine", "mahalanobis")
MAHALANOBIS_COVARIANCE = (
    "pooled within-class covariance (samples minus their class mean), Ledoit-Wolf shrinkage "
    "towards (tr S / d)·I (sklearn.covariance.ledoit_wolf_shrinkage)"
)
_CHUNK = 8192


NORMALISATION = {
    "euclidean": "none",
    "cosine": "rows divided by their L2 norm",
    "mahalanobis": "whitened by the Ledoit-Wolf-shrunk pooled within-class covariance",
}


def metric_family(distance: str) -> str:
    """The records' ``metric_family`` of k* under ``distance``: "kstar" for Euclidean (the papers'),
    "kstar-cosine" / "kstar-mahalanobis" otherwise, so results under different distances never share
    a record file and a leaderboard (which selects one family) never pools them.

    >>> metric_family("euclidean"), metric_family("cosine")
    ('kstar', 'kstar-cosine')
    """
    return "kstar" if check_distance(distance) == "euclidean" else f"kstar-{distance}"


def record_distance(record: Any) -> str:
    """The distance a k* result record (a Record or its dict) was computed with (records before
    distances existed: Euclidean)."""
    def field(name: str) -> Any:
        return record.get(name) if isinstance(record, dict) else getattr(record, name, None)

    detail = field("detail") or {}
    for where in (field("preprocessing") or {}, detail, detail.get("metric") or {}):
        if isinstance(where, dict) and isinstance(where.get("distance"), str):
            return where["distance"]
    return "euclidean"


def check_distance(distance: str) -> str:
    if distance not in DISTANCES:
        raise LdrError(f"unknown k* distance {distance!r}; choose one of {', '.join(DISTANCES)}")
    return distance


def apply_distance(prep: Prepared, distance: str) -> tuple[Prepared, dict[str, Any]]:
    """``prep`` with its features replaced by coordinates in which ``distance`` is Euclidean.

    Returns the new :class:`Prepared` and a description for the record (``{"distance": …}``, plus
    the covariance estimate and the shrinkage δ for Mahalanobis).
    """
    check_distance(distance)
    if distance == "euclidean":
        return prep, {"distance": "euclidean"}
    if distance == "cosine":
        return replace(prep, features=_normalised(prep.features)), {
            "distance": "cosine", "transform": "rows divided by their L2 norm (float64)"}
    whitened, info = _whitened(prep)
    return replace(prep, features=whitened), {"distance": "mahalanobis", **info}


def _normalised(features: torch.Tensor) -> torch.Tensor:
    x = features.to(torch.float64)
    norms = torch.linalg.vector_norm(x, dim=1)
    zero = torch.nonzero(norms == 0).flatten()
    if zero.numel():
        rows = zero[:10].tolist()
        raise LdrError(
            f"cosine distance is undefined for a zero feature vector: {zero.numel()} row(s) are all zeros "
            f"(rows {rows}{' …' if zero.numel() > 10 else ''}); drop them or use distance='euclidean'"
        )
    return x / norms.unsqueeze(1)


def within_class_residuals(prep: Prepared) -> torch.Tensor:
    """Every sample minus the mean of its class (float64, input order)."""
    x = prep.features.to(torch.float64)
    codes = torch.as_tensor(prep.codes, device=x.device)
    sums = torch.zeros((prep.n_classes, x.shape[1]), dtype=torch.float64, device=x.device)
    sums.index_add_(0, codes, x)
    counts = torch.as_tensor(prep.counts, dtype=torch.float64, device=x.device)
    return x - (sums / counts.unsqueeze(1))[codes]


def pooled_covariance(prep: Prepared) -> tuple[np.ndarray, float]:
    """(Ledoit–Wolf-shrunk pooled within-class covariance [d, d], shrinkage δ), float64 numpy."""
    from sklearn.covariance import ledoit_wolf_shrinkage

    resid = within_class_residuals(prep)
    n, d = resid.shape
    scatter = torch.zeros((d, d), dtype=torch.float64, device=resid.device)
    for r0 in range(0, n, _CHUNK):
        block = resid[r0 : r0 + _CHUNK]
        scatter += block.T @ block
    emp = (scatter / n).cpu().numpy()
    mu = float(np.trace(emp)) / d
    if not mu > 0:
        raise LdrError(
            "mahalanobis distance is undefined: every class's samples are identical (the within-class "
            "covariance is zero); use distance='euclidean'"
        )
    delta = float(ledoit_wolf_shrinkage(resid.cpu().numpy(), assume_centered=True))
    cov = (1.0 - delta) * emp
    cov[np.diag_indices(d)] += delta * mu
    return cov, delta


def _whitened(prep: Prepared) -> tuple[torch.Tensor, dict[str, Any]]:
    cov, delta = pooled_covariance(prep)
    values, vectors = np.linalg.eigh(cov)
    if not values.min() > values.max() * 1e-12:
        raise LdrError(
            f"mahalanobis distance: the shrunk within-class covariance is singular (Ledoit-Wolf shrinkage "
            f"{delta:.3g}, smallest/largest eigenvalue {values.min():.3g}/{values.max():.3g}); use "
            "distance='euclidean' or 'cosine'"
        )
    w = torch.as_tensor(vectors / np.sqrt(values), device=prep.features.device)  # W Wᵀ = Σ⁻¹
    x = prep.features
    out = torch.empty((x.shape[0], w.shape[1]), dtype=torch.float64, device=x.device)
    for r0 in range(0, x.shape[0], _CHUNK):
        out[r0 : r0 + _CHUNK] = x[r0 : r0 + _CHUNK].to(torch.float64) @ w
    info = {"covariance": MAHALANOBIS_COVARIANCE, "shrinkage": delta,
            "condition_number": float(values.max() / values.min())}
    return out, info
