"""The causes a diagnosis can name, each a rule that states its evidence, a confidence and (maybe) a config change.

Every rule speaks only on evidence from the run: the spikes it explains must be at least half of all spikes *and*
number at least three or span at least two epochs (a non-finite loss and unscaled data are conclusive alone). A rule
never advises a change the run's own numbers show would not engage or could not help: no gradient clip above every
observed norm, no lower clip on small healthy norms, no outlier clipping for windows that hold no outlying value.
Findings without advice (``advice is None``) are notes: what was checked and did not help.

:func:`find_causes` returns the findings in the order they are named, the strongest first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from lightning_lstm.spikes.bad_values import LocalAnomaly
from lightning_lstm.spikes.records import SpikeRecord

MIN_FRACTION = 0.5
"""A rule must explain at least this fraction of all spikes."""
MIN_SPIKES = 3
"""... and at least this many spikes, unless they span ``MIN_EPOCHS`` epochs."""
MIN_EPOCHS = 2
LR_RECENT_STEPS = 20
"""A spike at most this many global steps after a learning-rate increase counts as "right after" it."""
HIGH_LR_FRACTION = 0.8
"""A learning rate at or above this fraction of the run's maximum is "close to the maximum"."""
HIGH_LR_ABSOLUTE = 1e-2
"""A learning rate is "high" if it is at least this, or close to the maximum and above the initial learning rate."""
MAX_SPIKE_DENSITY = 0.25
"""Same-``batch_idx`` recurrence is only evidence when spikes hit at most this fraction of an epoch's batches."""
GRAD_SPIKE_RATIO = 4.0
"""A burst is gradient-led when its first step's norm is at least this many times the run's median norm."""
BURST_GAP = 2
"""Spikes at most this many steps apart form one burst."""
POSITION_TOLERANCE = 0.02
"""Unshuffled spikes within this fraction of an epoch's batches (at least 1 batch) of each other are at one place."""
EPOCH_START = 0.1
"""Unshuffled spikes in this first fraction of an epoch's batches (at least 2) follow the wrap from end to start."""
DIVERGED_RATIO = 1.5
"""A run whose last validation MAE is this many times its best got worse as it trained on."""
UNSCALED_LEVEL = 3.0
"""Unscaled targets whose median is this many standard deviations from 0 (or spread over 10 units) need scaling."""


@dataclass
class RunContext:
    """What the rules know about the run, besides the spikes (every field beyond the first twelve is optional).

    Attributes:
        num_epochs_run: epochs trained (complete or not).
        steps_per_epoch: training batches per epoch, or ``None`` if unknown.
        shuffle: whether the training data were shuffled each epoch.
        drop_last: whether the last, smaller batch of an epoch was dropped.
        last_batch_size: the size of an epoch's last batch, or ``None`` if unknown.
        nominal_batch_size: the configured batch size.
        gradient_clip_val: the trainer's gradient clipping value, or ``None`` if clipping is off.
        outliers: the data module's outlier handling (e.g. ``"none"``, ``"quantile"``).
        lr_max_seen: the highest learning rate used in the run.
        lr_initial: the learning rate at the first step.
        total_steps: optimizer steps taken in the run.
        lr_increased_steps: global steps at which the learning rate rose.
        grad_norm_quantiles: quantiles of every step's pre-clip gradient norm (``{"q50": .., "q95": .., "q100": ..}``).
        clip_engaged_steps: steps whose norm exceeded ``gradient_clip_val`` (so clipping rescaled them).
        outliers_clipped: training values the outlier bounds clipped (all columns), or ``None`` if unknown.
        scaler: the data's scaler (``"standard"``, ``"none"``, ...).
        target_median: the median of the training targets (original scale), or ``None``.
        target_std: their robust spread (1.4826 x MAD, so one sentinel value does not inflate it), or ``None``.
        final_loss: the training loss at the end (the detector's rolling median), or ``None``.
        anomalies: bad values and level shifts found in the spikes' top windows.
        clip_effects: per ``data.outliers`` method, ``{"clipped": training values cut, "anomalies": bad values cut}``.
        window_width: rows per window (lookback + horizon), to tell which rows a spike's windows hold.
        neighbour_words: how a value's neighbours are called ("neighbouring hours").
        val_mae_best: the best epoch's validation MAE, if known.
        val_mae_final: the last epoch's validation MAE, if known.
    """

    num_epochs_run: int
    steps_per_epoch: int | None
    shuffle: bool
    drop_last: bool
    last_batch_size: int | None
    nominal_batch_size: int
    gradient_clip_val: float | None
    outliers: str
    lr_max_seen: float
    lr_initial: float
    total_steps: int
    lr_increased_steps: list[int] = field(default_factory=list)
    grad_norm_quantiles: dict[str, float] = field(default_factory=dict)
    clip_engaged_steps: int | None = None
    outliers_clipped: int | None = None
    scaler: str = "standard"
    target_median: float | None = None
    target_std: float | None = None
    final_loss: float | None = None
    anomalies: list[LocalAnomaly] = field(default_factory=list)
    clip_effects: dict[str, dict[str, int]] = field(default_factory=dict)
    window_width: int | None = None
    neighbour_words: str = "neighbouring values"
    val_mae_best: float | None = None
    val_mae_final: float | None = None


@dataclass
class Finding:
    """One named cause (or a note), with its evidence.

    Attributes:
        cause: ``nonfinite``, ``bad_values``, ``level_shift``, ``last_batch``, ``order``, ``gradients``,
            ``learning_rate``, ``unscaled``, or ``note`` (checked, no advice).
        sentence: the cause and its evidence in plain words.
        confidence: 0..1, how sure the rule is (the share of spikes explained, weighed by the evidence's strength).
        advice: the config change in words, or ``None`` for a note.
        overlay: the config change as dotted keys (``{"data.shuffle": True}``); ``{}`` when it is no config key
            (masking values).
        explained: how many spikes the finding explains.
        anomalies: the values or shifts it names.
    """

    cause: str
    sentence: str
    confidence: float
    advice: str | None = None
    overlay: dict[str, Any] = field(default_factory=dict)
    explained: int = 0
    anomalies: list[LocalAnomaly] = field(default_factory=list)

    def text(self) -> str:
        """The sentence, its confidence and the advice, as one line of the diagnosis."""
        advice = f" {self.advice}" if self.advice else ""
        return f"{self.sentence} (confidence {self.confidence:.2f}).{advice}"


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
