"""The ``--doctor.*`` options of ``python -m lightning_lstm doctor``, and the probe budget they imply."""

from __future__ import annotations

import math
import os


class DoctorOptions:
    """What the doctor does besides the fit config: where it writes, how long each run trains, how many at once.

    Args:
        out_dir: folder for ``report.md``, ``fixed.yaml``, ``loss.png``, every run's config and TensorBoard folder.
        probe_epochs: epochs of every run (the probe and each candidate); default: enough epochs for
            ``min_probe_steps`` optimizer steps, at least 3, at most ``trainer.max_epochs``.
        min_probe_steps: optimizer steps the default budget covers. 300: the spike detector scores nothing during
            its warm-up (20 steps) and needs a full baseline window (50 steps), so 300 leave 230 scored steps, time
            for a learning-rate instability to show once the loss has come down; at least three epochs let a cause
            recur in two epochs after the first one's fast descent.
        jobs: runs at once; default ``max(1, usable cores // threads per run)`` (1 on GPUs or with DDP).
        threads: torch threads per run (tiny LSTMs run fastest on one).
        tolerance: the largest relative worsening of validation MAE a remedy may cause and still win (0.02: 2%).
        max_candidates: at most this many remedies are tried.
        lr_find: run Lightning's LR range test (``Tuner.lr_find``) when the learning rate is a suspect.
    """

    def __init__(
        self,
        out_dir: str = "doctor",
        probe_epochs: int | None = None,
        min_probe_steps: int = 300,
        jobs: int | None = None,
        threads: int = 1,
        tolerance: float = 0.02,
        max_candidates: int = 6,
        lr_find: bool = True,
    ) -> None:
        if probe_epochs is not None and probe_epochs < 1:
            raise ValueError(f"doctor.probe_epochs must be >= 1, got {probe_epochs}")
        if min_probe_steps < 1:
            raise ValueError(f"doctor.min_probe_steps must be >= 1, got {min_probe_steps}")
        if jobs is not None and jobs < 1:
            raise ValueError(f"doctor.jobs must be >= 1, got {jobs}")
        if threads < 1:
            raise ValueError(f"doctor.threads must be >= 1, got {threads}")
        if not 0 <= tolerance < 1:
            raise ValueError(f"doctor.tolerance must be in [0, 1), got {tolerance}")
        if max_candidates < 1:
            raise ValueError(f"doctor.max_candidates must be >= 1, got {max_candidates}")
        self.out_dir = out_dir
        self.probe_epochs = probe_epochs
        self.min_probe_steps = min_probe_steps
        self.jobs = jobs
        self.threads = threads
        self.tolerance = tolerance
        self.max_candidates = max_candidates
        self.lr_find = lr_find


def probe_epochs(options: DoctorOptions, steps_per_epoch: int, max_epochs: int | None) -> int:
    """The epochs of every doctor run: ``options.probe_epochs``, else the default budget described there."""
    if options.probe_epochs is not None:
        return options.probe_epochs
    epochs = max(3, math.ceil(options.min_probe_steps / max(steps_per_epoch, 1)))
    return min(epochs, max_epochs) if max_epochs and max_epochs > 0 else epochs


def parallel_jobs(options: DoctorOptions, trainer: dict) -> int:
    """``options.jobs``, else 1 on an accelerator or several devices (runs would share it), else cores // threads."""
    if options.jobs is not None:
        return options.jobs
    accelerator, devices = str(trainer.get("accelerator", "auto")), trainer.get("devices", 1)
    if accelerator == "auto":
        import torch

        accelerator = "gpu" if torch.cuda.is_available() else "cpu"
    if accelerator != "cpu" or (isinstance(devices, int) and devices > 1):
        return 1
    return max(1, _cores() // options.threads)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
