"""The intervention test: does replacing one value of a spike's windows remove the spike's excess loss?

For each flagged spike (only those: steps without a spike pay nothing), the spike's top windows are rebuilt by the
data module's training dataset (clipped, scaled and with known-future inputs exactly as training built them) and
re-scored with the training loss, per window, in one no-grad forward pass with the module in eval mode (dropout off,
so the windows with and without a value differ only by that value; the mode is restored after). The windows are
scored as they are and once per candidate value, with that value replaced by the mean of the medians of up to
``INTERPOLATION_ROWS`` finite rows on each side in its column (an interpolation of its neighbours that one adjacent
bad value does not move). The value is replaced in the data's own units before the window is built, so every place
the model sees it in the window changes at once: an input of a lookback row, a target of a horizon row, a
known-future column of the same row; scaling is affine per column, so this equals replacing it in the scaled tensor
(up to clipping, which the rebuilt window applies as training did). Seasonal lag features (read one season later
from the frame itself) keep the original value.

**Share** of a candidate, for a spike with baseline ``b`` (the loss detector's rolling median of the batch loss
before the spike, i.e. the loss of a typical window) and top windows ``w`` re-scored as they are (``l_w``) and with the
value replaced (``l'_w``)::

    share = sum_w (l_w - l'_w) / sum_w max(l_w - b, 0), clipped to [0, 1]

the fraction of the top windows' excess loss over the baseline that the value carries. A spike's
``explained_share`` is its largest candidate share (``0.0``: tested, no value matters); ``None`` when it could not be
tested (no windows, a non-finite loss, or no window above the baseline any more with the weights used).

**Weights used**: the module's current weights when the callback settles the spike. With ``skip`` or ``stop`` the
decision is taken before the update, so these are exactly the weights that spiked; device decisions are settled one
step late (the weights after one more update); host decisions without ``skip``/``stop`` are scored in batches of up to
32 steps, so the weights are up to 32 updates newer: the documented approximation (a value the model cannot fit
keeps its excess loss over a few updates; a spike of a passing order or learning-rate effect may no longer show,
and is then reported as not tested).

Candidates (at most ``MAX_CANDIDATES`` per spike): the values of the top windows with the highest local scores
(:func:`~lightning_lstm.spikes.bad_values.local_scores`, from ``CANDIDATE_SCORE`` up: far below ``BAD_SCORE``, so a
drop the spread of a noisy neighbourhood hides is tested too), and the ``PEAK_CANDIDATES`` target values of the
windows' horizon rows farthest from their windows' median (so real peaks are tested).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from lightning_lstm.data.windows import WindowIndex
from lightning_lstm.model.metrics import window_losses
from lightning_lstm.spikes.bad_values import NEIGHBOURS, local_scores, spread_floor
from lightning_lstm.spikes.records import SpikeRecord

MAX_CANDIDATES = 8
"""Values tested per spike."""
PEAK_CANDIDATES = 3
"""Of them, at most this many of the windows' largest target values."""
CANDIDATE_SCORE = 1.0
"""The local score from which a value is a candidate."""
INTERPOLATION_ROWS = 3
"""Finite rows on each side whose median replaces a value."""
MAX_TESTED_SPIKES = 200
"""At most this many spikes of a run are tested (the rest keep ``explained_share = None``)."""


class PatchedValues:
    """A read-only view of the frame's ``(N, C)`` values with one value replaced: ``view[rows]`` gathers as the
    dataset does (any integer index array of rows -> ``rows.shape + (C,)``), with ``(row, column)`` set to ``value``."""

    def __init__(self, values: np.ndarray, row: int, column: int, value: float) -> None:
        self.values, self.row, self.column, self.value = values, row, column, value
        self.shape, self.dtype = values.shape, values.dtype

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, key: Any) -> np.ndarray:
        block = np.array(self.values[key])  # a copy: the frame is never changed
        rows = np.asarray(key)
        if rows.dtype.kind in "iu" and block.ndim == rows.ndim + 1:
            block[rows == self.row, self.column] = self.value
        return block


