"""DomainBed's three model-selection methods, host-free, columnar, with DomainBed's exact tie-breaking.

Records are grouped by (trial_seed, dataset, algorithm, test_env) for every test env of a run,
then by ``hparams_seed``. Per hparams seed a method picks one checkpoint (``run_acc``); the seed
with the best validation accuracy wins (ties: the highest seed, as DomainBed's stable sort then
reversal does). Checkpoint ties go to the first record in read order (Python ``max``). The
methods are classes named as DomainBed's (``model_selection.py``), so a new one is a subclass
with its own ``run_acc``. Everything runs on numpy arrays (:class:`~ldr_plugin.domainbed.runs.Columns`);
the arithmetic of each value (row-wise ``np.mean`` / ``np.sum``) is the one DomainBed does per record.

>>> groups = Groups.of(sweep.columns)                                        # doctest: +SKIP
>>> choices = IIDAccuracySelectionMethod.select(sweep.columns, groups)      # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ldr_plugin.domainbed.runs import Columns
from ldr_plugin.domainbed.selection_loo import loo_run_acc
from ldr_plugin.domainbed.selection_ops import first_max_per_segment, last_per_segment

GroupKey = tuple[int, str, str, int]  # (trial_seed, dataset, algorithm, test_env)
RunAcc = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # per (group, seed): gs, val, test, record


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


@dataclass
class Groups:
    """Record memberships: each record belongs to one (group, hparams seed) per test env of its run.

    ``gs_*`` describe (group, hparams seed) pairs; ``m_*`` the memberships, sorted by (gs, record).
    """

    keys: list[GroupKey]  # in DomainBed's insertion order
    gs_group: np.ndarray  # group index of each (group, seed)
    gs_seed: np.ndarray
    m_gs: np.ndarray
    m_rec: np.ndarray
    m_env: np.ndarray  # the group's test env
    m_single: np.ndarray  # bool: the record's run has exactly this one test env

    @classmethod
    def of(cls, columns: Columns) -> Groups:
        """Group every record of ``columns`` (the order of groups is that of first appearance)."""
        group_ix: dict[GroupKey, int] = {}
        gs_ix: dict[tuple[int, int], int] = {}
        pair_args, pair_gs, pair_env = [], [], []
        for a, (trial, dataset, algorithm, hseed, envs) in enumerate(columns.args_keys):
            for env in envs:
                g = group_ix.setdefault((trial, dataset, algorithm, env), len(group_ix))
                pair_args.append(a)
                pair_gs.append(gs_ix.setdefault((g, hseed), len(gs_ix)))
                pair_env.append(env)
        by_args = np.argsort(columns.args_ix, kind="stable")
        counts = np.bincount(columns.args_ix, minlength=len(columns.args_keys))
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        pair_args = np.array(pair_args, dtype=np.int64)
        lens = counts[pair_args]
        offsets = np.repeat(starts[pair_args] - np.concatenate([[0], np.cumsum(lens)[:-1]]), lens)
        m_rec = by_args[np.arange(int(lens.sum())) + offsets] if len(lens) else np.zeros(0, dtype=np.int64)
        m_gs = np.repeat(np.array(pair_gs, dtype=np.int64), lens)
        m_env = np.repeat(np.array(pair_env, dtype=np.int64), lens)
        n_test = np.array([len(k[4]) for k in columns.args_keys], dtype=np.int64)[columns.args_ix]
        order = np.lexsort((m_rec, m_gs))
        gs = np.array(list(gs_ix), dtype=np.int64).reshape(-1, 2)
        return cls(list(group_ix), gs[:, 0], gs[:, 1], m_gs[order], m_rec[order], m_env[order],
                   n_test[m_rec[order]] == 1)


def _iid_values(columns: Columns, rows: np.ndarray, envs: np.ndarray) -> np.ndarray:
    """Mean of ``env{i}_out_acc`` over training envs, per (record, test env) row (NaN if none)."""
    vals = np.full(len(rows), np.nan)
    n_out = columns.n_out[rows]
    width = int(envs.max()) + 1 if len(rows) else 1
    codes = np.unique(n_out * width + envs, return_index=True)[0]  # the (n_out, env) pairs present
    for n, env in zip((codes // width).tolist(), (codes % width).tolist()):
        keys = [e for e in range(n) if e != env]
        if not keys:
            continue
        at = np.flatnonzero((n_out == n) & (envs == env))
        vals[at] = np.mean(columns.acc_out[np.ix_(rows[at], keys)], axis=1)  # = DomainBed's per-record np.mean
    return vals


def _iid_run_acc(columns: Columns, groups: Groups) -> tuple[np.ndarray, ...]:
    """Per (group, seed) with a single-env record: (gs, val, test, record) of its best checkpoint."""
    s = np.flatnonzero(groups.m_single)
    rows, envs, gs = groups.m_rec[s], groups.m_env[s], groups.m_gs[s]
    pick = first_max_per_segment(gs, _iid_values(columns, rows, envs))
    return gs[pick], _iid_values(columns, rows[pick], envs[pick]), columns.acc_in[rows[pick], envs[pick]], rows[pick]


def _oracle_run_acc(columns: Columns, groups: Groups) -> tuple[np.ndarray, ...]:
    """Per (group, seed): the last single-env record of the largest step (no early stopping)."""
    s = np.flatnonzero(groups.m_single)
    rows, envs, gs = groups.m_rec[s], groups.m_env[s], groups.m_gs[s]
    pick = last_per_segment(gs, columns.step[rows])
    r, e = rows[pick], envs[pick]
    return gs[pick], columns.acc_out[r, e], columns.acc_in[r, e], r


class SelectionMethod:
    """A model-selection method: ``run_acc`` picks a checkpoint per (group, hparams seed), then
    :meth:`select` keeps the seed with the best validation accuracy per group."""

    key: ClassVar[str]  # the short name specs and the CLI use
    name: ClassVar[str]  # DomainBed's name, as its tables print it

    @staticmethod
    def run_acc(columns: Columns, groups: Groups) -> RunAcc:
        raise NotImplementedError

    @classmethod
    def select(cls, columns: Columns, groups: Groups) -> dict[GroupKey, Choice]:
        """This method's choice for every group that has one, in the groups' order (DomainBed
        averages trials in that order)."""
        gs, val, test, rec = cls.run_acc(columns, groups)
        group = groups.gs_group[gs]
        key = np.where(np.isnan(val), -np.inf, val)  # DomainBed's sort puts NaN first; reversed: last
        choices = {}
        for i in last_per_segment(group, key, tie=groups.gs_seed[gs]):  # in group order
            choices[groups.keys[group[i]]] = Choice(*groups.keys[group[i]], val_acc=float(val[i]),
                                                    test_acc=float(test[i]), record_index=int(rec[i]))
        return choices


class IIDAccuracySelectionMethod(SelectionMethod):
    """Training-domain validation: the checkpoint with the best mean out-split accuracy of the training envs."""

    key, name = "iid", "training-domain validation set"
    run_acc = staticmethod(_iid_run_acc)


class LeaveOneOutSelectionMethod(SelectionMethod):
    """Leave-one-domain-out: validation on each other env held out by a pair run (every pair needed)."""

    key, name = "loo", "leave-one-domain-out cross-validation"
    run_acc = staticmethod(loo_run_acc)


class OracleSelectionMethod(SelectionMethod):
    """Test-domain validation (oracle): the last checkpoint, judged on the test env's out split."""

    key, name = "oracle", "test-domain validation set (oracle)"
    run_acc = staticmethod(_oracle_run_acc)


METHODS: dict[str, type[SelectionMethod]] = {
    m.key: m for m in (IIDAccuracySelectionMethod, LeaveOneOutSelectionMethod, OracleSelectionMethod)
}
METHOD_NAMES: dict[str, str] = {key: method.name for key, method in METHODS.items()}


def select(records: list[dict[str, Any]] | Columns, groups: Groups, method: str) -> dict[GroupKey, Choice]:
    """One method's choices (``"iid"``, ``"loo"`` or ``"oracle"``) for records as dicts (or as columns)."""
    if method not in METHODS:
        raise ValueError(f"unknown selection method {method!r}; expected one of {sorted(METHODS)}")
    columns = records if isinstance(records, Columns) else Columns.of(records)
    return METHODS[method].select(columns, groups)


def group_records(records: list[dict[str, Any]]) -> Groups:
    """Groups of in-memory records (see :meth:`Groups.of`)."""
    return Groups.of(Columns.of(records))
