"""Run ``fn(item)`` for many items: inline, through submitit's local executor, or as a Slurm job array.

Items are packed into jobs (``Resources.items_per_job``); inside a job every item runs in its own
``try`` so one failing item does not stop the others. A job that dies (killed, timed out, out of
memory) fails all its items, each named with the job's log. ``fn`` and the items must be picklable
for ``local`` and ``slurm`` (a module-level function, or a :func:`functools.partial` of one).

>>> summary = launch([1, 2, 0], lambda x: 6 // x, progress=False)
>>> summary.results, len(summary.failed), summary.failed[0].name
([6, 3, None], 1, '0')
"""

from __future__ import annotations

import functools
import math
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ldr_plugin.errors import LdrError
from ldr_plugin.launchers.guard import (
    Identity,
    hold_worker_lock,
    process_identity,
    wait_for_orphans,
    watch_launcher,
)
from ldr_plugin.launchers.resources import ENV_VARS, Resources
from ldr_plugin.launchers.summary import Outcome, Summary
from ldr_plugin.progress import progress as progress_bar

LAUNCHERS = ("inline", "local", "slurm")


def _call(fn: Callable[[Any], Any], item: Any) -> tuple[bool, Any]:
    """(True, result) or (False, traceback text); the traceback also goes to this job's stderr log."""
    try:
        return True, fn(item)
    except Exception:  # noqa: BLE001 -- every failure is reported per item
        text = traceback.format_exc()
        print(f"[ldr] item {item!r} failed:\n{text}", file=sys.stderr, flush=True)
        return False, text


def run_items(fn: Callable[[Any], Any], items: Sequence[Any], launcher: Identity | None = None,
              folder: str | None = None) -> list[tuple[bool, Any]]:
    """The body of one job: every item in turn, each failure caught and recorded. A local job also
    stops when its ``launcher`` process dies and holds a worker lock in ``folder`` (see :mod:`.guard`)."""
    if launcher is not None:
        watch_launcher(launcher)
        if folder is not None:
            hold_worker_lock(folder, launcher)
    return [_call(fn, item) for item in items]


def _names(items: Sequence[Any], names: Callable[[Any], str] | Sequence[str] | None) -> list[str]:
    if names is None:
        return [str(item) for item in items]
    if callable(names):
        return [names(item) for item in items]
    if len(names) != len(items):
        raise LdrError(f"{len(names)} names given for {len(items)} items")
    return list(names)


def _run_inline(fn, items, names, progress, desc: str = "inline",
                finished: Callable[[], int] | None = None) -> Summary:
    summary = Summary(launcher="inline", n_jobs=0)
    with progress_bar(total=len(names), desc=desc, enabled=progress) as bar:
        for item, name in zip(items, names):
            ok, value = _call(fn, item)
            summary.outcomes.append(Outcome(name, ok, None if ok else value, result=value if ok else None))
            _move(bar, min(finished(), len(names)) if finished is not None else len(summary.outcomes))
    return summary


def _move(bar: Any, count: int) -> None:
    if count > bar.n:
        bar.update(count - bar.n)


def make_executor(launcher: str, resources: Resources, job_name: str = "ldr") -> Any:
    """A submitit executor with ``resources`` applied: ``LocalExecutor`` or ``AutoExecutor(cluster="slurm")``."""
    import submitit

    if launcher == "local":
        executor = submitit.LocalExecutor(folder=resources.folder)
        executor.update_parameters(timeout_min=resources.timeout_min, gpus_per_node=resources.gpus_per_node)
        return executor
    if launcher != "slurm":
        raise LdrError(f"unknown launcher '{launcher}'; expected one of {', '.join(LAUNCHERS)}")
    try:
        executor = submitit.AutoExecutor(folder=resources.folder, cluster="slurm")
    except RuntimeError as exc:  # no srun on PATH
        raise LdrError(f"launcher 'slurm' is unavailable here: {exc} (use 'local' or 'inline')") from exc
    slurm = {"partition": resources.partition, "account": resources.account, "qos": resources.qos,
             "constraint": resources.constraint}
    executor.update_parameters(
        name=job_name, timeout_min=resources.timeout_min, cpus_per_task=resources.cpus_per_task,
        gpus_per_node=resources.gpus_per_node, mem_gb=resources.mem_gb,
        slurm_array_parallelism=resources.array_parallelism,
        **{f"slurm_{k}": v for k, v in slurm.items() if v is not None},
    )
    return executor


def plan_chunks(n_items: int, launcher: str, resources: Resources) -> list[range]:
    """Index ranges, one per job: ``items_per_job`` each, or (local default) one job per local worker."""
    if n_items == 0:
        return []
    per_job = resources.items_per_job
    if per_job is None:
        per_job = 1 if launcher == "slurm" else math.ceil(n_items / resources.local_workers)
    return [range(start, min(start + per_job, n_items)) for start in range(0, n_items, per_job)]


def submit(items: Sequence[Any], fn: Callable[[Any], Any], executor: Any, chunks: list[range],
           max_array_size: int = 1000, body: Callable[..., Any] = run_items) -> list[Any]:
    """Submit one job per chunk as job arrays of at most ``max_array_size``; return the submitit jobs."""
    jobs: list[Any] = []
    for start in range(0, len(chunks), max_array_size):
        batch = chunks[start : start + max_array_size]
        jobs += executor.map_array(body, [fn] * len(batch), [[items[i] for i in chunk] for chunk in batch])
    return jobs


