"""Fast path of the sweep reader: well-formed DomainBed ``results.jsonl`` files straight into columns.

DomainBed writes ``json.dumps(record, sort_keys=True)``, so every line of a run opens with the same
``{"args": {...}, `` text. That text is parsed once per file (full ``args``); the rest of every line of
every file is decoded in one msgspec call into only the fields model selection reads (``step``,
``env{i}_in_acc``, ``env{i}_out_acc``, ``schema_version``), still validating each line as JSON. A file
with anything unusual (a malformed line, a missing or mistyped field, NaN, a line with other args,
a schema version to report) is left to the line-by-line path, which names the problem: the fast
path can only be faster, never different.
"""

from __future__ import annotations

import functools
import itertools
import math
from operator import attrgetter
from typing import Any

import msgspec
import numpy as np

from ldr_plugin.results.sweep_columns import Columns, args_key

_UNSET = msgspec.UNSET
_GOOD_META = {(_UNSET, None), (_UNSET, 1)}  # (a repeated "args" key, schema_version) of a fast record
_META, _STEP = attrgetter("args", "schema_version"), attrgetter("step")


def split_file(data: bytes, head: tuple[bytes, dict[str, Any]]) -> tuple[bytes, int] | None:
    """The lines of a file as ``{...},{...}`` without their ``{"args": {...}, `` opening, and how many.

    None if a line lacks the opening. ``head`` is (the ``{"args": {...}`` text of the first line, its
    parsed args); the opening holds no newline, so each ``\\n<opening>`` starts a line.
    """
    opening = head[0] + b", "
    n_lines = data.count(b"\n")
    if not data.endswith(b"\n") or data.count(b"\n" + opening) != n_lines - 1:
        return None
    return b"{" + data[len(opening) : -1].replace(b"\n" + opening, b",{"), n_lines


@functools.lru_cache(maxsize=8)
def _decoder(n_envs: int) -> tuple[msgspec.json.Decoder, attrgetter]:
    """A decoder of ``[{...}, ...]`` keeping env0..env{n_envs - 1} accuracies, and their getter."""
    fields: list[tuple] = [("step", int), ("schema_version", Any, None), ("args", Any, _UNSET)]
    names = [f"env{e}_{split}_acc" for e in range(n_envs) for split in ("in", "out")]
    fields += [(name, float, math.nan) for name in names]
    record = msgspec.defstruct(f"DomainBedRecord{n_envs}", fields, gc=False)
    return msgspec.json.Decoder(list[record]), attrgetter(*names)


def _decode(bodies: list[bytes], n_envs: int) -> list[Any] | None:
    try:
        return _decoder(n_envs)[0].decode(b"[" + b",".join(bodies) + b"]")
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def _decode_each(files: list[bytes], n_envs: int) -> tuple[list[Any], np.ndarray]:
    """Decode file by file (after a failed batch): records of the good files, and which files are good."""
    records, good = [], np.ones(len(files), dtype=bool)
    for i, body in enumerate(files):
        decoded = _decode([body], n_envs)
        if decoded is None:
            good[i] = False
        else:
            records.extend(decoded)
    return records, good


def decode_files(files: list[tuple[dict[str, Any], bytes, int]], n_envs: int = 16) -> tuple[Columns, np.ndarray]:
    """Columns of the given files' records, and per file whether the fast path could read it.

    ``files`` holds (args, lines as from :func:`split_file`, number of lines). Records of files that
    could not be read are absent from the columns; ``args_keys`` has one entry per good file, in order.
    ``n_envs`` is a first guess of the widest file plus one (doubled when exceeded).
    """
    records = _decode([body for _, body, _ in files], n_envs)
    good = np.ones(len(files), dtype=bool)
    if records is None:
        records, good = _decode_each([body for _, body, _ in files], n_envs)
    counts = np.array([n for _, _, n in files], dtype=np.int64) * good
    flat = itertools.chain.from_iterable(map(_decoder(n_envs)[1], records))
    values = np.fromiter(flat, dtype=np.float64, count=2 * n_envs * len(records)).reshape(len(records), n_envs, 2)
    if len(records) and not np.isnan(values[:, -1, 1]).all():
        return decode_files(files, 2 * n_envs)  # a file has more envs than guessed
    file_of = np.repeat(np.arange(len(files)), counts)
    bad = np.zeros(len(files), dtype=bool)
    meta = list(map(_META, records))
    try:
        unusual = not set(meta) <= _GOOD_META
    except TypeError:  # an unhashable schema_version
        unusual = True
    if unusual:
        bad[[file_of[i] for i, m in enumerate(meta) if not (m[0] is _UNSET and m[1] in (None, 1))]] = True
    acc_in, acc_out = values[:, :, 0], values[:, :, 1]
    _mark_missing_test_accs(files, file_of, acc_in, acc_out, good & ~bad, bad)
    keep = ~bad[file_of]
    ok = good & ~bad
    n_out = np.argmax(np.isnan(acc_out), axis=1)
    remap = np.cumsum(ok) - 1
    columns = Columns([args_key(files[i][0]) for i in np.flatnonzero(ok)], remap[file_of[keep]],
                      np.fromiter(map(_STEP, records), dtype=np.int64, count=len(records))[keep], n_out[keep],
                      np.ascontiguousarray(acc_in[keep]), np.ascontiguousarray(acc_out[keep]))
    return columns, ok


def _mark_missing_test_accs(files, file_of, acc_in, acc_out, candidates, bad) -> None:
    """Flag files where a record lacks a test env's accuracy (the line-by-line path names it)."""
    n_envs = acc_in.shape[1]
    by_envs: dict[tuple[int, ...], list[int]] = {}
    for i in np.flatnonzero(candidates):
        by_envs.setdefault(tuple(files[i][0]["test_envs"]), []).append(i)
    for envs, file_ids in by_envs.items():
        if max(envs) >= n_envs - 1 or min(envs) < 0:
            bad[file_ids] = True
            continue
        rows = np.flatnonzero(np.isin(file_of, file_ids))
        cols = list(envs)
        missing = np.isnan(acc_in[np.ix_(rows, cols)]).any(axis=1) | np.isnan(acc_out[np.ix_(rows, cols)]).any(axis=1)
        bad[np.unique(file_of[rows[missing]])] = True
