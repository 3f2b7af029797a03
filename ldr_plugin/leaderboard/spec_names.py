"""Names a spec lists (datasets, algorithms, metrics) checked against what a build found.

A name nobody knows (not in the results, not registered anywhere) is a typo: an error naming the
spec and the field, with close matches, so a spec with ``datasets = ["RotatedDigit"]`` never
builds an empty table with exit 0. A known name that the result folders lack is a reported
problem (its rows or columns are missing, and the README says why).

>>> check_spec_names("s.toml", "datasets", ["RotatedDigit"], found={"RotatedDigits"}, registered=set())
Traceback (most recent call last):
...
ldr_plugin.errors.LdrError: s.toml: unknown dataset in 'datasets' 'RotatedDigit'; did you mean: RotatedDigits? Known: RotatedDigits.
>>> check_spec_names("s.toml", "datasets", ["PACS"], found={"RotatedDigits"}, registered={"PACS"})[0].kind
'not_in_results'
"""

from __future__ import annotations

from collections.abc import Iterable

from ldr_plugin.errors import LdrError
from ldr_plugin.plugins import unknown_name_message
from ldr_plugin.results.problems import Problem


def check_spec_names(spec_path: str, field: str, values: Iterable[str], *, found: set[str],
                     registered: set[str]) -> list[Problem]:
    """Raise on a name in neither ``found`` nor ``registered``; a problem per registered name not found."""
    what = field.removesuffix("s") if field.endswith("s") else field
    problems = []
    for value in values:
        if value in found:
            continue
        if value not in registered:
            close_to = sorted(found | registered)
            raise LdrError(f"{spec_path}: " + unknown_name_message(value, close_to, what=f"{what} in '{field}'"))
        problems.append(Problem("not_in_results", spec_path,
                                f"{what} '{value}' (in '{field}') has no results in the given folders; "
                                f"its {'rows' if field == 'algorithms' else 'cells'} are missing"))
    return problems
