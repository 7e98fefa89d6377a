"""Names the values behind a spike: robust local anomaly scores of the rows inside the spikes' top windows.

Each row is compared with the median of the ``k`` rows on its left and, separately, of the ``k`` rows on its right,
in units of the local spread (1.4826 x the neighbours' MAD, floored by the series' typical step-to-step change): a
**bad value** stands out from both sides in the same direction; a **level shift** is a row where the two sides'
medians differ by many spreads and both sides are flat. :func:`data_evidence` gathers the data's part of the
diagnosis' evidence, one column of one series' span at a time (the values may be a memory-mapped file larger than
memory); a data module without a frame adds nothing. Pure numpy, no Lightning.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any, get_args

import numpy as np

from lightning_lstm.data.column_stats import finite_column
from lightning_lstm.data.outliers import OutlierMethod, clip_bounds
from lightning_lstm.data.splits import span_rows
from lightning_lstm.robust import MAD_TO_SIGMA, median_abs_deviation
from lightning_lstm.spikes.records import LocalAnomaly, SpikeRecord

CLIP_METHODS = tuple(method for method in get_args(OutlierMethod) if method != "none")
"""The ``data.outliers`` methods whose effect the diagnosis weighs (every clipping method of ``OutlierMethod``)."""
NEIGHBOURS = 12
"""Rows on each side of a value that form its neighbourhood."""
BAD_SCORE = 10.0
"""A value is bad when it sits at least this many local spreads from the medians of both sides."""
SHIFT_SCORE = 10.0
"""A level shift moves the median by at least this many spreads (of the flatter side) and the typical step change."""
PEAK_SCORE = 3.0
"""A plausible value the intervention found is a ``peak`` only when it stands at least this many local spreads from
its neighbours; a value closer than that is an ordinary reading of a hard window, and is not named."""
GLOBAL_SHARE = 0.05
"""The local spread never falls below this share of the column's robust global spread."""


def step_words(time_step: int | None, is_datetime: bool) -> str:
    """ "neighbouring hours" for an hourly series, "neighbouring 5-minute readings" for a 5-minute one, and so on."""
    if not is_datetime or not time_step:
        return "neighbouring values"
    names = {60: "minutes", 3600: "hours", 86400: "days", 7 * 86400: "weeks"}
    seconds = time_step / 1e9
    for length, word in names.items():
        if abs(seconds - length) < 1e-6 * length:
            return f"neighbouring {word}"
    if 28 * 86400 <= seconds <= 31 * 86400:
        return "neighbouring months"
    minutes = seconds / 60
    return f"neighbouring {minutes:g}-minute readings" if minutes < 60 else "neighbouring values"


def spread_floor(column: np.ndarray) -> float:
    """The smallest local spread a column can show: the largest of its typical step-to-step change (1.4826 x the
    median absolute first difference), its resolution (the smallest non-zero step between distinct values: 1 for a
    pressure in whole hPa) and ``GLOBAL_SHARE`` of its robust global spread (1.4826 x MAD); never zero."""
    finite = column[np.isfinite(column)]
    if not len(finite):
        return 1e-12
    steps = np.abs(np.diff(column))
    steps = steps[np.isfinite(steps)]
    typical = float(np.median(steps)) * MAD_TO_SIGMA if len(steps) else 0.0
    distinct = np.unique(finite)
    resolution = float(np.min(np.diff(distinct))) if len(distinct) > 1 else 0.0
    middle = float(np.median(finite))
    spread = MAD_TO_SIGMA * float(np.median(np.abs(finite - middle)))
    return max(typical, resolution, GLOBAL_SHARE * spread, 1e-6 * float(np.median(np.abs(finite))), 1e-12)


def _side(column: np.ndarray, rows: np.ndarray, lo: int, hi: int, k: int, left: bool) -> tuple[np.ndarray, ...]:
    """Median and spread of the ``k`` rows left of each row (``left``) or right of it, inside ``[lo, hi)``."""
    offsets = np.arange(1, k + 1)
    idx = rows[:, None] - offsets if left else rows[:, None] + offsets  # (R, k)
    inside = (idx >= lo) & (idx < hi)
    block = np.where(inside, column[np.clip(idx, lo, hi - 1)], np.nan)
    block[~np.isfinite(block)] = np.nan
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN neighbourhoods at a series' edges
        count = np.sum(np.isfinite(block), axis=1)
        median = np.where(count > 0, np.nanmedian(np.where(count[:, None] > 0, block, 0.0), axis=1), np.nan)
        spread = 1.4826 * np.nanmedian(np.abs(np.where(count[:, None] > 0, block, 0.0) - median[:, None]), axis=1)
    return median, spread, count


