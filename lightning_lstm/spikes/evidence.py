"""The evidence the cause rules share: which rows a spike's windows hold, which values an intervention proved to
cause a spike (:data:`NAMED_SHARE`), which spikes recur at one place or on the same windows, come in bursts or at a
high learning rate, when a rule has enough spikes to speak (:func:`strong`), and the plain words they are listed in.
No Lightning here.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict

from lightning_lstm.spikes.records import LocalAnomaly, RunContext, SpikeRecord

MIN_FRACTION = 0.5
"""A rule must explain at least this fraction of all spikes."""
MIN_SPIKES = 3
"""... and at least this many spikes, unless they span ``MIN_EPOCHS`` epochs."""
MIN_EPOCHS = 2
NAMED_SHARE = 0.25
"""A value is named as a cause of a spike only when replacing it removed at least this share of the spike's excess
loss (``LocalAnomaly.explains[step]``)."""

LR_RECENT_STEPS = 20
"""A spike at most this many global steps after a learning-rate increase counts as "right after" it."""
HIGH_LR_FRACTION = 0.8
"""A learning rate at or above this fraction of the run's maximum is "close to the maximum"."""
HIGH_LR_ABSOLUTE = 1e-2
"""A learning rate is "high" if it is at least this, or close to the maximum and above the initial learning rate."""
MAX_SPIKE_DENSITY = 0.25
"""Same-``batch_idx`` recurrence is only evidence when spikes hit at most this fraction of an epoch's batches."""
BURST_GAP = 2
"""Spikes at most this many steps apart form one burst."""
POSITION_TOLERANCE = 0.02
"""Unshuffled spikes within this fraction of an epoch's batches (at least 1 batch) of each other are at one place."""
EPOCH_START = 0.1
"""Unshuffled spikes in this first fraction of an epoch's batches (at least 2) follow the wrap from end to start."""


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


def same_place(spikes: list[SpikeRecord], ctx: RunContext) -> list[SpikeRecord]:
    """Unshuffled spikes at one place of the epoch: near a spike of another epoch (``POSITION_TOLERANCE``), or in
    the first batches of an epoch after the first, where the order jumps from the series' end back to its start."""
    tolerance = max(1, round(POSITION_TOLERANCE * (ctx.steps_per_epoch or 0)))
    start = max(2, round(EPOCH_START * (ctx.steps_per_epoch or 0)))
    return [
        s
        for s in spikes
        if (s.epoch > 0 and s.batch_idx < start)
        or any(o.epoch != s.epoch and abs(o.batch_idx - s.batch_idx) <= tolerance for o in spikes)
    ]


def recurring_spikes(spikes: list[SpikeRecord], total: int, ctx: RunContext) -> list[SpikeRecord]:
    """Spikes at the same place of the epoch (unshuffled, not too dense) or on the same windows, in several epochs."""
    by_batch = not ctx.shuffle and ctx.steps_per_epoch is not None
    by_batch = by_batch and total / max(ctx.num_epochs_run, 1) <= MAX_SPIKE_DENSITY * ctx.steps_per_epoch
    epochs_of: dict[tuple, set[int]] = defaultdict(set)
    for spike in spikes:
        for w in spike.top_windows:
            epochs_of[(w["series"], w["window_id"])].add(spike.epoch)
    again = {key for key, epochs in epochs_of.items() if len(epochs) >= MIN_EPOCHS}
    same = {id(s) for s in same_place(spikes, ctx)} if by_batch else set()
    return [
        s for s in spikes if id(s) in same or again.intersection((w["series"], w["window_id"]) for w in s.top_windows)
    ]


def target_peaks(ctx: RunContext) -> list[LocalAnomaly]:
    """The ``peak`` anomalies of target columns inside spike windows (every column when the targets are unknown)."""
    targets = set(ctx.target_columns)
    return [a for a in ctx.anomalies if a.kind == "peak" and a.spikes > 0 and (not targets or a.column in targets)]


def bursts(spikes: list[SpikeRecord]) -> list[list[SpikeRecord]]:
    """Spikes grouped into bursts: runs whose steps are at most ``BURST_GAP`` apart."""
    bursts: list[list[SpikeRecord]] = []
    for spike in spikes:
        if bursts and spike.global_step - bursts[-1][-1].global_step <= BURST_GAP:
            bursts[-1].append(spike)
        else:
            bursts.append([spike])
    return bursts


def after_increase(spike: SpikeRecord, ctx: RunContext) -> bool:
    """Whether the spike came at most ``LR_RECENT_STEPS`` steps after a learning-rate increase."""
    return any(0 <= spike.global_step - step <= LR_RECENT_STEPS for step in ctx.lr_increased_steps)


def at_high_lr(spike: SpikeRecord, ctx: RunContext) -> bool:
    """Whether the spike came at a high learning rate (absolutely, or near the run's maximum above its start)."""
    near_max = spike.lr >= HIGH_LR_FRACTION * ctx.lr_max_seen
    return spike.lr >= HIGH_LR_ABSOLUTE or (near_max and spike.lr > ctx.lr_initial * (1 + 1e-9))