def interpolated(column: np.ndarray, row: int, lo: int, hi: int) -> float | None:
    """The mean of the medians of up to ``INTERPOLATION_ROWS`` finite rows left and right of ``row`` in ``[lo, hi)``
    (one side alone at an edge), ``None`` when neither side has one."""
    left = column[max(lo, row - 4 * INTERPOLATION_ROWS) : row]
    right = column[row + 1 : min(hi, row + 1 + 4 * INTERPOLATION_ROWS)]
    left, right = left[np.isfinite(left)][-INTERPOLATION_ROWS:], right[np.isfinite(right)][:INTERPOLATION_ROWS]
    sides = [float(np.median(side)) for side in (left, right) if len(side)]
    return float(np.mean(sides)) if sides else None


class Intervention:
    """Tests the candidate values of each flagged spike's top windows by replacing them (see the module docstring).

    Attributes:
        tested: ``{(row, column name): {global step: share}}`` of every value tested in the run.
    """

    def __init__(self) -> None:
        self.tested: dict[tuple[int, str], dict[int, float]] = {}
        self.spikes_tested = 0
        self._dataset: Any = None
        self._floors: dict[tuple[str, str], float] = {}  # (series, column) -> spread floor

    def reset(self, profiles: Mapping[tuple[str, str], Any] | None = None) -> None:
        """At fit start: the dataset is rebuilt at the first test (the data may have changed between fits); the
        columns' spread floors are taken from ``profiles`` (``{(series, column): ColumnProfile}``, see
        :func:`~lightning_lstm.spikes.data_notes.profiles_and_notes`) where given, else computed once per column."""
        self._dataset = None
        self._floors = {key: float(profile.floor) for key, profile in (profiles or {}).items()}

    def _floor(self, frame: Any, series: int, column: int) -> float:
        """The resolution-aware spread floor of one column of one series (cached)."""
        key = (str(frame.series_names[series]), str(frame.columns[column]))
        if key not in self._floors:
            lo, hi = int(frame.offsets[series]), int(frame.offsets[series + 1])
            self._floors[key] = spread_floor(np.asarray(frame.values[lo:hi, column], dtype=np.float64))
        return self._floors[key]

    def test(self, pl_module: Any, datamodule: Any, record: SpikeRecord) -> float | None:
        """The spike's ``explained_share`` (also stored per value in :attr:`tested`), or ``None`` if untestable."""
        frame = getattr(datamodule, "frame", None)
        if (
            frame is None
            or not record.top_windows
            or self.spikes_tested >= MAX_TESTED_SPIKES
            or not all(hasattr(pl_module, name) for name in ("inputs", "loss_fn"))
            or not np.isfinite(record.loss)
        ):
            return None
        if self._dataset is None:
            self._dataset = datamodule.dataset("train")
        self.spikes_tested += 1
        lookback, horizon = int(datamodule.hparams.lookback), int(datamodule.hparams.horizon)
        starts = np.asarray([int(w["window_id"]) for w in record.top_windows], dtype=np.int64)  # (W,)
        candidates = self.candidates(frame, starts, lookback, horizon, datamodule)
        variants: list[tuple[np.ndarray, Any]] = [(starts, frame.values)]  # as is, then one per candidate
        for row, column, value in candidates:
            holding = starts[(starts <= row) & (row < starts + lookback + horizon)]
            variants.append((holding, PatchedValues(frame.values, row, column, value)))
        losses = self._losses(pl_module, frame, variants)  # one (n_i,) array per variant
        as_is = losses[0]
        excess = float(np.sum(np.maximum(as_is - record.baseline, 0.0)))
        if not np.isfinite(as_is).all() or excess <= 0:
            return None
        loss_of = dict(zip(starts.tolist(), as_is.tolist(), strict=True))
        best = 0.0
        for (row, column, _), (holding, _), replaced in zip(candidates, variants[1:], losses[1:], strict=True):
            removed = sum(loss_of[int(s)] for s in holding) - float(np.sum(replaced))
            share = float(np.clip(removed / excess, 0.0, 1.0)) if np.isfinite(removed) else 0.0
            self.tested.setdefault((row, str(frame.columns[column])), {})[record.global_step] = share
            best = max(best, share)
        return best

    def candidates(
        self, frame: Any, starts: np.ndarray, lookback: int, horizon: int, datamodule: Any
    ) -> list[tuple[int, int, float]]:
        """``(row, column index, replacement)`` of the values to test, the most suspect first. Reads each window's
        rows and ``NEIGHBOURS`` rows either side, one column at a time (never a whole column of a large file)."""
        width, k = lookback + horizon, NEIGHBOURS
        targets = set(frame.column_index(list(getattr(datamodule, "target_columns", []))))
        scored: dict[tuple[int, int], float] = {}  # (row, column) -> local score
        peaks: dict[tuple[int, int], float] = {}  # (row, target column) -> distance from the window's median
        for start, s in zip(starts.tolist(), frame.series_of(starts).tolist(), strict=True):
            lo, hi = int(frame.offsets[s]), int(frame.offsets[s + 1])
            a, b = max(lo, start - k), min(hi, start + width + k)
            rows = np.arange(start, min(start + width, hi)) - a  # the window's rows, local to [a, b)
            for c in range(len(frame.columns)):
                part = np.asarray(frame.values[a:b, c], dtype=np.float64)  # (b - a,)
                scores, _ = local_scores(part, rows, 0, b - a, k, self._floor(frame, s, c))
                for row, score in zip((rows + a).tolist(), scores.tolist(), strict=True):
                    if score >= CANDIDATE_SCORE:
                        scored[(row, c)] = score
                if c in targets and np.isfinite(part[rows]).any():
                    middle = float(np.nanmedian(part[rows]))
                    for row in range(start + lookback, min(start + width, hi)):
                        if np.isfinite(part[row - a]):
                            peaks[(row, c)] = abs(float(part[row - a]) - middle)
        by_score = sorted(scored, key=lambda place: -scored[place])
        by_size = sorted(peaks, key=lambda place: -peaks[place])[:PEAK_CANDIDATES]
        first = by_score[: MAX_CANDIDATES - len(by_size)]
        chosen = list(dict.fromkeys(first + by_size + by_score))[:MAX_CANDIDATES]  # unique, in this order
        out = []
        for row, c in chosen[:MAX_CANDIDATES]:
            s = int(frame.series_of(np.asarray([row]))[0])
            a = max(int(frame.offsets[s]), row - 4 * INTERPOLATION_ROWS)
            b = min(int(frame.offsets[s + 1]), row + 1 + 4 * INTERPOLATION_ROWS)
            value = interpolated(np.asarray(frame.values[a:b, c], dtype=np.float64), row - a, 0, b - a)
            if value is not None and np.isfinite(frame.values[row, c]):
                out.append((row, c, value))
        return out

    def _losses(self, pl_module: Any, frame: Any, variants: list[tuple[np.ndarray, Any]]) -> list[np.ndarray]:
        """Per variant ``(starts, values)``: the training loss of each of its windows, in one forward pass."""
        parts = []
        for starts, values in variants:
            dataset = copy.copy(self._dataset)
            series = frame.series_of(starts)
            ones = np.ones(len(starts), dtype=np.int64)
            dataset.index, dataset.values = WindowIndex(starts, ones, series, 1), values
            parts.append(dataset.__getitems__(list(range(len(starts)))))
        dtype = next(pl_module.parameters()).dtype  # float32, or bfloat16 under a "true" half precision
        batch = {key: torch.cat([p[key] for p in parts]).to(pl_module.device) for key in parts[0]}  # (sum n_i, ...)
        batch = {key: value.to(dtype) if value.is_floating_point() else value for key, value in batch.items()}
        modes = {module: module.training for module in pl_module.modules()}  # restored as they were, one by one
        pl_module.eval()
        try:
            with torch.no_grad():
                prediction = pl_module(*pl_module.inputs(batch))  # (B, H, T) or (B, H, T, Q)
                per_window, _ = window_losses(pl_module.loss_fn(prediction, batch["y"]), batch.get("observed"))  # (B,)
        finally:
            for module, training in modes.items():
                module.training = training
        losses = per_window.float().cpu().numpy().astype(np.float64)
        bounds = np.cumsum([0] + [len(starts) for starts, _ in variants])
        return [losses[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
