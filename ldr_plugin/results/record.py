"""The project's result record: one JSON file per cell, validated on read.

A cell is (model id, dataset, split, layer, metric family, seed). The file name is derived from
those fields, so re-running a cell finds its file and skips it. Numbers are stored as numbers
(never strings) and every metric states ``higher_is_better``.

>>> rec = new_record(kind="kstar", model_id="digits:raw", dataset="digits", split="all",
...                  layer="pixels", metric_family="kstar", seed=0,
...                  metrics={"gamma_prime": metric(0.57, higher_is_better=False)})
>>> rec["schema_version"], rec["metrics"]["gamma_prime"]["value"]
(1, 0.57)
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from ldr_plugin.errors import LdrError

SCHEMA_VERSION = 1
SUPPORTED_SCHEMA_VERSIONS = (1,)
RECORD_SUFFIX = ".result.json"
KEY_FIELDS = ("model_id", "dataset", "split", "layer", "metric_family", "seed")
HOST_PACKAGES = ("torch", "torchvision", "numpy", "scipy", "hnswlib", "robustbench", "open_clip_torch", "timm")


class RecordError(LdrError):
    """A result file that is missing, unreadable or does not follow the schema."""


def metric(value: float | None, *, higher_is_better: bool, unit: str | None = None) -> dict[str, Any]:
    """One metric value as stored in a record (NaN, ±inf and ``None`` are stored as null)."""
    out: dict[str, Any] = {"value": _number_or_none(value), "higher_is_better": bool(higher_is_better)}
    if unit:
        out["unit"] = unit
    return out


def _number_or_none(value: Any) -> float | int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise RecordError(f"metric value {value!r} is a bool, expected a number")
    number = float(value)
    if not math.isfinite(number):  # JSON has no NaN/inf: undefined or infinite values are null,
        return None  # and the producer says why in the record's 'detail'
    return int(value) if isinstance(value, int) or (hasattr(value, "dtype") and "int" in str(value.dtype)) else number


@functools.lru_cache(maxsize=1)
def git_revision() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], check=False, cwd=here, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def provenance(command: list[str] | None = None) -> dict[str, Any]:
    """Who made a record: package version, git revision, host package versions, date, command."""
    import importlib.metadata as md

    from ldr_plugin import __version__

    versions = {}
    for name in HOST_PACKAGES:
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            continue
    return {
        "producer": "ldr-plugin",
        "version": __version__,
        "git_revision": git_revision(),
        "python": sys.version.split()[0],
        "packages": versions,
        "created_utc": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "command": list(command if command is not None else sys.argv),
    }


def new_record(
    *,
    kind: str,
    model_id: str,
    dataset: str,
    split: str,
    layer: str,
    metric_family: str,
    seed: int,
    metrics: dict[str, dict[str, Any]],
    n_samples: int | None = None,
    n_per_class: dict[str, int] | None = None,
    preprocessing: dict[str, Any] | None = None,
    detail: dict[str, Any] | None = None,
    timings_s: dict[str, float] | None = None,
    extra: dict[str, Any] | None = None,
    command: list[str] | None = None,
) -> dict[str, Any]:
    """Build a record dict that :func:`validate_record` accepts."""
    record: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "kind": kind,
        "model_id": model_id,
        "dataset": dataset,
        "split": split,
        "layer": layer,
        "metric_family": metric_family,
        "seed": int(seed),
        "n_samples": n_samples,
        "n_per_class": n_per_class or {},
        "preprocessing": preprocessing or {},
        "metrics": metrics,
        "detail": detail or {},
        "timings_s": timings_s or {},
        "provenance": provenance(command),
    }
    if extra:
        record.update(extra)
    validate_record(record)
    return record


_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "schema_version": int,
    "kind": str,
    "model_id": str,
    "dataset": str,
    "split": str,
    "layer": str,
    "metric_family": str,
    "seed": int,
    "metrics": dict,
    "provenance": dict,
}


def validate_record(record: Any, *, source: str = "<record>") -> dict[str, Any]:
    """Check a record against the schema; raise :class:`RecordError` naming source and field."""
    if not isinstance(record, dict):
        raise RecordError(f"{source}: expected a JSON object, got {type(record).__name__}")
    for field, typ in _REQUIRED.items():
        if field not in record:
            raise RecordError(f"{source}: missing field '{field}'")
        if not isinstance(record[field], typ) or isinstance(record[field], bool):
            raise RecordError(
                f"{source}: field '{field}' should be {getattr(typ, '__name__', typ)}, "
                f"got {type(record[field]).__name__} {record[field]!r}"
            )
    if record["schema_version"] not in SUPPORTED_SCHEMA_VERSIONS:
        raise RecordError(
            f"{source}: schema_version {record['schema_version']} is not supported "
            f"(this ldr-plugin reads {SUPPORTED_SCHEMA_VERSIONS})"
        )
    if ":" not in record["model_id"]:
        raise RecordError(f"{source}: field 'model_id' should be 'source:identifier', got {record['model_id']!r}")
    for name, value in record["metrics"].items():
        where = f"{source}: field 'metrics.{name}'"
        if not isinstance(value, dict) or "value" not in value or "higher_is_better" not in value:
            raise RecordError(f"{where} should be an object with 'value' and 'higher_is_better'")
        v = value["value"]
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise RecordError(f"{where}.value should be a number or null, got {type(v).__name__} {v!r}")
        if not isinstance(value["higher_is_better"], bool):
            raise RecordError(f"{where}.higher_is_better should be true or false")
    return record


_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _slug(text: str, limit: int = 60) -> str:
    slug = re.sub(r"\.{2,}", ".", _SAFE.sub("_", text)).strip("._") or "x"
    return slug[:limit]


def cell_key(record: dict[str, Any]) -> tuple:
    return tuple(record[f] for f in KEY_FIELDS)


def record_filename(record: dict[str, Any]) -> str:
    """A file name unique per cell and safe on every file system (no '/', no '..', no shell specials).

    Readable slugs for people, plus a hash of the exact key so two ids that slug alike never collide.
    """
    key = json.dumps([str(x) for x in cell_key(record)], ensure_ascii=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    parts = [_slug(str(record[f]), 40) for f in ("model_id", "dataset", "split", "layer", "metric_family")]
    return "__".join(parts) + f"__s{int(record['seed'])}__{digest}{RECORD_SUFFIX}"


def write_record(record: dict[str, Any], directory: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Validate and write atomically into ``directory`` under the cell's lock; returns the path.

    A valid record already there is kept unless ``overwrite`` (see :mod:`ldr_plugin.results.lock`).
    """
    from ldr_plugin.results.lock import write_record_locked  # lock imports this module

    return write_record_locked(record, directory, overwrite=overwrite)[0]


def read_record(path: str | os.PathLike) -> dict[str, Any]:
    """Read and validate one record file; errors name the file and the field."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise RecordError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RecordError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from exc
    return validate_record(record, source=str(path))


def iter_record_paths(directory: str | os.PathLike) -> list[Path]:
    """Every record file below ``directory`` (recursively), sorted; temporary files excluded."""
    return sorted(p for p in Path(directory).rglob("*" + RECORD_SUFFIX) if not p.name.startswith("."))


def expected_path(directory: str | os.PathLike, **key: Any) -> Path:
    """Where the record of a cell will be, before it exists (for skip-if-done)."""
    stub = {f: key[f] for f in KEY_FIELDS}
    return Path(directory) / record_filename(stub)
