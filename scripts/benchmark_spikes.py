"""Overhead of the loss-spike callback per training step on the default model (``configs/default.yaml`` sizes).

One process, one Trainer built by the CLI from ``configs/default.yaml``; the ``spikes`` callback is wrapped in a switch
that turns it on and off in alternating blocks of steps, so both conditions share the same model, data, threads and
background load. Two measures:

* **step time with and without the callback**: wall time between consecutive ``on_train_batch_start`` calls (the whole
  step: data, forward, backward, optimizer, every hook and logger), epoch boundaries left out. On a shared machine its
  noise is far larger than the callback, so the difference comes with a 95% interval over block pairs.
* **the callback's own work**: time spent inside its hooks, measured directly around each call, as wall time and as
  this thread's CPU time (``time.thread_time_ns``, which a loaded machine's descheduling does not inflate).
* **the event writer's work**: TensorBoard writes events from a background thread (CRC32C in pure Python, ~0.5 us a
  byte); its CPU time (Linux ``/proc/self/task/<tid>/schedstat``) is summed per condition. It also writes the
  trainer's own logs, in both conditions, so the difference is the callback's share.

Usage::

    python scripts/benchmark_spikes.py [--steps 3000] [--block 25] [--threads 1] [--log-every N] [--quick]

Prints a markdown table; the target is at most 1% of the step time (issue 15).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback
from tensorboard.summary.writer.event_file_writer import _AsyncWriterThread

from lightning_lstm.cli import build_cli
from lightning_lstm.spikes import LossSpikeCallback

REPO = Path(__file__).resolve().parents[1]
STEP_HOOKS = ("on_train_batch_start", "on_before_optimizer_step", "on_train_batch_end")


class Switch(Callback):
    """Forwards to the spike callback; its per-step hooks only while ``on`` (blocks of ``block`` steps), timed."""

    def __init__(self, inner: LossSpikeCallback, block: int) -> None:
        self.inner, self.block = inner, block
        self.on = True
        self.hook_ns: dict[str, list[int]] = defaultdict(list)  # wall, per on-step, per hook
        self.step_ns: list[int] = []  # the callback's wall total per on-step
        self.step_cpu_ns: list[int] = []  # the same, this thread's CPU time

    @property
    def state_key(self) -> str:
        return self.inner.state_key

    def _timed(self, name: str, *args) -> None:
        start, start_cpu = time.perf_counter_ns(), time.thread_time_ns()
        getattr(self.inner, name)(*args)
        elapsed, cpu = time.perf_counter_ns() - start, time.thread_time_ns() - start_cpu
        self.hook_ns[name].append(elapsed)
        if name == "on_train_batch_start":
            self.step_ns.append(elapsed)
            self.step_cpu_ns.append(cpu)
        else:
            self.step_ns[-1] += elapsed
            self.step_cpu_ns[-1] += cpu

    def on_fit_start(self, trainer, pl_module):
        self.inner.on_fit_start(trainer, pl_module)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.on = (trainer.global_step // self.block) % 2 == 0
        if self.on:
            self._timed("on_train_batch_start", trainer, pl_module, batch, batch_idx)

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        # The module computes (and caches) this norm every step for train/grad_norm, in its own hook that runs after
        # the callbacks': computing it here in both conditions keeps that cost out of the callback's account.
        pl_module.pre_clip_grad_norm()
        if self.on:
            self._timed("on_before_optimizer_step", trainer, pl_module, optimizer)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self.on:
            self._timed("on_train_batch_end", trainer, pl_module, outputs, batch, batch_idx)

    def on_train_end(self, trainer, pl_module):
        self.inner.on_train_end(trainer, pl_module)

    def state_dict(self):
        return self.inner.state_dict()


def writer_cpu_ns() -> int | None:
    """CPU time so far of TensorBoard's event-writer threads in this process (None where Linux does not say)."""
    total = 0
    for thread in threading.enumerate():
        if isinstance(thread, _AsyncWriterThread) and thread.native_id is not None:
            try:
                total += int(Path(f"/proc/self/task/{thread.native_id}/schedstat").read_text().split()[0])
            except (OSError, ValueError, IndexError):
                return None
    return total


