"""Compares our robust SpikeDetector with Lightning's built-in ``SpikeDetection`` rule on synthetic loss streams.

Lightning's statistic, quoted from ``lightning/fabric/utilities/spike.py`` (the base class of
``lightning.pytorch.callbacks.spike.SpikeDetection``)::

    is_spike = bool(batch_idx >= self.warmup and self._is_spike(loss))
    ...
    if self._is_better(curr_diff):          # curr_diff = loss - self.last_val; "min": diff <= 0
        return False
    return self._check_atol(loss, running_val) and self._check_rtol(loss, running_val)
    # rtol: abs(val_a - val_b) >= abs(self.rtol * val_b); running_val: torchmetrics Running(MeanMetric, window)

A spike raises ``TrainingSpikeException``; only non-spikes update the running mean and ``last_val``.

The real class costs 1 to 5 ms per step (torchmetrics re-reduces the whole window in ``compute``), too slow for
50k-step streams, so the table uses :class:`LightningRule`, an exact float32 replica of that rule. Before the table,
the script feeds the first ``--verify-steps`` of every spiked stream through the *real* class (its own
``on_train_batch_end``, with a stub single-process fabric) and stops unless both flag exactly the same steps.
Each stream is fed as one epoch, so Lightning's per-epoch ``batch_idx`` warm-up equals a global one.

Usage::

    python scripts/compare_spike_statistics.py [--steps 10000] [--seed 0] [--verify-steps 1000]

Prints a markdown table: recall and precision on injected spikes (x3 to x10 at 0.5% of the steps after the
warm-up), and false spikes per 10k steps on the same stream without injections.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from lightning.fabric.utilities.spike import SpikeDetection, TrainingSpikeException

from lightning_lstm.spikes.detector import SpikeDetector

WARMUP = 20
SPIKE_RATE = 0.005


def falling(rng: np.random.Generator, n: int) -> np.ndarray:
    """Exponential decay (time constant 2000 steps) to a floor, 5% log-normal noise."""
    t = np.arange(n)
    return (0.05 + 2.0 * np.exp(-t / 2000)) * np.exp(0.05 * rng.standard_normal(n))


def falling_fast(rng: np.random.Generator, n: int) -> np.ndarray:
    """Fast decay (time constant 150 steps): a steep early trend inside every window."""
    t = np.arange(n)
    return (0.02 + 3.0 * np.exp(-t / 150)) * np.exp(0.05 * rng.standard_normal(n))


def noisy(rng: np.random.Generator, n: int) -> np.ndarray:
    """Slow decay, 20% multiplicative Gaussian noise."""
    t = np.arange(n)
    return (0.3 + 0.7 * np.exp(-t / 5000)) * np.clip(1 + 0.2 * rng.standard_normal(n), 0.05, None)


def heavy_tailed(rng: np.random.Generator, n: int) -> np.ndarray:
    """Flat level with 20% log-normal noise: a right tail that sometimes reaches 2x without any fault."""
    return np.exp(0.2 * rng.standard_normal(n))


def plateaus(rng: np.random.Generator, n: int) -> np.ndarray:
    """Four flat levels, each a step down, 3% noise."""
    levels = np.repeat([1.0, 0.6, 0.35, 0.2], math.ceil(n / 4))[:n]
    return levels * (1 + 0.03 * rng.standard_normal(n))


STREAMS: dict[str, Callable[[np.random.Generator, int], np.ndarray]] = {
    "falling": falling,
    "falling_fast": falling_fast,
    "noisy": noisy,
    "heavy_tailed": heavy_tailed,
    "plateaus": plateaus,
}


def inject(rng: np.random.Generator, clean: np.ndarray) -> tuple[np.ndarray, set[int]]:
    """Multiplies ``SPIKE_RATE`` of the post-warm-up steps by a factor drawn from U(3, 10)."""
    steps = np.flatnonzero(rng.random(len(clean)) < SPIKE_RATE)
    steps = steps[steps >= WARMUP]
    spiked = clean.copy()
    spiked[steps] *= rng.uniform(3, 10, len(steps))
    return spiked, set(steps.tolist())


def ours(values: np.ndarray) -> set[int]:
    """Steps our detector (default settings) flags."""
    detector = SpikeDetector(window=50, warmup=WARMUP)
    return {i for i, v in enumerate(values.tolist()) if detector.update(v).is_spike}


class _Strategy:
    """Single-process stand-in for the only strategy members ``SpikeDetection`` touches."""

    root_device = torch.device("cpu")

    def barrier(self) -> None:
        pass

    def reduce_boolean_decision(self, decision: bool, all: bool = True) -> bool:
        return decision


class _Fabric:
    strategy = _Strategy()
    global_rank = 0


class LightningRule:
    """Exact replica of Lightning's ``SpikeDetection`` decision for ``mode="min"``, ``atol=None``, in float32.

    The running mean sums the ring-buffer slots in slot order, as ``torchmetrics.wrappers.Running.compute`` does.
    """

    def __init__(self, window: int, warmup: int, rtol: float) -> None:
        self.window, self.warmup, self.rtol = window, warmup, np.float32(rtol)
        self.slots = [np.float32(0.0)] * window
        self.seen = 0
        self.last_val = np.float32(0.0)

    def is_spike(self, batch_idx: int, value: float) -> bool:
        loss = np.float32(value)
        spike = batch_idx >= self.warmup and self._is_spike(loss)
        if not spike:
            self.slots[self.seen % self.window] = loss
            self.seen += 1
            self.last_val = loss
        return spike

    def _is_spike(self, loss: np.float32) -> bool:
        if not np.isfinite(loss):
            return True
        if loss - self.last_val <= 0:
            return False
        total = np.float32(0.0)
        for slot in self.slots:
            total = slot + total
        mean = total / np.float32(min(self.seen, self.window))
        return bool(abs(loss - mean) >= abs(self.rtol * mean))


def lightning_replica(window: int, warmup: int, rtol: float) -> Callable[[np.ndarray], set[int]]:
    """Steps :class:`LightningRule` flags."""

    def run(values: np.ndarray) -> set[int]:
        rule = LightningRule(window, warmup, rtol)
        return {step for step, value in enumerate(values.tolist()) if rule.is_spike(step, value)}

    return run


def lightning_real(values: np.ndarray, window: int, warmup: int, rtol: float) -> set[int]:
    """Steps the real ``SpikeDetection(mode="min", window, warmup, rtol)`` flags, through its own method."""
    with tempfile.TemporaryDirectory() as tmp:
        detection = SpikeDetection(mode="min", window=window, warmup=warmup, rtol=rtol, exclude_batches_path=tmp)
        found = set()
        for step, value in enumerate(values.tolist()):
            try:
                detection.on_train_batch_end(_Fabric(), torch.tensor(value), None, step)
            except TrainingSpikeException:
                found.add(step)
        return found


@dataclass
class Score:
    recall: float
    precision: float
    false_per_10k: float


def score(detect: Callable[[np.ndarray], set[int]], clean: np.ndarray, spiked: np.ndarray, truth: set[int]) -> Score:
    found = detect(spiked)
    hits = len(found & truth)
    precision = hits / len(found) if found else math.nan
    return Score(hits / len(truth), precision, len(detect(clean)) * 10_000 / len(clean))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10_000, help="steps per stream")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verify-steps", type=int, default=1000, help="steps checked against the real class")
    args = parser.parse_args(argv)

    configs = {"defaults: window 10, warmup 1, rtol 2": (10, 1, 2.0), "window 50, warmup 20, rtol 2": (50, WARMUP, 2.0)}
    configs["window 50, warmup 20, rtol 0.5"] = (50, WARMUP, 0.5)
    detectors = {"ours: median/MAD, window 50, warmup 20, z >= 6, +10%": ours}
    detectors.update({f"Lightning {name}": lightning_replica(*config) for name, config in configs.items()})
    streams = {}
    for offset, (stream_name, stream) in enumerate(STREAMS.items()):
        rng = np.random.default_rng(args.seed + offset)
        clean = stream(rng, args.steps)
        streams[stream_name] = (clean, *inject(rng, clean))

    for stream_name, (_, spiked, _) in streams.items():
        head = spiked[: args.verify_steps]
        for name, config in configs.items():
            real, replica = lightning_real(head, *config), lightning_replica(*config)(head)
            if real != replica:
                sys.exit(f"replica disagrees with Lightning ({name}) on {stream_name}: {sorted(real ^ replica)}")
            print(f"verified {name} on {stream_name}: {len(real)} spikes agree", file=sys.stderr, flush=True)

    rows = []
    for stream_name, (clean, spiked, truth) in streams.items():
        for detector_name, detect in detectors.items():
            rows.append((stream_name, len(truth), detector_name, score(detect, clean, spiked, truth)))

    print(
        f"{args.steps} steps per stream, seed {args.seed}; spikes injected x3..x10 at {SPIKE_RATE:.1%} of steps; "
        f"Lightning replica verified against the real class on the first {args.verify_steps} steps of each stream.\n"
    )
    print("| stream | injected | detector | recall | precision | false spikes / 10k clean steps |")
    print("|---|---:|---|---:|---:|---:|")
    for stream_name, injected, detector_name, r in rows:
        print(
            f"| {stream_name} | {injected} | {detector_name} | {r.recall:.3f} | {r.precision:.3f} "
            f"| {r.false_per_10k:.1f} |"
        )


if __name__ == "__main__":
    main()
