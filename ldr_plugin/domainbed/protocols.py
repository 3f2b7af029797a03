"""What a run was trained under, beyond DomainBed's grouping keys: so runs of different protocols
are never pooled into one row without saying so.

DomainBed groups records by (trial, dataset, algorithm, hparams seed, test envs) only: two sweeps
of 200 and 5001 steps given together become one row per algorithm, its trials and checkpoints
mixed. A run's *protocol* is every ``args`` field except those that name the run within a sweep or
the machine it ran on (trial/hparams seeds, test envs, seed, output/data dir, model-saving flags):
``steps``, the ``hparams`` override, ``holdout_fraction``, ``task``, ``checkpoint_freq`` and any
field a newer writer adds (a dataset version, say). Runs of one (dataset, algorithm, hparams seed,
trial) must also agree on the hyperparameters they resolved to.

A grid run by ``--hparams`` (one sweep per grid point, each its own hparams seed, so that DomainBed's
model selection chooses among them as among random-search draws) differs in the ``hparams``
override by design: the fields a caller names as ``grid`` are left out of the protocol, every other
override field still counts, and the resolved-hyperparameter check still refuses two grid values
under one (hparams seed, trial).

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


def protocol(record: dict[str, Any], grid: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The protocol fields of a record's ``args``, the ``grid`` fields of its ``hparams`` override
    left out (see the module docstring).

    >>> protocol({"args": {"steps": 9, "seed": 1, "hparams": '{"lr": 0.1, "ldr_start_step": 5}'}}, frozenset({"ldr_start_step"}))
    {'hparams': '{"lr": 0.1}', 'steps': 9}
    >>> protocol({"args": {"hparams": None}}, frozenset({"x"})) == protocol({"args": {"hparams": '{"x": 1}'}}, frozenset({"x"}))
    True
    """
    found = {k: v for k, v in sorted(record["args"].items()) if k not in NOT_PROTOCOL}
    fixed = _override(found.get("hparams")) if grid else None
    if fixed is not None:  # (an override that is not a JSON object is compared as text, like any other field)
        found["hparams"] = json.dumps({k: v for k, v in sorted(fixed.items()) if k not in grid})
    return found


def _override(value: Any) -> dict[str, Any] | None:
    """A ``--hparams`` override (JSON text) as a dict, or None when it is not a JSON object."""
    try:
        found = json.loads(value) if isinstance(value, str) and value.strip() else {}
    except json.JSONDecodeError:
        return None
    return found if isinstance(found, dict) else None


def grid_values(sweep: Sweep, grid: frozenset[str]) -> dict[str, list[Any]]:
    """{grid field: the sorted values its runs' ``--hparams`` overrides set} (fields no run sets left out)."""
    found: dict[str, set] = {}
    for record in sweep.first_records().values():
        override = _override(record["args"].get("hparams")) or {}
        for name in grid & set(override):
            found.setdefault(name, set()).add(json.dumps(override[name]))
    return {name: _sorted([json.loads(v) for v in values]) for name, values in sorted(found.items())}


def _sorted(values: list[Any]) -> list[Any]:
    """Numbers in numeric order; values of mixed or unorderable types in text order."""
    try:
        return sorted(values)
    except TypeError:
        return sorted(values, key=str)


def describe(a: dict[str, Any], b: dict[str, Any]) -> str:
    """The fields in which two protocols (or two hparams dicts) differ, as 'name a vs b; ...'; two
    ``--hparams`` overrides are compared field by field ('hparams.lr 0.1 vs 0.01').

    >>> describe({"hparams": '{"lr": 0.1, "batch_size": 32}'}, {"hparams": '{"batch_size": 32, "lr": 0.01}'})
    'hparams.lr 0.1 vs 0.01'
    """
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    found = []
    for k in keys:
        x, y = (_override(a.get(k)), _override(b.get(k))) if k == "hparams" else (None, None)
        if x is not None and y is not None:
            found.append(describe({f"hparams.{n}": v for n, v in x.items()}, {f"hparams.{n}": v for n, v in y.items()})
                         or f"hparams {json.dumps(a.get(k))} vs {json.dumps(b.get(k))}")  # same fields, other text
        else:
            found.append(f"{k} {json.dumps(a.get(k))} vs {json.dumps(b.get(k))}")
    return "; ".join(found)


def compared_differences(sweep: Sweep, dataset: str, a: str, b: str) -> str:
    """How two algorithms' runs on ``dataset`` differ in protocol beyond the ``hparams`` override (which
    differs between algorithms by design): 'steps 2000 vs 5001' for a grid beside baselines of another
    budget, '' when they agree or one has no runs. Each row is one protocol (:func:`check_not_mixed`), so
    its first run stands for it."""
    found: dict[str, dict[str, Any]] = {}
    for record in sweep.first_records().values():
        args = record["args"]
        if args["dataset"] == dataset and args["algorithm"] in (a, b):
            found.setdefault(args["algorithm"], {k: v for k, v in protocol(record).items() if k != "hparams"})
    return describe(found[a], found[b]) if len(found) == 2 else ""


def mixed_protocols(sweep: Sweep, grid: frozenset[str] = frozenset()) -> list[str]:
    """One sentence per (dataset, algorithm) whose runs differ in protocol or resolved hyperparameters
    (``grid``: ``hparams`` override fields a grid varies, see the module docstring)."""
    by_row: dict[tuple[str, str], dict[str, tuple[dict, list[str]]]] = {}
    hparams: dict[tuple, tuple[dict, str]] = {}
    found = []
    for run, record in sweep.first_records().items():
        args = record["args"]
        proto = protocol(record, grid)
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


def check_not_mixed(sweep: Sweep, where: str, grid: frozenset[str] = frozenset()) -> None:
    """Refuse a sweep whose rows would pool runs of different protocols (an error listing them)."""
    found = mixed_protocols(sweep, grid)
    if found:
        shown = "\n  ".join(found[:10]) + (f"\n  ... and {len(found) - 10} more" if len(found) > 10 else "")
        raise LdrError(f"{where}: the result folders mix runs of different protocols, which one table would pool "
                       f"into one row:\n  {shown}\nbuild each protocol from its own folders, or compare them with "
                       "`ldr leaderboard compare LABEL=DIR LABEL=DIR`")
