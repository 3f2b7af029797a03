"""``ldr kstar`` as a library function: a features file in, a result record (+ per-sample, plot) out.

Everything that can fail on bad input (loading, validation, the search) happens before the first
file is written, so bad input leaves no output file; every file is written atomically.
"""

from __future__ import annotations

import io
import logging
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ldr_plugin.errors import LdrError
from ldr_plugin.files import display
from ldr_plugin.kstar.api import kstar_summary
from ldr_plugin.kstar.distance import NORMALISATION, metric_family
from ldr_plugin.kstar.report import summary_detail, summary_values
from ldr_plugin.kstar.stats import KStarSummary
from ldr_plugin.names import check_name
from ldr_plugin.results import (
    atomic_write_text,
    atomic_write_with,
    expected_path,
    metric,
    new_record,
    write_record,
)

LOG = logging.getLogger(__name__)
REQUIRED_KEYS = ("features", "labels")


@dataclass
class KStarJob:
    """One ``ldr kstar`` run: input file, output folder, backend and the record's cell fields."""

    features_path: Path
    out_dir: Path = Path("results")
    backend: str = "exact"
    dtype: str = "float32"
    per_sample: bool = False
    per_sample_format: str = "npz"
    plot: bool = True
    plot_format: str = "png"
    model_id: str | None = None
    dataset: str | None = None
    split: str = "all"
    layer: str = "features"
    seed: int = 0
    threshold: float = 0.5
    infinite: str = "exclude"
    distance: str = "euclidean"
    backend_options: dict[str, Any] = field(default_factory=dict)


@dataclass
class KStarOutputs:
    summary: KStarSummary
    record_path: Path
    per_sample_path: Path | None
    plot_path: Path | None


