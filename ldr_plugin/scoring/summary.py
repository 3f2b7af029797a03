"""What ``ldr score`` computed, as a short table for people and JSON for scripts.

One row per cell: model, dataset, split, layer, Γ′ (from the cell's k* record, when k* was
computed), the measured top-1 on the scored subset, the status and any notes.
"""

from __future__ import annotations

import json
from typing import Any

from ldr_plugin.results.io import read_record
from ldr_plugin.results.record import RecordError


def cell_rows(outcomes: list[Any]) -> list[dict[str, Any]]:
    """One dict per outcome (a :class:`~ldr_plugin.scoring.run.CellOutcome`), read from its records."""
    rows = []
    for outcome in outcomes:
        cell = outcome.cell
        row: dict[str, Any] = {"model_id": cell.model_id, "dataset": cell.dataset_name, "split": cell.split,
                               "layer": cell.layer, "seed": cell.seed, "status": "failed" if outcome.error else "ok",
                               "gamma_prime": None, "top1_pct": None, "accuracy_kind": None,
                               "records": [str(p) for p in outcome.paths], "notes": list(outcome.notes)}
        if outcome.error:
            row["error"] = outcome.error.splitlines()[0]
        for path in outcome.paths:
            try:
                record = read_record(path)
            except RecordError:
                continue
            row["layer"] = record.layer
            if record.metric_family.startswith("kstar") and "gamma_prime" in record.metrics:
                row["gamma_prime"] = record.metrics["gamma_prime"].value
            if row["top1_pct"] is None and "top1_pct" in record.accuracy:
                row["top1_pct"], row["accuracy_kind"] = record.accuracy["top1_pct"], record.accuracy.get("kind")
        rows.append(row)
    return rows


def _num(value: float | None, digits: int) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def table_text(rows: list[dict[str, Any]]) -> str:
    """A plain aligned table: model | dataset | split | layer | Γ′ | top-1 (%) | status."""
    header = ["model", "dataset", "split", "layer", "Γ′", "top-1 (%)", "status"]
    body = [[r["model_id"], r["dataset"], r["split"], str(r["layer"] or "default"), _num(r["gamma_prime"], 4),
             _num(r["top1_pct"], 2), r["status"]] for r in rows]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in [header, *body])


def json_text(rows: list[dict[str, Any]]) -> str:
    """The same rows as JSON (NaN-free: undefined values are null)."""
    return json.dumps({"cells": rows}, indent=2, sort_keys=True, allow_nan=False)
