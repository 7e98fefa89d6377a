"""Gaps: ``data.max_gap`` bounds every fill, longer runs skip their windows, no fill reads a later split, and the
``observed`` mask marks exactly the filled targets."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from lightning_lstm.data.datamodule import TimeSeriesDataModule
from lightning_lstm.data.device_windows import DeviceWindows
from lightning_lstm.data.frame import SeriesFrame
from lightning_lstm.data.missing import handle_missing
from lightning_lstm.data.splits import Spans, SplitBoundaries, split_spans

ROWS = 100
SHORT, LONG = [20, 21], list(range(40, 46))  # a 2-step run (filled) and a 6-step run (left missing)


def line_csv(tmp_path: Path, empty: list[int]) -> Path:
    t = np.arange(ROWS, dtype=np.float64)
    table = pd.DataFrame({"date": pd.date_range("2022-01-01", periods=ROWS, freq="D"), "a": t})
    table.loc[empty, "a"] = np.nan
    path = tmp_path / "line.csv"
    table.to_csv(path, index=False)
    return path


def module(path: Path, **options) -> TimeSeriesDataModule:
    options = {"target_columns": ["a"], "lookback": 4, "horizon": 2, "window_norm": "none", "shuffle": False, **options}
    dm = TimeSeriesDataModule(path=str(path), val_start="2022-03-02", test_start="2022-03-22", **options)
    dm.setup("fit")
    return dm


def rows_of(dm: TimeSeriesDataModule, split: str) -> list[set[int]]:
    index = dm.window_index(split)
    return [set(range(s, s + 6)) for s in index.starts(np.arange(len(index)))[0].tolist()]


@pytest.mark.parametrize("missing", ["ffill", "interpolate"])
def test_runs_up_to_max_gap_are_filled_and_windows_touching_longer_ones_are_skipped(
    tmp_path: Path, missing: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        dm = module(line_csv(tmp_path, SHORT + LONG), missing=missing, max_gap=3)
    a = dm.frame.values[:, 0]
    assert a[SHORT].tolist() == ([19, 19] if missing == "ffill" else [20, 21])
    assert np.isnan(a[LONG]).all()
    # Training targets lie in rows 0..59: windows start at 0..54; the 11 starting at 35..45 touch rows 40..45.
    assert len(dm.window_index("train", skip_missing=False)) == 55 and len(dm.window_index("train")) == 55 - 11
    assert all(not window & set(LONG) for window in rows_of(dm, "train"))
    assert (
        "train: 2 filled (longest run 2 steps), 6 left missing (longest run 6 steps), 11 of 55 windows skipped for "
        "gaps" in caplog.text
    )
    dm_wide = module(line_csv(tmp_path, SHORT + LONG), missing=missing, max_gap=6)
    assert np.isfinite(dm_wide.frame.values).all() and len(dm_wide.window_index("train")) == 55


def test_max_gap_zero_fills_nothing_and_skips_like_drop(tmp_path: Path) -> None:
    path = line_csv(tmp_path, SHORT + LONG)
    filled_none = module(path, missing="interpolate", max_gap=0)
    drop = module(path, missing="drop")
    assert np.isnan(filled_none.frame.values[SHORT + LONG, 0]).all()
    for split in ("train", "val", "test"):
        kept, dropped = filled_none.window_index(split), drop.window_index(split)
        np.testing.assert_array_equal(kept.starts(np.arange(len(kept)))[0], dropped.starts(np.arange(len(dropped)))[0])


def frame_of(column: list[float]) -> SeriesFrame:
    values = np.asarray(column, dtype=np.float32)[:, None]
    return SeriesFrame(values, ["c0"], ["series"], np.array([0, len(values)]), None, False, 1, "mem")


def spans_at(frame: SeriesFrame, val_row: int, test_row: int) -> Spans:
    return split_spans(frame, SplitBoundaries(np.array([val_row]), np.array([test_row]), val_row, test_row))


def test_interpolation_never_reads_a_value_of_a_later_split() -> None:
    frame = frame_of([0, 1, 2, np.nan, np.nan, 5, 6, np.nan, 8])
    handle_missing(frame, "interpolate", max_gap=3, spans=spans_at(frame, 4, 8))
    # Row 3 (training) sees no later training value: it holds 2 (row 5 is validation). Row 4 (validation) reaches
    # back to row 2 and forward to row 5: 4. Row 7 (validation) may not read row 8 (test): it holds 6.
    assert frame.values[:, 0].tolist() == [0, 1, 2, 2, 4, 5, 6, 6, 8]
    unsplit = frame_of([0, 1, 2, np.nan, np.nan, 5, 6, np.nan, 8])
    handle_missing(unsplit, "interpolate", max_gap=3)  # forecast mode: the whole file is history
    assert unsplit.values[:, 0].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8]


def test_a_leading_run_with_no_observation_in_its_split_stays_missing() -> None:
    frame = frame_of([np.nan, np.nan, 2, 3, 4, 5])
    gaps = handle_missing(frame, "ffill", max_gap=3, spans=spans_at(frame, 2, 4))
    assert np.isnan(frame.values[:2, 0]).all() and not gaps.filled.any() and gaps.left_missing
    later = frame_of([np.nan, np.nan, 2, 3, 4, 5])
    handle_missing(later, "ffill", max_gap=3, spans=spans_at(later, 3, 4))  # row 2 is training: the run takes its value
    assert later.values[:, 0].tolist() == [2, 2, 2, 3, 4, 5]


def test_observed_is_false_exactly_at_filled_targets_and_absent_without_them(tmp_path: Path) -> None:
    dm = module(line_csv(tmp_path, [20, 21, 70]), missing="interpolate")
    for split, filled in (("train", {20, 21}), ("val", {70}), ("test", set())):
        dataset = dm.dataset(split)
        batch = dataset.__getitems__(list(range(len(dataset))))
        rows = batch["window_id"][:, None].numpy() + 4 + np.arange(2)  # (B, H) target rows
        expected = ~np.isin(rows, list(filled))[:, :, None]
        np.testing.assert_array_equal(batch["observed"].numpy(), expected)
        assert (~batch["observed"]).sum() == sum(np.isin(rows, list(filled)).ravel())
    clean = module(line_csv(tmp_path, []), missing="interpolate")
    assert "observed" not in clean.dataset("train")[0]
    dropped = module(line_csv(tmp_path, [20, 21]), missing="drop")
    assert "observed" not in dropped.dataset("train")[0]  # drop fills nothing: every served target is observed


def test_device_resident_batches_carry_the_same_observed_mask(tmp_path: Path) -> None:
    dm = module(line_csv(tmp_path, [20, 21, 30]), missing="interpolate", batch_size=8)
    loader = dm.train_dataloader()
    on_device = DeviceWindows(loader, "cpu")
    for batch, gathered in zip(loader, on_device, strict=True):
        assert torch.equal(batch["observed"], gathered["observed"]) and torch.equal(batch["y"], gathered["y"])
    assert sum(int((~b["observed"]).sum()) for b in on_device) == 3 * 2  # each filled row: a target of H windows
