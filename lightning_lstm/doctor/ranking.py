"""Ranking the candidates against the probe: fewer spikes first, then validation MAE, never a worse MAE.

Validation MAE is on the original scale (the module's ``val/mae``), never the test split, and averaged over the last
third of the probe's epochs (where a run ended up, not one lucky epoch of an unstable run). A candidate is refused
when that MAE is more than ``tolerance`` (default 2%) above the probe's, when
it has more spikes than the probe, or when its run failed. The winner is the best accepted candidate that removed
spikes, or, on a run without spikes, improved the MAE by more than the tolerance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass
class Row:
    """One run in the before/after table."""

    name: str
    what: str
    spikes: int | None
    val_mae: float | None
    wall_s: float | None
    cost: str = ""
    refused: str = ""
    accepted: bool = False

    def mae_change(self, base: float | None) -> float | None:
        """Relative change of the validation MAE against the probe's (``-0.1`` is 10% better)."""
        if self.val_mae is None or base is None or not math.isfinite(base) or base == 0:
            return None
        return self.val_mae / base - 1


def _mae(result: dict[str, Any]) -> float | None:
    value = result.get("recorder", {}).get("end_val_mae")
    return float(value) if value is not None and math.isfinite(value) else None


def rank(
    probe: dict[str, Any], runs: list[tuple[Any, dict[str, Any]]], tolerance: float
) -> tuple[list[Row], Row | None]:
    """The table rows (probe first, then candidates best first) and the winner, or ``None``.

    Args:
        probe: the probe's result.
        runs: ``(candidate, result)`` pairs.
        tolerance: the largest accepted relative worsening of the validation MAE.
    """
    base_spikes, base_mae = len(probe.get("spikes", [])), _mae(probe)
    first = Row("probe", "your config", base_spikes, base_mae, probe.get("wall_s"), accepted=True)
    rows = []
    for candidate, result in runs:
        if "error" in result:
            rows.append(Row(candidate.name, candidate.what, None, None, None, candidate.cost, "the run failed"))
            continue
        row = Row(
            candidate.name,
            candidate.what,
            len(result.get("spikes", [])),
            _mae(result),
            result.get("wall_s"),
            candidate.cost,
        )
        change = row.mae_change(base_mae)
        if row.val_mae is None:
            row.refused = "no finite validation MAE"
        elif change is not None and change > tolerance:
            row.refused = f"validation MAE {change:+.1%} (over the {tolerance:.0%} tolerance)"
        elif row.spikes > base_spikes:
            row.refused = f"more spikes ({row.spikes} against {base_spikes})"
        row.accepted = not row.refused
        rows.append(row)
    rows.sort(
        key=lambda r: (
            not r.accepted,
            r.spikes if r.spikes is not None else math.inf,
            r.val_mae if r.val_mae is not None else math.inf,
        )
    )
    winner = None
    for row in rows:
        if not row.accepted:
            continue
        change = row.mae_change(base_mae)
        fewer = row.spikes < base_spikes
        better = base_mae is None or (change is not None and change < -tolerance)
        if fewer or (base_spikes == 0 and better) or (row.spikes == base_spikes and base_mae is None):
            winner = row
            break
    return [first, *rows], winner
