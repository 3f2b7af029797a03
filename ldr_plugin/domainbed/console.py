"""What a run prints, as DomainBed's ``train.py`` prints it, teed into ``out.txt`` / ``err.txt``.

Inside :func:`quiet_runs` (the main job without ``-v``) a run's output goes to its files only, as
under DomainBed's own sweep launcher, and its per-step progress bar is off: the caller shows one
bar for all runs.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

_ECHO = contextvars.ContextVar("ldr_echo_runs", default=True)


@contextlib.contextmanager
def quiet_runs(quiet: bool = True) -> Iterator[None]:
    """While the block runs, runs trained in this process write their output to their files only."""
    token = _ECHO.set(not quiet)
    try:
        yield
    finally:
        _ECHO.reset(token)


def echo_runs() -> bool:
    """False inside :func:`quiet_runs`: per-run output to files only, no per-run progress bar."""
    return _ECHO.get()


class _Tee:
    """Write to a stream (unless ``echo`` is False) and to a file (appending), flushing both."""

    def __init__(self, stream: IO, path: Path, echo: bool = True):
        self.stream = stream
        self.echo = echo
        self.file = open(path, "a")  # noqa: SIM115 - closed by tee_output

    def write(self, message: str) -> int:
        if self.echo:
            self.stream.write(message)
        self.file.write(message)
        self.flush()
        return len(message)

    def flush(self) -> None:
        if self.echo:
            self.stream.flush()
        self.file.flush()

    def isatty(self) -> bool:
        return False


@contextlib.contextmanager
def tee_output(out_path: Path, err_path: Path) -> Iterator[None]:
    """Copy ``sys.stdout`` / ``sys.stderr`` into the two files while the block runs (and only there
    inside :func:`quiet_runs`)."""
    old_out, old_err = sys.stdout, sys.stderr
    out, err = _Tee(old_out, out_path, echo_runs()), _Tee(old_err, err_path, echo_runs())
    sys.stdout, sys.stderr = out, err
    try:
        yield
    finally:
        sys.stdout, sys.stderr = old_out, old_err
        out.file.close()
        err.file.close()


def environment_lines() -> list[str]:
    """The ``Environment:`` block DomainBed prints (Python, PyTorch, Torchvision, CUDA, CUDNN, NumPy, PIL),
    plus torch's CPU thread count: on CPU, runs with the same seed differ across thread counts."""
    import torch
    import torchvision

    try:
        import PIL

        pil = PIL.__version__
    except ImportError:
        pil = "not installed"
    return [
        "Environment:",
        f"\tPython: {sys.version.split(' ')[0]}",
        f"\tPyTorch: {torch.__version__}",
        f"\tTorchvision: {torchvision.__version__}",
        f"\tCUDA: {torch.version.cuda}",
        f"\tCUDNN: {torch.backends.cudnn.version()}",
        f"\tNumPy: {np.__version__}",
        f"\tPIL: {pil}",
        f"\tCPU threads: {torch.get_num_threads()}",
    ]


def print_row(row: Sequence[Any], colwidth: int = 12) -> None:
    """One table row: floats with 10 decimals, every cell padded and cut to ``colwidth``."""

    def cell(x: Any) -> str:
        if isinstance(x, (float, np.floating)):
            x = f"{x:.10f}"
        return str(x).ljust(colwidth)[:colwidth]

    print("  ".join(cell(x) for x in row), "")
