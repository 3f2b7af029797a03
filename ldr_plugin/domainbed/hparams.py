"""LatentDR hyperparameters for DomainBed: ``{name: (default, random_value)}`` with DomainBed's seeding.

Only LatentDR's own ``ldr_*`` names are declared; DomainBed's shared keys (lr, batch_size,
weight_decay, ...) stay DomainBed's, so a LatentDR run and an ERM run with the same seeds share them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import numpy as np

from ldr_plugin.latentdr.config import HPARAM_PREFIX, LatentDRConfig, variant_overrides


def _seed_hash_builtin(*args: Any) -> int:
    """Same as DomainBed's ``misc.seed_hash``: md5 of ``str(args)`` modulo 2**31."""
    return int(hashlib.md5(str(args).encode("utf-8")).hexdigest(), 16) % (2**31)


def seed_hash(*args: Any) -> int:
    """DomainBed's ``misc.seed_hash`` when importable, else the identical built-in implementation."""
    try:
        from domainbed.lib.misc import seed_hash as host_seed_hash
    except ImportError:
        return _seed_hash_builtin(*args)
    return host_seed_hash(*args)


# Variants whose defaults (not forced: --hparams may change them) and search ranges differ from
# LatentDR's. LatentDRDelayed: ERM for the first 1,000 of DomainBed's 5,001 default steps (20 %).
VARIANT_DEFAULTS: dict[str, dict[str, Any]] = {"LatentDRDelayed": {"start_step": 1000}}


def _log_uniform(lo: float, hi: float) -> Callable[[np.random.RandomState], float]:
    return lambda r: float(10 ** r.uniform(lo, hi))


def _choice(values: list) -> Callable[[np.random.RandomState], Any]:
    return lambda r: values[int(r.randint(len(values)))]


VARIANT_SEARCH: dict[str, dict[str, Callable[[np.random.RandomState], Any]]] = {
    "LatentDRDelayed": {"start_step": _choice([250, 500, 1000, 2500])},
}


def latentdr_hparams(algorithm: str, dataset: str, random_seed: int) -> dict[str, tuple[Any, Any]]:
    """Defaults and random-search values of LatentDR's options for a variant name (Python scalars).

    Example: ``latentdr_hparams("LatentDR", "RotatedDigits", 0)["ldr_lambda_d"] == (1.0, 0.42...)``.
    Options a variant forces (e.g. ``ldr_mode`` of ``LatentDRNoise``) are fixed in both slots.
    """
    forced = variant_overrides(algorithm)
    defaults = {**LatentDRConfig().__dict__, **VARIANT_DEFAULTS.get(algorithm, {}), **forced}
    search: dict[str, Callable[[np.random.RandomState], Any]] = {
        "lambda_d": _log_uniform(-1, 0.5),
        "lambda_r": _log_uniform(-1, 0.5),
        "tau": _choice([0.05, 0.1, 0.2, 0.5]),
        "keep_prob": _choice([0.25, 0.5, 0.75]),
        "beta_max": _choice([0.25, 0.5, 0.75]),
        "bank_size": _choice([256, 1024, 4096]),
        "heads": _choice([1, 4, 8]),
        "noise_std": _choice([0.5, 1.0, 2.0]),
        **VARIANT_SEARCH.get(algorithm, {}),
    }
    hparams: dict[str, tuple[Any, Any]] = {}
    for name, default in defaults.items():
        key = HPARAM_PREFIX + name
        rng = np.random.RandomState(seed_hash(random_seed, key))
        draw = search.get(name) if name not in forced else None
        hparams[key] = (default, draw(rng) if draw else default)
    return hparams
