"""Every option of LatentDR in one dataclass, defaulting to the spec's design (D) choices.

The paper's equations are not public; each field documents whether it is the spec's default
design (D) or a project ablation switch. See docs/latentdr.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from ldr_plugin.errors import LdrError

MODES = ("pooled", "spatial", "noise")
PARTNERS = ("all", "cross_domain")
BANKS = ("fifo", "batch")
INITS = ("default", "identity")

# DomainBed hyperparameter name for each config field (prefixed so they never clash with DomainBed's).
HPARAM_PREFIX = "ldr_"


@dataclass
class LatentDRConfig:
    """Options of the LatentDR module; defaults are the spec's default design.

    Example: ``LatentDRConfig(lambda_d=0.5, mode="noise")``.
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
    warmup_steps: int = 0  # lambda_D, lambda_R ramp linearly from 0 over this many updates (project option; 0 = off)
    use_degradation: bool = True  # False: "R only" ablation, restoration applied to clean latents
    use_restoration: bool = True  # False: "D only" ablation
    shared_classifier: bool = True  # False: separate heads for the degraded / restored branches
    max_redraws: int = 16  # empty partner rows are re-drawn this often, then one partner is forced

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise LdrError naming the field when a value is outside its domain."""
        checks = [
            ("mode", self.mode in MODES, f"one of {MODES}"),
            ("partners", self.partners in PARTNERS, f"one of {PARTNERS}"),
            ("bank", self.bank in BANKS, f"one of {BANKS}"),
            ("restoration_init", self.restoration_init in INITS, f"one of {INITS}"),
            ("lambda_d", self.lambda_d >= 0, "a number >= 0"),
            ("lambda_r", self.lambda_r >= 0, "a number >= 0"),
            ("tau", self.tau > 0, "a number > 0"),
            ("keep_prob", 0 < self.keep_prob <= 1, "a probability in (0, 1]"),
            ("beta_max", 0 <= self.beta_max <= 1, "a number in [0, 1]"),
            ("noise_std", self.noise_std >= 0, "a number >= 0"),
            ("bank_size", int(self.bank_size) >= 1, "an integer >= 1"),
            ("heads", int(self.heads) >= 1, "an integer >= 1"),
            ("mlp_ratio", int(self.mlp_ratio) >= 1, "an integer >= 1"),
            ("max_redraws", int(self.max_redraws) >= 0, "an integer >= 0"),
            ("warmup_steps", int(self.warmup_steps) >= 0, "an integer >= 0"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise LdrError(f"LatentDRConfig.{name}={getattr(self, name)!r}: expected {expected}")
        if not (self.use_degradation or self.use_restoration):
            raise LdrError("LatentDRConfig: use_degradation and use_restoration are both False (that is ERM)")

    @classmethod
    def from_hparams(cls, hparams: Mapping[str, Any]) -> LatentDRConfig:
        """Build a config from DomainBed hparams (`ldr_<field>` keys); missing keys keep defaults."""
        values = {}
        for f in fields(cls):
            key = HPARAM_PREFIX + f.name
            if key in hparams:
                values[f.name] = type(f.default)(hparams[key])
        return cls(**values)

    def to_hparams(self) -> dict[str, Any]:
        """The config as `ldr_<field>` DomainBed hparams (Python scalars)."""
        return {HPARAM_PREFIX + f.name: getattr(self, f.name) for f in fields(self)}

