"""Data notes: values implausible for their column, listed at fit time whether or not they cause spikes.

A value is **implausible** for its column (:meth:`ColumnProfile.why_implausible`) when it lies far outside the
column's training distribution (beyond the 0.1% / 99.9% quantiles by more than their distance: a robust measure
that a few sentinels do not move), or when it stands
out from both its neighbourhoods by far more than the column's own values ever do (its local score,
:func:`~lightning_lstm.spikes.bad_values.local_scores`, is over ``LOCAL_MARGIN`` times the 99.9% quantile of the
column's local scores over the training span, and at least ``BAD_SCORE``). So a sentinel (-999, 0 K, 65535) or a
reading at 2% of its neighbours in a smooth column is noted, while a heavy-tailed column's routine 5-10x peaks are
not. The same profile tells the diagnosis a ``bad_value`` from a ``peak``.

The validation span is noted too, judged by the training span's profile (the test span is never read).

Cost: ``O(rows)`` per column of each series' training and validation spans (``O(rows x NEIGHBOURS)`` for the local
scores, computed in chunks), once per fit. The data are never changed. Pure numpy, no Lightning.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lightning_lstm.data.splits import span_rows
from lightning_lstm.spikes.bad_values import BAD_SCORE, NEIGHBOURS, local_scores, spread_floor

TAIL_QUANTILE = 0.001
"""The quantiles ``(q, 1 - q)`` of the training values that bound the column's range."""
TAIL_ROWS = 5
"""... and at least this many rows lie beyond each of them (so a few errors in a short span never set the range)."""
RANGE_MARGIN = 1.0
"""A value is outside the training distribution beyond the range's quantiles by this many times their distance."""
HEAVY_SIDE = 3.0
"""A side of a column is heavy-tailed when its quantile (``low`` or ``high``) lies this many interquartile ranges from
the median (as ``causes.HEAVY_TAIL`` for a target); a column with no spread between its quartiles (rain: 0 in most
hours) is heavy on a side that has values beyond them."""
MAX_RANGE_MARGIN = 2.5
"""On a heavy-tailed side the margin grows with the tail, ``RANGE_MARGIN x tail / HEAVY_SIDE``, up to this: a real
peak of such a column (a stock's record volume 1.8 range widths above its 99.9% quantile, a burst of commits 1.6) is
no error, while sentinels lie 7 to 2,000 widths out."""
SENTINEL_WIDTHS = 5.0
"""A value this many range widths (``high - low``) beyond its column's range is no reading of it (a sentinel code:
-999, 65535, 9999.9): the diagnosis advises fixing it even when it causes no spike."""
SCORE_QUANTILE = 0.999
"""The quantile of the column's own local scores that sets how far a value may routinely stand out."""
LOCAL_MARGIN = 8.0
"""A value is implausible when its local score exceeds this many times that quantile (and ``BAD_SCORE``)."""
MAX_NOTES = 200
"""At most this many notes are kept (the rest are counted)."""
CODE_ROWS = 5
"""A code (a missing-data or error value such as 9999 or -9900) is an exact value repeated in at least this many rows,
at the edge of the column's range ..."""
CODE_GAP = 2.0
"""... separated from every other value by at least this many times their interquartile range (and their resolution),
and by more than their whole range or lying on the other side of 0 from all of them. The other values must hold at
least ``CODE_ROWS`` rows and 3 distinct values. Codes are left out of the range quantiles and routine scores, so a
code in a third of the rows (Sand Point's visibility -9900) does not set the range the other values are judged by."""
CHUNK_ROWS = 65_536
"""Rows scored at a time (the neighbourhood blocks are ``(rows, NEIGHBOURS)``)."""


