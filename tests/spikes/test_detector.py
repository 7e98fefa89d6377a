"""SpikeDetector on seeded synthetic loss streams: recall, precision, false alarms, warm-up, state round-trip."""

from __future__ import annotations

import io
import math
import time

import numpy as np
import pytest
import torch

from lightning_lstm.spikes.detector import SpikeDetector, SpikeVerdict

N_STEPS = 12_000
WARMUP = 20


def falling(rng: np.random.Generator, n: int) -> np.ndarray:
    """Exponential decay to a floor, with 5% multiplicative (log-normal) noise."""
    t = np.arange(n)
    return (0.05 + 2.0 * np.exp(-t / 2000)) * np.exp(0.05 * rng.standard_normal(n))


def noisy(rng: np.random.Generator, n: int) -> np.ndarray:
    """Slow decay with 20% multiplicative Gaussian noise."""
    t = np.arange(n)
    return (0.3 + 0.7 * np.exp(-t / 5000)) * np.clip(1 + 0.2 * rng.standard_normal(n), 0.05, None)


def plateaus(rng: np.random.Generator, n: int) -> np.ndarray:
    """Four flat levels, each a step down from the last, with 3% noise."""
    levels = np.repeat([1.0, 0.6, 0.35, 0.2], math.ceil(n / 4))[:n]
    return levels * (1 + 0.03 * rng.standard_normal(n))


def inject(rng: np.random.Generator, clean: np.ndarray, rate: float = 0.005) -> tuple[np.ndarray, set[int]]:
    """Multiplies a random ``rate`` of the post-warm-up steps by 3 to 10."""
    steps = np.flatnonzero(rng.random(len(clean)) < rate)
    steps = steps[steps >= WARMUP]
    spiked = clean.copy()
    spiked[steps] *= rng.uniform(3, 10, len(steps))
    return spiked, set(steps.tolist())


def detect(values: np.ndarray, detector: SpikeDetector | None = None) -> set[int]:
    detector = detector or SpikeDetector(warmup=WARMUP)
    return {i for i, v in enumerate(values.tolist()) if detector.update(v).is_spike}


@pytest.mark.parametrize("stream", [falling, noisy, plateaus])
@pytest.mark.parametrize("seed", [0, 1])
def test_injected_spikes_are_found_with_high_recall_and_precision(stream, seed: int) -> None:
    rng = np.random.default_rng(seed)
    values, truth = inject(rng, stream(rng, N_STEPS))
    found = detect(values)
    hits = len(found & truth)
    assert len(truth) > 30
    assert hits / len(truth) >= 0.95, f"recall {hits}/{len(truth)}"
    assert hits / len(found) >= 0.95, f"precision {hits}/{len(found)}"


@pytest.mark.parametrize("stream", [falling, noisy, plateaus])
def test_clean_streams_raise_at_most_one_false_spike_per_10k_steps(stream) -> None:
    found = detect(stream(np.random.default_rng(7), N_STEPS))
    assert len(found) <= N_STEPS / 10_000, sorted(found)


def test_falling_stream_scores_negative_on_average() -> None:
    detector = SpikeDetector(warmup=WARMUP)
    scores = [detector.update(v).score for v in falling(np.random.default_rng(3), 3000).tolist()]
    assert np.mean(scores[WARMUP:]) < 0


def test_nonfinite_values_are_always_spikes_and_never_enter_the_baseline() -> None:
    detector = SpikeDetector(warmup=5)
    early = detector.update(math.nan)
    assert early.is_spike and early.score == math.inf and not early.warm
    for _ in range(30):
        detector.update(1.0)
    for bad in (math.nan, math.inf, -math.inf):
        verdict = detector.update(bad)
        assert verdict.is_spike and verdict.score == math.inf
        assert verdict.baseline == 1.0
    assert detector.num_spikes == 4
    assert detector.steps_seen == 34
    assert detector.state_dict()["values"] == [1.0] * 30
    assert not detector.update(1.0).is_spike


def test_no_finite_spike_is_reported_during_warmup() -> None:
    detector = SpikeDetector(warmup=WARMUP)
    values = [1.0, 1.01, 0.99] * 4 + [100.0] + [1.0] * (WARMUP - 13)
    verdicts = [detector.update(v) for v in values]
    assert len(values) == WARMUP
    assert not any(v.is_spike or v.warm for v in verdicts)
    after = detector.update(100.0)
    assert after.warm and after.is_spike


