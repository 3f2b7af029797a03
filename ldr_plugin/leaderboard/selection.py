"""DomainBed's three model-selection methods, host-free, with DomainBed's exact tie-breaking.

Records are grouped by (trial_seed, dataset, algorithm, test_env) for every test env of a run,
then by ``hparams_seed``. Per hparams seed a method picks one checkpoint (``run_acc``); the seed
with the best validation accuracy wins (ties: the highest seed, as DomainBed's stable sort then
reversal does). Checkpoint ties go to the first record in read order (Python ``max``).

>>> groups = group_records(sweep.records)                    # doctest: +SKIP
>>> choices = select(sweep.records, groups, "iid")           # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

METHOD_NAMES: dict[str, str] = {
    "iid": "training-domain validation set",
    "loo": "leave-one-domain-out cross-validation",
    "oracle": "test-domain validation set (oracle)",
}
GroupKey = tuple[int, str, str, int]  # (trial_seed, dataset, algorithm, test_env)


@dataclass(frozen=True)
class Choice:
    """The checkpoint one method selected for one (trial, dataset, algorithm, test env) group."""

    trial_seed: int
    dataset: str
    algorithm: str
    test_env: int
    val_acc: float
    test_acc: float
    record_index: int  # index (into the records list) of the record whose test accuracy is used


def group_records(records: list[dict[str, Any]]) -> dict[GroupKey, dict[int, list[int]]]:
    """{(trial, dataset, algorithm, test_env): {hparams_seed: [record indices in read order]}}."""
    groups: dict[GroupKey, dict[int, list[int]]] = {}
    for i, record in enumerate(records):
        args = record["args"]
        for env in args["test_envs"]:
            key = (args["trial_seed"], args["dataset"], args["algorithm"], env)
            groups.setdefault(key, {}).setdefault(args["hparams_seed"], []).append(i)
    return groups


def _n_out_envs(record: dict[str, Any]) -> int:
    n = 0
    while f"env{n}_out_acc" in record:
        n += 1
    return n


def _first_max(values: list[float]) -> int:
    """Index Python's ``max`` returns (first maximum; a leading NaN wins, as in DomainBed)."""
    best = 0
    for i in range(1, len(values)):
        if values[i] > values[best]:
            best = i
    return best


def iid_validation(records: list[dict[str, Any]]) -> np.ndarray:
    """Per single-test-env record: mean of ``env{i}_out_acc`` over training envs (NaN for others)."""
    vals = np.full(len(records), np.nan)
    by_shape: dict[tuple[int, int], list[int]] = {}
    for i, record in enumerate(records):
        envs = record["args"]["test_envs"]
        if len(envs) == 1:
            by_shape.setdefault((_n_out_envs(record), envs[0]), []).append(i)
    for (n_envs, test_env), rows in by_shape.items():
        keys = [f"env{e}_out_acc" for e in range(n_envs) if e != test_env]
        if not keys:
            continue
        matrix = np.array([[records[i][k] for k in keys] for i in rows], dtype=np.float64)
        vals[rows] = np.mean(matrix, axis=1)  # row-wise mean equals DomainBed's per-record np.mean
    return vals


def _iid_run(records, indices, test_env, iid_vals) -> tuple[float, float, int] | None:
    tests = [i for i in indices if len(records[i]["args"]["test_envs"]) == 1]
    if not tests:
        return None
    best = tests[_first_max([float(iid_vals[i]) for i in tests])]
    return float(iid_vals[best]), records[best][f"env{test_env}_in_acc"], best


def _oracle_run(records, indices, test_env, _vals) -> tuple[float, float, int] | None:
    tests = [i for i in indices if len(records[i]["args"]["test_envs"]) == 1]
    if not tests:
        return None
    last = tests[0]
    for i in tests[1:]:  # last record of the largest step (stable sort, take the last)
        if records[i]["step"] >= records[last]["step"]:
            last = i
    return records[last][f"env{test_env}_out_acc"], records[last][f"env{test_env}_in_acc"], last


def _loo_step(records, step_indices, test_env) -> tuple[float, float, int] | None:
    tests = [i for i in step_indices if len(records[i]["args"]["test_envs"]) == 1]
    if len(tests) != 1:
        return None
    n_envs = _n_out_envs(records[step_indices[0]])
    val_accs = np.zeros(n_envs) - 1
    for i in step_indices:
        envs = records[i]["args"]["test_envs"]
        if len(envs) == 2:
            val_env = (set(envs) - {test_env}).pop()
            val_accs[val_env] = records[i][f"env{val_env}_in_acc"]
    others = list(val_accs[:test_env]) + list(val_accs[test_env + 1:])
    if any(v == -1 for v in others):
        return None
    return np.sum(others) / (n_envs - 1), records[tests[0]][f"env{test_env}_in_acc"], tests[0]


def _loo_run(records, indices, test_env, _vals) -> tuple[float, float, int] | None:
    by_step: dict[int, list[int]] = {}
    for i in indices:
        by_step.setdefault(records[i]["step"], []).append(i)
    steps = [s for s in (_loo_step(records, by_step[k], test_env) for k in sorted(by_step)) if s is not None]
    if not steps:
        return None
    return steps[_first_max([s[0] for s in steps])]


_RUN_ACC: dict[str, Callable] = {"iid": _iid_run, "loo": _loo_run, "oracle": _oracle_run}


def _sort_key(value: float) -> float:
    return -math.inf if isinstance(value, float) and math.isnan(value) else value


def select(
    records: list[dict[str, Any]],
    groups: dict[GroupKey, dict[int, list[int]]],
    method: str,
    iid_vals: np.ndarray | None = None,
) -> dict[GroupKey, Choice]:
    """Apply one selection method ("iid", "loo", "oracle") to every group; groups with no choice are absent.

    The result keeps the groups' insertion order (DomainBed averages trials in that order).
    """
    if method not in _RUN_ACC:
        raise ValueError(f"unknown selection method {method!r}; expected one of {sorted(_RUN_ACC)}")
    run_acc = _RUN_ACC[method]
    if method == "iid" and iid_vals is None:
        iid_vals = iid_validation(records)
    choices: dict[GroupKey, Choice] = {}
    for key, by_seed in groups.items():
        best = None
        for seed in sorted(by_seed):
            acc = run_acc(records, by_seed[seed], key[3], iid_vals)
            if acc is not None and (best is None or _sort_key(acc[0]) >= _sort_key(best[0])):
                best = acc
        if best is not None:
            choices[key] = Choice(*key, val_acc=best[0], test_acc=best[1], record_index=best[2])
    return choices
