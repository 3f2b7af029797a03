"""Two or more labelled sweeps side by side: per dataset and algorithm, each one's mean accuracy and
its difference from the first (the baseline), paired over trials where the trials match. Only complete
trials count (:func:`~ldr_plugin.domainbed.paired.trial_means`); the ones left out are named per row.

Each side must be one protocol (:mod:`~ldr_plugin.domainbed.protocols`: a side mixing 200- and
5001-step runs is refused); the protocol differences *between* sides are what a comparison is for,
and they are stated at the top, so nothing is pooled without saying so. ``grid`` names ``--hparams``
override fields a grid sets per hparams seed (as a leaderboard spec's ``hparams_grid``): within a side
the selection method then chooses among grid points as among hparams seeds, and the header says so.

>>> c = compare_sweeps([("200", ["sweep200"]), ("5001", ["sweep5001"])])   # doctest: +SKIP
>>> print(render_comparison(c))                                            # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from ldr_plugin.domainbed.paired import PairedDiff, incomplete_trials, mean_se, paired_difference, trial_means
from ldr_plugin.domainbed.protocols import check_not_mixed, describe, grid_values, protocol
from ldr_plugin.domainbed.runs import read_sweep
from ldr_plugin.domainbed.selection import METHOD_NAMES
from ldr_plugin.domainbed.tables import SweepSelection, sweep_names
from ldr_plugin.errors import LdrError


@dataclass
class CompareRow:
    """One (dataset, algorithm) of one side against the baseline."""

    dataset: str
    algorithm: str
    base: tuple[float | None, float | None, int]  # mean, SE, n trials
    other: tuple[float | None, float | None, int]
    diff: PairedDiff | None  # paired over common trials
    unpaired: tuple[float, float | None] | None = None  # (difference, SE) when no trial pairs up
    left_out: tuple[int, ...] = ()  # trials with a run unfinished or not started, on either side

    def as_dict(self) -> dict[str, Any]:
        d = self.diff
        return {"dataset": self.dataset, "algorithm": self.algorithm,
                "base": dict(zip(("mean", "se", "n"), self.base)), "other": dict(zip(("mean", "se", "n"), self.other)),
                "diff": None if d is None else {"mean": d.mean, "se": d.se, "n_pairs": d.n, "per_trial": d.per_trial},
                "unpaired_diff": None if self.unpaired is None else dict(zip(("mean", "se"), self.unpaired)),
                "trials_left_out": list(self.left_out)}


@dataclass
class Comparison:
    """Every side against the first, with the protocol differences between them."""

    method: str
    labels: list[str]
    grid: tuple[str, ...] = ()
    grid_values: dict[str, dict[str, list[Any]]] = field(default_factory=dict)  # label -> grid field -> values
    differences: dict[str, list[str]] = field(default_factory=dict)  # label -> how its protocol differs
    rows: dict[str, list[CompareRow]] = field(default_factory=dict)  # label -> rows

    def as_dict(self) -> dict[str, Any]:
        return {"selection": self.method, "baseline": self.labels[0], "hparams_grid": list(self.grid),
                "grid_values": self.grid_values,
                "sides": {label: {"protocol_differences": self.differences[label],
                                  "rows": [r.as_dict() for r in self.rows[label]]} for label in self.labels[1:]}}


def _protocols(sel: SweepSelection, grid: frozenset[str]) -> dict[tuple[str, str], dict]:
    return {(r["args"]["dataset"], r["args"]["algorithm"]): protocol(r, grid) for r in sel.sweep.first_records().values()}


def compare_sweeps(sides: list[tuple[str, list[str]]], method: str = "iid",
                   grid: frozenset[str] = frozenset()) -> Comparison:
    """Compare labelled sweeps (label, folders) against the first; each side one protocol, up to the
    ``grid`` fields of the ``--hparams`` override (see the module docstring)."""
    if len(sides) < 2:
        raise LdrError("compare needs at least two result sets (A B, or --results LABEL=DIR twice)")
    labels = [label for label, _ in sides]
    if len(set(labels)) != len(labels):
        raise LdrError(f"two result sets have the same label: {labels}")
    sels = []
    for label, dirs in sides:
        sweep = read_sweep(dirs, progress=False)
        if not len(sweep):
            raise LdrError(f"{label}: no DomainBed records (<run>/results.jsonl) under {', '.join(dirs)}")
        check_not_mixed(sweep, f"{label} ({', '.join(dirs)})", grid)
        sels.append(SweepSelection.build(sweep, (method,)))
    out = Comparison(method, labels, tuple(sorted(grid)))
    out.grid_values = {label: grid_values(sel.sweep, grid) for label, sel in zip(labels, sels)} if grid else {}
    base, base_protocols = sels[0], _protocols(sels[0], grid)
    base_algorithms, base_datasets = sweep_names(base.sweep)
    for label, sel in zip(labels[1:], sels[1:]):
        algorithms, datasets = sweep_names(sel.sweep)
        protos = _protocols(sel, grid)
        out.differences[label] = sorted({describe(base_protocols[k], protos[k]) for k in protos
                                         if k in base_protocols and base_protocols[k] != protos[k]})
        out.rows[label] = rows = []
        for dataset in [d for d in base_datasets if d in datasets]:
            for algorithm in [a for a in base_algorithms if a in algorithms]:
                a = trial_means(base, method, dataset, algorithm)
                b = trial_means(sel, method, dataset, algorithm)
                left_out = incomplete_trials(base, dataset, algorithm) | incomplete_trials(sel, dataset, algorithm)
                row = CompareRow(dataset, algorithm, mean_se(a), mean_se(b), paired_difference(a, b),
                                 left_out=tuple(sorted(left_out)))
                if row.diff is None and a and b:
                    se = (math.hypot(row.base[1], row.other[1])
                          if row.base[1] is not None and row.other[1] is not None else None)
                    row.unpaired = (row.other[0] - row.base[0], se)
                rows.append(row)
        if not rows:
            raise LdrError(f"{labels[0]} and {label} have no (dataset, algorithm) in common")
    return out


def _level(value: tuple[float | None, float | None, int]) -> str:
    mean, se, n = value
    if mean is None:
        return "X (no complete trial)"
    return f"{mean:.2f} ± {se:.2f} (n={n})" if se is not None else f"{mean:.2f} (n={n}, no SE)"


def _diff(row: CompareRow) -> str:
    note = (f"; trial {', '.join(map(str, row.left_out))} left out (a run unfinished or not started)"
            if row.left_out else "")
    if row.diff is not None:
        return row.diff.text() + " paired" + note
    if row.unpaired is not None:
        mean, se = row.unpaired
        return f"{mean:+.2f}" + (f" ± {se:.2f}" if se is not None else "") + " unpaired (no common trial)" + note
    return "X" + note


def render_comparison(c: Comparison) -> str:
    """A plain-text report: protocol differences, then one table per side and dataset."""
    lines = [(f"selection: {METHOD_NAMES[c.method]}; accuracy (%) = per trial the mean over the held-out domains, "
             "then mean ± SE over n complete trials (population std / √n, as DomainBed); difference: per-trial, "
             "SE = sample std / √n pairs; a trial with a run unfinished or not started is left out")
             + (f"; a grid over {', '.join(c.grid)} (set per hparams seed with --hparams) is chosen per trial and "
                "held-out domain by the selection method, as among hparams seeds" if c.grid else "")]
    base = c.labels[0]
    for label, values in c.grid_values.items():
        lines.append(f"{label}: grid " + ("; ".join(f"{name} in {{{', '.join(map(str, v))}}}" for name, v in values.items())
                                          or "fields set by no run"))
    for label in c.labels[1:]:
        lines += ["", f"{label} vs {base}: " + ("; ".join(c.differences[label]) or "same protocol (args)")]
        for dataset in dict.fromkeys(r.dataset for r in c.rows[label]):
            rows = [r for r in c.rows[label] if r.dataset == dataset]
            table = [["  " + dataset, base, label, f"{label} − {base}"]]
            table += [["  " + r.algorithm, _level(r.base), _level(r.other), _diff(r)] for r in rows]
            widths = [max(len(t[i]) for t in table) for i in range(4)]
            lines += ["  ".join(cell.ljust(w) for cell, w in zip(t, widths)).rstrip() for t in table]
    return "\n".join(lines) + "\n"


def comparison_json(c: Comparison) -> str:
    """The comparison as JSON (``--json``)."""
    return json.dumps(c.as_dict(), indent=2, sort_keys=True) + "\n"
