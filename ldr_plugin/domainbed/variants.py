"""LatentDR's DomainBed algorithms: every variant name, the options it forces (and its own defaults and
search choices) and what it is — the one table.

:mod:`ldr_plugin.domainbed.algorithm` generates a class per name, :mod:`ldr_plugin.domainbed.hparams`
fixes the forced options. ``pyproject.toml`` still declares one entry point per name (entry points
cannot be generated); a test checks that its names are exactly these.

>>> variant_overrides("LatentDRNoise")
{'mode': 'noise'}
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from ldr_plugin.errors import LdrError


@dataclass(frozen=True)
class Variant:
    """The ``LatentDRConfig`` options a variant forces on top of its hparams, its one-line doc, and
    the defaults (not forced: ``--hparams`` may change them) and random-search choices it has of its
    own, where they differ from LatentDR's."""

    options: dict[str, Any]
    doc: str
    defaults: dict[str, Any] = field(default_factory=dict)
    search: dict[str, list[Any]] = field(default_factory=dict)


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
    "LatentDRLongTail": Variant({"long_tail": "balanced"},
                                "Variant: the long-tail mode (class-balanced attention, logit adjustment)."),
    # ERM for the first 1,000 of DomainBed's 5,001 default steps (20 %)
    "LatentDRDelayed": Variant({}, "Variant: delayed start (ERM for ldr_start_step steps, default 1000).",
                               defaults={"start_step": 1000}, search={"start_step": [250, 500, 1000, 2500]}),
}


def variant_overrides(algorithm: str) -> dict[str, Any]:
    """Options forced by a LatentDR variant name; LdrError with close matches for an unknown name."""
    if algorithm not in VARIANTS:
        close = difflib.get_close_matches(algorithm, list(VARIANTS), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise LdrError(f"unknown LatentDR variant {algorithm!r}: expected one of {sorted(VARIANTS)}{hint}")
    return dict(VARIANTS[algorithm].options)
