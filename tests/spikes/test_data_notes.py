"""Data notes on real series: none on clean ones (the bundled CO2, Seattle's daily weather with its heavy-tailed rain,
Greensboro's hourly temperature), every injected sentinel named; heavy-tailed peaks are peaks, not errors."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lightning_lstm.data.datamodule import TimeSeriesDataModule
from lightning_lstm.data.reading import bundled_series_path
from lightning_lstm.spikes.bad_values import anomalies_in_spike_windows, spread_floor
from lightning_lstm.spikes.data_notes import data_notes_markdown, profiles_and_notes
from lightning_lstm.spikes.records import SpikeRecord

SERIES = Path(__file__).parents[2] / "scripts" / "diagnosis_series"


def notes_of(path: Path, time_column: str, target: str, features: list[str] | None = None, **options):
    data = TimeSeriesDataModule(
        path=str(path), time_column=time_column, target_columns=[target], feature_columns=features, lookback=24,
        horizon=1, **options,
    )  # fmt: skip
    data.setup("fit")
    return data, *profiles_and_notes(data)


def with_values(tmp_path: Path, file: str, column: str, rows: list[int], value=None, factor=None) -> Path:
    frame = pd.read_csv(SERIES / file)
    frame.loc[rows, column] = value if factor is None else frame.loc[rows, column] * factor
    path = tmp_path / file
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    "path, time_column, target, features",
    [
        (bundled_series_path(), "date", "co2", None),
        (SERIES / "seattle_weather_daily.csv", "time", "temp_max_c", ["temp_min_c", "precip_mm", "wind_ms"]),
        (SERIES / "greensboro_tmy3_hourly.csv", "time", "temp_air_c", None),
        (SERIES / "seattle_temps_hourly.csv", "time", "temp_f", None),
    ],
    ids=["co2", "seattle_weather", "greensboro_temperature", "seattle_temps"],
)
def test_no_note_on_clean_real_series(path: Path, time_column: str, target: str, features):
    _, profiles, notes, total = notes_of(path, time_column, target, features)
    assert profiles and notes == [] and total == 0
    assert data_notes_markdown(notes) == "No value is implausible for its column in the training or validation span."


def test_whole_unit_pressure_has_its_resolution_as_spread_floor():
    pressure = pd.read_csv(SERIES / "greensboro_tmy3_hourly.csv")["pressure_mbar"].to_numpy(np.float64)
    assert np.median(np.abs(np.diff(pressure))) == 0  # the old floor: 1e-6 of the level
    assert spread_floor(pressure) >= 1.0


@pytest.mark.parametrize(
    "file, column, target, features, change",
    [
        ("greensboro_tmy3_hourly.csv", "pressure_mbar", "temp_air_c", ["pressure_mbar"], {"value": -999.0}),
        ("greensboro_tmy3_hourly.csv", "temp_air_c", "temp_air_c", None, {"value": -273.15}),  # 0 K in Celsius
        ("seattle_temps_hourly.csv", "temp_f", "temp_f", None, {"factor": 0.02}),  # 2% of the value
        ("cycling_1s.csv", "cadence_rpm", "speed_ms", ["cadence_rpm", "power_w"], {"value": 65535.0}),
    ],
    ids=["pressure_-999", "temperature_0K", "temperature_2pct", "cadence_65535"],
)  # fmt: skip
def test_every_injected_sentinel_is_noted_with_its_time_and_why(tmp_path, file, column, target, features, change):
    length = len(pd.read_csv(SERIES / file))
    rows = [int(f * length) for f in (0.2, 0.35, 0.5)]  # inside the training span (the first 70%)
    path = with_values(tmp_path, file, column, rows, **change)
    options = {"duplicate_timestamps": "mean", "frequency": "s"} if file.startswith("cycling") else {}
    data, _, notes, total = notes_of(path, "time", target, features, **options)
    shipped = {n.time for n in notes_of(SERIES / file, "time", target, features, **options)[2] if n.column == column}
    mine = [n for n in notes if n.column == column]
    times = {str(t) for t in pd.read_csv(path).loc[rows, "time"]}
    noted = {n.time for n in mine}
    assert times <= noted and noted - times <= shipped and total == len(notes)  # cycling: the ride's start as shipped
    assert all(n.why and np.isfinite(n.reference) for n in mine)
    table = data_notes_markdown(notes)
    assert all(t in table for t in times) and "| column | series | time | value |" in table


def test_heavy_tailed_volume_peaks_are_peaks_and_a_sentinel_is_a_bad_value(tmp_path):
    length = len(pd.read_csv(SERIES / "aapl_daily.csv"))
    path = with_values(tmp_path, "aapl_daily.csv", "volume_shares", [int(0.3 * length)], value=9.99e11)
    data, profiles, notes, _ = notes_of(path, "time", "volume_shares", ["close_usd"], frequency="B")
    (note,) = notes  # the volume's real peaks (up to 10x a typical day) are no note
    assert str(pd.read_csv(path).loc[int(0.3 * length), "time"]).startswith(note.time)
    assert note.value == pytest.approx(9.99e11)
    frame = data.frame
    volume = frame.values[:, frame.column_index(["volume_shares"])[0]].astype(np.float64)
    train_end = int(data.bounds.val_row[0])
    volume[note.row] = -np.inf
    peaks = np.argsort(np.where(np.arange(len(volume)) < train_end - 30, volume, -np.inf))[-5:]  # the 5 largest
    windows = [{"window_id": int(r) - 10, "series": "s", "input_start": "", "target_start": "", "target_end": "",
                "loss": 1.0} for r in [*peaks, note.row]]  # fmt: skip
    spike = SpikeRecord(1, 10, 1, 10, 5.0, 1.0, 9.0, 6.0, None, None, False, 0.01, 8, 8, False, False, windows)
    found = anomalies_in_spike_windows(frame, [spike], 20, 1, profiles)
    kinds = {a.row: a.kind for a in found if a.column == "volume_shares" and a.kind != "level_shift"}
    assert kinds[note.row] == "bad_value"
    standing_out = [kinds[int(r)] for r in peaks if int(r) in kinds]  # the peaks far from their neighbours
    assert standing_out and set(standing_out) == {"peak"}
    assert "x the median" in next(a for a in found if a.row == note.row).describe()


def test_the_doctor_report_has_a_data_notes_section(tmp_path):
    from lightning_lstm.doctor.options import DoctorOptions
    from lightning_lstm.doctor.ranking import rank
    from lightning_lstm.doctor.report import report_markdown

    length = len(pd.read_csv(SERIES / "seattle_temps_hourly.csv"))
    path = with_values(tmp_path, "seattle_temps_hourly.csv", "temp_f", [int(0.3 * length)], value=-999.0)
    _, _, notes, total = notes_of(path, "time", "temp_f")
    (note,) = notes
    summary = {"probe_epochs": 1, "jobs": 1, "wall_s": 1.0, "estimate_s": 1.0, "findings": [], "candidates": []}
    sections = []
    for context in ({"data_notes": [asdict(note)], "data_notes_total": total}, {}):
        probe = {"spikes": [], "recorder": {"steps": [0]}, "wall_s": 1.0, "context": context}
        rows, winner = rank(probe, [], 0.02)
        report = report_markdown(summary, rows, winner, probe, None, DoctorOptions())
        sections.append(report.split("## Data notes\n\n")[1].split("\n\n## ")[0])
    assert sections[0].startswith("Values implausible for their column in the training or validation span")
    assert f"| temp_f | series | {note.time} | -999 |" in sections[0]
    assert sections[1].startswith("No value is implausible for its column in the training or validation span.")


def _profile(values) -> object:
    from lightning_lstm.spikes.data_notes import column_profile

    return column_profile(np.asarray(values, dtype=np.float64), "c", "s")[0]


def test_a_frequent_code_at_the_edge_of_the_range_is_noted_and_left_out_of_the_range():
    rng = np.random.default_rng(0)
    visibility = rng.choice([64, 97, 113, 129, 161, 193], size=2000).astype(float)
    visibility[::9] = 9999.0  # Miami's missing-data code, in 11% of the rows: it sets the 99.9% quantile
    profile = _profile(visibility)
    assert profile.codes == {9999.0: 223} and profile.high == 193.0
    assert profile.why_implausible(9999.0, 0.0).startswith("a code, not a reading: 9999 in 223 training rows")
    metres = rng.choice([800.0, 11300.0, 16100.0, 16100.0, 16100.0, 16100.0, 16100.0, 24000.0], size=3000)
    metres[:1000] = -9900.0  # Sand Point's code: within the readings' range, but below 0 where none of them is
    assert _profile(metres).codes == {-9900.0: 1000}


def test_repeated_edges_of_real_readings_are_no_codes():
    rng = np.random.default_rng(1)
    ghi = np.where(rng.random(3000) < 0.5, 0.0, rng.integers(1, 1000, 3000))  # night zeros
    counts = rng.poisson(3, 3000).astype(float)
    flags = rng.integers(0, 2, 3000).astype(float)
    clouds = rng.integers(0, 11, 3000).astype(float)
    for column in (ghi, counts, flags, clouds):
        assert _profile(column).codes == {}


def test_the_range_margin_widens_on_a_heavy_tailed_side_only():
    from lightning_lstm.spikes.data_notes import MAX_RANGE_MARGIN, RANGE_MARGIN, SENTINEL_WIDTHS

    rng = np.random.default_rng(2)
    volume = np.exp(rng.normal(17.8, 0.8, 3000))  # a daily volume: its 99.9% quantile ~9 IQRs above the median
    profile = _profile(volume)
    low_margin, high_margin = profile.margins
    assert low_margin == RANGE_MARGIN and RANGE_MARGIN < high_margin <= MAX_RANGE_MARGIN
    record_day = profile.high + 1.8 * profile.width  # msft's 591 M shares: 1.8 range widths above its 99.9%
    assert profile.beyond(record_day) == pytest.approx(1.8)
    assert profile.why_implausible(record_day, 0.0) is None
    sentinel = profile.high + SENTINEL_WIDTHS * profile.width
    assert profile.why_implausible(sentinel, 0.0) and profile.beyond(sentinel) == pytest.approx(SENTINEL_WIDTHS)
    assert profile.why_implausible(profile.low - 1.2 * profile.width, 0.0)  # the light side keeps its margin
    temperature = rng.normal(55.0, 15.0, 3000)
    assert _profile(temperature).margins == (RANGE_MARGIN, RANGE_MARGIN)
    rain = np.where(rng.random(3000) < 0.9, 0.0, rng.exponential(2.0, 3000))  # no spread between its quartiles
    assert _profile(rain).margins == (RANGE_MARGIN, MAX_RANGE_MARGIN)