class StepTimer(Callback):
    """Wall time of each whole step (between consecutive batch starts within an epoch) and the writer's CPU time."""

    def __init__(self, switch: Switch) -> None:
        self.switch = switch
        self.times: dict[bool, list[float]] = {True: [], False: []}
        self.blocks: dict[tuple[int, bool], list[float]] = defaultdict(list)
        self.writer_ns: dict[bool, int] = {True: 0, False: 0}
        self.writer_steps: dict[bool, int] = {True: 0, False: 0}
        self._last: tuple[float, bool, int] | None = None
        self._block_start: tuple[int, int, bool] | None = None  # (global step, writer ns, on) at the block's start

    def _account_writer(self, step: int, on: bool) -> None:
        """At each block boundary, the writer's CPU since the last one goes to the block that just ended."""
        if step % self.switch.block and self._block_start is not None:
            return
        now = writer_cpu_ns()
        if now is None:
            return
        if self._block_start is not None:
            start_step, start_ns, was_on = self._block_start
            self.writer_ns[was_on] += now - start_ns
            self.writer_steps[was_on] += step - start_step
        self._block_start = (step, now, on)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        now = time.perf_counter()
        self._account_writer(trainer.global_step, (trainer.global_step // self.switch.block) % 2 == 0)
        if self._last is not None and batch_idx > 0:
            start, on, step = self._last
            self.times[on].append(now - start)
            self.blocks[(step // (2 * self.switch.block), on)].append(now - start)
        self._last = (now, (trainer.global_step // self.switch.block) % 2 == 0, trainer.global_step)

    def on_train_epoch_end(self, trainer, pl_module):
        self._last = None


def paired_difference(blocks: dict[tuple[int, bool], list[float]]) -> tuple[float, float, int]:
    """Mean over block pairs of (median on - median off) step time, its 95% half-width, and the pair count."""
    pairs = sorted({k for k, _ in blocks})
    diffs = [
        statistics.median(blocks[(k, True)]) - statistics.median(blocks[(k, False)])
        for k in pairs
        if blocks.get((k, True)) and blocks.get((k, False))
    ]
    if len(diffs) < 2:
        return (diffs[0] if diffs else math.nan), math.nan, len(diffs)
    return statistics.fmean(diffs), 1.96 * statistics.stdev(diffs) / math.sqrt(len(diffs)), len(diffs)


def run(steps: int, block: int, threads: int, log_every: int | None) -> str:
    with tempfile.TemporaryDirectory() as root:
        sys.argv = sys.argv[:1]  # build_cli() reads these arguments, not the script's
        cli = build_cli(
            [
                "--config",
                str(REPO / "configs" / "default.yaml"),
                f"--trainer.max_steps={steps}",
                "--trainer.max_epochs=-1",
                "--trainer.limit_val_batches=0",
                "--trainer.num_sanity_val_steps=0",
                "--trainer.enable_progress_bar=false",
                "--trainer.enable_model_summary=false",
                f"--trainer.logger.init_args.save_dir={root}",
                "--forecast_plot.every_n_epochs=0",
                *([f"--spikes.log_every_n_steps={log_every}"] if log_every is not None else []),
            ],
            run=False,
        )
        torch.set_num_threads(threads)  # after the CLI, which may set its own count
        trainer = cli.trainer
        (index,) = [i for i, c in enumerate(trainer.callbacks) if isinstance(c, LossSpikeCallback)]
        spikes = trainer.callbacks[index]
        switch = Switch(spikes, block)
        timer = StepTimer(switch)
        trainer.callbacks[index] = switch
        trainer.callbacks.insert(0, timer)
        trainer.fit(cli.model, cli.datamodule)

    on, off = timer.times[True], timer.times[False]
    med_on, med_off = statistics.median(on), statistics.median(off)
    diff, half, pairs = paired_difference(timer.blocks)
    own = [ns / 1e9 for ns in switch.step_ns]
    own_mean, own_median = statistics.fmean(own), statistics.median(own)
    cpu = [ns / 1e9 for ns in switch.step_cpu_ns]
    cpu_mean, cpu_median = statistics.fmean(cpu), statistics.median(cpu)
    hp, data = cli.model.hparams, cli.datamodule.hparams
    every = spikes._log_every
    lines = [
        f"Default model: LSTM hidden {hp.hidden_size} x {hp.num_layers} layers, lookback {data.lookback}, horizon "
        f"{data.horizon}, batch {data.batch_size}; {steps} steps in blocks of {block}, torch threads {threads}; "
        f"Stability scalars every {every} step(s); {len(spikes.records)} spikes detected (each also writes a text).",
        "",
        "| measure | steps | median | mean | share of the step (median without) |",
        "|---|---:|---:|---:|---:|",
        f"| step without the callback | {len(off)} | {med_off * 1e3:.2f} ms | {statistics.fmean(off) * 1e3:.2f} ms | |",
        f"| step with the callback | {len(on)} | {med_on * 1e3:.2f} ms | {statistics.fmean(on) * 1e3:.2f} ms | |",
        f"| difference (paired blocks, 95% interval) | {pairs} pairs | | {diff * 1e3:+.3f} ms +- {half * 1e3:.3f} "
        f"| {diff / med_off:+.2%} +- {half / med_off:.2%} |",
        f"| callback's own hooks, wall time | {len(own)} | {own_median * 1e6:.0f} us | {own_mean * 1e6:.0f} us "
        f"| {own_mean / med_off:.2%} |",
        f"| callback's own hooks, CPU time | {len(cpu)} | {cpu_median * 1e6:.0f} us | {cpu_mean * 1e6:.0f} us "
        f"| {cpu_mean / med_off:.2%} |",
    ]
    for name in STEP_HOOKS:
        values = [ns / 1e3 for ns in switch.hook_ns[name]]
        lines.append(
            f"| - {name} (wall) | {len(values)} | {statistics.median(values):.0f} us | "
            f"{statistics.fmean(values):.0f} us | {statistics.fmean(values) * 1e-6 / med_off:.2%} |"
        )
    if all(timer.writer_steps.values()):
        per_step = {on: timer.writer_ns[on] / timer.writer_steps[on] / 1e3 for on in (True, False)}
        extra = per_step[True] - per_step[False]
        lines += [
            f"| event writer thread CPU, without / with | {timer.writer_steps[False]} / {timer.writer_steps[True]} | "
            f"| {per_step[False]:.0f} / {per_step[True]:.0f} us | |",
            f"| callback's share of the writer (with - without) | | | {extra:+.0f} us "
            f"| {extra * 1e-6 / med_off:+.2%} |",
            f"| **callback in all (own hooks' CPU + writer share)** | | | **{cpu_mean * 1e6 + extra:.0f} us** "
            f"| **{(cpu_mean + extra * 1e-6) / med_off:.2%}** |",
        ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=3000, help="training steps in all (both conditions)")
    parser.add_argument("--block", type=int, default=25, help="steps per on/off block")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument(
        "--log-every",
        type=int,
        default=None,
        help="spikes.log_every_n_steps (default: the config's, i.e. the trainer's)",
    )
    parser.add_argument("--quick", action="store_true", help="200 steps in blocks of 10: checks that the script runs")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.block = 200, 10
    if args.steps < 4 * args.block or args.block < 2:
        parser.error("--steps must be at least 4 blocks, and --block at least 2")
    return args


if __name__ == "__main__":
    args = parse_args()
    print(run(args.steps, args.block, args.threads, args.log_every))
    sys.exit(0)
