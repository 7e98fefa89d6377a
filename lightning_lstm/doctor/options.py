"""The ``--doctor.*`` options of ``python -m lightning_lstm doctor``, and what they imply: the output folder, the runs
at once, and the probe budget (:class:`ProbeBudget` resolves it in the probe's own run, from its own data).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback

from lightning_lstm.runtime.threads import available_cpus


class DoctorOptions:
    """What the doctor does besides the fit config: where it writes, how long each run trains, how many at once.

    Args:
        out_dir: folder for ``report.md``, ``fixed.yaml``, ``loss.png``, every run's config and TensorBoard folder;
            default ``<trainer.default_root_dir>/doctor/<the logger's name>`` (``runs/doctor/default``).
        probe_epochs: epochs of every run (the probe and each candidate); default: enough epochs for
            ``min_probe_steps`` optimizer steps, at least 3, at most ``trainer.max_epochs``.
        min_probe_steps: optimizer steps the default budget covers. 300: the spike detector scores nothing during
            its warm-up (20 steps) and needs a full baseline window (50 steps), so 300 leave 230 scored steps, time
            for a learning-rate instability to show once the loss has come down; at least three epochs let a cause
            recur in two epochs after the first one's fast descent.
        jobs: runs at once; default ``max(1, usable CPUs // threads per run)`` (1 on GPUs or with DDP); usable: the
            CPU affinity and the cgroup CPU quota (a container, a SLURM allocation).
        threads: torch threads per run (tiny LSTMs run fastest on one).
        tolerance: the largest relative worsening of validation MAE a remedy may cause and still win (0.02: 2%);
            also the margin within which two remedies' MAEs count as equal (then fewer spikes wins), and the gain a
            remedy with more spikes than the probe must make to win.
        max_candidates: at most this many remedies are tried (each hypothesis' own remedy first, then variants).
        lr_find: run Lightning's LR range test (``Tuner.lr_find``) when the learning rate is a suspect.
    """

    def __init__(
        self,
        out_dir: str | None = None,
        probe_epochs: int | None = None,
        min_probe_steps: int = 300,
        jobs: int | None = None,
        threads: int = 1,
        tolerance: float = 0.02,
        max_candidates: int = 6,
        lr_find: bool = True,
    ) -> None:
        counts = {"probe_epochs": probe_epochs, "min_probe_steps": min_probe_steps, "jobs": jobs, "threads": threads}
        for key, value in counts.items():  # None: resolved later
            if value is not None and value < 1:
                raise ValueError(f"doctor.{key} must be >= 1, got {value}")
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


def out_dir(options: DoctorOptions, trainer: dict) -> Path:
    """``options.out_dir``, else ``<default_root_dir>/doctor/<run name>`` of the ``trainer`` config.

    The run name is the logger's ``name`` (``trainer.logger.init_args.name``); without one, Lightning's default
    logger name ``lightning_logs``. Without ``default_root_dir``, the current directory, as Lightning does.
    """
    if options.out_dir is not None:
        return Path(options.out_dir)
    logger = trainer.get("logger")
    logger = logger[0] if isinstance(logger, list) and logger else logger
    name = (logger.get("init_args") or {}).get("name") if isinstance(logger, dict) else None
    return Path(trainer.get("default_root_dir") or ".") / "doctor" / str(name or "lightning_logs")


def probe_epochs(options: DoctorOptions, steps_per_epoch: int, max_epochs: int | None) -> int:
    """The epochs of every doctor run: ``options.probe_epochs``, else the default budget described there."""
    if options.probe_epochs is not None:
        return options.probe_epochs
    epochs = max(3, math.ceil(options.min_probe_steps / max(steps_per_epoch, 1)))
    return min(epochs, max_epochs) if max_epochs and max_epochs > 0 else epochs


def steps_per_epoch(trainer: pl.Trainer) -> int:
    """Optimizer steps per epoch of the trainer's data module, once it is set up (its training windows and batches)."""
    data = trainer.datamodule
    windows, batch = len(data.window_index("train")), int(data.hparams.batch_size)
    steps = windows // batch if data.hparams.drop_last else math.ceil(windows / batch)
    return max(1, steps // int(trainer.accumulate_grad_batches))


class ProbeBudget(Callback):
    """Sets the probe's epochs (:func:`probe_epochs`) from its own data once it is set up, and writes them down.

    The doctor adds it to the probe's config (the probe reads and splits the data anyway, so the doctor never does);
    the candidates and the LR range test then train the epochs written to ``record``.

    Args:
        min_probe_steps: ``doctor.min_probe_steps``.
        max_epochs: the user's ``trainer.max_epochs`` (the cap), or ``None``.
        record: JSON file for ``{"epochs": ..., "steps_per_epoch": ...}``.
    """

    def __init__(self, min_probe_steps: int, max_epochs: int | None, record: str) -> None:
        self.options = DoctorOptions(min_probe_steps=min_probe_steps)
        self.max_epochs = max_epochs
        self.record = Path(record)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        steps = steps_per_epoch(trainer)  # after the data module's setup, before the optimizers and the first epoch
        epochs = probe_epochs(self.options, steps, self.max_epochs)
        trainer.fit_loop.max_epochs = epochs
        if trainer.is_global_zero:
            self.record.write_text(json.dumps({"epochs": epochs, "steps_per_epoch": steps}))

    @staticmethod
    def read(record: Path) -> int:
        """The epochs a probe's :class:`ProbeBudget` wrote to ``record``."""
        return int(json.loads(Path(record).read_text())["epochs"])


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
    return max(1, available_cpus() // options.threads)
