"""Warnings raised inside host libraries (torch, timm, open_clip, RobustBench, DomainBed ...) are the
hosts' business, not the user's: importing timm prints a torch ``FutureWarning`` before every
``ldr ls models --source robustbench``. :func:`host_warnings_to_log` sends them to the
``ldr_plugin.hosts`` logger at DEBUG (shown with ``ldr -v``); every other warning is shown as usual.

>>> import warnings
>>> with host_warnings_to_log():   # nothing printed: logged at DEBUG
...     warnings.warn_explicit("old", FutureWarning, "/venv/site-packages/torch/jit/_script.py", 1)
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import warnings
from collections.abc import Callable, Iterator
from typing import Any

HOST_MODULES = re.compile(r"^(torch|torchvision|timm|open_clip|robustbench|autoattack|domainbed|wilds|"
                          r"huggingface_hub|transformers|submitit)(\.|$)")
LOGGER = logging.getLogger("ldr_plugin.hosts")


@contextlib.contextmanager
def host_warnings_to_log() -> Iterator[None]:
    """While the block runs, warnings issued from a host library's module go to the log at DEBUG."""
    previous = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        module = _module_of(filename)
        if module and HOST_MODULES.match(module):
            LOGGER.debug("%s: %s: %s", module, category.__name__, message)
        else:
            previous(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = previous


def _module_of(filename: str) -> str | None:
    """``torch.jit._script`` for ``.../site-packages/torch/jit/_script.py`` (None outside a package path)."""
    parts = re.split(r"[\\\\/]", filename.removesuffix(".py"))
    for marker in ("site-packages", "dist-packages"):
        if marker in parts:
            return ".".join(parts[len(parts) - parts[::-1].index(marker):])
    for i, part in enumerate(parts):  # a clone on sys.path, e.g. .../DomainBed/domainbed/networks.py
        if HOST_MODULES.match(part):
            return ".".join(parts[i:])
    return None


def quiet_host_warnings(command: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator for a click command body: :func:`host_warnings_to_log` around it."""
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with host_warnings_to_log():
            return command(*args, **kwargs)

    return wrapper
