"""Everything fitted on the training span that prediction needs again: clip bounds and scaling per series and column.

Fitted once (on rank zero under DDP, :func:`fit_on_rank_zero`) and stored in the checkpoint (:func:`data_state`) as
plain tensors, numbers, strings and lists, so a checkpoint loads with ``torch.load(weights_only=True)``;
:func:`restore_statistics` checks that the columns, window sizes and ``window_norm`` match the config.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from lightning_lstm.data.column_stats import finite_column
from lightning_lstm.data.frame import SeriesFrame
from lightning_lstm.data.identical_columns import warn_identical_columns
from lightning_lstm.data.outliers import OutlierMethod, clip_bounds
from lightning_lstm.data.scaling import Scaler, scaling_statistics
from lightning_lstm.distributed import broadcast_from_rank_zero, is_distributed

STATE_FORMAT = 1
MUST_MATCH = ("feature_columns", "target_columns", "lookback", "horizon", "window_norm")
OPTIONAL_MATCH = {"known_future_columns": [], "calendar": []}  # must match too; absent in older checkpoints: these


@dataclass
class FittedStatistics:
    """Clip bounds and scaling fitted on the training span, per series and column.

    Attributes:
        series_names: the ``S`` series, in frame order.
        columns: the ``C`` columns, in frame order.
        clip_low: ``(S, C)`` float64 lower clip bounds (``-inf`` without clipping).
        clip_high: ``(S, C)`` float64 upper clip bounds (``inf`` without clipping).
        center: ``(S, C)`` float64 centers: ``scaled = (value - center) / scale``.
        scale: ``(S, C)`` float64 scales (1 for a constant column).
        clipped: per column, training values outside the bounds (summed over series).
    """

    series_names: list[str]
    columns: list[str]
    clip_low: np.ndarray
    clip_high: np.ndarray
    center: np.ndarray
    scale: np.ndarray
    clipped: dict[str, int]

    @classmethod
    def fit(
        cls,
        frame: SeriesFrame,
        train_spans: list[tuple[int, int]],
        scaler: Scaler,
        outliers: OutlierMethod,
        quantiles: tuple[float, float],
        k: float | None,
    ) -> FittedStatistics:
        """Fit on the rows of ``train_spans`` only: bounds first, then scaling on the clipped values.

        One column of one series is copied at a time (float32, finite values only), so a memory-mapped file is
        never read whole into memory. A column without any observed training value is an error: it cannot be scaled.
        """
        warn_identical_columns(frame, train_spans)
        shape = (frame.num_series, len(frame.columns))
        low, high = np.full(shape, -np.inf), np.full(shape, np.inf)
        center, scale = np.zeros(shape), np.ones(shape)
        clipped = dict.fromkeys(frame.columns, 0)
        for s, (a, b) in enumerate(train_spans):
            for c, name in enumerate(frame.columns):
                where = f"{frame.source}: column {name!r}" + (
                    f" of series {frame.series_names[s]!r}" if frame.num_series > 1 else ""
                )
                column = finite_column(frame.values, a, b, c)  # (n,) float32: one column of one series at most
                if column.size == 0:
                    raise ValueError(
                        f"{where} has no observed value in the training span ({b - a} rows), so its clip bounds and "
                        "scaling cannot be fitted. Move data.val_start / data.val_fraction so the training span "
                        "holds data of every series, fill the gaps (data.missing), or drop the series or column."
                    )
                low[s, c], high[s, c] = clip_bounds(column, outliers, quantiles, k)
                if outliers != "none":
                    clipped[name] += int(np.count_nonzero(column < low[s, c]) + np.count_nonzero(column > high[s, c]))
                    np.clip(column, low[s, c], high[s, c], out=column)
                center[s, c], scale[s, c] = scaling_statistics(column, scaler, where)
        return cls(list(frame.series_names), list(frame.columns), low, high, center, scale, clipped)

    def state_dict(self) -> dict:
        """Plain tensors and strings only, so checkpoints load with ``torch.load(weights_only=True)``."""
        return {
            "series_names": list(self.series_names),
            "columns": list(self.columns),
            "clip_low": torch.from_numpy(self.clip_low.copy()),
            "clip_high": torch.from_numpy(self.clip_high.copy()),
            "center": torch.from_numpy(self.center.copy()),
            "scale": torch.from_numpy(self.scale.copy()),
            "clipped": dict(self.clipped),
        }

    @classmethod
    def from_state_dict(cls, state: dict) -> FittedStatistics:
        return cls(
            series_names=list(state["series_names"]),
            columns=list(state["columns"]),
            clip_low=state["clip_low"].double().numpy(),
            clip_high=state["clip_high"].double().numpy(),
            center=state["center"].double().numpy(),
            scale=state["scale"].double().numpy(),
            clipped=dict(state.get("clipped", {})),
        )

    def for_series(self, names: list[str], source: str) -> FittedStatistics:
        """The rows of these series, in this order; a series the statistics never saw is an error."""
        unknown = [n for n in names if n not in self.series_names]
        if unknown:
            raise ValueError(
                f"{source}: series {unknown[:5]} were not in the training data, so they have no fitted scaling; "
                f"known series: {self.series_names[:10]}"
            )
        rows = [self.series_names.index(n) for n in names]
        return FittedStatistics(
            list(names),
            self.columns,
            self.clip_low[rows],
            self.clip_high[rows],
            self.center[rows],
            self.scale[rows],
            self.clipped,
        )


def fit_on_rank_zero(fit: Callable[[], FittedStatistics]) -> FittedStatistics:
    """``fit()`` on rank zero only, its statistics sent to every rank, so all ranks scale and clip alike.

    One process: just ``fit()``. If ``fit()`` fails on rank zero, the other ranks raise too (a RuntimeError quoting it)
    instead of waiting for statistics.
    """
    if not is_distributed():
        return fit()
    state = broadcast_from_rank_zero(lambda: fit().state_dict(), "fit the scaling statistics and clip bounds")
    return FittedStatistics.from_state_dict(state)


def data_state(stats: FittedStatistics, frame: SeriesFrame | None, settings: dict[str, object]) -> dict:
    """The checkpoint entry: ``settings`` (the ``data.`` keys of :data:`MUST_MATCH`, scaler, outliers), time step and
    statistics."""
    time_step = frame.time_step if frame is not None and frame.time_step is not None else -1
    return {
        "format": STATE_FORMAT,
        **settings,
        "time_step": int(time_step),
        "is_datetime": bool(frame.is_datetime) if frame is not None else False,
        "statistics": stats.state_dict(),
    }


def restore_statistics(state: dict, settings: dict[str, object], columns: list[str]) -> FittedStatistics:
    """The statistics of a checkpoint entry; a ValueError naming the key when it was written for other data.

    Args:
        state: what :func:`data_state` wrote.
        settings: this config's values of the :data:`MUST_MATCH` keys.
        columns: the columns this data module reads (targets, then features, without repeats).
    """
    if state.get("format") != STATE_FORMAT or "statistics" not in state:
        raise ValueError(
            f"the checkpoint's data state has format {state.get('format')!r}, this version reads {STATE_FORMAT}: "
            "retrain, or predict with the version that wrote it"
        )
    for key in (*MUST_MATCH, *OPTIONAL_MATCH):
        trained, given = state.get(key, OPTIONAL_MATCH.get(key)), settings.get(key, OPTIONAL_MATCH.get(key))
        if trained != given:
            raise ValueError(
                f"the checkpoint was trained with data.{key} = {trained}, but the config gives {given}. "
                f"Use the same data.{key} as in training (see config.yaml in the run folder)."
            )
    stats = FittedStatistics.from_state_dict(state["statistics"])
    if stats.columns != columns:
        raise ValueError(
            f"the checkpoint's statistics cover columns {stats.columns}, but this data module reads {columns} "
            "(targets, features, known-future columns). Use the columns of training."
        )
    return stats
