"""Names that become record fields and parts of file names: one allow-list, called by every producer.

A split, layer or dataset name given on a command line or in a selection holds only letters,
digits and ``_ + - .`` (no separator, no ``..``, no leading dot, no control character), so a value
such as ``../x`` is bad input instead of a record field.

>>> check_name("featurizer", "layer")
'featurizer'
>>> check_name("../x", "split")
Traceback (most recent call last):
...
ldr_plugin.errors.LdrError: split '../x' may hold only letters, digits, _ + - and single inner dots
"""

from __future__ import annotations

import re

from ldr_plugin.errors import LdrError

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_+-]*(\.[A-Za-z0-9_+-]+)*")


def check_name(value: object, what: str) -> str:
    """``value`` if it is a non-empty string matching :data:`NAME`, else :class:`LdrError` naming ``what``."""
    if not isinstance(value, str) or len(value) > 200 or not NAME.fullmatch(value):
        raise LdrError(f"{what} {value!r} may hold only letters, digits, _ + - and single inner dots")
    return value
