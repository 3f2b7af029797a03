"""Hyperparameters for plugin algorithms and datasets, composed the way DomainBed draws its own.

DomainBed builds ``{name: (default, random)}`` in ``hparams_registry._hparams(algorithm, dataset,
random_seed)``, drawing each random value from ``RandomState(seed_hash(random_seed, name))``.
:func:`hparams_table` puts plugin declarations on top of a base table with that same per-name
seeding, so keys shared with ERM get identical values for the same seeds (paired comparisons):

1. base keys: DomainBed's original ``_hparams`` when DomainBed is importable, else
   :func:`host_free_base` (the generic keys DomainBed defines, at b93c22a); a plugin dataset may
   name a DomainBed dataset to take the base as (``DOMAINBED_HPARAMS_AS``, e.g. ``RotatedMNIST``);
2. the dataset's ``HPARAMS`` class attribute ``{name: (default, fn(random_state))}``;
3. the algorithm's ``domainbed.hparams`` entry point ``fn(algorithm, dataset, random_seed)``.

Every value is returned as a Python scalar (``np.int64`` breaks DomainBed's JSON dumps and
``torch.load(weights_only=True)`` of ``model.pkl``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import numpy as np

from ldr_plugin.domainbed.host import hparams_function, import_domainbed
from ldr_plugin.errors import LdrError

HparamTable = dict[str, tuple[Any, Any]]
BaseFn = Callable[[str, str, int], HparamTable]

SMALL_IMAGES = ("Debug28", "RotatedMNIST", "ColoredMNIST")  # DomainBed's list in _hparams


def seed_hash(*args: Any) -> int:
    """DomainBed's ``misc.seed_hash``: an integer seed in [0, 2**31) from the ``str`` of the args."""
    return int(hashlib.md5(str(args).encode("utf-8")).hexdigest(), 16) % (2**31)


def python_scalar(value: Any) -> Any:
    """``np.float64(0.5)`` -> ``0.5``, ``np.int64(3)`` -> ``3``, ``np.bool_`` -> ``bool``; else unchanged."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def _draw(name: str, random_seed: int, fn: Callable[[np.random.RandomState], Any]) -> Any:
    return fn(np.random.RandomState(seed_hash(random_seed, name)))


def host_free_base(algorithm: str, dataset: str, random_seed: int) -> HparamTable:
    """The generic base keys DomainBed's ``_hparams`` defines for any algorithm (no DomainBed needed)."""
    small = dataset in SMALL_IMAGES
    dropout = lambda r: r.choice([0.0, 0.1, 0.5])
    spec: list[tuple[str, Any, Callable[[np.random.RandomState], Any]]] = [
        ("data_augmentation", True, lambda r: True),
        ("resnet18", False, lambda r: False),
        ("resnet50_augmix", True, lambda r: True),
        ("dinov2", False, lambda r: False),
        ("vit", False, lambda r: False),
        ("vit_attn_tune", False, lambda r: False),
        ("freeze_bn", False, lambda r: False),
        ("lars", False, lambda r: False),
        ("linear_steps", 500, lambda r: 500),
        ("resnet_dropout", 0.0, dropout),
        ("vit_dropout", 0.0, dropout),
        ("class_balanced", False, lambda r: False),
        ("nonlinear_classifier", False, lambda r: bool(r.choice([False, False]))),
        ("lr", 1e-3, lambda r: 10 ** r.uniform(-4.5, -2.5)) if small else ("lr", 5e-5, lambda r: 10 ** r.uniform(-5, -3.5)),
        ("weight_decay", 0.0, lambda r: 0.0) if small else ("weight_decay", 0.0, lambda r: 10 ** r.uniform(-6, -2)),
        ("batch_size", 64, lambda r: int(2 ** r.uniform(3, 9)))
        if small
        else ("batch_size", 32, lambda r: int(2 ** r.uniform(3, 5.5))),
    ]
    return {name: (default, _draw(name, random_seed, fn)) for name, default, fn in spec}


def dataset_class_hparams(dataset_cls: type | None, random_seed: int) -> HparamTable:
    """A dataset class's declared ``HPARAMS`` drawn with DomainBed's per-name seeding."""
    declared = getattr(dataset_cls, "HPARAMS", None) or {}
    return {name: (default, _draw(name, random_seed, fn)) for name, (default, fn) in declared.items()}


