"""Per-trial accuracies of a sweep and paired differences between algorithms or sweeps.

DomainBed's Averages table takes, per trial, the mean over the held-out domains of the checkpoint a
selection method picks, then mean ± SE over trials. A difference between two algorithms (or two
sweeps) of the same trials is best judged per trial: the paired difference's SE is the sample std
of the per-trial differences over √n (n = trials complete in both). A trial is complete when every
held-out domain has a choice and none of its groups is incomplete (a run without ``done``, or one its
sweep expects and has not started): such a trial's number may still change, so it is left out here,
and :func:`incomplete_trials` names it so callers can say so.

>>> d = paired_difference({0: 80.0, 1: 82.0, 2: 81.0}, {0: 81.0, 1: 84.0, 2: 81.5})
>>> round(d.mean, 3), round(d.se, 3), d.n
(1.167, 0.441, 3)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ldr_plugin.domainbed.selection import GroupKey
from ldr_plugin.domainbed.tables import SweepSelection


@dataclass(frozen=True)
class PairedDiff:
    """``b - a`` over the trials both have: mean, SE (None with one pair: no error bar), n, per trial."""

    mean: float
    se: float | None
    n: int
    per_trial: dict[int, float]

    def text(self, decimals: int = 2) -> str:
        """'+1.17 ± 0.44 (n=3)', or '+1.17 (n=1, no SE)'."""
        if self.se is None:
            return f"{self.mean:+.{decimals}f} (n={self.n}, no SE)"
        return f"{self.mean:+.{decimals}f} ± {self.se:.{decimals}f} (n={self.n})"


def incomplete_trials(sel: SweepSelection, dataset: str, algorithm: str) -> set[int]:
    """The trials of (dataset, algorithm) with a run unfinished or expected but not started."""
    return {trial for trial, ds, alg, _env in sel.incomplete_groups if (ds, alg) == (dataset, algorithm)}


def complete_trial_means(sel: SweepSelection, dataset: str, algorithm: str,
                         by_group: dict[GroupKey, float | None]) -> dict[int, float]:
    """{trial: mean of ``by_group``'s values over the test domains} for one (dataset, algorithm), complete
    trials only: every test domain of the dataset (or every one the selection holds out) has a value
    (None: not measured) and no run of the trial is unfinished or missing. ``by_group`` is keyed like a
    selection's choices (other keys are ignored), so one rule serves accuracies and metrics of the
    selected checkpoints alike."""
    envs = set(sel.test_domains(dataset))
    left_out = incomplete_trials(sel, dataset, algorithm)
    by_trial: dict[int, dict[int, float | None]] = {}
    for (trial, ds, alg, env), value in by_group.items():
        if (ds, alg) == (dataset, algorithm) and trial not in left_out and env in envs:
            by_trial.setdefault(trial, {})[env] = value
    return {t: float(np.mean(list(v.values()))) for t, v in sorted(by_trial.items())
            if set(v) == envs and None not in v.values()}


def trial_means(sel: SweepSelection, method: str, dataset: str, algorithm: str) -> dict[int, float]:
    """{trial: mean held-out accuracy (%) over every test domain}, complete trials only (every
    domain chosen, no run unfinished or missing)."""
    accuracies = {key: 100 * choice.test_acc for key, choice in sel.choices.get(method, {}).items()}
    return complete_trial_means(sel, dataset, algorithm, accuracies)


def paired_difference(a: dict[int, float], b: dict[int, float]) -> PairedDiff | None:
    """``b - a`` over the trials both have (None if none)."""
    common = sorted(set(a) & set(b))
    if not common:
        return None
    diff = np.array([b[t] - a[t] for t in common])
    se = float(diff.std(ddof=1) / math.sqrt(len(diff))) if len(diff) > 1 else None
    return PairedDiff(float(diff.mean()), se, len(diff), {t: float(b[t] - a[t]) for t in common})


def mean_se(values: dict[int, float]) -> tuple[float | None, float | None, int]:
    """(mean, SE as DomainBed: population std / √n, n) of per-trial values; SE None for one trial."""
    v = np.array(list(values.values()))
    if not len(v):
        return None, None, 0
    return float(v.mean()), (float(v.std() / math.sqrt(len(v))) if len(v) > 1 else None), len(v)


def average_trial_means(sel: SweepSelection, method: str, datasets: list[str], algorithm: str) -> dict[int, float]:
    """{trial: mean over ``datasets`` of the trial's mean held-out accuracy}, trials complete in all."""
    per = [trial_means(sel, method, d, algorithm) for d in datasets]
    common = set.intersection(*(set(p) for p in per)) if per else set()
    return {t: float(np.mean([p[t] for p in per])) for t in sorted(common)}
