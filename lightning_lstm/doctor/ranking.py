"""Ranking the candidates against the probe by what the user is scored on: validation MAE first, then spikes.

Validation MAE is on the original scale (the module's ``val/mae``), never the test split, and averaged over the last
third of the probe's epochs (where a run ended up, not one lucky epoch of an unstable run). A candidate is refused
when that MAE is more than ``tolerance`` (default 2%) above the probe's, or when its run failed. An accepted candidate
can win when it removed spikes or lowered the MAE by more than ``tolerance``; among those, the ones within
``tolerance`` of the best MAE compete and the fewest spikes wins (then the lower MAE). A remedy that lowers the MAE by
more than ``tolerance`` therefore wins even with more spikes than the probe: the detector counts spikes relative to
the run's own loss, and a remedy that rescales the loss (scaling, a robust loss) changes what counts as a spike.
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


def helped(row: Row, base_spikes: int, base_mae: float | None, tolerance: float) -> bool:
    """Whether an accepted row removed spikes or lowered the MAE by more than ``tolerance`` (any finite MAE when the
    probe had none): a remedy that may win, and a hypothesis its run confirmed."""
    change = row.mae_change(base_mae)
    better = base_mae is None or (change is not None and change < -tolerance)
    return row.accepted and (row.spikes < base_spikes or better)


def rank(
    probe: dict[str, Any],
    runs: list[tuple[Any, dict[str, Any]]],
    tolerance: float,
    refuse: dict[str, str] | None = None,
) -> tuple[list[Row], Row | None]:
    """The table rows (probe first, then candidates best first) and the winner, or ``None``.

    Args:
        probe: the probe's result.
        runs: ``(candidate, result)`` pairs.
        tolerance: the largest accepted relative worsening of the validation MAE, and the margin within which two
            MAEs count as equal (then fewer spikes wins).
        refuse: candidate name -> why it is refused whatever its run (a remedy that combines a hypothesis the runs
            withdrew, :mod:`.verdicts`).
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
        elif refuse and candidate.name in refuse:
            row.refused = refuse[candidate.name]
        row.accepted = not row.refused
        rows.append(row)
    contenders = [r for r in rows if helped(r, base_spikes, base_mae, tolerance)]
    best_mae = min((r.val_mae for r in contenders), default=None)
    may_win = {id(r) for r in contenders}

    def order(r: Row) -> tuple:
        near_best = best_mae is not None and id(r) in may_win and r.val_mae <= best_mae * (1 + tolerance)
        return (
            not r.accepted,
            not near_best,
            r.spikes if r.spikes is not None else math.inf,
            r.val_mae if r.val_mae is not None else math.inf,
        )

    rows.sort(key=order)
    winner = rows[0] if rows and contenders and order(rows[0])[1] is False else None
    return [first, *rows], winner
