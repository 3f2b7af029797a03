"""LatentDR's DomainBed algorithms: every variant name, the options it forces and what it is — the one table.

:mod:`ldr_plugin.domainbed.algorithm` generates a class per name, :mod:`ldr_plugin.domainbed.hparams`
fixes the forced options. ``pyproject.toml`` still declares one entry point per name (entry points
cannot be generated); a test checks that its names are exactly these.

>>> variant_overrides("LatentDRNoise")
{'mode': 'noise'}
"""

from __future__ import annotations

import difflib
from typing import Any, NamedTuple

from ldr_plugin.errors import LdrError


class Variant(NamedTuple):
    """The ``LatentDRConfig`` options a variant forces on top of its hparams, and its one-line doc."""

    options: dict[str, Any]
    doc: str


VARIANTS: dict[str, Variant] = {
    "LatentDR": Variant({}, "ERM plus latent degradation (soft labels) and cross-attention restoration on a shared "
                            "classifier."),
    "LatentDRNoise": Variant({"mode": "noise"}, "Ablation: Gaussian noise instead of sample-aware attention."),
    "LatentDRSpatial": Variant({"mode": "spatial"}, "Variant: spatial degradation on the featurizer's last map."),
    "LatentDRDegradeOnly": Variant({"use_restoration": False}, "Ablation: degradation only (no restoration)."),
    "LatentDRRestoreOnly": Variant({"use_degradation": False}, "Ablation: restoration only, on clean latents."),
    "LatentDRSeparateHeads": Variant({"shared_classifier": False}, "Ablation: separate classifiers per branch."),
    "LatentDRBatchBank": Variant({"bank": "batch"}, "Variant: keys from the current batch, self masked."),
    "LatentDRCrossDomain": Variant({"partners": "cross_domain"},
                                   "Variant: degradation partners from other domains only."),
}


def variant_overrides(algorithm: str) -> dict[str, Any]:
    """Options forced by a LatentDR variant name; LdrError with close matches for an unknown name."""
    if algorithm not in VARIANTS:
        close = difflib.get_close_matches(algorithm, list(VARIANTS), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise LdrError(f"unknown LatentDR variant {algorithm!r}: expected one of {sorted(VARIANTS)}{hint}")
    return dict(VARIANTS[algorithm].options)
