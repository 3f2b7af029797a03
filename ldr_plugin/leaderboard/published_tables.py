"""Tables of published numbers (RobustBench, OpenCLIP), every row marked published with its source."""

from __future__ import annotations

from ldr_plugin.leaderboard.tables import Cell, Column, Row, Table
from ldr_plugin.published import openclip, robustbench

RB_KEY, OC_KEY = "published-robustbench", "published-openclip"


def _pct(value: float | None) -> Cell:
    return Cell(value=value, decimals=2, missing="—", flags=() if value is not None else ("not_reported",))


def robustbench_tables(entries: dict[str, robustbench.RobustBenchEntry], datasets: list[str],
                       threat_models: list[str]) -> list[Table]:
    """One table per (dataset, threat model), sorted as RobustBench's leaderboards (robust accuracy)."""
    groups: dict[tuple[str, str], list[robustbench.RobustBenchEntry]] = {}
    for entry in entries.values():
        if (not datasets or entry.dataset in datasets) and (not threat_models or entry.threat_model in threat_models):
            groups.setdefault((entry.dataset, entry.threat_model), []).append(entry)
    tables = []
    for (dataset, threat), group in sorted(groups.items()):
        corruptions = threat.startswith("corruptions")
        robust = "corruptions_acc_pct" if corruptions else "autoattack_acc_pct"
        group.sort(key=lambda e: (-(getattr(e, robust) or -1.0), -(e.clean_acc_pct or -1.0), e.name))
        rows = [Row(label=e.name, source=RB_KEY, published=True, cells=[
            _pct(e.clean_acc_pct), _pct(getattr(e, robust)), Cell(text=e.eps or "—"),
            Cell(text=e.architecture), Cell(text=e.venue)]) for e in group]
        tables.append(Table(
            table_id=f"robustbench__{dataset}__{threat}", title=f"RobustBench {dataset}, {threat}",
            columns=[Column("clean acc (%)"), Column("corruptions acc (%)" if corruptions else "AutoAttack acc (%)"),
                     Column("eps"), Column("architecture"), Column("venue")],
            rows=rows, row_header="model", section="RobustBench", kind="published",
            sources={RB_KEY: robustbench.SOURCE_TEXT},
            footnotes={"not_reported": "—: not reported in the model_info entry"},
            notes=[f"{len(rows)} entries; model id = robustbench:{dataset}/{threat}/<model>"],
        ))
    return tables


def openclip_table(entries: dict[str, openclip.OpenCLIPEntry], limit: int = 0) -> Table:
    """OpenCLIP zero-shot averages, best first (ties by id)."""
    ordered = sorted(entries.values(), key=lambda e: (-(e.zeroshot_avg_pct or -1.0), e.model_id))
    if limit:
        ordered = ordered[:limit]
    rows = [Row(label=f"{e.architecture}/{e.tag}", source=OC_KEY, published=True, cells=[
        _pct(e.zeroshot_avg_pct), _pct(e.zeroshot_imagenet_pct),
        Cell(value=e.params_m, decimals=2, missing="—")]) for e in ordered]
    return Table(
        table_id="openclip__zeroshot", title="OpenCLIP zero-shot accuracy (average over 38 datasets)",
        columns=[Column("avg 38 datasets (%)"), Column("ImageNet-1k (%)"), Column("params (M)")],
        rows=rows, row_header="architecture/tag", section="OpenCLIP", kind="published",
        sources={OC_KEY: openclip.SOURCE_TEXT},
        footnotes={"not_reported": "—: not reported"},
        notes=[f"{len(rows)} models; model id = openclip:<architecture>/<tag>; fractions converted to percent"],
    )
