"""Held-out-domain accuracy of DomainBed runs that were scored with k* (reproduced here, not published).

A k* record of model ``domainbed:<run dir>`` scored on the run's test environment (dataset
``run:env<t>`` or ``run:<t>``) is joined with that run's own accuracy on the same environment at
its final step (``env<t>_in_acc`` of the last ``results.jsonl`` record, in percent): the final model
is the one ``model.pkl`` holds, so the features and the accuracy come from the same weights. Its
held-out domain (``<dataset> env<t>``) is the stratum of within-domain correlations. One point per
run: the earlier checkpoints scored for the selected-checkpoint columns
(``domainbed:<run>/model_step<k>.pkl``) are not runs and are left out (:func:`is_run_checkpoint`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

from ldr_plugin.domainbed.extras import parse_run_model_id
from ldr_plugin.domainbed.runs import read_run_records
from ldr_plugin.leaderboard.records import ProjectRecords

FIELD = "heldout_acc_pct"
SOURCE_KEY = "reproduced-runs"
SOURCE_TEXT = ("trained by ldr-plugin (DomainBed protocol): accuracy of the final model on the run's "
               "held-out (test) domain, from the run's results.jsonl")
_ENV = re.compile(r"^run:(?:env)?(\d+)$")


class HeldoutRun(NamedTuple):
    """A scored run: its accuracy on its held-out domain (percent, or None), that domain
    (``"<dataset> env<t>"``), and what a reader needs to tell the runs apart."""

    acc_pct: float | None
    domain: str
    algorithm: str
    trial_seed: int | None
    folder: str

    @property
    def label(self) -> str:
        """``"<algorithm> · <dataset> env<t> · trial <k> · <run folder, first 8 characters>"``."""
        trial = "?" if self.trial_seed is None else self.trial_seed
        return f"{self.algorithm} · {self.domain} · trial {trial} · {self.folder[:8]}"


def is_run_checkpoint(model_id: str) -> bool:
    """True for ``domainbed:<run>/model_step<k>.pkl`` (or ``...@<k>``): a checkpoint, not the run's final model."""
    parsed = parse_run_model_id(model_id)
    return parsed is not None and parsed[1] is not None


def heldout_runs(project: ProjectRecords) -> dict[str, HeldoutRun]:
    """{model_id: HeldoutRun} of the scored runs (final models scored on a ``run:env<t>`` domain)."""
    out: dict[str, HeldoutRun] = {}
    for _, record in project.records:
        model_id = record.model_id
        match = _ENV.match(record.dataset)
        if not model_id.startswith("domainbed:") or match is None or model_id in out:
            continue
        run_dir = Path(model_id.split(":", 1)[1])
        records = read_run_records(run_dir)
        if not records:
            continue
        last, args = records[-1], records[-1].get("args", {})
        env = int(match.group(1))
        value = last.get(f"env{env}_in_acc") if args.get("test_envs", []) == [env] else None
        out[model_id] = HeldoutRun(None if value is None else 100.0 * float(value),
                                   f"{args.get('dataset', '?')} env{env}", str(args.get("algorithm", "?")),
                                   args.get("trial_seed"), run_dir.name)
    return out
