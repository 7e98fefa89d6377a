"""Everything fitted on the training span that prediction needs again: clip bounds and scaling per series and column."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lightning_lstm.data.column_stats import finite_column
from lightning_lstm.data.frame import SeriesFrame
from lightning_lstm.data.outliers import clip_bounds
from lightning_lstm.data.scaling import scaling_statistics


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
        scaler: str,
        outliers: str,
        quantiles: tuple[float, float],
        k: float | None,
    ) -> FittedStatistics:
        """Fit on the rows of ``train_spans`` only: bounds first, then scaling on the clipped values.

        One column of one series is copied at a time (float32, finite values only), so a memory-mapped file is
        never read whole into memory. A column without any observed training value is an error: it cannot be scaled.
        """
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