@dataclass
class ColumnProfile:
    """What a column's training span says is plausible for it.

    Attributes:
        column: the column's name.
        series: the series' name.
        low: the lower quantile (``TAIL_QUANTILE``, or ``TAIL_ROWS`` rows in) of the finite training values.
        high: the upper quantile.
        floor: the column's resolution-aware spread floor (:func:`~lightning_lstm.spikes.bad_values.spread_floor`).
        routine_score: the ``SCORE_QUANTILE`` quantile of the training rows' local scores (at most ``TAIL_ROWS``
            rows from the top).
        codes: exact values that are codes, not readings (:func:`edge_codes`), with their row counts.
        margins: the range margin below ``low`` and above ``high`` (``RANGE_MARGIN``, wider on a heavy-tailed side).
    """

    column: str
    series: str
    low: float
    high: float
    floor: float
    routine_score: float
    codes: dict[float, int] = field(default_factory=dict)
    margins: tuple[float, float] = (RANGE_MARGIN, RANGE_MARGIN)

    @property
    def width(self) -> float:
        """The range's width (at least the column's spread floor)."""
        return max(self.high - self.low, self.floor)

    def beyond(self, value: float) -> float:
        """How many range widths ``value`` lies beyond ``low`` or ``high`` (0 inside the range)."""
        if not math.isfinite(value) or not self.width > 0:
            return 0.0
        return max(self.low - value, value - self.high, 0.0) / self.width

    def outside(self, values: np.ndarray) -> np.ndarray:
        """``(n,)`` whether each value lies far outside the training range: beyond ``low`` or ``high`` by more than
        the side's margin (``margins``) times their distance."""
        width, (below, above) = self.width, self.margins
        with np.errstate(invalid="ignore"):
            far = (values < self.low - below * width) | (values > self.high + above * width)
        if self.codes:
            far |= np.isin(values, list(self.codes))
        return far & np.isfinite(values)

    @property
    def score_limit(self) -> float:
        """The local score above which a value is implausible."""
        return max(BAD_SCORE, LOCAL_MARGIN * self.routine_score)

    def why_implausible(self, value: float, score: float) -> str | None:
        """Why ``value`` (whose local score is ``score``) is implausible for the column, or ``None`` if it is not."""
        if not math.isfinite(value):
            return None
        if value in self.codes:
            return (
                f"a code, not a reading: {value:.6g} in {self.codes[value]} training rows, far beyond every other "
                f"value of the column ({self.low:.4g} to {self.high:.4g} in 99.9% of them)"
            )
        if self.outside(np.asarray([value]))[0]:
            return f"far outside its training range ({self.low:.4g} to {self.high:.4g})"
        if math.isfinite(score) and score >= self.score_limit:
            return (
                f"{score:.0f} local spreads from its neighbours, where the column's values reach "
                f"{self.routine_score:.3g} (99.9% of them)"
            )
        return None


@dataclass
class DataNote:
    """One implausible value: where it is, what it is and why it is noted.

    Attributes:
        column: the column's name.
        series: the series' name.
        row: the global row in the frame.
        time: the row's timestamp as text.
        value: the value.
        reference: the median of its neighbours.
        why: plain words.
        beyond: how many range widths the value lies beyond its column's training range (0 inside it; a code:
            its distance like any value's).
    """

    column: str
    series: str
    row: int
    time: str
    value: float
    reference: float
    why: str
    beyond: float = 0.0


def edge_codes(finite: np.ndarray) -> dict[float, int]:
    """The column's codes: its smallest or largest exact value when repeated, apart from the rest (``CODE_GAP``).

    Args:
        finite: ``(n,)`` the column's finite training values.

    Returns:
        ``{value: rows}``, at most two entries (the low and the high edge).
    """
    values, counts = np.unique(finite, return_counts=True)
    codes: dict[float, int] = {}
    for edge, rest in ((0, slice(1, None)), (len(values) - 1, slice(None, -1))):
        if len(values) < 4 or counts[edge] < CODE_ROWS or counts[rest].sum() < CODE_ROWS:
            continue
        others, weights = values[rest], counts[rest]
        cumulative = np.cumsum(weights) / weights.sum()
        q25, q75 = others[np.searchsorted(cumulative, 0.25)], others[np.searchsorted(cumulative, 0.75)]
        resolution = float(np.min(np.diff(others)))
        gap = float(others[0] - values[edge]) if edge == 0 else float(values[edge] - others[-1])
        beyond = gap > float(others[-1] - others[0]) or (
            values[edge] < 0 <= others[0] if edge == 0 else values[edge] > 0 >= others[-1]
        )
        if gap >= CODE_GAP * max(float(q75 - q25), resolution) and beyond:
            codes[float(values[edge])] = int(counts[edge])
    return codes


def column_profile(column: np.ndarray, name: str, series: str) -> tuple[ColumnProfile, np.ndarray, np.ndarray]:
    """The profile of one column's training span, with every row's local score and neighbours' median.

    Codes (:func:`edge_codes`) are left out of the range and of the routine score.

    Args:
        column: ``(n,)`` the column's training values (float64; NaN where missing).

    Returns:
        The profile, ``(n,)`` local scores (0 where a row has too few neighbours) and ``(n,)`` references.
    """
    codes = edge_codes(column[np.isfinite(column)])
    readings = np.isfinite(column) & ~np.isin(column, list(codes))
    floor = spread_floor(np.where(readings, column, np.nan))
    n = len(column)
    scores, references = np.zeros(n), np.full(n, np.nan)
    for begin in range(0, n, CHUNK_ROWS):
        rows = np.arange(begin, min(begin + CHUNK_ROWS, n))
        scores[rows], references[rows] = local_scores(column, rows, 0, n, NEIGHBOURS, floor)
    finite = column[readings]
    if not len(finite):
        return ColumnProfile(name, series, math.nan, math.nan, floor, 0.0), scores, references
    tail = max(TAIL_QUANTILE, TAIL_ROWS / len(finite))
    low, q25, median, q75, high = np.quantile(finite, [min(tail, 0.5), 0.25, 0.5, 0.75, max(1 - tail, 0.5)])
    routine = float(np.quantile(scores[readings], max(min(SCORE_QUANTILE, 1 - tail), 0.5)))
    margins = (_margin(median - low, q75 - q25), _margin(high - median, q75 - q25))
    return ColumnProfile(name, series, float(low), float(high), floor, routine, codes, margins), scores, references


