"""Turns a run's spike records into a few plain-English findings, each with the config change it suggests.

Every rule speaks only on strong evidence: the spikes it explains must be at least half of all spikes *and* number
at least three or span at least two epochs. The one exception is a non-finite loss, which is conclusive on its own.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field

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
"""A learning rate close to the maximum is "high" if it is at least this, or above the initial learning rate."""
MAX_SPIKE_DENSITY = 0.25
"""Same-``batch_idx`` recurrence is only evidence when spikes hit at most this fraction of an epoch's batches."""


@dataclass
class RunContext:
    """What the diagnosis needs to know about the run, besides the spikes.

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


def _strong(covered: list[SpikeRecord], total: int) -> bool:
    """Whether the spikes a rule explains are enough evidence for it to speak."""
    epochs = len({s.epoch for s in covered})
    return (
        bool(covered) and len(covered) >= MIN_FRACTION * total and (len(covered) >= MIN_SPIKES or epochs >= MIN_EPOCHS)
    )


def _of(covered: list[SpikeRecord], total: int) -> str:
    """The start of a finding: "All 3 spikes" or "3 of 4 spikes"."""
    return f"All {total} spikes" if len(covered) == total else f"{len(covered)} of {total} spikes"


def _nonfinite(spikes: list[SpikeRecord]) -> str | None:
    bad = [s for s in spikes if s.nonfinite]
    if not bad:
        return None
    first = min(bad, key=lambda s: s.global_step)
    skipped = " (those optimizer steps were skipped)" if all(s.skipped for s in bad) else ""
    return (
        f"{len(bad)} step(s) had a non-finite loss (NaN or inf), first at epoch {first.epoch}, "
        f"global step {first.global_step}{skipped}: check the data for NaN/inf values and lower the learning rate "
        "(`model.optimizer.init_args.lr`)."
    )


def _last_batch(spikes: list[SpikeRecord], context: RunContext) -> tuple[str | None, list[SpikeRecord]]:
    covered = [s for s in spikes if s.is_last_batch and s.is_partial_batch]
    if context.drop_last or not _strong(covered, len(spikes)):
        return None, []
    size = context.last_batch_size if context.last_batch_size is not None else min(s.batch_size for s in covered)
    sentence = (
        f"{_of(covered, len(spikes))} hit the last batch of an epoch, which holds only {size} of "
        f"{context.nominal_batch_size} samples, so its loss is noisier: set `data.drop_last: true`."
    )
    return sentence, covered


def _window_label(entry: dict) -> str:
    """The whole window: an outlier late in the inputs spikes the loss as much as one in the targets."""
    return f"{entry['series']} {entry['input_start']} to {entry['target_end']}"


def _recurring(spikes: list[SpikeRecord], context: RunContext, exclude: list[SpikeRecord]) -> str | None:
    candidates = [s for s in spikes if all(s is not e for e in exclude)]
    epochs_by_key: dict[tuple, set[int]] = defaultdict(set)
    keys_of: list[list[tuple]] = []
    spikes_per_epoch = len(spikes) / max(context.num_epochs_run, 1)
    batch_is_evidence = (
        not context.shuffle
        and context.steps_per_epoch is not None
        and spikes_per_epoch <= MAX_SPIKE_DENSITY * context.steps_per_epoch
    )
    for spike in candidates:
        keys = [("batch", spike.batch_idx)] if batch_is_evidence else []
        for entry in spike.top_windows:
            keys.append(("window", entry["series"], entry["window_id"]))
            keys.append(("time", entry["series"], entry["target_start"]))
        keys_of.append(keys)
        for key in keys:
            epochs_by_key[key].add(spike.epoch)
    recurring = {key for key, epochs in epochs_by_key.items() if len(epochs) >= MIN_EPOCHS}
    covered = [s for s, keys in zip(candidates, keys_of, strict=True) if recurring.intersection(keys)]
    if not _strong(covered, len(spikes)):
        return None

    places = Counter(_window_label(s.top_windows[0]) for s in covered if s.top_windows)
    batches = sorted({key[1] for key in recurring if key[0] == "batch"})
    where = "; ".join(label for label, _ in places.most_common(3))
    if not where:
        where = "batch " + ", ".join(str(b) for b in batches[:5])
    advice = []
    if context.outliers == "none":
        advice.append("clipping outliers (`data.outliers: quantile`)")
    if not context.shuffle:
        advice.append("shuffling the training data (`data.shuffle: true`)")
    if not advice:
        advice.append(
            f"inspecting these windows in the source data (`data.outliers: {context.outliers}` did not tame them)"
        )
    epochs = len({s.epoch for s in covered})
    return (
        f"{_of(covered, len(spikes))} recur at the same place in {epochs} epochs ({where}): the same data give a "
        f"high loss every time they are seen; consider {' and '.join(advice)}."
    )


def _gradient(spikes: list[SpikeRecord], context: RunContext) -> str | None:
    covered = [s for s in spikes if s.grad_spike and not s.nonfinite]
    if not _strong(covered, len(spikes)):
        return None
    norms = [s.grad_norm for s in covered if s.grad_norm is not None and math.isfinite(s.grad_norm)]
    clip = context.gradient_clip_val
    before = " before clipping" if clip is not None else ""
    seen = f" (gradient norms up to {max(norms):.3g}{before})" if norms else ""
    if clip is None:
        advice = "set `trainer.gradient_clip_val` (e.g. 1.0)"
    elif norms and max(norms) <= clip:
        advice = f"lower `trainer.gradient_clip_val` below {max(norms):.3g} (now {clip:g}: it never engaged)"
    else:
        advice = f"lower `trainer.gradient_clip_val` (now {clip:g}, e.g. to {clip / 2:g})"
    return f"{_of(covered, len(spikes))} came with a gradient-norm spike{seen}: {advice}."


def _learning_rate(spikes: list[SpikeRecord], context: RunContext) -> str | None:
    increases = sorted(context.lr_increased_steps)

    def after_increase(spike: SpikeRecord) -> bool:
        return any(0 <= spike.global_step - step <= LR_RECENT_STEPS for step in increases)

    def at_high_lr(spike: SpikeRecord) -> bool:
        near_max = spike.lr >= HIGH_LR_FRACTION * context.lr_max_seen
        return near_max and (spike.lr >= HIGH_LR_ABSOLUTE or spike.lr > context.lr_initial * (1 + 1e-9))

    covered = [s for s in spikes if not s.nonfinite and (after_increase(s) or at_high_lr(s))]
    if not _strong(covered, len(spikes)):
        return None
    n_after = sum(after_increase(s) for s in covered)
    why = (
        f"within {LR_RECENT_STEPS} steps of a learning-rate increase"
        if n_after >= len(covered) / 2
        else f"at a high learning rate (up to {max(s.lr for s in covered):.3g}; maximum {context.lr_max_seen:.3g})"
    )
    return (
        f"{_of(covered, len(spikes))} came {why}: lower `model.optimizer.init_args.lr` "
        f"(e.g. to {context.lr_max_seen / 3:.2g}) or use a scheduler with a warm-up and decay."
    )


def diagnose(spikes: list[SpikeRecord], context: RunContext) -> list[str]:
    """Explains a run's loss spikes in plain English.

    Args:
        spikes: every spike recorded in the run.
        context: the run's settings and learning-rate history.

    Returns:
        Sentences: one summary, then one per cause with strong evidence, each naming the config key to change.
        With no spikes, one sentence saying so; with only weak evidence, one sentence saying the spikes were
        isolated.
    """
    span = f"{context.num_epochs_run} epoch(s) ({context.total_steps} steps)"
    if not spikes:
        return [f"No loss spikes were detected in {span}."]
    spikes = sorted(spikes, key=lambda s: s.global_step)
    last_batch, explained = _last_batch(spikes, context)
    findings = [
        _nonfinite(spikes),
        last_batch,
        _recurring(spikes, context, exclude=explained),
        _gradient(spikes, context),
        _learning_rate(spikes, context),
    ]
    findings = [f for f in findings if f is not None]
    epochs = len({s.epoch for s in spikes})
    if not findings:
        isolated = (
            f"{len(spikes)} loss spike(s) in {span} were isolated: no common cause (recurring data, gradient-norm "
            "spikes, the last partial batch, learning-rate increases, non-finite losses) explains at least half "
            "of them, so no change is suggested."
        )
        return [isolated]
    summary = f"{len(spikes)} loss spike(s) were detected in {epochs} of {span}."
    return [summary, *findings]
