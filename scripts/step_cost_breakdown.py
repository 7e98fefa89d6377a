"""Where ``fit``'s host time per step goes at the tiny shape (issue 24, item 1): ablations in one process.

    python scripts/step_cost_breakdown.py --epochs 25      # about 2 minutes; 1 torch thread

One ``fit`` (the CLI's trainer and callbacks as ``scripts/benchmark_overhead.py``'s fit arm builds them: logging every
10 steps, the spike callback, checkpointing, the LR monitor) runs many epochs; each epoch after the first runs one
arm, in turn: ``full``, or the full set less one part (the spike callback, the LR monitor, the checkpoint callback,
the callbacks idle during a training step, or the loggers). The process CPU time per step of each arm is compared
with ``full``'s in the same process, so machine drift hits all arms alike; a part's cost is the median difference.
Then a bare Lightning ``Trainer`` (``benchmark_overhead``'s bare arm) runs in the same process for the total.
The parts do not add up exactly: some costs are shared (the loggers' writes are triggered by the logging callbacks).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scripts import benchmark as base  # noqa: E402
from scripts import benchmark_overhead as overhead  # noqa: E402

IDLE = ("ForecastPlot", "ForecastWriter", "SaveConfigCallback")
"""Callbacks with no per-step hook in a fit: each still costs Lightning one dispatch per hook and step."""
PARTS = {
    "spike callback": ("LossSpikeCallback",),
    "LR monitor": ("LearningRateMonitor",),
    "checkpoint callback": ("RunCheckpoint",),
    "callbacks idle during a step (" + ", ".join(IDLE) + ")": IDLE,
    "loggers (step scalars, LR, spike series written)": (),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=25, help="epochs of the one fit (the first is a warm-up)")
    parser.add_argument("--windows", type=int, default=4_000, help="training windows per epoch")
    args = parser.parse_args(argv)

    import lightning.pytorch as pl

    from lightning_lstm.cli import build_cli

    overhead.reshape("tiny")
    arms = ["full", *PARTS]
    cpu_ms: dict[str, list[float]] = {arm: [] for arm in arms}

    class Ablation(pl.Callback):
        """Sets each epoch's arm (callbacks and loggers less one part) and times it."""

        def __init__(self, trainer: pl.Trainer) -> None:
            self.callbacks, self.loggers = list(trainer.callbacks), list(trainer.loggers)

        def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            self.arm = arms[(trainer.current_epoch - 1) % len(arms)] if trainer.current_epoch else "warm-up"
            names = PARTS.get(self.arm, ())
            trainer.callbacks[:] = [c for c in self.callbacks if type(c).__name__ not in names]
            trainer.loggers = [] if self.arm.startswith("loggers") else self.loggers
            self.steps, self.start = 0, time.process_time()

        def on_train_batch_end(self, *args) -> None:
            self.steps += 1

        def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            if self.arm in cpu_ms:
                cpu_ms[self.arm].append(1000 * (time.process_time() - self.start) / self.steps)

    with tempfile.TemporaryDirectory() as folder:
        rows = int((args.windows + overhead.SHAPES["tiny"][1] + overhead.HORIZON) / (1 - overhead.TEST_FRACTION)) + 1
        data = overhead.write_series(Path(folder) / "series.npy", rows)
        cli = build_cli(base.fit_args(data, Path(folder), args.epochs, 1, True), run=False)
        ablation = Ablation(cli.trainer)
        cli.trainer.callbacks.insert(0, ablation)
        ablation.callbacks.insert(0, ablation)
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
        bare = overhead.child_bare(data, max(3, len(cpu_ms["full"]) + 1), 1)
    steps = -(-bare["windows"] // overhead.SHAPES["tiny"][0])
    bare_ms = statistics.median(1000 * c / steps for c in bare["epoch_cpu"][1:])
    full = statistics.median(cpu_ms["full"])
    print(f"Machine: {base.machine()}; tiny shape, 1 thread, {len(cpu_ms['full'])} epochs per arm.\n")
    print("| part | CPU ms/step without it | its cost, ms/step |\n|---|---:|---:|")
    print(f"| fit, everything on | {full:.3f} | |")
    for part in PARTS:
        without = statistics.median(cpu_ms[part])
        paired = statistics.median(f - w for f, w in zip(cpu_ms["full"], cpu_ms[part], strict=False))
        print(f"| {part} | {without:.3f} | {paired:+.3f} |")
    print(f"| bare Lightning (same process, after the fit) | {bare_ms:.3f} | fit - bare: {full - bare_ms:+.3f} |")


if __name__ == "__main__":
    main()
