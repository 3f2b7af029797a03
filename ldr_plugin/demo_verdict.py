"""The main job's last words: per dataset, each algorithm against ERM as a paired difference over
trials (SE and n), the budget and selection method, and one sentence per algorithm placing the
result against the checked-in studies of the same protocol (numbers read from their tables).

>>> ref = Reference("dg_study_5001", 5001, {"RotatedDigitsFlat": {"ERM": (87.26, 0.19, 6), "LatentDR": (89.49, 0.15, 6)}})
>>> context_sentence("RotatedDigitsFlat", "LatentDR", 200, [ref])
'checked-in studies of this protocol: LatentDR − ERM = +2.23 ± 0.24 at 5001 steps (leaderboards/dg_study_5001, 6 trials)'
"""

from __future__ import annotations

import csv
import math
import textwrap
from dataclasses import dataclass
from pathlib import Path

from ldr_plugin.domainbed.paired import mean_se, paired_difference, trial_means
from ldr_plugin.domainbed.runs import read_sweep
from ldr_plugin.domainbed.selection import METHOD_NAMES
from ldr_plugin.domainbed.tables import SweepSelection, _n_envs, sweep_names
from ldr_plugin.registry_files import checked_in_table, registry_file
from ldr_plugin.tomlfile import read_toml

BASELINE = "ERM"
METHOD = "iid"  # the protocol's selection: training-domain validation
WIDTH = 100


@dataclass(frozen=True)
class Reference:
    """A checked-in study: its board id, step budget and Averages (training-domain validation) cells:
    {dataset: {algorithm: (mean %, SE, n trials)}}."""

    board: str
    steps: int
    averages: dict[str, dict[str, tuple[float, float, int]]]


def read_references() -> list[Reference]:
    """The studies of ``registry/reference_studies.toml`` whose tables are available (checkout or wheel)."""
    studies = read_toml(registry_file("reference_studies.toml"), "reference studies").get("study", [])
    out = []
    for study in studies:
        path = checked_in_table(study["board"])
        if path is None:
            continue
        averages: dict[str, dict[str, tuple[float, float, int]]] = {}
        with Path(path).open(newline="") as handle:
            for row in csv.DictReader(handle):
                if (row["table"] == f"averages__{METHOD}" and row["published"] == "0" and row["column"] != "Avg"
                        and row["value"] and row["err"] and row["n"]):
                    averages.setdefault(row["column"], {})[row["row"]] = (float(row["value"]), float(row["err"]),
                                                                          int(row["n"]))
        out.append(Reference(study["board"], int(study["steps"]), averages))
    return sorted(out, key=lambda r: r.steps)


def context_sentence(dataset: str, algorithm: str, steps: int, references: list[Reference]) -> str | None:
    """'checked-in studies of this protocol: A − ERM = ... at S steps (board, n trials); ...' or None.

    The difference of the two table means, its SE combined from theirs (the tables hold no pairs, so
    this is wider than the study's paired SE: +2.23 ± 0.24 here, ± 0.20 paired in its STUDY.md).
    """
    parts = []
    for ref in references:
        cells = ref.averages.get(dataset, {})
        if algorithm in cells and BASELINE in cells:
            (a, sa, na), (b, sb, nb) = cells[algorithm], cells[BASELINE]
            here = " = this budget" if ref.steps == steps else ""
            parts.append(f"{a - b:+.2f} ± {math.hypot(sa, sb):.2f} at {ref.steps} steps{here} "
                         f"(leaderboards/{ref.board}, {min(na, nb)} trials)")
    if not parts:
        return None
    return f"checked-in studies of this protocol: {algorithm} − {BASELINE} = " + "; ".join(parts)


def verdict_lines(sweep_dir: str | Path, steps: int, batch_size: int, references: list[Reference] | None = None,
                  has_pairs: bool = True) -> list[str]:
    """The verdict block for a demo sweep (see the module docstring)."""
    sel = SweepSelection.build(read_sweep(str(sweep_dir), progress=False), (METHOD,))
    references = read_references() if references is None else references
    algorithms, datasets = sweep_names(sel.sweep)
    lines = [(f"Verdict: {steps} steps, batch {batch_size} per domain, DomainBed default hyperparameters; "
             f"selection: {METHOD_NAMES[METHOD]}."),
             "  accuracy (%) on the held-out domain, averaged over every held-out domain, ± SE over n trials;",
             f"  Δ = paired difference from {BASELINE} over the same trials, ± SE (sample std / √n); a checked-in",
             "  study's difference is of its table's means, ± the two SEs combined (unpaired: wider)."]
    single = True
    for dataset in datasets:
        lines.append(f"{dataset} ({_n_envs(sel.sweep, dataset)} domains, each held out in turn):")
        base, context = trial_means(sel, METHOD, dataset, BASELINE), []
        for algorithm in algorithms:
            values = trial_means(sel, METHOD, dataset, algorithm)
            mean, se, n = mean_se(values)
            single = single and n <= 1
            level = "X (no trial with every domain)" if mean is None else (
                f"{mean:5.1f}" + (f" ± {se:.1f}" if se is not None else "") + f" (n={n})")
            diff = paired_difference(base, values) if algorithm != BASELINE and base else None
            lines.append((f"  {algorithm:<16}{level:<20}" + (f"Δ {diff.text(1)}" if diff else "")).rstrip())
            sentence = context_sentence(dataset, algorithm, steps, references) if diff else None
            if sentence:
                here = f"{algorithm} − {BASELINE} here at {steps} steps: {diff.text(1)}; {sentence}."
                context.append(textwrap.wrap(here, WIDTH, initial_indent="  ", subsequent_indent="    "))
        lines += [line for block in context for line in block]
    if single:
        lines.append("One trial: there is no error bar (no SE); run with --trials 2 or more (the full demo runs 2).")
    if not has_pairs:
        lines.append("Leave-one-domain-out selection is not shown: it needs the test-domain pair runs "
                     "(the full demo trains them).")
    return lines
