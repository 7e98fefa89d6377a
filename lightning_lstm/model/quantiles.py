"""Quantile forecasts (``model.quantiles``): the levels, the head's non-crossing transform, the pinball loss and the
test scores (mean pinball loss and the coverage of each central interval).

With levels ``q_1 < ... < q_Q`` (0.5 among them) the head emits ``Q`` raw values per horizon step and target,
``(B, H, T, Q)``. :func:`non_crossing` reads the one at 0.5 as the median and the others as steps away from it, made
non-negative by softplus and cumulated outward, so ``q_1 <= ... <= q_Q`` always holds. The median is the point
forecast that every point metric (MAE, RMSE, the baselines) and ``predict``'s ``<target>`` column read.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn
from torch.nn import functional
from torchmetrics import Metric

MEDIAN = 0.5


def check_quantiles(quantiles: list[float] | None) -> list[float] | None:
    """``model.quantiles`` as a list of floats; a ValueError naming the key when a level is outside (0, 1), the levels
    are not increasing, or 0.5 is missing. ``None`` (a point forecast) passes."""
    if quantiles is None:
        return None
    levels = [float(q) for q in quantiles]
    if not levels or any(not 0.0 < q < 1.0 for q in levels):
        raise ValueError(f"model.quantiles must hold levels in (0, 1), e.g. [0.1, 0.5, 0.9]; got {quantiles}")
    if any(b <= a for a, b in itertools.pairwise(levels)):
        raise ValueError(f"model.quantiles must be increasing without repeats, got {quantiles}")
    if MEDIAN not in levels:
        raise ValueError(
            f"model.quantiles must include 0.5 (the median is the point forecast every metric reads), got {quantiles}"
        )
    return levels


def quantile_label(level: float) -> str:
    """The column suffix of a level: 0.1 -> ``q10``, 0.05 -> ``q05``, 0.975 -> ``q97.5``."""
    return f"q{100 * level:02g}"


def central_intervals(levels: list[float]) -> list[tuple[int, int, int]]:
    """``(coverage in %, lower index, upper index)`` of each central interval ``[q, 1 - q]`` among ``levels``."""
    pairs = []
    for i, q in enumerate(levels):
        upper = next((j for j, p in enumerate(levels) if abs(p - (1 - q)) < 1e-9), None)
        if q < MEDIAN and upper is not None:
            pairs.append((round(100 * (1 - 2 * q)), i, upper))
    return pairs


def non_crossing(raw: torch.Tensor, median_index: int) -> torch.Tensor:
    """``(..., Q)`` raw outputs -> ``(..., Q)`` increasing quantiles: the median, then softplus steps cumulated
    outward (upward above it, downward below it)."""
    median = raw[..., median_index : median_index + 1]  # (..., 1)
    up = median + functional.softplus(raw[..., median_index + 1 :]).cumsum(-1)  # (..., Q - m - 1)
    down = median - functional.softplus(raw[..., :median_index].flip(-1)).cumsum(-1).flip(-1)  # (..., m)
    return torch.cat([down, median, up], dim=-1)


def pinball_loss(prediction: torch.Tensor, target: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """Element-wise pinball loss averaged over the levels: ``prediction`` ``(B, H, T, Q)``, ``target`` ``(B, H, T)``,
    ``levels`` ``(Q,)`` -> ``(B, H, T)``. For level ``q``: ``max(q * e, (q - 1) * e)`` with ``e = target - pred``."""
    error = target.unsqueeze(-1) - prediction  # (B, H, T, Q)
    return torch.maximum(levels * error, (levels - 1) * error).mean(-1)  # (B, H, T)


class PinballLoss(nn.Module):
    """The training loss of quantile forecasts: ``(B, H, T, Q)`` predictions, ``(B, H, T)`` targets -> ``(B, H, T)``
    pinball losses averaged over the levels (so a window's loss is its mean over H, T and Q).

    Args:
        levels: the quantile levels.
    """

    def __init__(self, levels: list[float]) -> None:
        super().__init__()
        self.register_buffer("levels", torch.tensor(levels), persistent=False)  # (Q,): not in checkpoints

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return pinball_loss(prediction, target, self.levels.to(prediction.dtype))


class QuantileScores(Metric):
    """The mean pinball loss and the share of truths inside each central interval, over observed values; summed
    states, so exact across DDP ranks.

    Args:
        levels: the quantile levels (:func:`check_quantiles`).
    """

    full_state_update = False

    def __init__(self, levels: list[float]) -> None:
        super().__init__()
        self.register_buffer("levels", torch.tensor(levels), persistent=False)
        self.intervals = central_intervals(levels)
        self.add_state("pinball", default=torch.zeros(()), dist_reduce_fx="sum")
        self.add_state("inside", default=torch.zeros(len(self.intervals)), dist_reduce_fx="sum")
        self.add_state("count", default=torch.zeros(()), dist_reduce_fx="sum")

    def update(self, quantiles: torch.Tensor, truth: torch.Tensor, observed: torch.Tensor | None = None) -> None:
        """``quantiles`` ``(B, H, T, Q)`` and ``truth`` ``(B, H, T)`` on the original scale; ``observed`` (B, H, T)."""
        mask = torch.ones_like(truth) if observed is None else observed.to(truth.dtype)
        truth = torch.where(mask.bool(), truth, quantiles[..., 0])  # filled values: any finite stand-in, weighted 0
        self.pinball += (pinball_loss(quantiles, truth, self.levels.to(quantiles.dtype)) * mask).sum()
        for k, (_, lo, hi) in enumerate(self.intervals):
            hit = (truth >= quantiles[..., lo]) & (truth <= quantiles[..., hi])  # (B, H, T)
            self.inside[k] += (hit.to(mask.dtype) * mask).sum()
        self.count += mask.sum()

    def compute(self) -> dict[str, torch.Tensor]:
        scores = {"pinball": self.pinball / self.count}
        for k, (coverage, _, _) in enumerate(self.intervals):
            scores[f"coverage_{coverage}"] = self.inside[k] / self.count
        return scores
