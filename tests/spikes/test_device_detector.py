"""The device detector decides exactly as the pure-Python one: same verdicts, same window, same state dict."""

from __future__ import annotations

import math
import random
from dataclasses import astuple

import pytest
import torch

from lightning_lstm.spikes.detector import DeviceSpikeDetector, DeviceVerdict, SpikeDetector, as_kind


def stream(seed: int, n: int = 300) -> list[float]:
    """Noisy values around 1 with jumps, NaN, inf and exact repeats, rounded to float32 like a step's loss."""
    rng = random.Random(seed)
    values = []
    for _ in range(n):
        value, r = rng.gauss(1, 0.1), rng.random()
        value = (
            value * 20 if r < 0.05 else math.nan if r < 0.07 else math.inf if r < 0.08 else 1.0 if r < 0.1 else value
        )
        values.append(float(torch.tensor(value, dtype=torch.float32)))
    return values


def same(a, b) -> bool:
    return all(x == y or (x != x and y != y) for x, y in zip(astuple(a), astuple(b), strict=True))


@pytest.mark.parametrize("mode", ["upper", "lower", "both"])
@pytest.mark.parametrize(("window", "warmup"), [(1, 0), (5, 3), (20, 10)])
def test_verdicts_and_state_equal_the_host_detector(mode: str, window: int, warmup: int):
    host, device = SpikeDetector(window, warmup, 3.0, 0.1, mode), DeviceSpikeDetector(window, warmup, 3.0, 0.1, mode)
    for i, value in enumerate(stream(window)):
        expected = host.update(value)
        got = DeviceVerdict.from_host(device.update(torch.tensor(value, dtype=torch.float32)).stacked().tolist())
        assert same(expected, got), (i, expected, got)
        if i == 150:  # a checkpoint round trip half-way, into a fresh detector
            restored = DeviceSpikeDetector(window, warmup, 3.0, 0.1, mode)
            restored.load_state_dict(device.state_dict())
            device = restored
    assert device.state_dict() == host.state_dict()
    assert device.num_spikes == host.num_spikes > 0 and device.warm == host.warm


def test_as_kind_carries_settings_and_window_both_ways():
    host = SpikeDetector(4, 2, 5.0, 0.2)
    for value in (1.0, 2.0, 3.0, 4.0, 5.0, 100.0):
        host.update(value)
    device = as_kind(host, True)
    assert isinstance(device, DeviceSpikeDetector) and device.state_dict() == host.state_dict()
    assert as_kind(device, True) is device and as_kind(device, False).state_dict() == host.state_dict()
