"""Leave-one-domain-out model selection on columns, as DomainBed's ``LeaveOneOutSelectionMethod``.

Per (group, hparams seed) and step: the single-test-env record gives the test accuracy; every pair
run (test env + one other) gives the held-out env's accuracy; the validation accuracy is the sum of
those over the other envs divided by (n_envs - 1), and the step is usable only with exactly one single
record and every pair present. The best usable step wins (first in step order on ties).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ldr_plugin.domainbed.runs import Columns
from ldr_plugin.domainbed.selection_ops import first_max_per_segment, segment_starts

if TYPE_CHECKING:
    from ldr_plugin.domainbed.selection import Groups


def _cells(columns: Columns, groups: Groups) -> tuple[np.ndarray, ...]:
    """Memberships sorted by (gs, step, record), the cell id of each, and where each cell starts."""
    steps = columns.step[groups.m_rec]
    order = np.lexsort((groups.m_rec, steps, groups.m_gs))
    gs, step = groups.m_gs[order], steps[order]
    new = segment_starts(gs) | segment_starts(step)
    return order, np.cumsum(new) - 1, np.flatnonzero(new)


def _cell_envs(columns: Columns, groups: Groups, order, cell, starts) -> tuple[np.ndarray, np.ndarray]:
    """Per cell: the env count DomainBed uses (its first record's), and whether the cell is usable by it.

    A (group, seed) whose steps agree on that count uses it everywhere; otherwise only steps whose
    records all have the same count are used (as the reference implementation does).
    """
    n_out = columns.n_out[groups.m_rec[order]]
    n_first = n_out[starts]
    uniform = np.minimum.reduceat(n_out, starts) == np.maximum.reduceat(n_out, starts)
    cell_gs = groups.m_gs[order][starts]
    gs_starts = np.flatnonzero(segment_starts(cell_gs))
    agree = np.minimum.reduceat(n_first, gs_starts) == np.maximum.reduceat(n_first, gs_starts)
    gs_agree = np.repeat(agree, np.diff(np.append(gs_starts, len(cell_gs))))
    return n_first, gs_agree | uniform


def loo_run_acc(columns: Columns, groups: Groups) -> tuple[np.ndarray, ...]:
    """Per (group, seed) with a usable step: (gs, val, test, record) of its best step."""
    order, cell, starts = _cells(columns, groups)
    rec, env = groups.m_rec[order], groups.m_env[order]
    n_cells = len(starts)
    n_env, usable = _cell_envs(columns, groups, order, cell, starts)
    cell_env = env[starts] if n_cells else env[:0]
    single = groups.m_single[order]
    n_single = np.bincount(cell[single], minlength=n_cells)
    single_rec = np.full(n_cells, -1)
    single_rec[cell[single]] = rec[single]  # only read where n_single == 1
    vals = np.full((n_cells, max(int(n_env.max(initial=0)), 1)), -1.0)
    test_envs = [k[4] for k in columns.args_keys]
    two = np.array([len(t) == 2 for t in test_envs], dtype=bool)[columns.args_ix[rec]]
    pairs = np.flatnonzero(two)
    if len(pairs):
        a = np.array([t[:2] if len(t) == 2 else (0, 0) for t in test_envs], dtype=np.int64)[columns.args_ix[rec[pairs]]]
        val_env = np.where(a[:, 1] == env[pairs], a[:, 0], a[:, 1])
        fits = val_env < n_env[cell[pairs]]
        pairs, val_env = pairs[fits], val_env[fits]
        flat = cell[pairs] * vals.shape[1] + val_env
        _, last = np.unique(flat[::-1], return_index=True)  # the last pair record of a (cell, env) wins
        last = len(flat) - 1 - last
        vals[cell[pairs[last]], val_env[last]] = columns.acc_in[rec[pairs[last]], val_env[last]]
    ok = usable & (n_single == 1) & (cell_env < n_env)
    val = np.full(n_cells, np.nan)
    for n, e in {(int(n), int(e)) for n, e in zip(n_env[ok], cell_env[ok])}:
        at = np.flatnonzero(ok & (n_env == n) & (cell_env == e))
        others = np.delete(vals[at, :n], e, axis=1)
        complete = ~(others == -1).any(axis=1)
        sums = np.sum(others, axis=1) / (n - 1)  # = DomainBed's np.sum(val_accs) / (n_envs - 1)
        ok[at[~complete]] = False
        val[at] = sums
    usable_cells = np.flatnonzero(ok)
    cell_gs = groups.m_gs[order][starts][usable_cells]
    pick = usable_cells[first_max_per_segment(cell_gs, val[usable_cells])]
    r = single_rec[pick]
    return groups.m_gs[order][starts][pick], val[pick], columns.acc_in[r, cell_env[pick]], r
