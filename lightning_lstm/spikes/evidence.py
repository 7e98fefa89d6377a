"""The evidence the cause rules share: which rows a spike's windows hold, which values an intervention proved to
cause a spike (:data:`NAMED_SHARE`), when a rule has enough spikes to speak (:func:`strong`), and the plain words they
are listed in. No Lightning here.
"""

from __future__ import annotations

import math
import statistics

from lightning_lstm.spikes.records import LocalAnomaly, RunContext, SpikeRecord

MIN_FRACTION = 0.5
"""A rule must explain at least this fraction of all spikes."""
MIN_SPIKES = 3
"""... and at least this many spikes, unless they span ``MIN_EPOCHS`` epochs."""
MIN_EPOCHS = 2
NAMED_SHARE = 0.25
"""A value is named as a cause of a spike only when replacing it removed at least this share of the spike's excess
loss (``LocalAnomaly.explains[step]``)."""


def strong(covered: list[SpikeRecord], total: int) -> bool:
    """Whether the spikes a rule explains are enough evidence for it to speak."""
    epochs = len({s.epoch for s in covered})
    return (
        bool(covered) and len(covered) >= MIN_FRACTION * total and (len(covered) >= MIN_SPIKES or epochs >= MIN_EPOCHS)
    )


def share(covered: list[SpikeRecord], total: int) -> str:
    """ "All 3 spikes" or "3 of 4 spikes"."""
    return f"All {total} spikes" if len(covered) == total else f"{len(covered)} of {total} spikes"


def window_rows(spike: SpikeRecord, width: int | None) -> set[int]:
    """The global rows of a spike's top windows (``width`` = lookback + horizon)."""
    if not width:
        return set()
    return {r for w in spike.top_windows for r in range(int(w["window_id"]), int(w["window_id"]) + width)}


def covering(spikes: list[SpikeRecord], anomalies: list[LocalAnomaly], width: int | None) -> list[SpikeRecord]:
    """The spikes whose top windows hold the row of at least one of ``anomalies``."""
    rows = {a.row for a in anomalies}
    return [s for s in spikes if rows & window_rows(s, width)]


def listing(anomalies: list[LocalAnomaly], words: str, limit: int = 5) -> str:
    """Up to ``limit`` anomalies described, and how many more there were."""
    shown = "; ".join(a.describe(words) for a in anomalies[:limit])
    more = f"; and {len(anomalies) - limit} more" if len(anomalies) > limit else ""
    return shown + more


def time_list(anomalies: list[LocalAnomaly]) -> str:
    """The timestamps as a YAML-ready list, for the advice."""
    return "[" + ", ".join(sorted({a.time for a in anomalies})) + "]"


def nonfinite_number(value: float | None) -> bool:
    """Whether a number is missing or not finite."""
    return value is None or not math.isfinite(value)


def loss_dispersion(losses: list[float]) -> float | None:
    """How noisy one batch's mean loss is: the robust spread (1.4826 x MAD) of the last half's finite step losses
    over their median (the first half still descends); ``None`` with fewer than 20 such steps."""
    last = [v for v in losses[len(losses) // 2 :] if math.isfinite(v)]
    if len(last) < 20:
        return None
    middle = statistics.median(last)
    if middle <= 0:
        return None
    return 1.4826 * statistics.median(abs(v - middle) for v in last) / middle


def tested(spike: SpikeRecord) -> bool:
    """Whether the spike was tested by intervention (its values replaced one at a time and re-scored)."""
    return spike.explained_share is not None


def explained_by(anomaly: LocalAnomaly, spike: SpikeRecord) -> float:
    """The share of ``spike``'s excess loss that replacing ``anomaly`` removed (0 if untested; JSON's string keys
    too)."""
    explains = anomaly.explains or {}
    return float(explains.get(spike.global_step, explains.get(str(spike.global_step), 0.0)))


def named_for(spike: SpikeRecord, anomaly: LocalAnomaly, width: int | None) -> bool:
    """Whether ``anomaly`` is a cause of ``spike``: by intervention where the spike was tested (its replacement
    removed at least :data:`NAMED_SHARE` of the excess), else (older records) by lying inside its top windows."""
    if tested(spike):
        return explained_by(anomaly, spike) >= NAMED_SHARE
    return anomaly.row in window_rows(spike, width)


def caused(spikes: list[SpikeRecord], anomalies: list[LocalAnomaly], width: int | None):
    """The spikes that at least one of ``anomalies`` causes (:func:`named_for`), and those anomalies."""
    covered = [s for s in spikes if any(named_for(s, a, width) for a in anomalies)]
    named = [a for a in anomalies if any(named_for(s, a, width) for s in covered)]
    return covered, named


def unexplained_by_values(spike: SpikeRecord, ctx: RunContext) -> bool:
    """Whether no single value explains the spike: tested and below :data:`NAMED_SHARE`, or (untested) no anomaly
    in its windows."""
    if tested(spike):
        return spike.explained_share < NAMED_SHARE
    return not window_rows(spike, ctx.window_width) & {a.row for a in ctx.anomalies}
