"""Fast path of the sweep reader: well-formed DomainBed ``results.jsonl`` files straight into columns.

Each file is decoded by msgspec into only the fields model selection reads (``step``,
``env{i}_in_acc``, ``env{i}_out_acc``, ``schema_version``), with ``args`` kept as raw JSON text: a
run's lines repeat the same ``args``, so only the first line's is decoded (into the typed fields
selection groups by; the full dict is parsed only if asked for) and every other line's text is
only compared with it. Each line is still fully validated as JSON. A file with anything unusual (a
malformed line, a missing or mistyped field, NaN, a line with other args, a schema version to
report) is left to the line-by-line path, which names the problem: the fast path can only be
faster, never different.
"""

from __future__ import annotations

import functools
import itertools
import math
import operator
import re
from operator import attrgetter
from typing import Annotated, Any

import msgspec
import numpy as np

from ldr_plugin.results.sweep_columns import ArgsKey, Columns

_UNSET = msgspec.UNSET
_ARGS, _STEP, _SCHEMA = attrgetter("args"), attrgetter("step"), attrgetter("schema_version")


_BLANK_LINE = re.compile(rb"\n\s*\n").search  # a blank or whitespace-only line (sre finds "\n" by memchr: fast)


def regular(data: bytes) -> int:
    """Number of lines of a file the fast path may try (ends with a newline, no blank line), else 0.

    msgspec skips blank lines and reads two values on one line, so a file is decoded line for line
    only if it has no blank line and its record count equals its line count (checked after decoding).
    """
    return data.count(b"\n") if data[-1:] == b"\n" and data[:1] == b"{" and not _BLANK_LINE(data) else 0


@functools.lru_cache(maxsize=8)
def _decoder(n_envs: int) -> tuple[msgspec.json.Decoder, attrgetter]:
    """A JSON-lines decoder keeping env0..env{n_envs - 1} accuracies, and their getter."""
    fields: list[tuple] = [("step", int), ("schema_version", Any, None), ("args", msgspec.Raw, _UNSET)]
    names = [f"env{e}_{split}_acc" for e in range(n_envs) for split in ("in", "out")]
    fields += [(name, float, math.nan) for name in names]
    record = msgspec.defstruct(f"DomainBedRecord{n_envs}", fields, gc=False)
    return msgspec.json.Decoder(record), attrgetter(*names)


def _decode_all(files: list[bytes], counts: np.ndarray, n_envs: int) -> tuple[list[Any], np.ndarray]:
    """Records of every file that decodes (file by file: no copy of the whole sweep), and which did."""
    decode = _decoder(n_envs)[0].decode_lines
    records: list[Any] = []
    good = np.ones(len(files), dtype=bool)
    for i, data in enumerate(files):
        try:
            decoded = decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            good[i] = False
            continue
        if len(decoded) == counts[i]:
            records += decoded
        else:
            good[i] = False
    return records, good


class _SelectionArgs(msgspec.Struct, gc=False):
    """The fields of ``args`` model selection groups by, with the types it needs (validated in C)."""

    trial_seed: int
    dataset: str
    algorithm: str
    hparams_seed: int
    test_envs: Annotated[list[int], msgspec.Meta(min_length=1)]


_SELECTION_ARGS = msgspec.json.Decoder(_SelectionArgs)


def _selection_key(raw: Any) -> ArgsKey | None:
    """``args_key`` of a raw ``args`` text, or None if it lacks a field or has a wrong type there."""
    try:
        a = _SELECTION_ARGS.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    return (a.trial_seed, a.dataset, a.algorithm, a.hparams_seed, tuple(a.test_envs))


