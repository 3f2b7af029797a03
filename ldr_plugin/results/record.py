"""The project's result record: one JSON file per cell, a typed struct with one validator.

A cell is (model id, dataset, split, layer, metric family, seed) plus, from schema 2 on, the
digest of its ``identity`` (what the data is: resolved root, content fingerprint, class list, subset
rule and seed; the layer and the metric options), so the same dataset name over other data is
another cell. The file name is derived from those, so re-running a cell finds its file and skips
it. Records of schema 1 have no identity and still read (:func:`lacks_identity`). Numbers are stored as numbers
(never strings) and every metric states ``higher_is_better``. :func:`validate_record` is the one
check every reader uses (``ldr results check``, leaderboards, the demo check, scoring's resume);
an error names the source and the field.

>>> rec = new_record(kind="kstar", model_id="digits:raw", dataset="digits", split="all",
...                  layer="pixels", metric_family="kstar", seed=0,
...                  metrics={"gamma_prime": metric(0.57, higher_is_better=False)})
>>> rec.schema_version, rec.metrics["gamma_prime"].value
(2, 0.57)
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import importlib.metadata as md
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import orjson

from ldr_plugin import __version__
from ldr_plugin.errors import LdrError

SCHEMA_VERSION = 2  # 2: identity / identity_digest, weights, accuracy
SUPPORTED_SCHEMA_VERSIONS = (1, 2)
RECORD_SUFFIX = ".result.json"
KEY_FIELDS = ("model_id", "dataset", "split", "layer", "metric_family", "seed")
HOST_PACKAGES = ("torch", "torchvision", "numpy", "scipy", "hnswlib", "robustbench", "open_clip_torch", "timm")


class RecordError(LdrError):
    """A result file that is missing, unreadable or does not follow the schema."""


class MetricValue(msgspec.Struct, omit_defaults=True):
    """One metric value (``None`` where undefined: NaN and ±inf are stored as null)."""

    value: int | float | None
    higher_is_better: bool
    unit: str | None = None


class Provenance(msgspec.Struct):
    """Who made a record: package version, git revision, host package versions, date, command."""

    producer: str
    version: str
    git_revision: str | None = None
    python: str = ""
    packages: dict[str, str] = {}
    created_utc: str = ""
    command: list[str] = []


class Record(msgspec.Struct, kw_only=True):
    """One cell's result (fields in the order of DESIGN.md's result record)."""

    schema_version: int
    kind: str  # which family of producer wrote it: kstar, alignment, uniformity, ...
    model_id: str  # source:identifier
    dataset: str
    split: str
    layer: str
    metric_family: str
    seed: int
    metrics: dict[str, MetricValue]
    provenance: Provenance
    n_samples: int | None = None
    n_per_class: dict[str, int] = {}
    preprocessing: dict[str, Any] = {}
    detail: dict[str, Any] = {}
    timings_s: dict[str, float] = {}
    # written by `ldr score` (what a resumed run must match, and how the features were made)
    n_per_class_requested: int | None = None
    metric_options: dict[str, Any] = {}
    features_from_cache: bool | None = None
    feature_dim: int | None = None
    # schema 2: what the cell is (its digest is part of the file name), which weights were read,
    # and the accuracy measured on the scored subset from the same forward pass
    identity: dict[str, Any] = {}
    identity_digest: str | None = None
    weights: dict[str, Any] = {}
    accuracy: dict[str, Any] = {}


_DICT_VALUES = {"metrics": MetricValue, "n_per_class": int, "timings_s": float}  # to name a bad dict entry


def metric(value: float | None, *, higher_is_better: bool, unit: str | None = None) -> MetricValue:
    """One metric value as stored in a record (NaN, ±inf and ``None`` are stored as null, and the
    producer says why in the record's ``detail``); integers stay integers."""
    if isinstance(value, bool):
        raise RecordError(f"metric value {value!r} is a bool, expected a number")
    if value is None or not math.isfinite(float(value)):
        return MetricValue(None, bool(higher_is_better), unit)
    is_int = isinstance(value, int) or "int" in str(getattr(value, "dtype", ""))
    return MetricValue(int(value) if is_int else float(value), bool(higher_is_better), unit)


@functools.lru_cache(maxsize=1)
def git_revision() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], check=False, cwd=here, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def provenance(command: list[str] | None = None) -> Provenance:
    """Who made a record: package version, git revision, host package versions, date, command."""
    versions = {}
    for name in HOST_PACKAGES:
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            continue
    return Provenance(
        producer="ldr-plugin", version=__version__, git_revision=git_revision(), python=sys.version.split()[0],
        packages=versions, created_utc=_dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        command=list(command if command is not None else sys.argv),
    )


def new_record(*, kind: str, model_id: str, dataset: str, split: str, layer: str, metric_family: str, seed: int,
               metrics: dict[str, MetricValue], command: list[str] | None = None, **fields: Any) -> Record:
    """A validated :class:`Record`; ``fields`` are its optional fields (``n_samples``, ``detail`` ...)."""
    unknown = set(fields) - set(Record.__struct_fields__)
    if unknown:
        raise RecordError(f"new_record: unknown field(s) {sorted(unknown)}; known: {sorted(Record.__struct_fields__)}")
    data = {"schema_version": SCHEMA_VERSION, "kind": kind, "model_id": model_id, "dataset": dataset, "split": split,
            "layer": layer, "metric_family": metric_family, "seed": int(seed), "metrics": metrics,
            "provenance": provenance(command), **{k: v for k, v in fields.items() if v is not None}}
    return validate_record(msgspec.to_builtins(data, enc_hook=_python_scalar))


