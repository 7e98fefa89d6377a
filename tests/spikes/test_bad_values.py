"""Bad values and level shifts named by value and time, on real series with injected errors; quiet on the real ones."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lightning_lstm.data.reading import bundled_series_path, read_frame
from lightning_lstm.spikes.bad_values import anomalies_in_spike_windows, find_local_anomalies, step_words
from lightning_lstm.spikes.records import LocalAnomaly, SpikeRecord
from tests.helpers import GLUCOSE_EXCERPT


@pytest.fixture(scope="module")
def co2() -> pd.DataFrame:
    frame = pd.read_csv(bundled_series_path())
    frame["co2"] = frame["co2"].interpolate()
    return frame


def _scan(frame: pd.DataFrame, columns: list[str], time_column: str, gap_before=None) -> list[LocalAnomaly]:
    values = frame[columns].to_numpy(np.float32)
    rows = np.arange(len(values))
    times = frame[time_column].astype(str).tolist()
    return find_local_anomalies(values, columns, rows, (0, len(values)), "s", times, gap_before=gap_before)


def test_injected_values_are_named_with_value_time_and_ratio(co2):
    broken = co2.copy()
    broken.loc[700, "co2"] = 10.0  # 3% of its neighbours
    broken.loc[1200, "co2"] *= 3
    found = _scan(broken, ["co2"], "date")
    assert [(a.kind, a.row) for a in found] == [("bad_value", 1200), ("bad_value", 700)]
    drop = found[1]
    assert drop.time == str(broken.loc[700, "date"]) and drop.value == pytest.approx(10.0)
    text = drop.describe("neighbouring weeks")
    assert text.startswith(f"co2 = 10 at {broken.loc[700, 'date']} is 3.1% of the median of the neighbouring weeks")
    assert "is 3x the median" in found[0].describe() or "is 3.01x the median" in found[0].describe()


def test_a_level_shift_is_one_shift_at_its_date_not_bad_values(co2):
    shifted = co2.copy()
    shifted.loc[1100:, "co2"] += 25
    found = _scan(shifted, ["co2"], "date")
    assert [(a.kind, a.row) for a in found] == [("level_shift", 1100)]
    assert found[0].after - found[0].reference == pytest.approx(25, abs=3)
    assert "moves from a median of" in found[0].describe() and "and stays there" in found[0].describe()


def test_real_series_have_nothing_that_stands_out(co2):
    assert _scan(co2, ["co2"], "date") == []
    glucose = pd.read_csv(GLUCOSE_EXCERPT)
    times = pd.to_datetime(glucose["datetime"]).to_numpy().astype("datetime64[ns]").astype(np.int64)
    gaps = np.concatenate([[False], np.diff(times) > 1.5 * 300e9])
    # Meal ramps of 40-80 mg/dL within an hour, the sensor's plateaus and the steps across 3-hour gaps are real.
    assert _scan(glucose, ["glucose", "isig"], "datetime", gap_before=gaps) == []


def test_a_jump_across_a_gap_in_time_is_no_shift(co2):
    moved = co2.copy()
    moved.loc[1100:, "co2"] += 25  # as if the series had moved during a gap before row 1100
    gaps = np.zeros(len(moved), dtype=bool)
    gaps[1100] = True
    assert [a.row for a in _scan(moved, ["co2"], "date")] == [1100]
    assert _scan(moved, ["co2"], "date", gap_before=gaps) == []


def test_step_words_follow_the_time_step():
    assert step_words(3600 * 10**9, True) == "neighbouring hours"
    assert step_words(7 * 86400 * 10**9, True) == "neighbouring weeks"
    assert step_words(300 * 10**9, True) == "neighbouring 5-minute readings"
    assert step_words(None, False) == "neighbouring values"


def _spike(window_ids: list[int], step: int) -> SpikeRecord:
    windows = [
        {"window_id": w, "series": "co2", "input_start": "a", "target_start": "b", "target_end": "c", "loss": 1.0}
        for w in window_ids
    ]
    return SpikeRecord(
        epoch=step // 25,
        global_step=step,
        batch_idx=step % 25,
        batches_in_epoch=25,
        loss=9.0,
        baseline=1.0,
        score=20.0,
        threshold=6.0,
        grad_norm=0.1,
        grad_score=1.0,
        grad_spike=False,
        lr=1e-3,
        batch_size=64,
        nominal_batch_size=64,
        nonfinite=False,
        skipped=False,
        top_windows=windows,
    )


def test_only_values_inside_the_spikes_windows_are_scanned_and_counted(tmp_path, co2):
    broken = co2.copy()
    broken.loc[[700, 1500], "co2"] = 0.4
    path = tmp_path / "co2.csv"
    broken.to_csv(path, index=False)
    frame = read_frame(path, ["co2"], "date", None, "error", None)
    frame.values = np.nan_to_num(frame.values, nan=float(np.nanmedian(frame.values)))  # the 59 gaps: no matter here
    spikes = [_spike([660, 680], 30), _spike([690], 55), _spike([100], 80)]  # windows of 56 rows; none holds row 1500
    found = anomalies_in_spike_windows(frame, spikes, lookback=52, horizon=4)
    assert [(a.row, a.spikes, a.time) for a in found] == [(700, 2, "1971-08-28")]
