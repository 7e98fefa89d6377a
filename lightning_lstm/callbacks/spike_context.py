"""What the data add to the diagnosis at the end of a fit: named values, the targets' level, what clipping would cut.

Used by the spike callback (``spikes.json``) and the doctor. Everything here reads the data module's
:class:`~lightning_lstm.data.frame.SeriesFrame` and split bounds; another data module (without them) adds nothing,
and the rules then speak from the spikes alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lightning_lstm.data.outliers import clip_bounds
from lightning_lstm.data.splits import span_rows
from lightning_lstm.robust import MAD_TO_SIGMA
from lightning_lstm.spikes.bad_values import LocalAnomaly, anomalies_in_spike_windows, step_words
from lightning_lstm.spikes.records import SpikeRecord

CLIP_METHODS = ("quantile", "iqr", "mad", "zscore")


def clip_effects(
    frame, spans: list[tuple[int, int]], anomalies: list[LocalAnomaly], quantiles: tuple[float, float] = (0.005, 0.995)
) -> dict[str, dict[str, int]]:
    """Per ``data.outliers`` method: training values outside its bounds, and how many named bad values are among them.

    Bounds are fitted as the data module fits them (each column and series on its own, default ``outlier_k``), on
    the training span with the bad values in it.
    """
    bad = {(a.row, a.column) for a in anomalies if a.kind == "bad_value"}
    effects = {method: {"clipped": 0, "anomalies": 0} for method in CLIP_METHODS}
    for c, name in enumerate(frame.columns):
        for a, b in spans:
            column = np.asarray(frame.values[a:b, c], dtype=np.float64)
            finite = np.isfinite(column)
            rows, values = np.flatnonzero(finite) + a, column[finite]
            if not len(values):
                continue
            for method in CLIP_METHODS:
                low, high = clip_bounds(values.copy(), method, quantiles, None)
                cut = (values < low) | (values > high)
                effects[method]["clipped"] += int(cut.sum())
                effects[method]["anomalies"] += sum((int(r), name) in bad for r in rows[cut])
    return effects


def data_evidence(datamodule: Any, records: list[SpikeRecord]) -> dict[str, Any]:
    """The :class:`~lightning_lstm.spikes.rules.RunContext` fields that come from the data ({} without a frame)."""
    frame, bounds = getattr(datamodule, "frame", None), getattr(datamodule, "bounds", None)
    hp = getattr(datamodule, "hparams", None)
    if frame is None or bounds is None or hp is None or "lookback" not in hp:
        return {}
    spans = span_rows(frame, bounds, "train")
    targets = frame.column_index(list(getattr(datamodule, "target_columns", frame.columns)))
    train = np.concatenate([np.asarray(frame.values[a:b, targets], dtype=np.float64).ravel() for a, b in spans])
    train = train[np.isfinite(train)]
    median = float(np.median(train)) if len(train) else None
    anomalies = anomalies_in_spike_windows(frame, records, int(hp.lookback), int(hp.horizon)) if records else []
    stats = getattr(datamodule, "stats", None)
    quantiles = tuple(hp.get("outlier_quantiles", (0.005, 0.995)))
    return {
        "scaler": str(hp.get("scaler", "standard")),
        "target_median": median,
        "target_std": float(MAD_TO_SIGMA * np.median(np.abs(train - median))) if median is not None else None,
        "outliers_clipped": int(sum(stats.clipped.values())) if stats is not None else None,
        "anomalies": anomalies,
        "clip_effects": clip_effects(frame, spans, anomalies, quantiles) if records else {},
        "window_width": int(hp.lookback) + int(hp.horizon),
        "neighbour_words": step_words(frame.time_step, frame.is_datetime),
    }