def test_warmup_counts_observed_steps_once_not_per_epoch() -> None:
    detector = SpikeDetector(warmup=10)
    for _ in range(10):
        detector.update(1.0)
    # A new "epoch" is invisible to the detector: the very next value may spike.
    assert detector.update(5.0).is_spike


def test_flat_stream_with_tiny_wiggles_has_no_spikes_but_a_2x_jump_is_one() -> None:
    rng = np.random.default_rng(0)
    flat = 1.0 + 1e-6 * rng.standard_normal(5000)
    detector = SpikeDetector(warmup=WARMUP)
    assert detect(flat, detector) == set()
    verdict = detector.update(2.0)
    assert verdict.is_spike and verdict.score > detector.threshold


def test_perfectly_flat_stream_then_jump_is_a_finite_score_spike() -> None:
    detector = SpikeDetector(warmup=WARMUP)
    for _ in range(100):
        assert not detector.update(0.5).is_spike
    verdict = detector.update(1.0)
    assert verdict.is_spike and verdict.spread == pytest.approx(0.1 * 0.5 / 6.0)
    assert verdict.score == pytest.approx(60.0)
    assert not detector.update(0.54).is_spike  # +8%: below the 10% relative floor
    assert detector.update(0.56).is_spike  # +12%


def test_downward_deviations_only_count_in_lower_or_both_mode() -> None:
    for mode, expected in (("upper", False), ("lower", True), ("both", True)):
        detector = SpikeDetector(warmup=5, mode=mode)
        for _ in range(30):
            detector.update(1.0)
        assert detector.update(0.1).is_spike is expected, mode


def test_a_spike_enters_the_window_clipped_and_a_level_shift_is_absorbed() -> None:
    detector = SpikeDetector(window=50, warmup=WARMUP)
    for _ in range(60):
        detector.update(1.0)
    verdict = detector.update(1000.0)
    assert verdict.is_spike
    assert max(detector.state_dict()["values"]) <= verdict.baseline + detector.threshold * verdict.spread
    shifted = [detector.update(3.0).is_spike for _ in range(600)]
    assert not any(shifted[-100:]), "a sustained new level must stop being a spike"


def test_state_dict_round_trip_gives_identical_verdicts_and_survives_weights_only_load() -> None:
    rng = np.random.default_rng(11)
    values, _ = inject(rng, noisy(rng, 2000), rate=0.02)
    values[700] = values[1500] = math.nan
    uninterrupted = SpikeDetector(warmup=WARMUP)
    expected = [uninterrupted.update(v) for v in values.tolist()]

    first = SpikeDetector(warmup=WARMUP)
    got: list[SpikeVerdict] = [first.update(v) for v in values[:1000].tolist()]
    buffer = io.BytesIO()
    torch.save({"spike_detector": first.state_dict()}, buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)["spike_detector"]
    resumed = SpikeDetector(warmup=WARMUP)
    resumed.load_state_dict(state)
    got += [resumed.update(v) for v in values[1000:].tolist()]

    assert [repr(v) for v in got] == [repr(v) for v in expected]  # repr: exact floats, and nan == nan
    assert (resumed.steps_seen, resumed.num_spikes) == (uninterrupted.steps_seen, uninterrupted.num_spikes)
    assert resumed.state_dict() == uninterrupted.state_dict()


def test_state_dict_holds_only_plain_python_values() -> None:
    detector = SpikeDetector()
    for v in np.linspace(1, 2, 80, dtype=np.float32):
        detector.update(v)
    state = detector.state_dict()
    assert len(state["values"]) == detector.window
    assert all(type(v) is float for v in state["values"])
    assert all(type(v) in (int, float, str, list) for v in state.values())


@pytest.mark.parametrize(
    "kwargs",
    [{"window": 0}, {"warmup": -1}, {"threshold": 0.0}, {"relative_floor": -0.1}, {"mode": "max"}],
)
def test_invalid_arguments_are_rejected(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        SpikeDetector(**kwargs)


def test_update_cost_is_bounded() -> None:
    detector = SpikeDetector(window=50)
    values = (1 + 0.05 * np.random.default_rng(0).standard_normal(20_000)).tolist()
    start = time.perf_counter()
    for v in values:
        detector.update(v)
    per_update = (time.perf_counter() - start) / len(values)
    assert per_update < 100e-6  # ~10 us on a laptop core; generous for loaded CI machines
