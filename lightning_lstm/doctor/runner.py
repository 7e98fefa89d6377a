"""Runs the doctor's probe and candidates in parallel worker processes, each printing its own progress lines.

Each run gets a fresh process forked from a server that has already imported torch and Lightning (``forkserver``
with the worker module preloaded), so a run costs its training time, not another ~10 s of imports. Runs never share
a process: ``max_tasks_per_child=1``. How many run at once is the caller's choice (see ``options.parallel_jobs``).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Job:
    """One run: ``kind`` is ``fit`` or ``lr_find``; the result JSON and the run's console log go next to its config."""

    name: str
    kind: str
    config: Path

    @property
    def result(self) -> Path:
        return self.config.with_suffix(f".{self.kind}.json")

    @property
    def log(self) -> Path:
        return self.config.with_suffix(f".{self.kind}.log")


def _child(job: Job, threads: int) -> dict[str, Any]:
    """In the worker process: training output to the run's log file, progress lines to the doctor's console."""
    from lightning_lstm.doctor import worker

    console = os.fdopen(os.dup(1), "w", buffering=1)
    with open(job.log, "w") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        sys.stdout, sys.stderr = os.fdopen(1, "w", buffering=1, closefd=False), os.fdopen(2, "w", closefd=False)
        os.environ["OMP_NUM_THREADS"] = str(threads)
        try:
            worker.run(job.kind, job.config, job.result, progress=lambda line: console.write(f"[doctor] {line}\n"))
        except BaseException:  # noqa: BLE001 - reported to the parent with the run's name
            traceback.print_exc()
            sys.stderr.flush()
            return {"name": job.name, "error": traceback.format_exc(limit=3)}
    return {"name": job.name, **json.loads(job.result.read_text())}


def run_jobs(jobs: list[Job], n_jobs: int, threads: int = 1, echo=print) -> dict[str, dict[str, Any]]:
    """Runs ``jobs``, ``n_jobs`` at a time, and returns each run's result by name (``{"error": ...}`` if it failed)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["lightning_lstm.doctor.worker"])
    results: dict[str, dict[str, Any]] = {}
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=n_jobs, mp_context=context, max_tasks_per_child=1) as pool:
        futures = {pool.submit(_child, job, threads): job for job in jobs}
        for future in as_completed(futures):
            job = futures[future]
            try:
                results[job.name] = future.result()
            except Exception as error:  # noqa: BLE001 - a crashed process (killed, out of memory)
                results[job.name] = {"name": job.name, "error": repr(error)}
            if "error" in results[job.name]:
                echo(f"[doctor] {job.name}: FAILED (see {job.log})")
    echo(f"[doctor] {len(jobs)} run(s) in {time.perf_counter() - start:.1f} s with {n_jobs} parallel job(s)")
    return results