def local_scores(
    full: np.ndarray, rows: np.ndarray, lo: int, hi: int, k: int, floor: float
) -> tuple[np.ndarray, np.ndarray]:
    """How far each of ``rows`` stands out from both its neighbourhoods: the smaller of its distances to the
    medians of the ``k`` rows on its left and on its right, in local spreads (floored by ``floor``), when both lie on
    the same side (else 0), and the mean of both medians.

    Args:
        full: the column, indexed by global row (only ``[lo, hi)`` is read).
        rows: ``(R,)`` global rows to score.

    Returns:
        ``(R,)`` scores and ``(R,)`` references.
    """
    x = full[rows]
    left_med, left_spread, left_n = _side(full, rows, lo, hi, k, left=True)
    right_med, right_spread, right_n = _side(full, rows, lo, hi, k, left=False)
    spread = np.fmax(np.fmax(left_spread, right_spread), floor)
    with np.errstate(invalid="ignore"):
        left_score, right_score = (x - left_med) / spread, (x - right_med) / spread
        both = (np.sign(left_score) == np.sign(right_score)) & (left_n >= 2) & (right_n >= 2)
        scores = np.where(both & np.isfinite(x), np.fmin(np.abs(left_score), np.abs(right_score)), 0.0)
        references = np.where(right_n > 0, np.where(left_n > 0, 0.5 * (left_med + right_med), right_med), left_med)
    return np.nan_to_num(scores, nan=0.0), references