def load_features_file(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Read ``features``, ``labels`` and optional ``class_names`` from an .npz file (no pickles)."""
    path = Path(path)
    if not path.is_file():
        exists = path.exists() or path.is_symlink()
        raise LdrError(f"features file {display(path)} " + ("is not a regular file" if exists else "does not exist"))
    _check_npz_headers(path)
    try:
        loaded = np.load(path, allow_pickle=False, mmap_mode="r")  # a .npy is mapped, not read
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise LdrError(f"{display(path)}: a single .npy array; k* needs features and labels together, "
                           "e.g. np.savez('features.npz', features=X, labels=y)")
        with loaded as data:
            present = sorted(data.files)
            missing = [k for k in REQUIRED_KEYS if k not in present]
            if missing:
                raise LdrError(
                    f"{path}: missing array '{missing[0]}' (expected 'features' and 'labels'; "
                    f"the file has: {', '.join(present) or 'no arrays'})"
                )
            arrays = {k: data[k] for k in (*REQUIRED_KEYS, "class_names") if k in present}
    except LdrError:
        raise
    except (OSError, ValueError, EOFError, MemoryError, zipfile.BadZipFile, zlib.error) as exc:
        reason = str(exc) or type(exc).__name__
        raise LdrError(f"{display(path)}: not a readable .npz of plain arrays ({reason})") from exc
    return arrays["features"], arrays["labels"], arrays.get("class_names")


def _check_npz_headers(path: Path) -> None:
    """Each array's header against the bytes its zip member holds, before anything is allocated
    (a header claiming 931 GiB is bad input, not a MemoryError)."""
    if not zipfile.is_zipfile(path):
        return  # np.load reports what it is (an empty file, a .npy, text ...)
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with archive.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                    shape, _, dtype = read(member)
                claimed = int(np.prod(shape, dtype=object)) * dtype.itemsize
                if claimed > info.file_size:
                    raise LdrError(f"{display(path)}: array '{info.filename[:-4]}' claims shape {shape} "
                                   f"({claimed} bytes) but its member holds {info.file_size} bytes")
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise LdrError(f"{display(path)}: not a readable .npz of plain arrays ({exc or type(exc).__name__})") from exc


LONG_EXACT_S = 120.0  # exact search expected to take longer than this: suggest the screened backend
MIN_WORK_TO_ESTIMATE = 5e10  # n²·d below this runs in seconds anywhere: no calibration


def estimate_exact_seconds(n: int, d: int, dtype: str = "float32", *, calibrate_n: int = 4096) -> float:
    """Seconds exact k* of ``n`` samples in ``d`` dimensions should take here: its ~2·n²·d
    floating-point operations over the rate of one calibration product of the search's tile shape
    timed now (about 0.1 s).

    >>> estimate_exact_seconds(1000, 16) < 10
    True
    """
    import torch

    width = max(d, 1)
    rows, cols = min(n, 1024), min(n, calibrate_n)
    a = torch.randn(rows, width, dtype=getattr(torch, dtype))
    b = torch.randn(cols, width, dtype=getattr(torch, dtype))
    a @ b.T  # warm-up
    start = time.perf_counter()
    a @ b.T
    rate = 2.0 * rows * cols * width / max(time.perf_counter() - start, 1e-6)
    return 2.0 * n * n * width / rate


def hint_long_exact(shape: tuple[int, ...], dtype: str) -> None:
    """Warn (with the estimate) when exact search will be long, pointing at ``--backend screened``."""
    if len(shape) != 2 or shape[0] * shape[0] * max(shape[1], 1) < MIN_WORK_TO_ESTIMATE:
        return
    seconds = estimate_exact_seconds(int(shape[0]), int(shape[1]), dtype)
    if seconds > LONG_EXACT_S:
        LOG.warning("exact k* of %d samples x %d dimensions will take about %s here; --backend screened is "
                    "faster at large N (1.8-2.3x from 10^5 to 10^6 samples in BENCHMARKS.md; approximate: a sample's k* can only come out too large, "
                    "and the record says how far from exact a sample of it is)",
                    shape[0], shape[1], _duration(seconds))


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def run_kstar_file(job: KStarJob, *, command: list[str] | None = None) -> KStarOutputs:
    """Compute the k* summary of a features file and write its record (plus optional outputs)."""
    if job.per_sample_format not in ("npz", "csv") or job.plot_format not in ("png", "svg"):
        raise LdrError("per-sample format must be npz or csv, plot format png or svg")
    for what, value in (("--split", job.split), ("--layer", job.layer), ("--dataset", job.dataset)):
        if value is not None:
            check_name(value, what)  # record fields: '../x' is bad input, not a split
    start = time.perf_counter()
    features, labels, class_names = load_features_file(job.features_path)
    loaded = time.perf_counter()
    options = dict(job.backend_options)
    if job.backend != "exact":  # the approximate backends are seeded
        options.setdefault("seed", job.seed)
    else:
        hint_long_exact(np.shape(features), job.dtype)
    summary = kstar_summary(
        features, labels, backend=job.backend, dtype=job.dtype, class_names=class_names,
        threshold=job.threshold, infinite=job.infinite, distance=job.distance, **options,
    )
    computed = time.perf_counter()
    stem = Path(job.features_path).stem
    cell = {
        "model_id": job.model_id or f"file:{stem}", "dataset": job.dataset or stem, "split": job.split,
        "layer": job.layer, "metric_family": metric_family(summary.distance), "seed": job.seed,
    }
    values, hib = summary_values(summary)
    record_path = expected_path(job.out_dir, **cell)
    base = record_path.name.removesuffix(".result.json")
    per_sample_path = job.out_dir / f"{base}.per_sample.{job.per_sample_format}" if job.per_sample else None
    plot_path = job.out_dir / f"{base}.violins.{job.plot_format}" if job.plot else None
    detail = summary_detail(summary)
    detail["outputs"] = {"per_sample": per_sample_path and per_sample_path.name, "plot": plot_path and plot_path.name}
    record = new_record(  # validated here, before any file is written
        kind="kstar", **cell,
        metrics={k: metric(v, higher_is_better=hib[k]) for k, v in values.items()},
        n_samples=summary.n_samples,
        n_per_class={c.name: c.n for c in summary.classes},
        preprocessing={"distance": summary.distance, "normalisation": NORMALISATION[summary.distance],
                       "dtype": job.dtype},
        detail=detail,
        timings_s={"load": loaded - start, "kstar": computed - loaded},
        command=command,
    )
    if per_sample_path is not None:
        _write_per_sample(summary, per_sample_path)
    if plot_path is not None:
        from ldr_plugin.kstar.plot import plot_violins  # matplotlib: only when a plot is asked for

        plot_violins(summary, plot_path, title=f"{cell['model_id']} on {cell['dataset']} ({cell['layer']})")
    record.timings_s["total"] = time.perf_counter() - start
    return KStarOutputs(summary, write_record(record, job.out_dir), per_sample_path, plot_path)


def _write_per_sample(summary: KStarSummary, path: Path) -> Path:
    names = np.array([c.name for c in summary.classes])
    columns = {
        "index": np.arange(summary.n_samples),
        "class_index": summary.codes,
        "class_name": names[summary.codes],
        "kstar": summary.kstar,
        "kstar_normalised": summary.kstar_normalised,
    }
    if path.suffix == ".npz":
        return atomic_write_with(path, lambda fh: np.savez(fh, **columns))
    buf = io.StringIO()
    buf.write(",".join(columns) + "\n")
    for row in zip(*columns.values()):
        i, c, name, k, kn = row
        buf.write(f"{i},{c},{_csv(str(name))},{k},{float(kn)!r}\n")
    return atomic_write_text(path, buf.getvalue())


def _csv(text: str) -> str:
    return '"' + text.replace('"', '""') + '"' if any(ch in text for ch in ',"\n') else text
