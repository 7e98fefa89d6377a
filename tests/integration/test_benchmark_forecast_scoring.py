"""The benchmark's scores by hand: seasonal naive of each backtest step, MASE scale, coverage and the peer's steps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scripts.forecast_scoring import mase_scale, same_steps, score, seasonal_naive

HOUR = 3_600_000_000_000  # ns


def hourly(values: list[float]) -> pd.Series:
    start = pd.Timestamp("2024-01-01").value
    return pd.Series(np.asarray(values, dtype=float), index=start + HOUR * np.arange(len(values)))


def backtest(series: pd.Series, origin_row: int, forecast: list[float], **columns) -> pd.DataFrame:
    steps = np.arange(1, len(forecast) + 1)
    times = pd.to_datetime(series.index[origin_row + steps])
    table = pd.DataFrame({"forecast_origin": pd.to_datetime(series.index[origin_row]), "timestamp": times})
    return table.assign(step=steps, y=forecast, y_true=series.to_numpy()[origin_row + steps], **columns)


def test_seasonal_naive_repeats_the_last_known_season() -> None:
    series = hourly(list(range(10)))
    table = backtest(series, 5, [0.0, 0.0, 0.0])  # steps 1-3 at rows 6, 7, 8
    # m = 2: steps 1 and 2 look 2 rows back, step 3 looks 4 rows back (row 5, the origin, is the last known value).
    np.testing.assert_array_equal(seasonal_naive(series, HOUR, table, 2), [4, 5, 4])
    assert np.isnan(seasonal_naive(series, HOUR, table, 8)[0])  # before the series starts


def test_score_mae_mase_ratios_and_coverage() -> None:
    series = hourly([0, 10, 0, 10, 0, 10, 1, 9, 1, 9])
    table = backtest(series, 5, [1.0, 10.0, 2.0, 9.0], y_q10=[0.5, 8.0, 0.0, 9.5], y_q90=[2.0, 12.0, 3.0, 11.0])
    result = score(table, "y", series, HOUR, {"day": 2, "week": 4}, scale=2.0)
    assert result["mae"] == pytest.approx((0 + 1 + 1 + 0) / 4) and result["mase"] == pytest.approx(0.25)
    # the 2-step naive: rows 4, 5, 4, 5 = 0, 10, 0, 10 against 1, 9, 1, 9
    assert result["naive_day"] == pytest.approx(1.0) and result["ratio_day"] == pytest.approx(0.5)
    assert result["ratio_best"] == pytest.approx(result["mae"] / min(result["naive_day"], result["naive_week"]))
    assert result["coverage_80"] == pytest.approx(3 / 4)  # 9 lies below the last band [9.5, 11]


def test_mase_scale_is_the_training_spans_seasonal_naive_error() -> None:
    series = hourly([0, 2, 1, 5, 1, 100])
    assert mase_scale(series, 5, 2) == pytest.approx((1 + 3 + 0) / 3)  # row 5 is outside the training span


def test_peer_forecasts_are_laid_on_our_steps_or_refused() -> None:
    series = hourly(list(range(12)))
    ours = backtest(series, 5, [0.0, 0.0])
    peer = ours[["forecast_origin", "timestamp"]].assign(forecast=[6.5, 7.5]).iloc[::-1]
    np.testing.assert_array_equal(same_steps(ours, peer, "y")["y"], [6.5, 7.5])
    with pytest.raises(ValueError, match="forecast 1 of our 2 backtest steps"):
        same_steps(ours, peer.iloc[:1], "y")


def test_panel_score_pools_steps_and_averages_each_series_mase() -> None:
    """Series b is series a doubled: equal MASE, twice the MAE; the pooled MAE weighs every step alike."""
    from types import SimpleNamespace

    from lightning_lstm.data.frame import SeriesFrame
    from scripts.forecast_panel import panel_score

    a = hourly([0, 10, 0, 10, 0, 10, 1, 9, 1, 9])
    b = a * 2
    parts = [
        backtest(series, 5, forecast).rename(columns={"y": "departures", "y_true": "departures_true"}).assign(series=s)
        for s, series, forecast in (("a", a, [1.0, 10.0, 2.0, 9.0]), ("b", b, [2.0, 20.0, 4.0, 18.0]))
    ]
    frame = SeriesFrame(
        values=np.concatenate([a.to_numpy(), b.to_numpy()]).astype(np.float32)[:, None],
        columns=["departures"],
        series_names=["a", "b"],
        offsets=np.array([0, 10, 20]),
        times=np.concatenate([a.index, b.index]),
        is_datetime=True,
        time_step=HOUR,
        source="test",
    )
    data = SimpleNamespace(frame=frame, bounds=SimpleNamespace(val_row=np.array([8, 18])))  # 8 training rows each
    result = panel_score(pd.concat(parts), data, {"day": 2, "week": 4})
    assert result["series"] == 2 and result["steps"] == 8
    assert result["mae"] == pytest.approx((0.5 * 4 + 1.0 * 4) / 8)
    assert result["naive_day"] == pytest.approx((1.0 * 4 + 2.0 * 4) / 8) and result["ratio_day"] == pytest.approx(0.5)
    # training scale of a: the 2-step naive over 0, 10, 0, 10, 0, 10, 1, 9 errs 1/3 on average (b: 2/3)
    assert result["mase"] == pytest.approx(0.5 / (1 / 3))
    assert result["series_beaten"] == (1.0 if result["ratio_best"] < 1 else 0.0)  # both series alike
