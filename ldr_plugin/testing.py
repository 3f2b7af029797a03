"""Fixtures for tests and benchmarks: fake installed distributions and a tiny model source.

A fake distribution is a ``<name>-1.0.dist-info`` folder (METADATA + entry_points.txt) plus
modules, in a folder that the caller puts on ``sys.path`` (and ``PYTHONPATH`` for subprocesses),
so entry-point discovery sees it exactly as it sees an installed third-party plugin.

>>> root = tiny_distribution(tmp_path / "site")        # doctest: +SKIP
>>> # then: sys.path.insert(0, str(root)); ldr score --models tiny:net0 ...
"""

from __future__ import annotations

from pathlib import Path

TINY_MODULE = "ldr_tiny_source"

_TINY_SOURCE = '''
import hashlib
import numpy as np
import torch
from ldr_plugin.metrics.base import Metric, MetricResult
from ldr_plugin.sources.base import LoadedModel, ModelSource

WIDTH = {width}


class TinySource(ModelSource):
    """Random linear maps of 28x28 digits to WIDTH features, seeded by their identifier."""

    name = "tiny"
    layers = ("linear",)

    def list_ids(self):
        return [f"net{{i}}" for i in range(1000)]

    def required_files(self, identifier, weights_dir):
        return []

    def check_available(self, ids, weights_dir):
        return []

    def load(self, identifier, *, weights_dir=None, device="cpu", trust_checkpoint=False):
        seed = int(hashlib.sha256(identifier.encode()).hexdigest()[:8], 16)
        weight = torch.randn(784, WIDTH, generator=torch.Generator().manual_seed(seed))

        def extract(images, layers):
            return {{"linear": images.flatten(1) @ weight}}

        return LoadedModel(f"tiny:{{identifier}}", torch.nn.Identity(), None, self.layers, extract, {{"name": "none"}})


class CentroidGap(Metric):
    """Mean distance between class centroids over mean distance to the own centroid."""

    family = "centroid_gap"

    def compute(self, features, labels):
        classes = np.unique(labels)
        centroids = np.stack([features[labels == c].mean(0) for c in classes])
        within = np.mean([np.linalg.norm(features[labels == c] - centroids[i], axis=1).mean()
                          for i, c in enumerate(classes)])
        between = np.linalg.norm(centroids[:, None] - centroids[None], axis=2).sum() / (len(classes) * (len(classes) - 1))
        return MetricResult(self.family, {{"gap": float(between / within)}}, {{"gap": True}})
'''


def make_distribution(root: Path, name: str, entry_points: dict[str, dict[str, str]],
                      modules: dict[str, str] | None = None) -> Path:
    """Write ``root/<name>-1.0.dist-info`` (METADATA + entry_points.txt) and optional modules; return root."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    info = root / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    lines = []
    for group, items in entry_points.items():
        lines.append(f"[{group}]")
        lines += [f"{k} = {v}" for k, v in items.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    for module, source in (modules or {}).items():
        (root / f"{module}.py").write_text(source)
    return root


def tiny_distribution(root: Path, *, width: int = 8) -> Path:
    """A fake distribution ``ldr-tiny-source`` registering model source ``tiny`` (``tiny:net0`` ...
    ``tiny:net999``, random linear maps to ``width`` features) from module ``ldr_tiny_source``."""
    return make_distribution(root, "ldr-tiny-source",
                             {"ldr_plugin.model_sources": {"tiny": f"{TINY_MODULE}:TinySource"}},
                             {TINY_MODULE: _TINY_SOURCE.format(width=int(width))})
