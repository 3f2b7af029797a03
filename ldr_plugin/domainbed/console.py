"""What a run prints, as DomainBed's ``train.py`` prints it, teed into ``out.txt`` / ``err.txt``."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np


class _Tee:
    """Write to a stream and to a file (appending), flushing both."""

    def __init__(self, stream: IO, path: Path):
        self.stream = stream
        self.file = open(path, "a")  # noqa: SIM115 - closed by tee_output

    def write(self, message: str) -> int:
        self.stream.write(message)
        self.file.write(message)
        self.flush()
        return len(message)

    def flush(self) -> None:
        self.stream.flush()
        self.file.flush()

    def isatty(self) -> bool:
        return False


@contextlib.contextmanager
def tee_output(out_path: Path, err_path: Path) -> Iterator[None]:
    """Copy ``sys.stdout`` / ``sys.stderr`` into the two files while the block runs."""
    old_out, old_err = sys.stdout, sys.stderr
    out, err = _Tee(old_out, out_path), _Tee(old_err, err_path)
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
