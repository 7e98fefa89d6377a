"""The gradient-norm history: numpy's quantiles, clip counts, bounded memory, and a checkpoint round trip."""

from __future__ import annotations

import numpy as np
import pytest

from lightning_lstm.spikes.history import GradNormHistory


def test_quantiles_and_clip_counts_match_numpy():
    norms = np.random.default_rng(0).lognormal(-2, 1, size=997)
    history = GradNormHistory()
    for norm in norms:
        history.update(float(norm), clip=0.5)
    history.update(float("inf"), clip=0.5)  # counted, clipped, but no quantile
    expected = {f"q{round(q * 100)}": float(np.quantile(norms, q)) for q in (0.5, 0.9, 0.95, 0.99, 1.0)}
    assert history.quantiles() == pytest.approx(expected)
    assert history.steps == 998 and history.clipped == int((norms > 0.5).sum()) + 1
    assert GradNormHistory().quantiles() == {}


def test_memory_stays_bounded_and_the_sample_spans_the_run():
    history = GradNormHistory(capacity=64)
    for step in range(1000):
        history.update(float(step), clip=None)
    sample = history.state_dict()["sample"]
    assert len(sample) < 64 and sample[0] == 0.0 and sample[-1] > 900
    restored = GradNormHistory(capacity=64)
    restored.load_state_dict(history.state_dict())
    assert restored.quantiles() == history.quantiles() and restored.steps == 1000
