"""Checkpoint files checked before a host library reads them, and host errors turned into clear ones.

A RobustBench download that went wrong often leaves an HTML page (Google Drive's "can't scan for
viruses" page) or a truncated file under the checkpoint's name; torch then fails with an unpickling
error that says nothing about either. :func:`sniff_checkpoint` names the problem first.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path

from ldr_plugin.sources.base import CheckpointError

_HTML_MARKERS = (b"<!doctype html", b"<html", b"<head", b"<body")


def sniff_checkpoint(path: str | Path) -> None:
    """Raise :class:`CheckpointError` if ``path`` is empty, an HTML page, or a truncated zip checkpoint."""
    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes): an interrupted download? fetch it again")
    with open(path, "rb") as handle:
        head = handle.read(1024)
    lowered = head.lstrip().lower()
    if lowered.startswith(b"<") or any(marker in lowered for marker in _HTML_MARKERS):
        raise CheckpointError(
            f"checkpoint {path} is an HTML page ({size} bytes), not weights: the download returned a web "
            "page (e.g. Google Drive's quota or virus-scan page); download the file again by its id"
        )
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as archive:
                archive.namelist()
        except (zipfile.BadZipFile, OSError) as exc:
            raise CheckpointError(
                f"checkpoint {path} is truncated or corrupt ({size} bytes; zip archive unreadable: {exc}); "
                "download it again"
            ) from exc


def _shorten(line: str, keep: int = 5) -> str:
    """torch's 'Missing key(s) in state_dict: "a", "b", ...' with the first ``keep`` keys and a count."""
    head, sep, keys = line.partition(": ")
    names = re.findall(r'"([^"]*)"', keys)
    if not sep or len(names) <= keep:
        return line[:600]
    return f"{head}: {', '.join(names[:keep])} … (+{len(names) - keep} more)"


def explain_load_error(exc: BaseException, files: list[str], model_id: str) -> CheckpointError:
    """Turn an exception raised while a host read ``files`` into a :class:`CheckpointError`."""
    where = ", ".join(files) or "(no file)"
    text = str(exc)
    if "TorchScript archive" in text:
        return CheckpointError(
            f"model {model_id}: checkpoint {where} is a TorchScript archive (e.g. OpenAI's ~/.cache/clip/*.pt); "
            "loading one runs its TorchScript code, so it is refused by default. If you trust where it came "
            "from, pass --trust-checkpoint"
        )
    if isinstance(exc, pickle.UnpicklingError) or "Weights only load failed" in text:
        return CheckpointError(
            f"model {model_id}: checkpoint {where} needs arbitrary unpickling (refused: it can run code). "
            "If you trust where it came from, pass --trust-checkpoint. Detail: " + text.splitlines()[0]
        )
    if "NVIDIA driver" in text or "CUDA" in text and "not available" in text or "Torch not compiled with CUDA" in text:
        return CheckpointError(f"model {model_id}: its constructor needs a CUDA device, which this machine lacks ({text[:120]})")
    if "Error(s) in loading state_dict" in text:
        lines = [_shorten(ln.strip()) for ln in text.splitlines() if ln.strip()][:6]
        return CheckpointError(
            f"model {model_id}: checkpoint {where} does not fit the architecture (state-dict mismatch): "
            + " | ".join(lines)
        )
    if isinstance(exc, (EOFError, zipfile.BadZipFile)) or "PytorchStreamReader" in text or "truncated" in text:
        return CheckpointError(f"model {model_id}: checkpoint {where} is truncated or corrupt ({text[:200]})")
    if isinstance(exc, KeyError):
        return CheckpointError(f"model {model_id}: checkpoint {where} lacks the expected key {text}")
    return CheckpointError(f"model {model_id}: loading {where} failed: {type(exc).__name__}: {text[:300]}")
