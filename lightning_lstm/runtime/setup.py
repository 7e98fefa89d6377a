"""Apply the runtime options (``runtime:`` config group) once per process, before any model or data is built."""

from __future__ import annotations

import logging

import torch

from lightning_lstm.runtime.allocator import tune_allocator
from lightning_lstm.runtime.threads import apply_num_threads, resolve_num_threads

log = logging.getLogger(__name__)


def ranks_per_node(trainer_config: dict) -> int | None:
    """Processes this node will run, from the trainer config (CPU DDP ranks must share the cores)."""
    strategy = str(trainer_config.get("strategy") or "")
    devices = trainer_config.get("devices")
    if "ddp" in strategy and isinstance(devices, int) and devices > 1:
        return devices
    return None  # threads.resolve_num_threads falls back to LOCAL_WORLD_SIZE / SLURM_NTASKS_PER_NODE


def apply_runtime(
    malloc_tuning: bool,
    num_threads: int | None,
    trainer_config: dict,
    fill_uninitialized_memory: bool = False,
    flush_denormal: bool = True,
) -> None:
    """Tune glibc malloc (unless off here or by ``LIGHTNING_LSTM_MALLOC_TUNING=0``), set torch's thread count,
    whether ``trainer.deterministic`` also fills every new tensor's memory, and whether the CPU flushes subnormal
    floats to zero.

    Subnormal floats (magnitudes below 1.2e-38: a tiny gradient squared in Adam's second moment, a saturated gate's
    derivative) take a slow path on x86 CPUs, 10-100x a normal multiply; a model that produces many can run a step at
    half speed, and two seeds of one model can differ in speed by as much. ``torch.set_flush_denormal(True)`` treats
    them as zero (the CPU's flush-to-zero and denormals-are-zero modes): a change below 1.2e-38, far under any loss or
    weight this package trains, and no effect on GPU kernels. It is set for this thread; threads it starts later (the
    intra-op pool) inherit it.

    ``torch.use_deterministic_algorithms(True)`` (what ``deterministic: true`` calls) fills each uninitialised tensor
    with NaN by default (``torch.utils.deterministic.fill_uninitialized_memory``). That changes no result of a correct
    kernel; it writes every page of oneDNN's LSTM workspace each step, which on the CPU costs 25-130 MiB of peak RSS at
    batch 128 / lookback 168 (the allocator then keeps those pages) and a few percent of the step.
    """
    report = tune_allocator(enabled=None if malloc_tuning else False)
    threads = resolve_num_threads(num_threads, ranks_per_node(trainer_config))
    apply_num_threads(threads)
    torch.utils.deterministic.fill_uninitialized_memory = fill_uninitialized_memory
    flushed = torch.set_flush_denormal(flush_denormal)  # False where the CPU has no such mode
    denormals = "subnormal floats flushed to zero" if flush_denormal and flushed else "subnormal floats kept"
    log.info("%s; torch threads: %d; %s", report.describe(), threads, denormals)
