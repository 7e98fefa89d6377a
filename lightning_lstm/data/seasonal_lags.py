"""Seasonal lags (``data.seasonal_lags``) and the seasonal-naive baseline a residual model adds its output to.

A seasonal lag ``m`` gives every step of a window the target's value ``m`` steps earlier: for the lookback steps the
LSTM reads it, for the forecast steps the head reads it beside the known-future inputs (it is one more known-future
input, counted in ``data.num_known_features``). For a forecast step ``h`` (1-based, ``h <= horizon``) the value ``m``
steps earlier lies at or before the forecast origin when ``m >= horizon``, so it is known when forecasting; a shorter
lag is refused. Each lag adds one input per target, built per batch from the same scaled (clipped, window-normalised)
target series as the inputs, never from extra file columns, so ``predict`` and backtests build them alike.

A window starting at row ``s`` reads the rows ``[s - max(lags), s + lookback + horizon)``: windows without
``max(lags)`` rows of their series before the lookback are skipped (:func:`~.windows.build_window_index`'s
``history``), like windows touching a missing value.

``model.residual: seasonal_naive`` adds the network's output to the value one season earlier (scaled): the season is
:func:`residual_season`, and each batch carries it as ``seasonal_base`` ``(B, H, T)`` (:class:`SeasonalBase`).
"""

from __future__ import annotations

import numpy as np

from lightning_lstm.data.frame import SeriesFrame
from lightning_lstm.data.scaling import transform
from lightning_lstm.data.split_checks import rows_needed
from lightning_lstm.data.splits import Spans, has_validation
from lightning_lstm.data.windows import SplitWindows, split_windows


def check_seasonal_lags(lags: list[int], horizon: int) -> list[int]:
    """``data.seasonal_lags`` as a list; a ValueError naming the key, the lag and ``data.horizon`` when one is not
    an integer >= the horizon (its value would lie after the forecast origin) or is listed twice."""
    for lag in lags:
        if isinstance(lag, bool) or not isinstance(lag, int) or lag < 1:
            raise ValueError(f"data.seasonal_lags must hold integers >= 1, got {lag!r} in {list(lags)}")
        if lag < horizon:
            raise ValueError(
                f"data.seasonal_lags: lag {lag} is shorter than data.horizon = {horizon}: the value {lag} steps "
                f"before forecast step {lag + 1} lies after the forecast origin, unknown when forecasting. Use lags "
                f">= {horizon} (e.g. 24 and 168 for hourly data), or a shorter horizon."
            )
    if len(set(lags)) != len(lags):
        raise ValueError(f"data.seasonal_lags lists a lag twice: {list(lags)}")
    return list(lags)


def residual_season(
    lags: list[int], horizon: int, season_length: int | None, reach: int, required: bool = False
) -> int | None:
    """The season of ``model.residual: seasonal_naive``: the first of ``lags`` >= ``horizon``, else ``season_length``
    (``data.season_length``, or the one inferred from the time step); ``None`` when that is unknown, shorter than the
    horizon, or longer than ``reach`` (the rows a window reads before its forecast origin: lookback + longest lag),
    and then with ``required`` a ValueError saying which option to set (:func:`no_residual_season`)."""
    season = next((lag for lag in lags if lag >= horizon), None) or season_length
    if season and horizon <= season <= reach:
        return season
    if required:
        raise ValueError(no_residual_season(lags, horizon, season_length, reach))
    return None


def check_restored_lags(state: dict, lags: list[int]) -> None:
    """A checkpoint's data state (``seasonal_lags``, absent in older ones: none) must match ``data.seasonal_lags``."""
    trained = state.get("seasonal_lags", [])
    if list(trained) != list(lags):
        raise ValueError(
            f"the checkpoint was trained with data.seasonal_lags = {trained}, but the config gives {lags}. Use the "
            "data.seasonal_lags of training (see config.yaml in the run folder)."
        )


def no_residual_season(lags: list[int], horizon: int, season_length: int | None, reach: int) -> str:
    """Why :func:`residual_season` is ``None``: a message naming the options to set."""
    season = next((lag for lag in lags if lag >= horizon), None) or season_length
    what = "model.residual: seasonal_naive adds the forecast to the value one season earlier"
    if not season:
        return (
            f"{what}, but no season is known: data.seasonal_lags {list(lags)} has no lag >= data.horizon = {horizon} "
            "and data.season_length is not set (nor inferred from the time step). Set data.seasonal_lags (e.g. [24] "
            "for hourly data) or data.season_length."
        )
    if season < horizon:
        return (
            f"{what}, but data.season_length = {season} is shorter than data.horizon = {horizon}: the value one season "
            "before the last forecast steps is unknown at the forecast origin. Set data.seasonal_lags to a lag >= the "
            "horizon, or data.season_length >= the horizon."
        )
    return (
        f"{what}: {season} steps, but a window reads only data.lookback + max(data.seasonal_lags) = {reach} rows "
        f"before its forecast origin. Add {season} to data.seasonal_lags (windows then keep that history) or raise "
        f"data.lookback to >= {season}."
    )


