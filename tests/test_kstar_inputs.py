"""Bad k* input gets an LdrError that names the problem."""

from __future__ import annotations

import numpy as np
import pytest

from ldr_plugin.errors import LdrError
from ldr_plugin.kstar import kstar_summary, kstar_values


def _good(n=12):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 3)), np.arange(n) % 3


def test_nan_and_inf_rows_are_counted_and_located():
    x, y = _good()
    x[4, 1] = np.nan
    x[7, 0] = np.inf
    with pytest.raises(LdrError, match=r"NaN or Inf in 2 of 12 rows \(first bad row: index 4\)"):
        kstar_values(x, y)


def test_single_class():
    x, _ = _good()
    with pytest.raises(LdrError, match="at least 2 classes.*single class"):
        kstar_values(x, np.zeros(12, dtype=int))


def test_class_with_one_sample_is_named():
    x, y = _good()
    y = np.array(["a"] * 6 + ["b"] * 5 + ["lonely"])
    with pytest.raises(LdrError, match="one sample: class 'lonely'"):
        kstar_summary(x, y)


def test_length_mismatch_gives_both_counts():
    x, y = _good()
    with pytest.raises(LdrError, match="11 labels, 12 feature rows"):
        kstar_values(x, y[:11])


def test_empty_input():
    with pytest.raises(LdrError, match="empty input"):
        kstar_values(np.zeros((0, 4)), np.zeros(0, dtype=int))


@pytest.mark.parametrize(
    "labels, pattern",
    [
        (np.array([0.5] * 12), "non-integer value 0.5 at row 0"),
        (np.array([True, False] * 6), "non-numeric labels: booleans"),
        (np.array([None] * 12, dtype=object), "non-numeric labels: dtype object"),
    ],
)
def test_non_numeric_labels(labels, pattern):
    x, _ = _good()
    with pytest.raises(LdrError, match=pattern):
        kstar_values(x, labels)


def test_non_numeric_features_and_wrong_shape():
    _, y = _good()
    with pytest.raises(LdrError, match="features must be numeric"):
        kstar_values(np.array([["a"] * 3] * 12), y)
    with pytest.raises(LdrError, match="2-D array.*reshape"):
        kstar_values(np.arange(12.0), y)


def test_unknown_backend_and_options():
    x, y = _good()
    with pytest.raises(LdrError, match="unknown k\\* backend 'annoy'"):
        kstar_values(x, y, backend="annoy")
    with pytest.raises(LdrError, match="dtype must be one of"):
        kstar_values(x, y, dtype="float16")


def test_integral_float_labels_and_class_names_are_accepted():
    x, y = _good()
    s = kstar_summary(x, y.astype(float))
    assert [c.name for c in s.classes] == ["0", "1", "2"]
    from ldr_plugin.kstar.inputs import map_classes

    codes, names = map_classes(np.array([2, 0, 2]), class_names=["zero", "one", "two"])
    assert codes.tolist() == [1, 0, 1] and names == ["zero", "two"]
    with pytest.raises(LdrError, match="does not index class_names"):
        map_classes(np.array([0, 5]), class_names=["a", "b"])
