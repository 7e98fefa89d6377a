"""The median absolute deviation (MAD): the robust spread behind outlier clipping and spike scores.

``MAD_TO_SIGMA * MAD`` estimates a Gaussian's standard deviation, yet one wild value moves it no more than an ordinary
one. On sorted values the MAD is a binary search (``O(log n)`` reads, no temporary): :func:`sorted_mad` works on a
Python list (the spike detector's rolling window, where a numpy call would cost more than the whole update) as on a
numpy array (:func:`median_abs_deviation`, one column of a training span, sorted in place).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

MAD_TO_SIGMA = 1.4826  # 1 / Phi^-1(3/4): makes the MAD a consistent estimate of a Gaussian sigma.


def kth_deviation(ordered: Sequence[float], median: float, split: int, k: int) -> float:
    """The ``k``-th smallest (0-based) of ``|v - median|`` over sorted ``ordered``, by binary search.

    ``ordered[:split] <= median <= ordered[split:]``: the deviations of ``ordered[:split]`` read backwards and of
    ``ordered[split:]`` read forwards are two ascending sequences, and the ``k + 1`` smallest of their union take some
    ``i`` from the left; the search finds ``i`` without building either sequence. Exact in float64.
    """
    lo, hi = max(0, k + 1 - (len(ordered) - split)), min(k + 1, split)
    while lo < hi:  # smallest i (taken from the left) with left[i] >= right[k - i]
        i = (lo + hi) // 2
        if median - float(ordered[split - 1 - i]) < float(ordered[split + k - i]) - median:
            lo = i + 1
        else:
            hi = i
    left = median - float(ordered[split - lo]) if lo > 0 else -math.inf
    right = float(ordered[split + k - lo]) - median if k + 1 - lo > 0 else -math.inf
    return max(left, right)


def sorted_mad(ordered: Sequence[float], median: float, split: int) -> float:
    """``median(|ordered - median|)`` of sorted, non-empty values, ``ordered[:split] <= median <= ordered[split:]``."""
    n = len(ordered)
    if n % 2:
        return kth_deviation(ordered, median, split, n // 2)
    return 0.5 * (kth_deviation(ordered, median, split, n // 2 - 1) + kth_deviation(ordered, median, split, n // 2))


def median_abs_deviation(column: np.ndarray, median: float) -> float:
    """``median(|column - median|)`` of a 1-d numpy array, exactly (float64), without a temporary: sorts it in place."""
    column.sort()
    near = column.dtype.type(median)  # searching a float64 in a float32 array would cast the whole array
    split = int(column.searchsorted(near, side="left" if float(near) > median else "right"))  # column[:split] <= median
    return sorted_mad(column, median, split)