def _margin(reach: float, iqr: float) -> float:
    """The range margin of one side whose quantile lies ``reach`` from the median (``HEAVY_SIDE``)."""
    if reach <= 0:
        return RANGE_MARGIN
    tail = reach / iqr if iqr > 0 else math.inf
    return float(min(MAX_RANGE_MARGIN, max(RANGE_MARGIN, RANGE_MARGIN * tail / HEAVY_SIDE)))


def profiles_and_notes(datamodule: Any) -> tuple[dict[tuple[str, str], ColumnProfile], list[DataNote], int]:
    """Profiles of every column of every series (training span) and the notes of its implausible values, in the
    training span and, judged by the same training profile, in the validation span (the test span is never read).

    Returns:
        ``{(series, column): profile}``, the notes (at most ``MAX_NOTES``, per column in row order: training, then
        validation) and how many implausible values there were in all. Empty without a frame (e.g. a data module of
        another kind).
    """
    frame, bounds = getattr(datamodule, "frame", None), getattr(datamodule, "bounds", None)
    if frame is None or bounds is None:
        return {}, [], 0
    profiles: dict[tuple[str, str], ColumnProfile] = {}
    notes: list[DataNote] = []
    total = 0
    for s, ((a, b), (va, vb)) in enumerate(
        zip(span_rows(frame, bounds, "train"), span_rows(frame, bounds, "val"), strict=True)
    ):
        series = str(frame.series_names[s])
        for c, name in enumerate(frame.columns):
            column = np.asarray(frame.values[a:b, c], dtype=np.float64)
            profile, scores, references = column_profile(column, str(name), series)
            profiles[(series, str(name))] = profile
            spans = [(a, column, scores, references)]
            if vb > va:
                held = np.asarray(frame.values[va:vb, c], dtype=np.float64)
                spans.append((va, held, *local_scores(held, np.arange(vb - va), 0, vb - va, NEIGHBOURS, profile.floor)))
            for start, values, row_scores, refs in spans:
                suspects = np.flatnonzero(
                    profile.outside(values) | (np.isfinite(values) & (row_scores >= profile.score_limit))
                )
                total += len(suspects)
                keep = suspects[: max(0, MAX_NOTES - len(notes))]
                if not len(keep):
                    continue
                times = frame.format_times(frame.time_of(keep + start))
                for i, time in zip(keep, times, strict=True):
                    why = profile.why_implausible(float(values[i]), float(row_scores[i])) or "implausible"
                    value = float(values[i])
                    notes.append(
                        DataNote(
                            str(name), series, int(i + start), time, value, float(refs[i]), why, profile.beyond(value)
                        )
                    )
    return profiles, notes, total


def note_line(note: DataNote) -> str:
    """One note in plain words."""
    where = f"{note.time} ({note.series}; neighbours' median {note.reference:.4g})"
    return f"{note.column} = {note.value:.6g} at {where}: {note.why}"


def data_notes_markdown(notes: list[dict[str, Any]] | list[DataNote], total: int | None = None) -> str:
    """The notes as a markdown table (``spikes.json``'s ``data_notes`` dicts or :class:`DataNote` objects), or a
    sentence saying there are none. ``total``: how many there were, when more were found than listed."""
    rows = [n if isinstance(n, dict) else n.__dict__ for n in notes]
    if not rows:
        return "No value is implausible for its column in the training or validation span."
    lines = [
        "Values implausible for their column in the training or validation span (never changed by the run; check them "
        "at the "
        "source):",
        "",
        "| column | series | time | value | neighbours' median | why |",
        "|---|---|---|---:|---:|---|",
    ]
    lines += [
        f"| {r['column']} | {r['series']} | {r['time']} | {r['value']:.6g} | {r['reference']:.4g} | {r['why']} |"
        for r in rows
    ]
    if total is not None and total > len(rows):
        lines += ["", f"... and {total - len(rows)} more."]
    return "\n".join(lines)
