"""Validation of k* inputs: features and labels checked, classes mapped, samples grouped by class.

Every problem becomes an :class:`~ldr_plugin.errors.LdrError` that names what is wrong (rows,
classes, counts), so a caller never sees a crash or a silent NaN.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ldr_plugin.errors import LdrError


@dataclass
class Prepared:
    """Validated inputs, with samples reordered so that each class is one contiguous range.

    ``order[i]`` is the input index of sorted sample ``i``; class ``c`` occupies sorted rows
    ``bounds[c]:bounds[c + 1]``; ``features`` keeps the caller's values (numpy or torch).
    """

    features: torch.Tensor  # original values, input order, on the compute device
    codes: np.ndarray  # class index per input sample (int64)
    class_names: list[str]
    order: np.ndarray
    bounds: np.ndarray
    device: torch.device

    @property
    def n(self) -> int:
        return int(self.codes.size)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.bounds)


def _as_tensor(features: Any, device: str | torch.device | None) -> torch.Tensor:
    if isinstance(features, torch.Tensor):
        tensor = features.detach()
        target = torch.device(device) if device is not None else tensor.device
        return tensor.to(target)
    array = np.asarray(features)
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise LdrError(f"features must be numeric, got dtype {array.dtype}")
    if np.iscomplexobj(array):
        raise LdrError("features must be real numbers, got complex values")
    if not np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float64)
    return torch.from_numpy(np.ascontiguousarray(array)).to(torch.device(device or "cpu"))


def _check_features(tensor: torch.Tensor) -> None:
    if tensor.ndim != 2:
        raise LdrError(
            f"features must be a 2-D array [samples, dimensions], got shape {tuple(tensor.shape)}"
            + (" (use features.reshape(-1, 1) for 1-D values)" if tensor.ndim == 1 else "")
        )
    if tensor.shape[0] == 0:
        raise LdrError("empty input: features has 0 samples")
    if tensor.shape[1] == 0:
        raise LdrError(f"features has {tensor.shape[0]} samples but 0 dimensions")
    if not torch.is_floating_point(tensor):
        return
    bad_rows = (~torch.isfinite(tensor)).any(dim=1)
    n_bad = int(bad_rows.sum())
    if n_bad:
        first = int(torch.nonzero(bad_rows)[0, 0])
        raise LdrError(
            f"features contain NaN or Inf in {n_bad} of {tensor.shape[0]} rows (first bad row: index {first})"
        )


def _label_values(labels: Any) -> np.ndarray:
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    array = np.asarray(labels)
    if array.ndim != 1:
        array = array.reshape(-1) if array.ndim == 2 and 1 in array.shape else array
    if array.ndim != 1:
        raise LdrError(f"labels must be a 1-D array, got shape {array.shape}")
    if array.dtype.kind in "US":
        return array.astype(str)
    if array.dtype.kind in "iu":
        return array.astype(np.int64)
    if array.dtype.kind == "f":
        finite = np.isfinite(array)
        if not finite.all() or np.any(array != np.round(array)):
            row = int(np.flatnonzero(~finite | (array != np.round(np.nan_to_num(array))))[0])
            raise LdrError(
                f"labels must be integers or strings; got non-integer value {float(array[row])} at row {row}"
            )
        return array.astype(np.int64)
    kind = "booleans" if array.dtype == bool else f"dtype {array.dtype}"
    raise LdrError(f"labels must be integers or strings (non-numeric labels: {kind})")


def map_classes(labels: Any, class_names: Any = None) -> tuple[np.ndarray, list[str]]:
    """Map labels to class indices 0..C-1 in sorted label order; return (codes, names).

    ``class_names`` (optional) names integer labels: label ``k`` is called ``class_names[k]``.
    """
    values = _label_values(labels)
    uniques, codes = np.unique(values, return_inverse=True)
    if class_names is None:
        names = [str(u) for u in uniques]
    else:
        table = [str(x) for x in np.asarray(class_names).reshape(-1)]
        if values.dtype.kind != "i":
            raise LdrError("class_names given, so labels must be integer indices into class_names")
        if uniques.size and (uniques[0] < 0 or uniques[-1] >= len(table)):
            raise LdrError(
                f"labels range {uniques[0]}..{uniques[-1]} does not index class_names ({len(table)} names)"
            )
        names = [table[int(u)] for u in uniques]
    return codes.astype(np.int64).reshape(-1), names


def prepare(features: Any, labels: Any, *, class_names: Any = None, device=None) -> Prepared:
    """Validate (features, labels) and group samples by class; raise :class:`LdrError` on bad input."""
    tensor = _as_tensor(features, device)
    _check_features(tensor)
    values = _label_values(labels)
    if values.size != tensor.shape[0]:
        raise LdrError(
            f"labels and features have different lengths: {values.size} labels, {tensor.shape[0]} feature rows"
        )
    codes, names = map_classes(values, class_names)
    if len(names) < 2:
        raise LdrError(f"k* needs at least 2 classes, got a single class ({names[0]!r}, {codes.size} samples)")
    counts = np.bincount(codes, minlength=len(names))
    singles = [names[c] for c in np.flatnonzero(counts == 1)]
    if singles:
        raise LdrError(
            f"k* is undefined for a class with one sample: class {singles[0]!r}"
            + (f" (and {len(singles) - 1} more: {singles[1:6]})" if len(singles) > 1 else "")
        )
    order = np.argsort(codes, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return Prepared(tensor, codes, names, order, bounds, tensor.device)