class SeasonalLags:
    """The ``(B, L + H, T * len(lags))`` lag inputs of windows: for lag ``m`` and window step ``j``, the scaled target
    ``m`` steps before step ``j`` (lag-major: all targets of the first lag, then of the next).

    Args:
        values: ``(N, C)`` the series' rows (no copy is made).
        target_idx: the target columns.
        lags: ``data.seasonal_lags``.
        lookback: input steps ``L``.
        horizon: forecast steps ``H``.
    """

    def __init__(self, values: np.ndarray, target_idx: list[int], lags: list[int], lookback: int, horizon: int) -> None:
        self.values, self.targets = values, np.asarray(target_idx, dtype=np.int64)
        steps = np.arange(lookback + horizon)  # (W,) window steps 0 .. L + H - 1
        self._offsets = steps[None, :] - np.asarray(lags, dtype=np.int64)[:, None]  # (n_lags, W)

    @property
    def size(self) -> int:
        """Lag inputs per step: one per lag and target."""
        return self._offsets.shape[0] * len(self.targets)

    def batch(
        self, starts: np.ndarray, low: np.ndarray | None, high: np.ndarray | None, center: np.ndarray, scale: np.ndarray
    ) -> np.ndarray:
        """``(B, L + H, n_lags * T)`` float32 lag inputs of the windows starting at ``starts`` ``(B,)``.

        Args:
            low: ``(B, 1, T)`` clip bounds of the targets (``None``: no clipping), as for the inputs.
            high: ``(B, 1, T)``.
            center: ``(B, 1, T)`` the targets' centers (shifted by the window's level with ``window_norm: last``).
            scale: ``(B, 1, T)``.
        """
        rows = starts[:, None, None] + self._offsets  # (B, n_lags, W)
        lagged = np.asarray(self.values[rows[..., None], self.targets], dtype=np.float32)  # (B, n_lags, W, T)
        if low is not None:
            lagged = np.minimum(np.maximum(lagged, low[:, None]), high[:, None])
        lagged = transform(lagged, center[:, None], scale[:, None])  # (B, n_lags, W, T)
        B, n, W, T = lagged.shape
        return np.ascontiguousarray(lagged.transpose(0, 2, 1, 3).reshape(B, W, n * T), dtype=np.float32)


class SeasonalBase:
    """The ``(B, H, T)`` seasonal-naive baseline of ``model.residual``: the target one season before each forecast
    step, clipped and scaled as the inputs are (with the window's level removed under ``window_norm: last``).

    Args:
        values: ``(N, C)`` the series' rows.
        target_idx: the target columns.
        season: steps per season (>= ``horizon``, so every value lies at or before the forecast origin).
        lookback: input steps ``L``.
        horizon: forecast steps ``H``.
    """

    def __init__(self, values: np.ndarray, target_idx: list[int], season: int, lookback: int, horizon: int) -> None:
        self.values, self.targets, self.season = values, np.asarray(target_idx, dtype=np.int64), season
        self.offsets = lookback + np.arange(horizon) - season  # (H,) rows relative to the window start

    def batch(
        self, starts: np.ndarray, low: np.ndarray | None, high: np.ndarray | None, center: np.ndarray, scale: np.ndarray
    ) -> np.ndarray:
        """``(B, H, T)`` float32 scaled baseline of the windows starting at ``starts``; arguments as
        :meth:`SeasonalLags.batch`."""
        rows = starts[:, None] + self.offsets  # (B, H)
        base = np.asarray(self.values[rows[..., None], self.targets], dtype=np.float32)  # (B, H, T)
        if low is not None:
            base = np.minimum(np.maximum(base, low), high)
        return np.ascontiguousarray(transform(base, center, scale), dtype=np.float32)


def check_lag_history(
    frame: SeriesFrame,
    spans: Spans,
    windows: SplitWindows,
    history: int,
    lookback: int,
    horizon: int,
    val_fraction: float,
    test_fraction: float,
    val_start: object,
    test_start: object,
) -> None:
    """With ``history`` rows needed before each lookback, a split left without a window for lack of that history is a
    ValueError saying so (the series' length, the split's, and the length these splits need); splits whose windows
    were all skipped for gaps are left to :func:`~.split_checks.check_split_windows`. Without lags: no check."""
    if not history:
        return
    for split in ["train", "val", "test"] if has_validation(val_fraction, val_start) else ["train", "test"]:
        sizes = (lookback, horizon, windows.kept[split].stride)
        if len(windows.kept[split]) or len(split_windows(frame, spans, split, *sizes, None, history)):
            continue  # windows, or windows skipped for gaps only: the general check explains those
        longest = int(np.diff(frame.offsets).max())
        split_rows = max(b - a for a, b in spans[split])
        need = rows_needed(lookback + history, horizon, val_fraction, test_fraction, val_start, test_start)
        raise ValueError(
            f"{frame.source}: the {split} split has no window: the series has {longest} rows and its {split} split "
            f"{split_rows}, but with data.seasonal_lags a window needs max(data.seasonal_lags) = {history} rows before "
            f"its lookback, then lookback + horizon = {lookback} + {horizon}: {history + lookback + horizon} rows, so "
            f"a series needs at least {need} rows with these splits. Drop the longest lag, lower data.lookback / "
            "data.horizon, move the splits, or use a longer series."
        )
