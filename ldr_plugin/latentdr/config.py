"""Every option of LatentDR in one dataclass, defaulting to the spec's design (D) choices.

The paper's equations are not public; each field documents whether it is the spec's default
design (D) or a project ablation switch. See docs/latentdr.md.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from ldr_plugin.errors import LdrError

MODES = ("pooled", "spatial", "noise")
PARTNERS = ("all", "cross_domain")
BANKS = ("fifo", "batch")
INITS = ("default", "identity")
LONG_TAIL = ("none", "balanced")

# DomainBed hyperparameter name for each config field (prefixed so they never clash with DomainBed's).
HPARAM_PREFIX = "ldr_"
_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}


@dataclass
class LatentDRConfig:
    """Options of the LatentDR module; defaults are the spec's default design.

    Example: ``LatentDRConfig(lambda_d=0.5, mode="noise")``. Values of the wrong type (``"false"``
    for a flag, ``100.7`` for a size) are errors naming the option, never converted silently.
    """

    lambda_d: float = 1.0  # weight of SoftCE(g(z~), y~) (D: 1)
    lambda_r: float = 1.0  # weight of CE(g(R(z~)), y) (D: 1)
    tau: float = 0.1  # temperature of the partner attention (D: 0.1)
    keep_prob: float = 0.5  # probability a partner j != i is kept (D: 0.5)
    beta_max: float = 0.5  # self-retention beta_i ~ U(0, beta_max) (D: 0.5)
    mode: str = "pooled"  # pooled (D) | spatial | noise (ablations)
    noise_std: float = 1.0  # noise mode: z + noise_std * std_batch(z) * eps (project choice)
    partners: str = "all"  # all (D) | cross_domain (partners only from other training domains)
    bank: str = "fifo"  # fifo (D: queue of detached clean latents) | batch (current batch, self masked)
    bank_size: int = 1024  # FIFO capacity (D: 1024)
    heads: int = 8  # attention heads of the restoration block (D: 8)
    mlp_ratio: int = 2  # restoration MLP d -> mlp_ratio*d -> d (D: 2)
    restoration_init: str = "default"  # default (PyTorch init) | identity (zero output layers: R starts as identity)
    start_step: int = 0  # delayed start: training steps before it are plain ERM (project option; 0 = from the start)
    warmup_steps: int = 0  # lambda_D, lambda_R ramp linearly from 0 over this many steps after start_step (0 = off)
    long_tail: str = "none"  # none (D) | balanced: class-prior-balanced partners, keys and logit-adjusted losses
    use_degradation: bool = True  # False: "R only" ablation, restoration applied to clean latents
    use_restoration: bool = True  # False: "D only" ablation
    shared_classifier: bool = True  # False: separate heads for the degraded / restored branches
    max_redraws: int = 16  # empty partner rows are re-drawn this often, then one partner is forced

    def __post_init__(self) -> None:
        for f in fields(self):  # an integer is a valid number: lambda_d=1 means 1.0
            value = getattr(self, f.name)
            if _kind(f.default) is float and _kind(value) is int:
                setattr(self, f.name, float(value))
        self.validate()

    def validate(self) -> None:
        """Raise LdrError naming the field when a value has the wrong type or is outside its domain."""
        for f in fields(self):
            value = getattr(self, f.name)
            if _kind(f.default) is not _kind(value) or (isinstance(value, float) and not math.isfinite(value)):
                raise LdrError(f"LatentDRConfig.{f.name}={value!r}: expected {_describe(f.default)}")
        checks = [
            ("mode", self.mode in MODES, f"one of {MODES}"),
            ("partners", self.partners in PARTNERS, f"one of {PARTNERS}"),
            ("bank", self.bank in BANKS, f"one of {BANKS}"),
            ("restoration_init", self.restoration_init in INITS, f"one of {INITS}"),
            ("long_tail", self.long_tail in LONG_TAIL, f"one of {LONG_TAIL}"),
            ("lambda_d", self.lambda_d >= 0, "a number >= 0"),
            ("lambda_r", self.lambda_r >= 0, "a number >= 0"),
            ("tau", self.tau > 0, "a number > 0"),
            ("keep_prob", 0 < self.keep_prob <= 1, "a probability in (0, 1]"),
            ("beta_max", 0 <= self.beta_max <= 1, "a number in [0, 1]"),
            ("noise_std", self.noise_std >= 0, "a number >= 0"),
            ("bank_size", self.bank_size >= 1, "an integer >= 1"),
            ("heads", self.heads >= 1, "an integer >= 1"),
            ("mlp_ratio", self.mlp_ratio >= 1, "an integer >= 1"),
            ("max_redraws", self.max_redraws >= 0, "an integer >= 0"),
            ("start_step", self.start_step >= 0, "an integer >= 0"),
            ("warmup_steps", self.warmup_steps >= 0, "an integer >= 0"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise LdrError(f"LatentDRConfig.{name}={getattr(self, name)!r}: expected {expected}")
        if not (self.use_degradation or self.use_restoration):
            raise LdrError("LatentDRConfig: use_degradation and use_restoration are both False (that is ERM)")

    @classmethod
    def from_hparams(cls, hparams: Mapping[str, Any]) -> LatentDRConfig:
        """Build a config from DomainBed hparams (`ldr_<field>` keys); missing keys keep defaults.

        Strings from sweep tools are read by the option's type (``"0.5"``, ``"false"``, ``"1024"``);
        anything else of the wrong type, and an unknown ``ldr_`` key, is an error naming the hparam.
        """
        known = {f.name: f for f in fields(cls)}
        values = {}
        for key, value in hparams.items():
            if not key.startswith(HPARAM_PREFIX):
                continue
            name = key[len(HPARAM_PREFIX):]
            if name not in known:
                close = difflib.get_close_matches(key, [HPARAM_PREFIX + n for n in known], n=3)
                hint = f"; did you mean {', '.join(close)}?" if close else ""
                raise LdrError(f"unknown LatentDR hparam {key!r}{hint}")
            values[name] = _coerce(key, value, known[name].default)
        return cls(**values)

    def to_hparams(self) -> dict[str, Any]:
        """The config as `ldr_<field>` DomainBed hparams (Python scalars)."""
        return {HPARAM_PREFIX + f.name: getattr(self, f.name) for f in fields(self)}


def _kind(value: Any) -> type:
    """The option type of a value: bool, int, float or str (an int is also a valid float)."""
    if isinstance(value, bool):
        return bool
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float if isinstance(value, float) else int
    return type(value)


def _describe(default: Any) -> str:
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}[_kind(default)]


def _coerce(key: str, value: Any, default: Any) -> Any:
    """``value`` read as the type of ``default``, or LdrError naming ``key``, the value and the type."""
    kind = _kind(default)
    raw = value.strip() if isinstance(value, str) else value
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, (int, float)) and raw in (0, 1):
            return bool(raw)
        if isinstance(raw, str) and raw.lower() in _TRUE | _FALSE:
            return raw.lower() in _TRUE
    elif kind is int:
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        if isinstance(raw, float) and raw.is_integer():
            return int(raw)
        if isinstance(raw, str):
            try:
                return int(raw)
            except ValueError:
                pass
    elif kind is float:
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            return float(raw)
        if isinstance(raw, str):
            try:
                return float(raw)
            except ValueError:
                pass
    elif isinstance(raw, str):
        return raw
    raise LdrError(f"LatentDR hparam {key}={value!r}: expected {_describe(default)}")


# Algorithm names (DomainBed rows) and the options each forces on top of the defaults.
VARIANTS: dict[str, dict[str, Any]] = {
    "LatentDR": {},
    "LatentDRNoise": {"mode": "noise"},
    "LatentDRSpatial": {"mode": "spatial"},
    "LatentDRDegradeOnly": {"use_restoration": False},
    "LatentDRRestoreOnly": {"use_degradation": False},
    "LatentDRSeparateHeads": {"shared_classifier": False},
    "LatentDRBatchBank": {"bank": "batch"},
    "LatentDRCrossDomain": {"partners": "cross_domain"},
    "LatentDRLongTail": {"long_tail": "balanced"},
    "LatentDRDelayed": {},  # delayed start: its own start_step default and search range (domainbed/hparams.py)
}


def variant_overrides(algorithm: str) -> dict[str, Any]:
    """Options forced by a LatentDR variant name; LdrError with close matches for an unknown name."""
    if algorithm not in VARIANTS:
        close = difflib.get_close_matches(algorithm, list(VARIANTS), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise LdrError(f"unknown LatentDR variant {algorithm!r}: expected one of {sorted(VARIANTS)}{hint}")
    return dict(VARIANTS[algorithm])
