"""After windowing: every split needs a window, and the summary the data module logs once the splits hold windows.

Both read what the data module computed once: the splits' spans, the windows per split and the runs of missing values.
"""

from __future__ import annotations

import logging

import numpy as np

from lightning_lstm.data.frame import SeriesFrame
from lightning_lstm.data.gaps import Gaps, gap_summary
from lightning_lstm.data.splits import Spans, has_validation
from lightning_lstm.data.windows import SplitWindows


def rows_needed(
    lookback: int, horizon: int, val_fraction: float, test_fraction: float, val_start: object, test_start: object
) -> int:
    """Shortest series that gives every split a window: exact for fractions, a lower bound with dates.

    Training needs ``lookback + horizon`` rows, validation and test ``horizon`` rows each (their inputs reach back).
    """
    with_val = has_validation(val_fraction, val_start)
    need = lookback + horizon + horizon * (2 if with_val else 1)
    if val_start is None and test_start is None:
        shares = [(lookback + horizon, 1.0 - val_fraction - test_fraction), (horizon, test_fraction)]
        shares += [(horizon, val_fraction)] if val_fraction > 0 else []
        need = max([need] + [int(np.ceil(rows / share - 1e-9)) for rows, share in shares])
    return need


def check_split_windows(
    frame: SeriesFrame,
    spans: Spans,
    windows: SplitWindows,
    lookback: int,
    horizon: int,
    val_fraction: float,
    test_fraction: float,
    val_start: str | int | None,
    test_start: str | int | None,
) -> None:
    """Every split needs a window: a ValueError with the series' length, the split's and the length the splits need,
    or, when gaps took them all, the windows skipped."""
    with_val = has_validation(val_fraction, val_start)
    for split in ["train", "val", "test"] if with_val else ["train", "test"]:
        if len(windows.kept[split]) > 0:
            continue
        every = windows.every[split]
        if every:
            raise ValueError(
                f"{frame.source}: the {split} split has no window without a gap: all its {every} windows touch a "
                "value left missing (data.missing: drop, or a run longer than data.max_gap). Raise data.max_gap, "
                "move the splits (data.val_start / data.test_start), or fill the gap in the file."
            )
        rows = [b - a for a, b in spans[split]]
        longest = int(np.diff(frame.offsets).max())
        inside = "" if split == "train" else f" (its {horizon} target rows inside the split)"
        series_needs = rows_needed(lookback, horizon, val_fraction, test_fraction, val_start, test_start)
        raise ValueError(
            f"{frame.source}: the {split} split has no window: the series has {longest} rows and its {split} "
            f"split {max(rows)}, but a window needs lookback + horizon = {lookback} + {horizon} = {lookback + horizon} "
            f"rows{inside}, so a series needs at least {series_needs} rows with these splits. Lower "
            "data.lookback / data.horizon, move the splits (data.val_fraction / data.test_fraction, "
            "data.val_start / data.test_start), or use a longer series."
        )


def split_summary(
    frame: SeriesFrame,
    spans: Spans,
    windows: SplitWindows,
    gaps: Gaps,
    target_idx: list[int],
    clipped: dict[str, int],
) -> list[tuple[int, str]]:
    """``(logging level, message)`` lines the data module logs after fitting: rows, series, windows per split, missing
    and clipped values; per split the values filled, left missing and the windows skipped for them
    (:func:`.gaps.gap_summary`); a warning naming series without a training window.

    Args:
        target_idx: the target columns (their filled values are left out of the scores).
    """
    sizes = {split: len(index) for split, index in windows.kept.items()}
    lines = [
        (
            logging.INFO,
            f"{frame.source}: {frame.values.shape[0]} rows in {frame.num_series} series; windows {sizes}; "
            f"missing values per column {gaps.per_column} ({gaps.policy}); clipped per column on the training span "
            f"{clipped}",
        )
    ]
    if gaps.start.size:
        skipped = {split: (windows.every[split] - sizes[split], windows.every[split]) for split in sizes}
        lines.append((logging.INFO, gap_summary(frame, gaps, spans, skipped, target_idx)))
    unused = sorted(set(range(frame.num_series)) - set(windows.kept["train"].series.tolist()))
    if unused:
        names = [frame.series_names[s] for s in unused[:10]]
        lines.append(
            (
                logging.WARNING,
                f"{frame.source}: {len(unused)} series have no training window (too short or gaps): {names}",
            )
        )
    return lines
