"""Segment-wise picks on sorted numpy arrays, with Python's ``max`` / stable-sort tie rules."""

from __future__ import annotations

import numpy as np


def segment_starts(seg: np.ndarray) -> np.ndarray:
    """Bool mask of the rows where a run of equal ``seg`` values starts."""
    starts = np.ones(len(seg), dtype=bool)
    starts[1:] = seg[1:] != seg[:-1]
    return starts


def first_max_per_segment(seg: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per run of equal ``seg`` (rows in order): the row Python's ``max`` over ``values`` returns.

    The first maximum wins; NaN never wins unless it comes first (nothing compares greater than it).
    """
    if not len(seg):
        return np.zeros(0, dtype=np.int64)
    first = segment_starts(seg)
    key = np.where(np.isnan(values), np.where(first, np.inf, -np.inf), values)
    return last_per_segment(seg, key, tie=-np.arange(len(seg)))


def last_per_segment(seg: np.ndarray, key: np.ndarray, tie: np.ndarray | None = None) -> np.ndarray:
    """Per ``seg`` value (rows in any order): the row with the largest ``key``; ties go to the largest
    ``tie`` (default: the last row). Returned in ``seg`` order."""
    if not len(seg):
        return np.zeros(0, dtype=np.int64)
    tie = np.arange(len(seg)) if tie is None else tie
    order = np.lexsort((tie, key, seg))
    ends = np.ones(len(seg), dtype=bool)
    ends[:-1] = seg[order][1:] != seg[order][:-1]
    return order[ends]