def hparams_table(
    algorithm: str,
    dataset: str,
    random_seed: int,
    *,
    base_fn: BaseFn | None = None,
    dataset_cls: type | None = None,
    algorithm_fn: Callable[[str, str, int], HparamTable] | None = None,
) -> HparamTable:
    """``{name: (default, random)}``: base keys, then the dataset's, then the algorithm's declarations."""
    base_name = getattr(dataset_cls, "DOMAINBED_HPARAMS_AS", None) or dataset
    table = dict((base_fn or host_free_base)(algorithm, base_name, random_seed))
    table.update(dataset_class_hparams(dataset_cls, random_seed))
    if algorithm_fn is not None:
        table.update(algorithm_fn(algorithm, dataset, random_seed))
    return {name: (python_scalar(d), python_scalar(r)) for name, (d, r) in table.items()}


def choose_hparams(table_for_seed: Callable[[int], HparamTable], hparams_seed: int, trial_seed: int) -> dict:
    """DomainBed's ``train.py`` choice: defaults (table at seed 0) for ``hparams_seed == 0``, else the
    random draws of the table at ``seed_hash(hparams_seed, trial_seed)``."""
    if hparams_seed == 0:
        return {name: default for name, (default, _) in table_for_seed(0).items()}
    return {name: random for name, (_, random) in table_for_seed(seed_hash(hparams_seed, trial_seed)).items()}


def run_hparams(algorithm: str, dataset: str, dataset_cls: type, hparams_seed: int, trial_seed: int) -> dict:
    """The hyperparameters DomainBed's ``train.py`` would use (plugin declarations included)."""
    host = import_domainbed("domainbed.hparams_registry")
    base_fn = None
    if host is not None:  # DomainBed's own table (unwrapped, if the hook wrapped it)
        base_fn = getattr(host._hparams, "__wrapped__", host._hparams)
    algorithm_fn = hparams_function(algorithm)

    def table(seed: int) -> HparamTable:
        return hparams_table(algorithm, dataset, seed, base_fn=base_fn, dataset_cls=dataset_cls,
                             algorithm_fn=algorithm_fn)

    return choose_hparams(table, hparams_seed, trial_seed)


def parse_hparams_json(text: str | None) -> dict[str, Any]:
    """The ``--hparams`` JSON override (``None`` or empty -> ``{}``)."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LdrError(f"--hparams is not valid JSON ({exc}): {text!r}") from exc
    if not isinstance(value, dict):
        raise LdrError(f"--hparams must be a JSON object such as '{{\"batch_size\": 8}}', got {text!r}")
    return value


# Hyperparameters whose value has a range whatever the algorithm: (lowest allowed, strictly above it?)
_RANGES = {"batch_size": (1, False), "lr": (0.0, True), "weight_decay": (0.0, False)}


def check_overrides(hparams: dict[str, Any], overrides: dict[str, Any], where: str) -> dict[str, Any]:
    """Check ``--hparams`` overrides against the run's hyperparameters; return them as Python scalars.

    Every key must be one the run has (a typo is an error with close matches, never silently
    ignored), a value must have its default's type (an int where an int is, a finite number where a
    float is, a bool where a bool is), and ``batch_size >= 1``, ``lr > 0``, ``weight_decay >= 0``.

    >>> check_overrides({"lr": 1e-3, "batch_size": 64}, {"batch_size": 8}, "ERM on digits")
    {'batch_size': 8}
    """
    import difflib
    import math

    checked = {}
    for key, value in overrides.items():
        value = python_scalar(value)
        if key not in hparams:
            close = difflib.get_close_matches(key, list(hparams), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(sorted(hparams))}"
            raise LdrError(f"--hparams: unknown hyperparameter '{key}' for {where}{hint}")
        default = hparams[key]
        if isinstance(default, bool) or isinstance(value, bool):
            ok = isinstance(value, bool) and isinstance(default, bool)
        elif isinstance(default, int):
            ok = isinstance(value, int)
        elif isinstance(default, float):
            ok = isinstance(value, (int, float)) and math.isfinite(value)
        else:
            ok = default is None or isinstance(value, type(default))
        if not ok:
            raise LdrError(f"--hparams: '{key}' must be {_kind(default)} like its default {default!r}, got {value!r}")
        low, strict = _RANGES.get(key, (None, False))
        if low is not None and (value < low or (strict and value == low)):
            raise LdrError(f"--hparams: '{key}' must be {'>' if strict else '>='} {low}, got {value!r}")
        checked[key] = value
    return checked


def _kind(default: Any) -> str:
    if isinstance(default, bool):
        return "true or false"
    if isinstance(default, int):
        return "an integer"
    if isinstance(default, float):
        return "a finite number"
    return f"a {type(default).__name__}"