def find_local_anomalies(
    values: np.ndarray,
    columns: list[str],
    rows: np.ndarray,
    series_bounds: tuple[int, int],
    series_name: str,
    times: list[str],
    neighbours: int = NEIGHBOURS,
    bad_score: float = BAD_SCORE,
    shift_score: float = SHIFT_SCORE,
    gap_before: np.ndarray | None = None,
    profiles: Mapping[str, Any] | None = None,
) -> list[LocalAnomaly]:
    """Bad values, peaks and level shifts among ``rows`` of one series.

    Args:
        values: ``(N, C)`` values of the whole frame (only rows ``series_bounds`` are read).
        columns: the ``C`` column names.
        rows: global rows to score (inside ``series_bounds``), e.g. every row of the spikes' top windows.
        series_bounds: ``(first, end)`` global rows of the series.
        series_name: the series' name, for the findings.
        times: one timestamp text per entry of ``rows``.
        neighbours: rows on each side that form a value's neighbourhood.
        bad_score: the score at or above which a value is bad.
        shift_score: the score at or above which a change of level is a shift.
        gap_before: ``(N,)`` bool over the frame's rows: a gap in time precedes the row. A neighbourhood that spans
            a gap shows no shift (the series may have moved during the gap).
        profiles: per column name, its :class:`~lightning_lstm.spikes.data_notes.ColumnProfile` (anything with
            ``why_implausible(value, score)``): a value that stands out is a ``bad_value`` when implausible for its
            column, else a ``peak``. Without a profile every value that stands out is a ``bad_value``.

    Returns:
        Findings, the highest score first; one level shift per column at most (its strongest row).
    """
    lo, hi = series_bounds
    rows = np.asarray(rows, dtype=np.int64)
    found: list[LocalAnomaly] = []
    for c, name in enumerate(columns):
        column = np.asarray(values[lo:hi, c], dtype=np.float64)
        full = np.full(hi, np.nan)
        full[lo:hi] = column
        profile = (profiles or {}).get(name)
        floor = getattr(profile, "floor", None) or spread_floor(column)  # the profile's: one floor per column
        x = full[rows]
        left_med, left_spread, left_n = _side(full, rows, lo, hi, neighbours, left=True)
        bad_scores, references = local_scores(full, rows, lo, hi, neighbours, floor)
        bad = np.isfinite(x) & (bad_scores >= bad_score)
        for i in np.flatnonzero(bad):
            where = (int(rows[i]), series_name, name, times[i], float(x[i]))  # row, series, column, time, value
            plausible = profile is not None and profile.why_implausible(float(x[i]), float(bad_scores[i])) is None
            kind = "peak" if plausible else "bad_value"
            right = float(_side(full, rows[i : i + 1], lo, hi, neighbours, left=False)[0][0])
            found.append(LocalAnomaly(kind, *where, float(references[i]), right, float(bad_scores[i])))
        # A shift starts at row r: the rows before it against r and the k - 1 rows after it, both sides flat.
        after_med, after_spread, after_n = _side(full, rows - 1, lo, hi, neighbours, left=False)
        with np.errstate(invalid="ignore"):
            jump = np.abs(after_med - left_med) / np.fmax(np.fmax(left_spread, after_spread), floor)
        ok = (left_n >= neighbours // 2) & (after_n >= neighbours // 2) & ~bad & np.isfinite(jump)
        if gap_before is not None:
            gaps = np.concatenate([[0], np.cumsum(np.asarray(gap_before[:hi], dtype=np.int64))])
            first, last = np.clip(rows - neighbours + 1, lo, hi), np.clip(rows + neighbours, lo, hi)
            ok &= gaps[last] - gaps[first] == 0
        # ... it happens in one step (a ramp, however steep, is no shift) and it lasts: over three
        # times the neighbourhood the medians still differ by half the step.
        long_left = _side(full, rows, lo, hi, 3 * neighbours, left=True)[0]
        long_after = _side(full, rows - 1, lo, hi, 3 * neighbours, left=False)[0]
        with np.errstate(invalid="ignore"):
            ok &= np.abs(long_after - long_left) >= 0.5 * np.abs(after_med - left_med)
            ok &= np.abs(x - full[np.clip(rows - 1, lo, hi - 1)]) >= 0.5 * np.abs(after_med - left_med)
        if ok.any() and np.max(np.where(ok, jump, 0.0)) >= shift_score:
            i = int(np.argmax(np.where(ok, jump, 0.0)))
            where = (int(rows[i]), series_name, name, times[i], float(x[i]))
            found.append(LocalAnomaly("level_shift", *where, float(left_med[i]), float(after_med[i]), float(jump[i])))
    return sorted(found, key=lambda a: -a.score if math.isfinite(a.score) else -math.inf)


def count_spikes_per_row(spike_rows: list[set[int]], anomalies: list[LocalAnomaly]) -> None:
    """Sets each anomaly's ``spikes``: how many spikes' top windows held its row."""
    for anomaly in anomalies:
        anomaly.spikes = sum(anomaly.row in rows for rows in spike_rows)


MAX_SPIKES_SCANNED = 200
"""The windows of at most this many spikes (the highest scores) are scanned."""


def anomalies_in_spike_windows(
    frame, spikes: list, lookback: int, horizon: int, profiles: Mapping[tuple[str, str], Any] | None = None
) -> list[LocalAnomaly]:
    """Bad values, peaks and level shifts inside the top windows of ``spikes``, each with the spikes whose windows
    held it.

    Args:
        frame: the data's :class:`~lightning_lstm.data.frame.SeriesFrame` (values, offsets, times).
        spikes: :class:`~lightning_lstm.spikes.records.SpikeRecord` objects; their ``top_windows[i]["window_id"]``
            are the windows' first global rows.
        lookback: input rows per window.
        horizon: target rows per window.
        profiles: ``{(series, column): ColumnProfile}`` (:func:`~lightning_lstm.spikes.data_notes.profiles_and_notes`)
            to tell a ``bad_value`` from a ``peak``; ``None``: every value that stands out is a ``bad_value``.

    Returns:
        The findings, highest score first.
    """
    width = lookback + horizon
    ranked = sorted(spikes, key=lambda s: -s.score if math.isfinite(s.score) else -math.inf)[:MAX_SPIKES_SCANNED]
    spike_rows = [
        {row for w in s.top_windows for row in range(int(w["window_id"]), int(w["window_id"]) + width)} for s in ranked
    ]
    every = np.asarray(sorted(set().union(*spike_rows)) if spike_rows else [], dtype=np.int64)
    if not len(every):
        return []
    times = frame.times
    gap_before = None
    if times is not None and frame.time_step:
        gap_before = np.concatenate([[False], np.diff(times) > 1.5 * frame.time_step])
    found: list[LocalAnomaly] = []
    series = frame.series_of(every)
    for s in np.unique(series):
        rows = every[series == s]
        bounds = (int(frame.offsets[s]), int(frame.offsets[s + 1]))
        if gap_before is not None:
            gap_before[bounds[0]] = False
        labels = frame.format_times(frame.time_of(rows))
        name = frame.series_names[s]
        mine = {column: p for (series, column), p in (profiles or {}).items() if series == str(name)} or None
        found += find_local_anomalies(
            frame.values, list(frame.columns), rows, bounds, name, labels, gap_before=gap_before, profiles=mine
        )
    count_spikes_per_row(spike_rows, found)
    return sorted(found, key=lambda a: -a.score if math.isfinite(a.score) else -math.inf)


def clip_effects(
    frame, spans: list[tuple[int, int]], anomalies: list[LocalAnomaly], quantiles: tuple[float, float] = (0.005, 0.995)
) -> dict[str, dict[str, int]]:
    """Per ``data.outliers`` method: training values outside its bounds, and how many named bad values are among them.

    Bounds are fitted as the data module fits them (each column and series on its own, default ``outlier_k``), on
    the training span with the bad values in it. One column of one span is read at a time.
    """
    bad = {(a.row, a.column) for a in anomalies if a.kind == "bad_value"}
    effects = {method: {"clipped": 0, "anomalies": 0} for method in CLIP_METHODS}
    for c, name in enumerate(frame.columns):
        for a, b in spans:
            column = np.asarray(frame.values[a:b, c], dtype=np.float64)
            finite = np.isfinite(column)
            rows, values = np.flatnonzero(finite) + a, column[finite]
            if not len(values):
                continue
            for method in CLIP_METHODS:
                low, high = clip_bounds(values.copy(), method, quantiles, None)
                cut = (values < low) | (values > high)
                effects[method]["clipped"] += int(cut.sum())
                effects[method]["anomalies"] += sum((int(r), name) in bad for r in rows[cut])
    return effects


def target_level(values: np.ndarray, spans: list[tuple[int, int]], targets: list[int]) -> tuple[float, float] | None:
    """The median of the finite training targets and their robust spread (1.4826 x MAD), pooled over the target
    columns and series spans, or ``None`` when there is none (:func:`target_distribution` without the tail)."""
    shape = target_distribution(values, spans, targets)
    return None if shape is None else shape[:2]


def target_distribution(
    values: np.ndarray, spans: list[tuple[int, int]], targets: list[int]
) -> tuple[float, float, float] | None:
    """The median, robust spread (1.4826 x MAD) and tail of the finite training targets, pooled over the target
    columns and series spans, or ``None`` when there is none.

    The tail is how far the 0.1% or 99.9% quantile lies from the median, in interquartile ranges (the larger side):
    2.3 for a normal distribution, 17 for daily rain, 4.5 for a stock's daily volume (``causes.HEAVY_TAIL``).
    Each column of each span is read on its own (:func:`~lightning_lstm.data.column_stats.finite_column`, float32 as
    stored) into one float32 array of the finite training targets, sorted in place; the median and the MAD are exact
    in float64 (no float64 copy, no temporaries the size of the data).
    """
    parts = [finite_column(values, a, b, c) for c in targets for a, b in spans]
    pooled = parts[0] if len(parts) == 1 else np.concatenate(parts)
    del parts
    n = pooled.size
    if not n:
        return None
    pooled.sort()
    middle = float(pooled[n // 2])
    median = middle if n % 2 else 0.5 * (float(pooled[n // 2 - 1]) + middle)
    low, q25, q75, high = (float(pooled[min(int(q * (n - 1)), n - 1)]) for q in (0.001, 0.25, 0.75, 0.999))
    tail = max(high - median, median - low) / max(q75 - q25, 1e-12 * max(abs(median), 1.0))
    return median, MAD_TO_SIGMA * median_abs_deviation(pooled, median), tail


def add_intervention_results(
    frame, anomalies: list[LocalAnomaly], tested: Mapping[tuple[int, str], Mapping[int, float]], profiles, named: float
) -> list[LocalAnomaly]:
    """Sets each anomaly's ``explains`` from the intervention test, and adds every tested value that explains at least
    ``named`` of some spike but did not stand out by its score (e.g. a drop within the local spreads of a noisy
    neighbourhood), classified as a ``bad_value`` or a ``peak`` by its column's profile.

    Args:
        tested: ``{(row, column): {global step: share}}`` (:class:`~lightning_lstm.spikes.intervention.Intervention`).
    """
    by_place = {(a.row, a.column): a for a in anomalies if a.kind != "level_shift"}
    floors: dict[tuple[int, int], float] = {}  # (series, column) -> spread floor, once per column
    for (row, column), shares in tested.items():
        if (row, column) in by_place:
            by_place[(row, column)].explains = {int(k): float(v) for k, v in shares.items()}
            continue
        if not shares or max(shares.values()) < named:
            continue
        s = int(frame.series_of(np.asarray([row]))[0])
        lo, hi, c = int(frame.offsets[s]), int(frame.offsets[s + 1]), frame.column_index([column])[0]
        profile = (profiles or {}).get((str(frame.series_names[s]), column))
        if (s, c) not in floors:  # the profile's floor where there is one, as the scores and the intervention use
            floors[(s, c)] = getattr(profile, "floor", None) or spread_floor(
                np.asarray(frame.values[lo:hi, c], dtype=np.float64)
            )
        a, b = max(lo, row - NEIGHBOURS), min(hi, row + NEIGHBOURS + 1)  # the value and its neighbourhoods only
        part = np.asarray(frame.values[a:b, c], dtype=np.float64)
        score, reference = local_scores(part, np.asarray([row - a]), 0, b - a, NEIGHBOURS, floors[(s, c)])
        value, series = float(part[row - a]), str(frame.series_names[s])
        plausible = profile is not None and profile.why_implausible(value, float(score[0])) is None
        if plausible and not score[0] >= PEAK_SCORE:
            continue  # an ordinary reading: replacing it moves a hard window's loss, but it is no peak
        time = frame.format_times(frame.time_of(np.asarray([row])))[0]
        anomaly = LocalAnomaly(
            "peak" if plausible else "bad_value", row, series, column, time, value, float(reference[0]),
            float(reference[0]), float(score[0]), explains={int(k): float(v) for k, v in shares.items()},
        )  # fmt: skip
        anomalies.append(anomaly)
    return anomalies


def data_evidence(
    datamodule: Any,
    records: list[SpikeRecord],
    profiles: Mapping[tuple[str, str], Any] | None = None,
    tested: Mapping[tuple[int, str], Mapping[int, float]] | None = None,
    named: float = 0.25,
) -> dict[str, Any]:
    """The :class:`~lightning_lstm.spikes.records.RunContext` fields that come from the data ({} without a frame).

    Args:
        datamodule: the run's data module (its ``frame``, ``bounds`` and ``hparams``).
        records: the run's spikes.
        profiles: ``{(series, column): ColumnProfile}`` of the training span, to tell bad values from peaks.
        tested: the intervention test's ``{(row, column): {global step: share}}``, set as the anomalies' ``explains``.
        named: the share of a spike a value must explain to be added when its score did not name it.
    """
    frame, bounds = getattr(datamodule, "frame", None), getattr(datamodule, "bounds", None)
    hp = getattr(datamodule, "hparams", None)
    if frame is None or bounds is None or hp is None or "lookback" not in hp:
        return {}
    spans = span_rows(frame, bounds, "train")
    targets = frame.column_index(list(getattr(datamodule, "target_columns", frame.columns)))
    level = target_distribution(frame.values, spans, targets)
    width = int(hp.lookback) + int(hp.horizon)
    anomalies = anomalies_in_spike_windows(frame, records, int(hp.lookback), int(hp.horizon), profiles)
    if tested:
        anomalies = add_intervention_results(frame, anomalies, tested, profiles, named)
        spike_rows = [{r for w in s.top_windows for r in range(int(w["window_id"]), int(w["window_id"]) + width)}
                      for s in records]  # fmt: skip
        count_spikes_per_row(spike_rows, anomalies)
    stats = getattr(datamodule, "stats", None)
    quantiles = tuple(hp.get("outlier_quantiles", (0.005, 0.995)))
    return {
        "scaler": str(hp.get("scaler", "standard")),
        "target_median": level[0] if level is not None else None,
        "target_std": float(level[1]) if level is not None else None,
        "target_tail": float(level[2]) if level is not None else None,
        "outliers_clipped": int(sum(stats.clipped.values())) if stats is not None else None,
        "anomalies": anomalies,
        "clip_effects": clip_effects(frame, spans, anomalies, quantiles) if records else {},
        "window_width": width,
        "neighbour_words": step_words(frame.time_step, frame.is_datetime),
    }
