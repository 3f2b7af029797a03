"""LatentDR hyperparameters for DomainBed: ``{name: (default, random_value)}`` with DomainBed's seeding.

Only LatentDR's own ``ldr_*`` names are declared; DomainBed's shared keys (lr, batch_size,
weight_decay, ...) stay DomainBed's, so a LatentDR run and an ERM run with the same seeds share them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ldr_plugin.domainbed.hparams_table import seed_hash
from ldr_plugin.domainbed.variants import VARIANTS, variant_overrides
from ldr_plugin.latentdr.config import HPARAM_PREFIX, LatentDRConfig


def _log_uniform(lo: float, hi: float) -> Callable[[np.random.RandomState], float]:
    return lambda r: float(10 ** r.uniform(lo, hi))


def _choice(values: list) -> Callable[[np.random.RandomState], Any]:
    return lambda r: values[int(r.randint(len(values)))]


def latentdr_hparams(algorithm: str, dataset: str, random_seed: int) -> dict[str, tuple[Any, Any]]:
    """Defaults and random-search values of LatentDR's options for a variant name (Python scalars).

    Example: ``latentdr_hparams("LatentDR", "RotatedDigits", 0)["ldr_lambda_d"] == (1.0, 0.42...)``.
    Options a variant forces (e.g. ``ldr_mode`` of ``LatentDRNoise``) are fixed in both slots.
    """
    forced, variant = variant_overrides(algorithm), VARIANTS[algorithm]  # (variant_overrides: unknown names)
    defaults = {**LatentDRConfig().__dict__, **variant.defaults, **forced}
    search: dict[str, Callable[[np.random.RandomState], Any]] = {
        "lambda_d": _log_uniform(-1, 0.5),
        "lambda_r": _log_uniform(-1, 0.5),
        "tau": _choice([0.05, 0.1, 0.2, 0.5]),
        "keep_prob": _choice([0.25, 0.5, 0.75]),
        "beta_max": _choice([0.25, 0.5, 0.75]),
        "bank_size": _choice([256, 1024, 4096]),
        "heads": _choice([1, 4, 8]),
        "noise_std": _choice([0.5, 1.0, 2.0]),
        **{name: _choice(values) for name, values in variant.search.items()},
    }
    hparams: dict[str, tuple[Any, Any]] = {}
    for name, default in defaults.items():
        key = HPARAM_PREFIX + name
        rng = np.random.RandomState(seed_hash(random_seed, key))
        draw = search.get(name) if name not in forced else None
        hparams[key] = (default, draw(rng) if draw else default)
    return hparams
