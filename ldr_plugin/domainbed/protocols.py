"""What a run was trained under, beyond DomainBed's grouping keys: so runs of different protocols
are never pooled into one row without saying so.

DomainBed groups records by (trial, dataset, algorithm, hparams seed, test envs) only: two sweeps
of 200 and 5001 steps given together become one row per algorithm, its trials and checkpoints
mixed. A run's *protocol* is every ``args`` field except those that name the run within a sweep or
the machine it ran on (trial/hparams seeds, test envs, seed, output/data dir, model-saving flags):
``steps``, the ``hparams`` override, ``holdout_fraction``, ``task``, ``checkpoint_freq`` and any
field a newer writer adds (a dataset version, say). Runs of one (dataset, algorithm, hparams seed,
trial) must also agree on the hyperparameters they resolved to.

>>> describe({"steps": 200, "task": "dg"}, {"steps": 5001, "task": "dg"})
'steps 200 vs 5001'
"""

from __future__ import annotations

import json
from typing import Any

from ldr_plugin.domainbed.runs import Sweep
from ldr_plugin.errors import LdrError

NOT_PROTOCOL = frozenset({"dataset", "algorithm", "trial_seed", "hparams_seed", "test_envs", "seed", "output_dir",
                          "data_dir", "save_model_every_checkpoint", "skip_model_save"})


def protocol(record: dict[str, Any]) -> dict[str, Any]:
    """The protocol fields of a record's ``args`` (see the module docstring)."""
    return {k: v for k, v in sorted(record["args"].items()) if k not in NOT_PROTOCOL}


def describe(a: dict[str, Any], b: dict[str, Any]) -> str:
    """The fields in which two protocols (or two hparams dicts) differ, as 'name a vs b; ...'."""
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return "; ".join(f"{k} {json.dumps(a.get(k))} vs {json.dumps(b.get(k))}" for k in keys)


def mixed_protocols(sweep: Sweep) -> list[str]:
    """One sentence per (dataset, algorithm) whose runs differ in protocol or resolved hyperparameters."""
    by_row: dict[tuple[str, str], dict[str, tuple[dict, list[str]]]] = {}
    hparams: dict[tuple, tuple[dict, str]] = {}
    found = []
    for run, record in sweep.first_records().items():
        args = record["args"]
        proto = protocol(record)
        key = json.dumps(proto, sort_keys=True, default=str)
        by_row.setdefault((args["dataset"], args["algorithm"]), {}).setdefault(key, (proto, []))[1].append(run)
        group = (args["dataset"], args["algorithm"], args["hparams_seed"], args["trial_seed"], key)
        resolved = record.get("hparams") or {}
        earlier = hparams.setdefault(group, (resolved, run))
        if earlier[0] != resolved:
            found.append(f"{args['dataset']} / {args['algorithm']} (hparams seed {args['hparams_seed']}, trial "
                         f"{args['trial_seed']}): runs {earlier[1]} and {run} resolved different hyperparameters "
                         f"({describe(earlier[0], resolved)})")
    for (dataset, algorithm), protos in by_row.items():
        if len(protos) > 1:
            (first, runs_a), *others = protos.values()
            for other, runs_b in others:
                found.append(f"{dataset} / {algorithm}: {describe(first, other)} ({len(runs_a)} vs {len(runs_b)} "
                             f"runs, e.g. {runs_a[0]} vs {runs_b[0]})")
    return found


def check_not_mixed(sweep: Sweep, where: str) -> None:
    """Refuse a sweep whose rows would pool runs of different protocols (an error listing them)."""
    found = mixed_protocols(sweep)
    if found:
        shown = "\n  ".join(found[:10]) + (f"\n  ... and {len(found) - 10} more" if len(found) > 10 else "")
        raise LdrError(f"{where}: the result folders mix runs of different protocols, which one table would pool "
                       f"into one row:\n  {shown}\nbuild each protocol from its own folders, or compare them with "
                       "`ldr leaderboard compare LABEL=DIR LABEL=DIR`")
