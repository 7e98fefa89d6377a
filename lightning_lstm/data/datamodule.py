"""The LightningDataModule: read a file, split it in time, fit clipping and scaling on the training span, serve windows.

Run: ``python -m lightning_lstm fit --data.path my.csv --data.time_column date --data.target_columns '[load]'``.
The stages it runs, in order, are listed in :mod:`lightning_lstm.data`.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any, Literal

import lightning.pytorch as pl
import numpy as np
import pandas as pd
from torch.utils.data import DataLoader

from lightning_lstm.data.calendar import CalendarFeature
from lightning_lstm.data.dataset import WindowDataset, WindowNorm
from lightning_lstm.data.device_windows import DeviceWindows, train_loader
from lightning_lstm.data.frame import SeriesFrame
from lightning_lstm.data.gaps import DEFAULT_MAX_GAP, Gaps
from lightning_lstm.data.known_future import KnownFuture
from lightning_lstm.data.loaders import LoaderMode, window_loader
from lightning_lstm.data.missing import MissingPolicy, handle_missing
from lightning_lstm.data.outliers import OutlierMethod, check_outlier_options
from lightning_lstm.data.reading import bundled_series_path, read_frame
from lightning_lstm.data.scaling import Scaler
from lightning_lstm.data.seasonal_lags import check_lag_history, check_restored_lags, residual_season
from lightning_lstm.data.split_checks import check_split_windows, split_summary
from lightning_lstm.data.splits import (
    Spans,
    SplitBoundaries,
    check_split_options,
    has_validation,
    split_boundaries,
    split_spans,
)
from lightning_lstm.data.statistics import FittedStatistics, data_state, fit_on_rank_zero, restore_statistics
from lightning_lstm.data.timeline import DuplicatePolicy, infer_season_length
from lightning_lstm.data.windows import SplitWindows, WindowIndex, check_predict_windows, check_sizes, split_windows

log = logging.getLogger(__name__)

PredictMode = Literal["forecast", "backtest"]
PredictSplit = Literal["val", "test", "all"]
LOADER_OPTIONS = ("batch_size", "num_workers", "shuffle", "drop_last", "pin_memory")  # data.* keys of window_loader
READ_OPTIONS = ("time_column", "series_column", "duplicate_timestamps", "frequency", "csv_options", "dayfirst")


class TimeSeriesDataModule(pl.LightningDataModule):
    """Windows of one or many time series from a CSV, Parquet or ``.npy`` file or a DataFrame, split in time order.

    Every statistic (clip bounds, scaling) is fitted on the training span only and travels in the checkpoint, so
    ``predict`` on a new file uses the training statistics.

    Args:
        path: CSV, Parquet or ``.npy`` file; empty uses the bundled weekly Mauna Loa CO2 series.
        dataframe: a pandas DataFrame instead of ``path`` (Python only: no CLI option, not saved in hparams.yaml).
        time_column: column with timestamps (or integer steps); ``null`` uses the row order.
        target_columns: columns to forecast.
        feature_columns: input columns (past covariates); default: the targets.
        known_future_columns: columns known for the forecast steps too (planned events, holidays, weather forecasts):
            read for the lookback and the horizon; ``forecast`` reads them from a predict file's future rows (after
            the last target value, target empty; see :mod:`.known_future`).
        calendar: calendar features of the timestamps as sin/cos pairs, known for every step: any of
            ``hour_of_day``, ``day_of_week``, ``day_of_year``.
        seasonal_lags: lags (each >= ``horizon``, e.g. ``[24, 168]`` for hourly data) whose target values are read
            as known-future inputs for the lookback and the horizon (:mod:`.seasonal_lags`); a window then needs
            ``max(lags)`` rows before its lookback. The first lag >= the horizon is ``model.residual``'s season.
        series_column: column naming each series of a long (panel) file.
        lookback: input steps per window.
        horizon: steps forecast per window (direct multi-step).
        stride: steps between consecutive training windows.
        val_fraction: share of the timeline for validation (ignored when ``val_start`` is set); 0 for none.
        test_fraction: share of the timeline at the end for testing (ignored when ``test_start`` is set).
        val_start: first timestamp of the validation span.
        test_start: first timestamp of the test span.
        scaler: ``standard``, ``minmax``, ``robust`` or ``none``, per column and series.
        outliers: clip outliers to bounds from the training span: ``none``, ``quantile``, ``iqr``, ``mad``, ``zscore``.
        outlier_quantiles: ``[low, high]`` quantiles for ``outliers: quantile``.
        outlier_k: width for ``iqr`` (default 3), ``mad`` (5) and ``zscore`` (5).
        clip_eval_inputs: clip validation/test/predict inputs too, as the model saw in training.
        clip_eval_targets: clip validation/test targets too (off: scores use the real values).
        missing: NaN/inf handling: ``error``, ``ffill``, ``interpolate``, or ``drop`` (skip windows that touch one).
        max_gap: ``ffill`` / ``interpolate`` fill runs of at most this many missing steps (3: a dropped reading or
            two, not a missing daily peak); a window touching a longer run is skipped; filled targets are not scored.
        duplicate_timestamps: rows sharing a timestamp: ``error``, or merge them with ``first``, ``last``, ``mean``.
        frequency: resample onto this pandas offset alias (``5min``) first; gaps become missing values.
        csv_options: ``pandas.read_csv`` keyword arguments, e.g. ``{sep: ';', decimal: ','}``, ``{thousands: ','}``.
        dayfirst: read text dates such as ``01/04/2012`` day first (1 April); ``val_start`` / ``test_start`` alike.
        season_length: steps per season for the seasonal-naive baseline (and ``model.residual`` without seasonal
            lags); default inferred from the time step, 0 off.
        window_norm: ``last`` feeds each window relative to its last input value (forecasts too): trending series
            stay in the training range; ``standard`` standardises each window by its lookback's mean and spread
            (per column, the spread floored at 0.1 of the training span's): level and amplitude may both drift, and
            quantile intervals scale with the window; ``none`` (default) feeds the scaled values.
            configs/default.yaml sets ``last``.
        batch_size: windows per batch.
        num_workers: DataLoader worker processes.
        shuffle: shuffle training windows each epoch.
        drop_last: drop the last, smaller training batch of each epoch.
        pin_memory: pin batches for faster host-to-GPU copies; default: when CUDA is available.
        device_resident: gather the training windows on the training device from the series kept there (for GPUs).
        predict_mode: ``forecast`` the steps after each series' end, or ``backtest`` every window of ``predict_split``.
        predict_split: span scored by ``backtest``: ``val``, ``test`` or ``all``.
        backtest_stride: steps between forecast origins in ``backtest`` (``horizon``: every step forecast once).
    """

    def __init__(
        self,
        path: str | None = None,
        dataframe: pd.DataFrame | None = None,
        time_column: str | None = "date",
        target_columns: list[str] = ["co2"],
        feature_columns: list[str] | None = None,
        known_future_columns: list[str] = [],
        calendar: list[CalendarFeature] = [],
        seasonal_lags: list[int] = [],
        series_column: str | None = None,
        lookback: int = 52,
        horizon: int = 4,
        stride: int = 1,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        val_start: str | None = None,
        test_start: str | None = None,
        scaler: Scaler = "standard",
        outliers: OutlierMethod = "none",
        outlier_quantiles: tuple[float, float] = (0.005, 0.995),
        outlier_k: float | None = None,
        clip_eval_inputs: bool = True,
        clip_eval_targets: bool = False,
        missing: MissingPolicy = "interpolate",
        max_gap: int = DEFAULT_MAX_GAP,
        duplicate_timestamps: DuplicatePolicy = "error",
        frequency: str | None = None,
        csv_options: dict[str, Any] | None = None,
        dayfirst: bool = False,
        season_length: int | None = None,
        window_norm: WindowNorm = "none",
        batch_size: int = 64,
        num_workers: int = 0,
        shuffle: bool = True,
        drop_last: bool = False,
        pin_memory: bool | None = None,
        device_resident: bool = False,
        predict_mode: PredictMode = "forecast",
        predict_split: PredictSplit = "test",
        backtest_stride: int = 1,
    ) -> None:
        super().__init__()
        check_sizes(1, lookback=lookback, horizon=horizon, stride=stride, batch_size=batch_size)
        check_sizes(1, backtest_stride=backtest_stride)
        check_sizes(0, num_workers=num_workers, season_length=season_length, max_gap=max_gap)
        if not target_columns:
            raise ValueError("data.target_columns must name at least one column")
        check_split_options(val_fraction, test_fraction, val_start, test_start)
        check_outlier_options(outliers, tuple(outlier_quantiles), outlier_k)
        known = (list(calendar), list(known_future_columns), list(target_columns), feature_columns)
        self.known = KnownFuture(*known, list(seasonal_lags), horizon)
        if dataframe is not None and path:
            raise ValueError("data: give a file as data.path or a pandas DataFrame as dataframe, not both")
        self.save_hyperparameters(ignore=["dataframe"])  # no DataFrame in hparams.yaml: it shows path: null
        self.path = path or str(bundled_series_path())
        self.source = self.path if dataframe is None else dataframe  # what setup reads
        self.target_columns = list(target_columns)
        self.feature_columns = list(feature_columns) if feature_columns else list(target_columns)
        self.columns = list(dict.fromkeys(self.target_columns + self.feature_columns + self.known.columns))
        self.frame: SeriesFrame | None = None
        self.bounds: SplitBoundaries | None = None
        self.spans: Spans | None = None  # per split, per series the [start, stop) rows (:func:`.splits.split_spans`)
        self.stats: FittedStatistics | None = None
        self.gaps: Gaps | None = None  # the runs of missing values, filled or left missing
        self.restored = False  # statistics came from load_state_dict: setup never refits them
        self.serves_seasonal_base = False  # batches carry seasonal_base (model.residual asks, see serve_seasonal_base)

    # Sizes the model needs, known from the config alone (no setup()): LightningCLI links them to the model.
    @property
    def num_features(self) -> int:
        return len(self.feature_columns)

    @property
    def num_targets(self) -> int:
        return len(self.target_columns)

    @property
    def num_known_features(self) -> int:
        return self.known.size

    @property
    def has_validation(self) -> bool:
        """Whether there is a validation split: the one place the model, checkpoints and callbacks ask."""
        return has_validation(self.hparams.val_fraction, self.hparams.val_start)

    def setup(self, stage: str) -> None:
        hp = self.hparams
        forecast = stage == "predict" and hp.predict_mode == "forecast"  # no split needed to forecast past the end
        split_options = (hp.val_fraction, hp.test_fraction, hp.val_start, hp.test_start)
        if self.frame is None:
            self.frame = read_frame(self.source, self.columns, *(hp[key] for key in READ_OPTIONS))
            self.frame = self.known.take_future_rows(self.frame, self.target_columns)  # out of splits and filling
        if not forecast:
            self.bounds = split_boundaries(self.frame, *split_options)
        self.spans = split_spans(self.frame, self.bounds)
        if self.gaps is None:  # filled once, from observations up to the end of each value's split
            self.gaps = handle_missing(self.frame, hp.missing, hp.max_gap, self.spans)
        if stage == "predict":  # in setup, before any callback writes: no window, no output at all
            split = "forecast" if forecast else hp.predict_split
            sizes = (hp.lookback, hp.horizon, self.gaps.finite, self.known.history)
            check_predict_windows(self.frame, self.spans, split, *sizes)
        if forecast:
            return  # statistics come from the checkpoint
        sizes = (hp.lookback, hp.horizon, hp.stride, self.gaps.finite, self.known.history)
        windows = SplitWindows.build(self.frame, self.spans, *sizes)
        check_lag_history(self.frame, self.spans, windows, self.known.history, hp.lookback, hp.horizon, *split_options)
        check_split_windows(self.frame, self.spans, windows, hp.lookback, hp.horizon, *split_options)
        if stage != "predict" and not self.restored:
            options = (hp.scaler, hp.outliers, (*hp.outlier_quantiles,), hp.outlier_k)
            fit = partial(FittedStatistics.fit, self.frame, self.spans["train"], *options)
            self.stats = fit_on_rank_zero(fit)  # under DDP: fitted on rank zero, sent to all ranks
            targets = self.frame.column_index(self.target_columns)
            summary = split_summary(self.frame, self.spans, windows, self.gaps, targets, self.stats.clipped)
            for level, message in summary:
                log.log(level, message)

    def window_index(self, split: str, skip_missing: bool = True, stride: int | None = None) -> WindowIndex:
        """Window positions of ``split`` (``train``, ``val``, ``test``, ``all`` or ``forecast``) every ``stride`` steps
        (default: ``data.stride`` for ``train``, else 1); windows touching a value left missing (``missing: drop``,
        runs over ``max_gap``) are skipped unless ``skip_missing`` is False."""
        hp, finite = self.hparams, self.gaps.finite if skip_missing else None
        stride = stride or SplitWindows.default_stride(split, hp.stride)
        return split_windows(self.frame, self.spans, split, hp.lookback, hp.horizon, stride, finite, self.known.history)

    def season_length(self) -> int | None:
        """``data.season_length``, or the one inferred from the time step (after setup)."""
        hp = self.hparams
        return hp.season_length if hp.season_length is not None else infer_season_length(self.frame)

    def residual_season(self, required: bool = False) -> int | None:
        """The season of ``model.residual: seasonal_naive`` (:func:`.seasonal_lags.residual_season`), after setup;
        ``None`` when there is none, and with ``required`` a ValueError saying which option to set."""
        hp = self.hparams
        options = (self.known.lags, hp.horizon, self.season_length(), hp.lookback + self.known.history)
        return residual_season(*options, required=required)

    def serve_seasonal_base(self) -> int:
        """From now on batches carry ``seasonal_base`` (asked by ``model.residual: seasonal_naive`` at setup; no other
        run pays for it); returns the season, or raises the ValueError of :meth:`residual_season`."""
        self.serves_seasonal_base = True
        return self.residual_season(required=True)

    def dataset(self, split: str, stride: int | None = None) -> WindowDataset:
        """The windows of ``split`` (every ``stride`` steps) with the fitted (or checkpoint-restored) statistics."""
        if self.stats is None:
            raise RuntimeError(
                "no fitted statistics: predict needs --ckpt_path with a checkpoint written by fit (the scaling and "
                "clip bounds of the training span are stored there)"
            )
        hp, frame = self.hparams, self.frame
        stats = self.stats.for_series(frame.series_names, frame.source)  # refuses a series training never saw
        is_train = split == "train"
        index, clip = self.window_index(split, stride=stride), is_train or hp.clip_eval_inputs
        window = (split == "forecast", hp.lookback, hp.horizon)
        known = self.known.inputs(frame, stats, index, *window, clip=clip, target_columns=self.target_columns)
        return WindowDataset(
            frame.values,
            index,
            stats,
            feature_idx=frame.column_index(self.feature_columns),
            target_idx=frame.column_index(self.target_columns),
            lookback=hp.lookback,
            horizon=hp.horizon,
            series_starts=frame.offsets[:-1],
            clip_inputs=clip,
            clip_targets=is_train or hp.clip_eval_targets,
            with_targets=split != "forecast",
            season_length=self.season_length(),
            window_norm=hp.window_norm,
            known=known,
            gaps=self.gaps,
            residual_season=self.residual_season() if self.serves_seasonal_base else None,
            series_ids=np.asarray([self.stats.series_names.index(n) for n in frame.series_names], dtype=np.int64),
        )

    @property
    def training_series(self) -> list[str]:
        """The series the statistics were fitted on, in their order (a batch's ``series_id`` indexes it); empty
        before fit's setup or a checkpoint gave them."""
        return [] if self.stats is None else list(self.stats.series_names)

    def _loader(self, split: str, mode: LoaderMode = "eval", stride: int | None = None) -> DataLoader:
        """Under DDP this rank's share of the windows; on one process a training order that resumes mid-epoch."""
        options = {key: self.hparams[key] for key in LOADER_OPTIONS}
        return window_loader(self.dataset(split, stride), self.trainer, mode, split=split, **options)

    def train_dataloader(self) -> DataLoader | DeviceWindows:
        return train_loader(self._loader("train", "train"), self.trainer, self.hparams.device_resident)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val") if self.has_validation else []

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        hp = self.hparams
        split = "forecast" if hp.predict_mode == "forecast" else hp.predict_split
        return self._loader(split, "predict", stride=hp.backtest_stride)

    def describe_windows(self, window_ids: np.ndarray, forecast: bool) -> pd.DataFrame:
        """Series name and timestamps of each window: one row per window (input start, first and last target)."""
        return self.frame.describe_windows(window_ids, self.hparams.lookback, self.hparams.horizon, forecast)

    def target_times(self, window_ids: np.ndarray, forecast: bool) -> np.ndarray:
        """``(B, H)`` int64 timestamps of each window's target steps (future ones from the series' time step)."""
        return self.frame.target_times(window_ids, self.hparams.lookback, self.hparams.horizon, forecast)

    def _settings(self) -> dict[str, object]:
        hp = self.hparams
        settings = {"feature_columns": list(self.feature_columns), "target_columns": list(self.target_columns)}
        settings.update(lookback=int(hp.lookback), horizon=int(hp.horizon), scaler=str(hp.scaler))
        settings.update(outliers=str(hp.outliers), window_norm=str(hp.window_norm), **self.known.settings())
        return settings

    def state_dict(self) -> dict:
        """The fitted statistics and the settings they belong to, as plain tensors and strings (:func:`data_state`)."""
        return {} if self.stats is None else data_state(self.stats, self.frame, self._settings())

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore the training statistics; a checkpoint of another column set, window or format is an error."""
        if state_dict:  # empty: saved before fit had statistics
            self.stats, self.restored = restore_statistics(state_dict, self._settings(), self.columns), True
            check_restored_lags(state_dict, self.known.lags)
        if state_dict and self.frame is not None and self.frame.time_step is None and state_dict["time_step"] > 0:
            self.frame.time_step = state_dict["time_step"]
