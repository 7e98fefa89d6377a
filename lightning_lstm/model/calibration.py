"""Split-conformal calibration of quantile intervals (``model.calibration``): conformalized quantile regression.

The pinball loss fits each quantile on the training span, where the network has seen the targets; on new data its
central intervals tend to cover less than their nominal share. After each validation epoch (the validation span only,
never the test span) every central interval ``[q_lo, q_hi]`` gets the conformity score of each validation truth
``y``, ``s = max(q_lo - y, y - q_hi)`` (negative inside the interval, its distance outside), in the window's scaled
units, and its widening ``w`` is the finite-sample ``(1 - alpha)(1 + 1/n)`` empirical quantile of the ``n`` scores
(``alpha``: the interval's nominal miss rate, 0.2 for 80%). Then ``[q_lo - w, q_hi + w]`` covers a new truth with
probability at least ``1 - alpha`` when validation and new windows are exchangeable (Romano, Patterson and Candès
2019, "Conformalized quantile regression"). ``w`` may be negative: an interval that was too wide narrows.

``per_step`` fits one widening per horizon step, target and interval (a forecast 24 steps ahead may need more than
one step ahead); ``pooled`` one per target and interval over all steps (``n`` H times larger: for short validation
spans). The widening is a buffer of the module, computed with the weights of that epoch, so the checkpoint saved after
a validation epoch carries its own; ``test``, ``predict`` and backtests apply it, training never does.
"""

from __future__ import annotations

import math
from typing import Literal, get_args

import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

Calibration = Literal["per_step", "pooled", "none"]
CALIBRATIONS = get_args(Calibration)


def conformity_scores(
    quantiles: torch.Tensor, truth: torch.Tensor, intervals: list[tuple[int, int, int]]
) -> torch.Tensor:
    """``quantiles`` (B, H, T, Q) and ``truth`` (B, H, T) -> (B, H, T, I) scores ``max(q_lo - y, y - q_hi)`` of each
    central interval (``intervals``: :func:`~lightning_lstm.model.quantiles.central_intervals`)."""
    low = quantiles[..., [lo for _, lo, _ in intervals]]  # (B, H, T, I)
    high = quantiles[..., [hi for _, _, hi in intervals]]  # (B, H, T, I)
    y = truth.unsqueeze(-1)  # (B, H, T, 1)
    return torch.maximum(low - y, y - high)


def conformal_quantile(scores: torch.Tensor, alphas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The finite-sample conformal quantile of each column: ``scores`` (N, ..., I), NaN where there was no observed
    truth, ``alphas`` (I,) miss rates -> ``(widening (..., I), n (..., I))``: the ``ceil((n + 1)(1 - alpha))``-th
    smallest of the ``n`` finite scores, or the largest when ``n`` is too small for that rank (fewer than
    ``1 / alpha - 1`` scores: no finite-sample guarantee, :class:`ConformalCalibration` warns); 0 without scores."""
    n = torch.isfinite(scores).sum(0)  # (..., I)
    ordered = torch.where(torch.isfinite(scores), scores, torch.inf).sort(dim=0).values  # NaN last, as +inf
    rank = torch.ceil((n + 1) * (1 - alphas)).long()  # (..., I), 1-based
    index = (torch.minimum(rank, n) - 1).clamp(min=0)  # the largest finite score when the rank is beyond n
    widening = ordered.gather(0, index.unsqueeze(0)).squeeze(0)  # (..., I)
    return torch.where(n > 0, widening, torch.zeros_like(widening)), n


def widen(
    quantiles: torch.Tensor, widening: torch.Tensor, intervals: list[tuple[int, int, int]], median: int
) -> torch.Tensor:
    """``quantiles`` (B, H, T, Q) (the median at index ``median``) with each interval's bounds moved out by
    ``widening`` (H, T, I) (in by a negative one), then kept increasing: below the median each level is at most the
    next one up, above it at least the next one down, so calibrated quantiles never cross (a narrowed interval stops
    at the median)."""
    calibrated = quantiles.clone()
    for k, (_, lo, hi) in enumerate(intervals):
        calibrated[..., lo] = quantiles[..., lo] - widening[..., k]
        calibrated[..., hi] = quantiles[..., hi] + widening[..., k]
    low = calibrated[..., : median + 1].flip(-1).cummin(-1).values.flip(-1)  # (B, H, T, m + 1), median last
    high = calibrated[..., median:].cummax(-1).values  # (B, H, T, Q - m), median first
    return torch.cat([low, high[..., 1:]], dim=-1)  # (B, H, T, Q)


class ConformalCalibration(Metric):
    """Collects the conformity scores of a validation epoch and computes each interval's widening from them.

    States are concatenated (``dim_zero_cat``), so the quantile is exact across DDP ranks.

    Args:
        intervals: ``(coverage in %, lower index, upper index)`` of each central interval.
        pooled: one widening per target and interval over all horizon steps (``model.calibration: pooled``) instead of
            one per step.
    """

    full_state_update = False

    def __init__(self, intervals: list[tuple[int, int, int]], pooled: bool = False) -> None:
        super().__init__()
        self.intervals, self.pooled = intervals, pooled
        self.register_buffer("alphas", torch.tensor([1 - c / 100 for c, _, _ in intervals]), persistent=False)
        self.add_state("scores", default=[], dist_reduce_fx="cat")

    def update(self, quantiles: torch.Tensor, truth: torch.Tensor, observed: torch.Tensor | None = None) -> None:
        """``quantiles`` (B, H, T, Q) and ``truth`` (B, H, T) in the same units; ``observed`` (B, H, T) leaves
        filled targets out."""
        scores = conformity_scores(quantiles.detach().float(), truth.float(), self.intervals)  # (B, H, T, I)
        if observed is not None:
            scores = torch.where(observed.unsqueeze(-1).bool(), scores, torch.nan)
        self.scores.append(scores)

    def compute(self) -> tuple[torch.Tensor, int]:
        """``(widening (H, T, I), the fewest scores behind one widening)``."""
        scores = dim_zero_cat(self.scores)  # (N, H, T, I)
        horizon = scores.shape[1]
        if self.pooled:
            scores = scores.flatten(0, 1).unsqueeze(1)  # (N * H, 1, T, I)
        widening, n = conformal_quantile(scores, self.alphas.to(scores.dtype))
        return widening.expand(horizon, *widening.shape[1:]).clone(), int(n.min())


def fewest_scores(alphas: list[float]) -> int:
    """The fewest validation scores for which the ``(1 - alpha)(1 + 1/n)`` rank exists for every ``alpha``."""
    return max(math.ceil(1 / alpha - 1) for alpha in alphas)
