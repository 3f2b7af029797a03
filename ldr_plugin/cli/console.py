"""What every command reads to decide how much to print: the ``ldr_plugin`` logger's level, which the
root group's ``-v`` / ``-q`` set (INFO by default, DEBUG with ``-v``, WARNING with ``-q``)."""

from __future__ import annotations

import logging
import sys

LOGGER = "ldr_plugin"


def verbosity() -> int:
    """The ``ldr_plugin`` logger's level (INFO when nothing set it)."""
    logger = logging.getLogger(LOGGER)
    return logger.getEffectiveLevel() if logger.level != logging.NOTSET else logging.INFO


def show_progress() -> bool:
    """Progress bars: on a terminal, unless ``-q``."""
    return verbosity() <= logging.INFO and sys.stderr.isatty()