def _python_scalar(value: Any) -> Any:
    if hasattr(value, "item"):  # a numpy scalar
        return value.item()
    raise TypeError(f"a record cannot hold {type(value).__name__} {value!r}")


def _describe(exc: msgspec.ValidationError, data: Any) -> str:
    """msgspec's "Expected `int`, got `str` - at `$.seed`" as "field 'seed' should be int, got str",
    with the key of a bad dict entry named (msgspec writes ``[...]``)."""
    message, _, where = str(exc).partition(" - at `$")
    where = where.rstrip("`").lstrip(".")
    if "[...]" in where:
        field = where.split("[", 1)[0]
        entries = data.get(field) if isinstance(data, dict) and isinstance(data.get(field), dict) else {}
        bad = next((k for k, v in entries.items() if not _converts(v, _DICT_VALUES.get(field, Any))), "?")
        where = where.replace("[...]", f".{bad}", 1)
    if missing := re.fullmatch(r"Object missing required field `(.+)`", message):
        return f"missing field '{where + '.' if where else ''}{missing.group(1)}'"
    if wrong := re.fullmatch(r"Expected `(.+)`, got `(.+)`", message):
        what = f"field '{where}'" if where else "the record"
        return f"{what} should be {wrong.group(1).replace('object', 'a JSON object')}, got {wrong.group(2)}"
    return f"field '{where}': {message}" if where else message


def _converts(value: Any, typ: Any) -> bool:
    try:
        msgspec.convert(value, typ, strict=True)
    except msgspec.ValidationError:
        return False
    return True


def validate_record(data: Any, *, source: str = "<record>") -> Record:
    """The :class:`Record` of parsed JSON, checked; :class:`RecordError` naming ``source`` and the field."""
    try:
        record = msgspec.convert(data, Record, strict=True)
    except msgspec.ValidationError as exc:
        raise RecordError(f"{source}: {_describe(exc, data)}") from exc
    if record.schema_version not in SUPPORTED_SCHEMA_VERSIONS:
        raise RecordError(f"{source}: schema_version {record.schema_version} is not supported "
                          f"(this ldr-plugin reads {SUPPORTED_SCHEMA_VERSIONS})")
    if ":" not in record.model_id:
        raise RecordError(f"{source}: field 'model_id' should be 'source:identifier', got {record.model_id!r}")
    return record


def decode_record(data: bytes, *, source: str = "<record>") -> Record:
    """:func:`validate_record` of a file's bytes; text that is not whole JSON names the position."""
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise RecordError(f"{source}: not valid JSON, truncated or not JSON "
                          f"(line {exc.lineno}, column {exc.colno}: {exc.msg})") from exc
    return validate_record(parsed, source=source)


def encode_record(record: Record) -> bytes:
    """The file's bytes: sorted keys, 2-space indent, a final newline."""
    return msgspec.json.format(msgspec.json.encode(record, order="sorted"), indent=2) + b"\n"


_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _slug(text: str, limit: int = 60) -> str:
    slug = re.sub(r"\.{2,}", ".", _SAFE.sub("_", text)).strip("._") or "x"
    return slug[:limit]


def cell_key(record: Record) -> tuple:
    """The :data:`KEY_FIELDS` of a record and its identity digest ('' for a schema-1 record)."""
    return (*(getattr(record, f) for f in KEY_FIELDS), record.identity_digest or "")


SEED_FIELDS = ("subsample_seed", "indices", "labels")  # what differs between the seeds of one data set


def data_version(record: Record) -> str:
    """What a record was computed on, seeds aside: a digest of its identity without the subsample's
    seed, indices and labels ('' for a schema-1 record). Records of one row of a table (averaged as
    seeds) must share it: same dataset name over another root, other files, classes, subset rule,
    metric options or precision gives another version (``tests/test_leaderboard_crossmodel.py``).
    """
    if not record.identity:
        return ""
    identity = dict(record.identity)
    identity.pop("model_id", None)
    identity["data"] = {k: v for k, v in (identity.get("data") or {}).items() if k not in SEED_FIELDS}
    raw = json.dumps(identity, sort_keys=True, ensure_ascii=True, default=str).encode()
    return hashlib.sha256(raw).hexdigest()[:8]


def lacks_identity(record: Record) -> bool:
    """True for a record written before cell identity (schema 1): only its dataset *name* says what
    data it was computed on, so a resumed ``ldr score`` does not take it for done."""
    return not record.identity_digest


def identity_digest(identity: dict[str, Any]) -> str:
    """16 hex digits of the canonical JSON of a cell's identity."""
    text = json.dumps(identity, sort_keys=True, ensure_ascii=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _filename(key: tuple) -> str:
    """A file name unique per cell and safe on every file system (no '/', no '..', no shell specials):
    readable slugs for people, plus a hash of the exact key (and the identity digest, when there is
    one) so two ids that slug alike, or one dataset name over two data sets, never collide."""
    hashed = [str(x) for x in key[:6]] + ([str(key[6])] if len(key) > 6 and key[6] else [])
    digest = hashlib.sha256(json.dumps(hashed, ensure_ascii=True).encode()).hexdigest()[:12]
    parts = [_slug(str(value), 40) for value in key[:5]]
    return "__".join(parts) + f"__s{int(key[5])}__{digest}{RECORD_SUFFIX}"


def record_filename(record: Record) -> str:
    """The file name of a record's cell (see :func:`expected_path`)."""
    return _filename(cell_key(record))


def expected_path(directory: str | os.PathLike, **key: Any) -> Path:
    """Where the record of a cell (the :data:`KEY_FIELDS` given as keywords, and ``identity_digest``
    when the cell has one) is, before it exists."""
    return Path(directory) / _filename((*(key[f] for f in KEY_FIELDS), key.get("identity_digest") or ""))
