"""What a launch may use (partition, GPUs, time, CPUs, memory, parallelism, log folder), from options or env.

DomainBed hands a launcher only its list of commands, so every resource can also come from an
``LDR_*`` environment variable; explicit values win over the environment.

>>> Resources.from_env({"LDR_SLURM_TIME": "1-02:30:00", "LDR_SLURM_GPUS": "1"}).timeout_min
1590
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from ldr_plugin.errors import LdrError

# field -> (environment variable, parser)
ENV_VARS: dict[str, str] = {
    "folder": "LDR_SUBMITIT_FOLDER",
    "partition": "LDR_SLURM_PARTITION",
    "gpus_per_node": "LDR_SLURM_GPUS",
    "timeout_min": "LDR_SLURM_TIME",
    "cpus_per_task": "LDR_SLURM_CPUS",
    "mem_gb": "LDR_SLURM_MEM_GB",
    "array_parallelism": "LDR_SLURM_ARRAY_PARALLELISM",
    "max_array_size": "LDR_SLURM_MAX_ARRAY_SIZE",
    "account": "LDR_SLURM_ACCOUNT",
    "qos": "LDR_SLURM_QOS",
    "constraint": "LDR_SLURM_CONSTRAINT",
    "items_per_job": "LDR_ITEMS_PER_JOB",
    "local_workers": "LDR_LOCAL_WORKERS",
}

_TIME = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")


def parse_slurm_time(text: str) -> int:
    """Slurm's time formats (``M``, ``M:S``, ``H:M:S``, ``D-H``, ``D-H:M``, ``D-H:M:S``) in whole minutes."""
    match = _TIME.match(text.strip())
    if not match:
        raise LdrError(f"time '{text}' is not a Slurm time (minutes, H:M:S or D-H:M:S)")
    days, first, second, third = (int(g) if g else None for g in match.groups())
    if days is not None:  # D-H, D-H:M, D-H:M:S
        hours, minutes, seconds = first, second or 0, third or 0
    elif third is not None:  # H:M:S
        hours, minutes, seconds = first, second, third
    else:  # M or M:S
        hours, minutes, seconds = 0, first, second or 0
    return math.ceil(((days or 0) * 24 * 60 + hours * 60 + minutes) + seconds / 60)


@dataclass(frozen=True)
class Resources:
    """Resources of every job of one launch; ``None`` leaves a value to the cluster's default.

    ``items_per_job`` packs several items into one job (``None``: 1 on Slurm; on the local
    executor, as many as makes ``local_workers`` jobs, which run at once).
    """

    folder: str = "submitit_logs"
    partition: str | None = None
    gpus_per_node: int = 0
    timeout_min: int = 240
    cpus_per_task: int = 1
    mem_gb: float | None = None
    array_parallelism: int = 64
    max_array_size: int = 1000
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    items_per_job: int | None = None
    local_workers: int = max(1, os.cpu_count() or 1)

    def __post_init__(self) -> None:
        for name in ("gpus_per_node", "timeout_min", "cpus_per_task", "array_parallelism", "max_array_size",
                     "local_workers", "items_per_job"):
            value = getattr(self, name)
            if value is None and name == "items_per_job":
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value < (0 if name == "gpus_per_node" else 1):
                raise LdrError(f"resource '{name}' should be a positive integer, got {value!r}")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Resources:
        """Defaults, then ``LDR_*`` environment variables, then ``overrides`` (``None`` overrides are ignored)."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        types = {f.name: f.type for f in fields(cls)}
        for name, var in ENV_VARS.items():
            raw = env.get(var)
            if raw is None or raw.strip() == "":
                continue
            values[name] = _parse(name, var, raw.strip(), types[name])
        values.update({k: v for k, v in overrides.items() if v is not None})
        unknown = set(values) - set(types)
        if unknown:
            raise LdrError(f"unknown resource(s) {sorted(unknown)}; known: {sorted(types)}")
        return cls(**values)

    def with_(self, **changes: Any) -> Resources:
        return replace(self, **changes)


def _parse(name: str, var: str, raw: str, typ: str) -> Any:
    try:
        if name == "timeout_min":
            return parse_slurm_time(raw)
        if "int" in typ:
            return int(raw)
        if "float" in typ:
            return float(raw)
    except (ValueError, LdrError) as exc:
        raise LdrError(f"environment variable {var}={raw!r}: {exc}") from exc
    return raw
