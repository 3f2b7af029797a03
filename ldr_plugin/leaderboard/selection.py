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


@dataclass
class Prepared:
    """Per-record facts every method reads, computed once per records list."""

    records: list[dict[str, Any]]
    n_test: list[int]  # len(test_envs)
    steps: list[int]
    iid_vals: np.ndarray | None = None

    @classmethod
    def of(cls, records: list[dict[str, Any]], iid: bool = True) -> Prepared:
        prep = cls(records, [len(r["args"]["test_envs"]) for r in records], [r["step"] for r in records])
        if iid:
            prep.iid_vals = iid_validation(records)
        return prep


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


def _iid_run(prep: Prepared, indices: list[int], test_env: int) -> tuple[float, float, int] | None:
    tests = [i for i in indices if prep.n_test[i] == 1]
    if not tests:
        return None
    vals = prep.iid_vals
    best = tests[_first_max([float(vals[i]) for i in tests])]
    return float(vals[best]), prep.records[best][f"env{test_env}_in_acc"], best


def _oracle_run(prep: Prepared, indices: list[int], test_env: int) -> tuple[float, float, int] | None:
    tests = [i for i in indices if prep.n_test[i] == 1]
    if not tests:
        return None
    last = tests[0]
    for i in tests[1:]:  # last record of the largest step (stable sort, take the last)
        if prep.steps[i] >= prep.steps[last]:
            last = i
    chosen = prep.records[last]
    return chosen[f"env{test_env}_out_acc"], chosen[f"env{test_env}_in_acc"], last


def _loo_run(prep: Prepared, indices: list[int], test_env: int) -> tuple[float, float, int] | None:
    """Per step: the single run's test accuracy, validated by every pair run's held-out env.

    All steps of one hparams seed are done in one array (row-wise sums equal DomainBed's per-step
    ``np.sum``); a step without exactly one single-env record, or missing a pair, is skipped.
    """
    records, n_test = prep.records, prep.n_test
    by_step: dict[int, list[int]] = {}
    for i in indices:
        by_step.setdefault(prep.steps[i], []).append(i)
    steps = sorted(by_step)
    n_envs = {_n_out_envs(records[by_step[s][0]]) for s in steps}
    if len(n_envs) != 1:
        return _loo_run_mixed(prep, by_step, steps, test_env)
    (n,) = n_envs
    vals = np.full((len(steps), n), -1.0)
    tests: list[int | None] = []
    for row, step in enumerate(steps):
        singles = []
        for i in by_step[step]:
            if n_test[i] == 1:
                singles.append(i)
            elif n_test[i] == 2:
                envs = records[i]["args"]["test_envs"]
                val_env = envs[0] if envs[1] == test_env else envs[1]
                vals[row, val_env] = records[i][f"env{val_env}_in_acc"]
        tests.append(singles[0] if len(singles) == 1 else None)
    others = np.delete(vals, test_env, axis=1)
    complete = ~(others == -1).any(axis=1)
    sums = np.sum(others, axis=1) / (n - 1)
    found = [(sums[r], records[t][f"env{test_env}_in_acc"], t)
             for r, t in enumerate(tests) if t is not None and complete[r]]
    return found[_first_max([f[0] for f in found])] if found else None


def _loo_run_mixed(prep: Prepared, by_step: dict[int, list[int]], steps: list[int], test_env: int):
    """Leave-one-out when steps disagree on the number of envs: one step at a time."""
    found = []
    for step in steps:
        idx = by_step[step]
        out = _loo_run(prep, idx, test_env) if len({_n_out_envs(prep.records[i]) for i in idx}) == 1 else None
        if out is not None:
            found.append(out)
    return found[_first_max([f[0] for f in found])] if found else None


_RUN_ACC: dict[str, Callable] = {"iid": _iid_run, "loo": _loo_run, "oracle": _oracle_run}


def _sort_key(value: float) -> float:
    return -math.inf if isinstance(value, float) and math.isnan(value) else value


def select(
    records: list[dict[str, Any]] | Prepared,
    groups: dict[GroupKey, dict[int, list[int]]],
    method: str,
) -> dict[GroupKey, Choice]:
    """Apply one selection method ("iid", "loo", "oracle") to every group; groups with no choice are absent.

    The result keeps the groups' insertion order (DomainBed averages trials in that order).
    """
    if method not in _RUN_ACC:
        raise ValueError(f"unknown selection method {method!r}; expected one of {sorted(_RUN_ACC)}")
    run_acc = _RUN_ACC[method]
    prep = records if isinstance(records, Prepared) else Prepared.of(records, iid=method == "iid")
    if method == "iid" and prep.iid_vals is None:
        prep.iid_vals = iid_validation(prep.records)
    choices: dict[GroupKey, Choice] = {}
    for key, by_seed in groups.items():
        best = None
        for seed in sorted(by_seed):
            acc = run_acc(prep, by_seed[seed], key[3])
            if acc is not None and (best is None or _sort_key(acc[0]) >= _sort_key(best[0])):
                best = acc
        if best is not None:
            choices[key] = Choice(*key, val_acc=best[0], test_acc=best[1], record_index=best[2])
    return choices