def _job_outcomes(job: Any, chunk: range, names: list[str], local: bool) -> list[Outcome]:
    logs = {"log": str(job.paths.stderr), "stdout": str(job.paths.stdout), "job_id": str(job.job_id)}
    if local and not job.paths.result_pickle.exists():  # the worker died: do not wait for a result
        error = f"job {job.job_id} ended without a result (state {job.state}: killed, timed out or out of memory)"
        return [Outcome(names[i], False, error, **logs) for i in chunk]
    try:
        per_item = job.result()
    except Exception as exc:  # noqa: BLE001 -- submitit's Failed/UncompletedJobError, or an unpickling error
        error = f"job {job.job_id} failed: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}"
        return [Outcome(names[i], False, error, **logs) for i in chunk]
    return [
        Outcome(names[i], ok, None if ok else value, result=value if ok else None, **logs)
        for i, (ok, value) in zip(chunk, per_item)
    ]


FINISHED_POLL_S = 2.0  # how often wait() asks the caller how many items are done


def wait(jobs: list[Any], chunks: list[range], names: list[str], launcher: str, *,
         progress: bool | None = True, poll_s: float | None = None, desc: str | None = None,
         finished: Callable[[], int] | None = None) -> Summary:
    """Wait for every job, collecting one outcome per item (in item order); Ctrl-C cancels the jobs.

    The progress bar counts the items of finished jobs, or, given ``finished`` (the number of items
    done so far, e.g. from their output folders; called at most every ``FINISHED_POLL_S`` and once
    at the end), the items that count says are done: it moves while a job that holds many items is
    still running (a local worker runs a whole chunk), and ends short of 100% when items ended
    without doing their work (failed, or skipped by a sweep's stop file).
    """
    poll_s = poll_s if poll_s is not None else (0.1 if launcher == "local" else 5.0)
    outcomes: dict[int, Outcome] = {}
    pending = list(range(len(jobs)))
    in_done_jobs, counted_at = 0, time.monotonic()
    with progress_bar(total=len(names), desc=desc or launcher, enabled=progress) as bar:
        try:
            while pending:
                still = []
                for j in pending:
                    if jobs[j].done():
                        for i, outcome in zip(chunks[j], _job_outcomes(jobs[j], chunks[j], names, launcher == "local")):
                            outcomes[i] = outcome
                        in_done_jobs += len(chunks[j])
                    else:
                        still.append(j)
                pending = still
                if finished is None:
                    _move(bar, in_done_jobs)
                elif not pending or time.monotonic() - counted_at >= FINISHED_POLL_S:
                    _move(bar, min(finished(), len(names)))
                    counted_at = time.monotonic()
                if pending:
                    time.sleep(poll_s)
        except KeyboardInterrupt:
            for j in pending:
                jobs[j].cancel(check=False)
            raise
    return Summary(launcher=launcher, outcomes=[outcomes[i] for i in range(len(names))], n_jobs=len(jobs))


LOG_DIR = ".submitit"  # in the items' output folder: submitit's pickles and job logs


def log_folder(resources: Resources, folder: str | os.PathLike | None) -> Resources:
    """Resources whose submitit folder is ``<folder>/.submitit`` unless one was asked for (``Resources.folder``
    set, or ``LDR_SUBMITIT_FOLDER`` set, even to the default name): job logs beside the results, not in
    whatever folder the command was started from."""
    asked = os.environ.get(ENV_VARS["folder"], "").strip()
    if folder is None or asked or resources.folder != Resources.folder:
        return resources
    return resources.with_(folder=os.path.join(os.fspath(folder), LOG_DIR))


def launch(
    items: Iterable[Any],
    fn: Callable[[Any], Any],
    launcher: str = "inline",
    resources: Resources | None = None,
    *,
    names: Callable[[Any], str] | Sequence[str] | None = None,
    job_name: str = "ldr",
    progress: bool | None = True,
    desc: str | None = None,
    folder: str | os.PathLike | None = None,
    finished: Callable[[], int] | None = None,
) -> Summary:
    """Run ``fn(item)`` for every item with ``launcher`` (``inline``, ``local`` or ``slurm``) and wait.

    Returns a :class:`Summary` (results in item order, failures with their logs); it never raises
    for a failing item -- call ``summary.raise_for_failures()`` for that. ``desc`` labels the
    progress bar (default: the launcher's name). Local workers die with this process; with
    ``folder`` (where the items write), a launch first waits for workers a killed earlier launch
    left running there (:mod:`ldr_plugin.launchers.guard`), and submitit's files go to
    ``<folder>/.submitit`` unless a submitit folder was asked for (:func:`log_folder`). ``finished``
    counts the items done so far for the progress bar (see :func:`wait`).
    """
    if launcher not in LAUNCHERS:
        raise LdrError(f"unknown launcher '{launcher}'; expected one of {', '.join(LAUNCHERS)}")
    items = list(items)
    labels = _names(items, names)
    start = time.perf_counter()
    if launcher == "inline":
        summary = _run_inline(fn, items, labels, progress, desc or "inline", finished)
    else:
        resources = log_folder(resources or Resources.from_env(), folder)
        chunks = plan_chunks(len(items), launcher, resources)
        if not chunks:
            return Summary(launcher=launcher)
        executor = make_executor(launcher, resources, job_name)
        body = run_items
        if launcher == "local":  # Slurm jobs outlive their submitter by design; local ones must not
            if folder is not None:
                wait_for_orphans(folder)
            body = functools.partial(run_items, launcher=process_identity(),
                                     folder=None if folder is None else str(folder))
        jobs = submit(items, fn, executor, chunks, resources.max_array_size, body)
        summary = wait(jobs, chunks, labels, launcher, progress=progress, desc=desc, finished=finished)
    summary.seconds = time.perf_counter() - start
    return summary
