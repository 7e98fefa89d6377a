"""Everything fitted on the training span that prediction needs again: clip bounds and scaling, per series and column."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lightning_lstm.data.frame import SeriesFrame
from lightning_lstm.data.outliers import clip_bounds
from lightning_lstm.data.scaling import scaling_statistics


@dataclass
class FittedStatistics:
    """``(S, C)`` float64 arrays for ``S`` series and ``C`` columns; ``clipped`` counts training values clipped."""

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
        """Fit on the rows of ``train_spans`` only: bounds first, then scaling on the clipped values."""
        shape = (frame.num_series, len(frame.columns))
        low, high = np.full(shape, -np.inf), np.full(shape, np.inf)
        center, scale = np.zeros(shape), np.ones(shape)
        clipped = dict.fromkeys(frame.columns, 0)
        for s, (a, b) in enumerate(train_spans):
            for c, name in enumerate(frame.columns):
                column = np.asarray(frame.values[a:b, c], dtype=np.float64)  # one column: 1/C of the data at most
                low[s, c], high[s, c] = clip_bounds(column, outliers, quantiles, k)
                outside = (column < low[s, c]) | (column > high[s, c])
                clipped[name] += int(outside.sum())
                column = np.clip(column, low[s, c], high[s, c])
                center[s, c], scale[s, c] = scaling_statistics(column, scaler, name)
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
            list(names), self.columns, self.clip_low[rows], self.clip_high[rows],
            self.center[rows], self.scale[rows], self.clipped,
        )
