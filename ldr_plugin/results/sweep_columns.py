"""Columnar view of DomainBed sweep records: the only fields model selection reads, as numpy arrays.

Per record: the index of its run arguments (``args_keys``: trial seed, dataset, algorithm, hparams
seed, test envs), ``step``, ``n_out`` (how many consecutive ``env{i}_out_acc`` keys it has, from 0),
and ``env{i}_in_acc`` / ``env{i}_out_acc`` in two matrices (NaN where a record has no such key).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

ArgsKey = tuple[int, str, str, int, tuple[int, ...]]  # (trial_seed, dataset, algorithm, hparams_seed, test_envs)


def args_key(args: dict[str, Any]) -> ArgsKey:
    """The fields of a record's ``args`` that model selection groups by."""
    return (args["trial_seed"], args["dataset"], args["algorithm"], args["hparams_seed"], tuple(args["test_envs"]))


@dataclass
class Columns:
    """Selection fields of a list of records, in record order."""

    args_keys: list[ArgsKey]
    args_ix: np.ndarray  # int64, index into args_keys per record
    step: np.ndarray  # int64
    n_out: np.ndarray  # int64
    acc_in: np.ndarray  # float64 (n_records, n_envs)
    acc_out: np.ndarray  # float64 (n_records, n_envs)

    def __len__(self) -> int:
        return len(self.step)

    def take(self, rows: list[int] | np.ndarray) -> Columns:
        """The columns of the given records (indices into this one), args keys shared."""
        rows = np.asarray(rows, dtype=np.int64)
        return Columns(self.args_keys, self.args_ix[rows], self.step[rows], self.n_out[rows],
                       self.acc_in[rows], self.acc_out[rows])


def n_out_envs(record: dict[str, Any]) -> int:
    """How many consecutive ``env{i}_out_acc`` keys a record has (DomainBed's environment count)."""
    n = 0
    while f"env{n}_out_acc" in record:
        n += 1
    return n


def columns_from_records(records: list[dict[str, Any]]) -> Columns:
    """Columns of already-parsed, valid records (the slow path and records built in memory)."""
    keys: dict[ArgsKey, int] = {}
    ix, steps, n_outs, ins, outs = [], [], [], [], []
    for record in records:
        key = args_key(record["args"])
        ix.append(keys.setdefault(key, len(keys)))
        steps.append(record["step"])
        n = n_out_envs(record)
        n_outs.append(n)
        width = max(n, max(key[4]) + 1)
        out = [record[f"env{e}_out_acc"] if e < n else record.get(f"env{e}_out_acc", np.nan) for e in range(width)]
        ins.append([record.get(f"env{e}_in_acc", np.nan) if e in key[4] else np.nan for e in range(width)])
        outs.append(out)
    width = max((len(row) for row in outs), default=0)
    return Columns(list(keys), np.array(ix, dtype=np.int64), np.array(steps, dtype=np.int64),
                   np.array(n_outs, dtype=np.int64), _padded(ins, width), _padded(outs, width))


def _padded(rows: list[list[Any]], width: int) -> np.ndarray:
    out = np.full((len(rows), width), np.nan)
    for i, row in enumerate(rows):
        out[i, : len(row)] = np.array(row, dtype=np.float64)
    return out


def concat_columns(parts: list[Columns]) -> Columns:
    """One Columns of several, in order; args keys are merged, kept only if used, in order of first use."""
    keys: dict[ArgsKey, int] = {}
    width = max((p.acc_in.shape[1] for p in parts), default=0)
    n = sum(len(p) for p in parts)
    acc_in, acc_out = np.full((n, width), np.nan), np.full((n, width), np.nan)
    ix, row = [], 0
    for part in parts:
        remap = np.array([keys.setdefault(k, len(keys)) for k in part.args_keys], dtype=np.int64)
        ix.append(remap[part.args_ix])
        w = part.acc_in.shape[1]
        acc_in[row : row + len(part), :w] = part.acc_in
        acc_out[row : row + len(part), :w] = part.acc_out
        row += len(part)
    cat = lambda arrays: np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int64)
    all_keys, ix = list(keys), cat(ix)
    used, first = np.unique(ix, return_index=True)  # keep used keys only, in order of first appearance
    used = used[np.argsort(first)]
    renumber = np.zeros(len(all_keys), dtype=np.int64)
    renumber[used] = np.arange(len(used))
    return Columns([all_keys[i] for i in used], renumber[ix] if len(ix) else ix, cat([p.step for p in parts]),
                   cat([p.n_out for p in parts]), acc_in, acc_out)
