"""Shared fixtures and marker handling.

DomainBed-marked tests run only when DomainBed is importable (a clone on PYTHONPATH, or
DOMAINBED_DIR pointing at one); otherwise they skip with the reason.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _domainbed_available() -> bool:
    root = os.environ.get("DOMAINBED_DIR")
    if root and root not in sys.path and (Path(root) / "domainbed").is_dir():
        sys.path.insert(0, root)
    try:
        import importlib.util

        return importlib.util.find_spec("domainbed") is not None
    except (ImportError, ValueError):
        return False


def pytest_collection_modifyitems(config, items):
    have_domainbed = _domainbed_available()
    for item in items:
        if "domainbed" in item.keywords and not have_domainbed:
            item.add_marker(pytest.mark.skip(reason="DomainBed not importable (set DOMAINBED_DIR to a clone)"))


@pytest.fixture
def shared_data() -> Path:
    """../shared/data beside the checkout (real result files); skip if this checkout has none."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def clustered_features():
    """Factory of clustered synthetic features: (features float32 [N,d], labels int [N])."""

    def make(n_per_class=50, n_classes=4, dim=16, spread=3.0, seed=0):
        rng = np.random.default_rng(seed)
        centres = rng.normal(scale=spread, size=(n_classes, dim))
        labels = np.repeat(np.arange(n_classes), n_per_class)
        feats = centres[labels] + rng.normal(size=(labels.size, dim))
        return feats.astype(np.float32), labels

    return make


@pytest.fixture
def tiny_plugin(tmp_path, monkeypatch):
    """The tiny model source of ``ldr_plugin.testing`` installed as a third-party plugin (sys.path and
    PYTHONPATH, so submitit workers see it too); yields its folder."""
    from ldr_plugin import sources
    from ldr_plugin.testing import tiny_distribution

    root = tiny_distribution(tmp_path / "site")
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(root), *filter(None, [os.environ.get("PYTHONPATH")])]))
    monkeypatch.setattr(sources, "_INSTANCES", {})
    yield root
    sys.modules.pop("ldr_tiny_source", None)