def _file_args(records: list[Any], starts: np.ndarray, counts: np.ndarray, ok: np.ndarray,
               file_of: np.ndarray) -> tuple[list[Any], list[ArgsKey | None]]:
    """Each file's first ``args`` text and its selection key (None where a line's args text differs
    from the first line's, or the key cannot be read: the line-by-line path names the problem)."""
    raws = list(map(_ARGS, records))
    firsts = [raws[s] if n else _UNSET for s, n in zip(starts.tolist(), counts.tolist())]
    same = np.fromiter(map(operator.eq, raws, itertools.chain.from_iterable(
        itertools.repeat(f, n) for f, n in zip(firsts, counts.tolist()))), dtype=bool, count=len(raws))
    differ = np.bincount(file_of[~same], minlength=len(starts))
    keys: list[ArgsKey | None] = []
    for i, first in enumerate(firsts):
        usable = ok[i] and first is not _UNSET and not (counts[i] and differ[i])
        keys.append(_selection_key(first) if usable else None)
    return firsts, keys


def decode_files(files: list[bytes], n_lines: list[int],
                 n_envs: int) -> tuple[Columns, list[Any], list[ArgsKey | None], np.ndarray]:
    """Columns of the regular files' records, each file's raw ``args`` text and selection key (None:
    use the line-by-line path; parse the text with ``orjson.loads``), and whether a file repeats a step.

    ``n_envs`` is a first guess of the widest file plus one (doubled when exceeded).
    ``args_keys`` has one entry per good file.
    """
    counts = np.array(n_lines, dtype=np.int64)
    records, good = _decode_all(files, counts, n_envs)
    counts = counts * good
    values = np.fromiter(itertools.chain.from_iterable(map(_decoder(n_envs)[1], records)), dtype=np.float64,
                         count=2 * n_envs * len(records)).reshape(len(records), n_envs, 2)
    if len(records) and not np.isnan(values[:, -1, 1]).all():
        return decode_files(files, n_lines, 2 * n_envs)  # a file has more envs than guessed
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    file_of = np.repeat(np.arange(len(files)), counts)
    raws, keys = _file_args(records, starts, counts, good, file_of)
    bad = np.array([k is None for k in keys], dtype=bool)
    schemas = list(map(_SCHEMA, records))
    unusual = [i for i, s in enumerate(schemas) if s is not None and (type(s) is not int or s != 1)]
    bad[file_of[unusual]] = True  # the line-by-line path reports (or accepts) these versions
    acc_in, acc_out = values[:, :, 0], values[:, :, 1]
    _mark_missing_test_accs(keys, file_of, acc_in, acc_out, bad)
    keep = ~bad[file_of]
    steps = np.fromiter(map(_STEP, records), dtype=np.int64, count=len(records))
    remap = np.cumsum(~bad) - 1
    columns = Columns([k for k, b in zip(keys, bad) if not b], remap[file_of[keep]],
                      steps[keep],
                      np.argmax(np.isnan(acc_out), axis=1)[keep],
                      np.ascontiguousarray(acc_in[keep]), np.ascontiguousarray(acc_out[keep]))
    raws = [r if not b else None for r, b in zip(raws, bad)]
    return columns, raws, [k if not b else None for k, b in zip(keys, bad)], _repeats_step(file_of, steps, len(files))


def _repeats_step(file_of: np.ndarray, steps: np.ndarray, n_files: int) -> np.ndarray:
    order = np.lexsort((steps, file_of))
    f, s = file_of[order], steps[order]
    repeats = np.zeros(n_files, dtype=bool)
    repeats[f[1:][(f[1:] == f[:-1]) & (s[1:] == s[:-1])]] = True
    return repeats


def _mark_missing_test_accs(keys, file_of, acc_in, acc_out, bad) -> None:
    """Flag files where a record lacks a test env's accuracy (the line-by-line path names it)."""
    n_envs = acc_in.shape[1]
    by_envs: dict[tuple[int, ...], list[int]] = {}
    for i in np.flatnonzero(~bad).tolist():
        by_envs.setdefault(keys[i][4], []).append(i)
    test = np.zeros((len(bad), n_envs), dtype=bool)  # per file: its test envs
    for envs, file_ids in by_envs.items():
        if max(envs) >= n_envs - 1 or min(envs) < 0:
            bad[file_ids] = True
        else:
            test[np.ix_(file_ids, envs)] = True
    missing = (test[file_of] & (np.isnan(acc_in) | np.isnan(acc_out))).any(axis=1)
    bad[file_of[missing]] = True
