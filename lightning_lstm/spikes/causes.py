"""The causes a diagnosis can name, each a rule that states its evidence, a confidence and (maybe) a config change,
and :data:`CAUSES`, the one registry of them, in the order the rules run.

Every rule speaks only on evidence from the run: the spikes it explains must be at least half of all spikes *and*
number at least three or span at least two epochs (``evidence.strong``; a non-finite loss and unscaled data are
conclusive alone). A rule never advises a change the run's own numbers show would not engage or could not help.
Findings without advice are notes: what was checked and did not help. The data's causes come first, then the
optimizer's; each rule sees only the spikes no earlier rule explained, so a gradient spike that a bad value caused is
not blamed on the optimizer. A rule marked ``always`` (order) is also tried on every spike, so an earlier rule cannot
hide it: the diagnosis lists it as one more hypothesis for the doctor's runs to decide. Where the spikes were tested
by intervention (``SpikeRecord.explained_share`` set), a value is named only when replacing it removed at least
``evidence.NAMED_SHARE`` of a spike's excess loss. Adding a cause: its rule and its :class:`Cause` entry here, its
remedy in ``doctor/remedies.py``. The evidence every rule reads is :class:`RunContext`, through the helpers of
``spikes/evidence.py``. No Lightning here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from lightning_lstm.spikes.data_notes import SENTINEL_WIDTHS
from lightning_lstm.spikes.evidence import (
    LR_RECENT_STEPS,
    MIN_EPOCHS,
    MIN_SPIKES,
    NAMED_SHARE,
    after_increase,
    at_high_lr,
    bursts,
    caused,
    covering,
    listing,
    named_for,
    nonfinite_number,
    recurring_spikes,
    share,
    strong,
    target_peaks,
    tested,
    time_list,
    unexplained_by_values,
    window_rows,
)
from lightning_lstm.spikes.records import Finding, LocalAnomaly, RunContext, SpikeRecord

LR_KEY = "model.optimizer.init_args.lr"
"""The config key of the learning rate, in the advice and the doctor's overlays."""

GRAD_SPIKE_RATIO = 4.0
"""A burst is gradient-led when its first step's norm is at least this many times the run's median norm."""
DIVERGED_RATIO = 1.5
"""A run whose last validation MAE is this many times its best got worse as it trained on."""
UNSCALED_LEVEL = 3.0
"""Unscaled targets whose median is this many standard deviations from 0 (or spread over 10 units) need scaling."""
SMALL_BATCH = 16
"""A batch of at most this many windows makes a noisy mean loss."""
NOISY_DISPERSION = 0.75
"""... as does any batch whose step losses spread (1.4826 x MAD) by at least this fraction of their median (batch 8 on
the noisy tuning series: 0.88-0.92; SGD at lr 2.0 on CO2, batch 64: 0.58, a learning-rate case)."""
BATCH_GROWTH = 4
"""The batch-noise remedy multiplies ``data.batch_size`` by this."""
HEAVY_TAIL = 3.0
"""A target is heavy-tailed when its 0.1% or 99.9% quantile lies this many interquartile ranges from its median
(``RunContext.target_tail``; a normal distribution's: 2.3; daily rain 17, a stock's daily volume 4.5, temperatures,
CO2 and electricity demand 0.8-2.1)."""
ROBUST_LOSS = "huber"
"""The heavy-tail remedy's ``model.loss``."""


def _nonfinite(spikes: list[SpikeRecord], total: int, ctx: RunContext) -> Finding | None:
    bad = [s for s in spikes if s.nonfinite]
    if not bad:
        return None
    first = min(bad, key=lambda s: s.global_step)
    head = (
        f"{len(bad)} step(s) had a non-finite loss (NaN or inf), first at epoch {first.epoch}, global step "
        f"{first.global_step}" + (" (those updates were skipped)" if all(s.skipped for s in bad) else "")
    )
    values = [a for a in ctx.anomalies if a.kind == "bad_value"]
    held = covering(bad, values, ctx.window_width)
    if len(held) >= 0.5 * len(bad):
        rows = set().union(*(window_rows(s, ctx.window_width) for s in held))
        culprits = [a for a in values if a.row in rows]
        sentence = (
            f"{head}; the windows of {len(held)} of them hold values far from their neighbours: "
            f"{listing(culprits, ctx.neighbour_words)}"
        )
        advice = f"Fix or mask these timestamps in the data: {time_list(culprits)}."
        return Finding("nonfinite", sentence, 0.5 + 0.45 * len(held) / len(bad), advice, {}, len(bad), culprits)
    lr = ctx.lr_max_seen
    sentence = f"{head}, and no input value in their windows stands out: the optimizer diverged"
    advice = f"Lower `{LR_KEY}` (now {lr:.3g}, e.g. to {lr / 10:.2g})."
    return Finding("nonfinite", sentence, 0.8, advice, {LR_KEY: float(f"{lr / 10:.2g}")}, len(bad))


def _bad_values(spikes: list[SpikeRecord], total: int, ctx: RunContext) -> Finding | None:
    values = [a for a in ctx.anomalies if a.kind == "bad_value" and a.spikes > 0]
    covered, named = caused(spikes, values, ctx.window_width)
    if not strong(covered, total):
        return None
    named = sorted(named, key=lambda a: (-a.spikes, a.row))
    sentence = (
        f"{share(covered, total)} had a top window holding one of {len(named)} value(s) far from their "
        f"neighbours: {listing(named, ctx.neighbour_words)}"
    )
    proven = [s for s in covered if tested(s)]
    if proven:
        best = max(proven, key=lambda s: s.explained_share)
        sentence += (
            f"; replacing one of them removed at least {NAMED_SHARE:.0%} of the excess loss of {len(proven)} "
            f"spike(s) (up to {best.explained_share:.0%}, at step {best.global_step})"
        )
    clip, in_use = "", ctx.outliers
    cutting = {m: e for m, e in ctx.clip_effects.items() if e.get("anomalies", 0) >= len(named) and m != in_use}
    if ctx.clip_effects.get(in_use, {}).get("anomalies", 0) >= len(named):
        clip = f" The `data.outliers: {in_use}` in use clips them only to its bounds: still far from their neighbours."
    elif cutting:
        method, effect = min(cutting.items(), key=lambda item: item[1]["clipped"])
        clip = (
            f" `data.outliers: {method}` would clip them too, and {effect['clipped'] - len(named)} other training "
            "value(s) with them."
        )
    elif ctx.clip_effects:
        clip = " No `data.outliers` method clips all of them (they lie inside the range of the real values)."
    advice = f"Fix or mask these timestamps in the data: {time_list(named)}.{clip}"
    return Finding("bad_values", sentence, 0.5 + 0.5 * len(covered) / total, advice, {}, len(covered), named)


def sentinels(ctx: RunContext) -> Finding | None:
    """Values so far beyond their column's range that they are no reading of it (``SENTINEL_WIDTHS`` range widths:
    -999, 65535, 9999.9), named with advice whether or not they cause spikes: a user wants to know, and masking them
    is the remedy the doctor tries. Codes repeated in many rows and values merely outside the range stay data notes.
    """
    notes = [n for n in ctx.data_notes if float(n.get("beyond") or 0.0) >= SENTINEL_WIDTHS]
    if not notes:
        return None
    named = [
        LocalAnomaly(
            "bad_value", int(n["row"]), str(n["series"]), str(n["column"]), str(n["time"]), float(n["value"]),
            float(n["reference"]), float(n["reference"]), math.nan,
        )
        for n in notes
    ]  # fmt: skip
    shown = "; ".join(
        f"{n['column']} = {n['value']:.6g} at {n['time']} ({n['beyond']:.0f} range widths beyond its column's values, "
        f"neighbours' median {n['reference']:.4g})"
        for n in notes[:5]
    )
    more = f"; and {len(notes) - 5} more" if len(notes) > 5 else ""
    sentence = (
        f"{len(notes)} value(s) lie at least {SENTINEL_WIDTHS:.0f} times their column's range beyond it: codes or "
        f"errors, not readings ({shown}{more}). They are named for what they are, not for spikes they caused"
    )
    advice = f"Fix or mask these timestamps in the data: {time_list(named)}."
    return Finding("bad_values", sentence, 0.9, advice, {}, 0, named, sentinels=True)


def _level_shift(spikes: list[SpikeRecord], total: int, ctx: RunContext) -> Finding | None:
    shifts = [a for a in ctx.anomalies if a.kind == "level_shift" and a.spikes > 0]
    covered = covering(spikes, shifts, ctx.window_width)
    if not strong(covered, total):
        return None
    sentence = f"{share(covered, total)} had a top window across a change of level: {listing(shifts, '')}"
    advice = (
        "If the change is an artefact (a recalibration, a unit change), correct the values on one side; else keep "
        f"the windows that straddle it out of training: mask {time_list(shifts)} with `data.missing: drop`."
    )
    return Finding("level_shift", sentence, 0.5 + 0.4 * len(covered) / total, advice, {}, len(covered), shifts)


def _last_batch(spikes: list[SpikeRecord], total: int, ctx: RunContext) -> Finding | None:
    covered = [s for s in spikes if s.is_last_batch and s.is_partial_batch]
    if ctx.drop_last or not strong(covered, total):
        return None
    size = ctx.last_batch_size if ctx.last_batch_size is not None else min(s.batch_size for s in covered)
    sentence = (
        f"{share(covered, total)} hit the last batch of an epoch, which holds only {size} of "
        f"{ctx.nominal_batch_size} windows, so its loss is a noisier mean"
    )
    confidence = (0.5 + 0.5 * len(covered) / total) * (1 - 0.5 * size / ctx.nominal_batch_size)
    return Finding(
        "last_batch", sentence, confidence, "Set `data.drop_last: true`.", {"data.drop_last": True}, len(covered)
    )


def _recurring(spikes: list[SpikeRecord], total: int, ctx: RunContext) -> Finding | None:
    """Spikes at the same place of the epoch (unshuffled) or on the same windows, in several epochs."""
    covered = recurring_spikes(spikes, total, ctx)
    if not strong(covered, total):
        return None
    epochs = len({s.epoch for s in covered})
    first = covered[0].top_windows[0] if covered[0].top_windows else None
    example = f"e.g. {first['series']} {first['input_start']} to {first['target_end']}" if first else ""
    quantile = ctx.clip_effects.get("quantile")
    cut = f", and `data.outliers: quantile` would cut {quantile['clipped']} real training values" if quantile else ""
    if all(tested(s) for s in covered):
        held = (
            f"no single value of their windows ({example}) removes {NAMED_SHARE:.0%} of the excess loss when replaced"
        )
    else:
        held = f"their windows hold no value far from its neighbours ({example})"
    unexplained = all(unexplained_by_values(s, ctx) for s in covered)
    plain = f"{held}: clipping outliers would not help{cut}" if unexplained else "other causes may add to them"
    if not ctx.shuffle:
        batches = sorted({s.batch_idx for s in covered})
        where = f"batches {', '.join(map(str, batches[:8]))}{' ...' if len(batches) > 8 else ''} of each epoch"
        sentence = (
            f"{share(covered, total)} recur at the same place in {epochs} epochs ({where}) and {plain}. These are "
            "ordinary ramps or regimes of the series seen in time order: the same stretch comes as one batch at "
            "the same point of every epoch"
        )
        confidence = 0.5 + 0.4 * len(covered) / total
        return Finding(
            "order",
            sentence,
            confidence,
            "Shuffle the training windows (`data.shuffle: true`).",
            {"data.shuffle": True},
            len(covered),
        )
    sentence = f"{share(covered, total)} recur on the same windows in {epochs} epochs, but {plain}: hard, real data"
    return Finding("note", sentence, 0.5, None, {}, len(covered))


def _heavy_tail(spikes: list[SpikeRecord], total: int, ctx: RunContext) -> Finding | None:
    """Spikes carried by real extremes of a target under the squared error: a robust loss, not the data, is the fix.

    The peaks are described in the sentence, not attached as anomalies: they are real values, never to be masked.
    """
    if ctx.loss != "mse" or (ctx.target_tail is not None and ctx.target_tail < HEAVY_TAIL):
        return None  # only a heavy-tailed target has real extremes the squared error makes dominate
    covered, named = caused(spikes, target_peaks(ctx), ctx.window_width)
    if not strong(covered, total):
        return None
    named = sorted(named, key=lambda a: (-a.spikes, a.row))
    tail = (
        f" (its 99.9% quantile lies {ctx.target_tail:.1f} interquartile ranges from its median)"
        if ctx.target_tail
        else ""
    )
    sentence = (
        f"{share(covered, total)} are carried by {len(named)} real peak(s) of a heavy-tailed target{tail}, far "
        f"from their neighbours but plausible for their column: {listing(named, ctx.neighbour_words, 3)}. Under "
        "`model.loss: mse` one such window's squared error dominates its batch's mean"
    )
    effects = {m: e for m, e in ctx.clip_effects.items() if e.get("clipped", 0) > 0}
    if effects:
        method, effect = min(effects.items(), key=lambda item: item[1]["clipped"])
        sentence += (
            f"; clipping them instead (`data.outliers: {method}`) would cut {effect['clipped']} real training "
            "values, the peaks the forecast is for"
        )
    advice = (
        f"Use a robust loss (`model.loss: {ROBUST_LOSS}`, or `l1`): it bounds each window's pull and keeps the peaks."
    )
    confidence = 0.5 + 0.4 * len(covered) / total
    return Finding("heavy_tail", sentence, confidence, advice, {"model.loss": ROBUST_LOSS}, len(covered))


def _batch_noise(spikes: list[SpikeRecord], total: int, ctx: RunContext) -> Finding | None:
    """Spikes at different batches every epoch, with no bad value behind them, in small or noisy batches (in a small
    shuffled batch, also those that recur on the same hard windows)."""
    size, spread = ctx.nominal_batch_size, ctx.loss_dispersion
    noisy = spread is not None and spread >= NOISY_DISPERSION
    if size > SMALL_BATCH and not noisy:
        return None
    # spikes recurring at one place of an unshuffled epoch are order's; in a small shuffled batch, a hard window that
    # spikes again whenever it comes is batch noise too (its loss alone moves the batch's mean; a larger batch
    # dilutes it), while in a large batch it is hard, real data
    # and a spike that a real, plausible value explains (a peak: no bad value) is noise of the batch's mean as well
    small = size <= SMALL_BATCH and ctx.shuffle
    again = set() if small else {id(s) for s in recurring_spikes(spikes, total, ctx)}
    bad = [a for a in ctx.anomalies if a.kind == "bad_value"]
    covered = [
        s
        for s in spikes
        if id(s) not in again and not s.nonfinite and not any(named_for(s, a, ctx.window_width) for a in bad)
    ]
    epochs = len({s.epoch for s in covered})
    if not strong(covered, total) or epochs < MIN_EPOCHS:
        return None
    places = len({s.batch_idx for s in covered})
    reasons = [f"each batch holds only {size} windows"] if size <= SMALL_BATCH else []
    if noisy:
        reasons.append(f"the step losses spread by {spread:.0%} of their median")
    why = " and ".join(reasons)
    if any(not unexplained_by_values(s, ctx) for s in covered):
        values = "only real, plausible values of the series explain them (no bad value)"
    elif all(tested(s) for s in covered):
        values = "no single value explains them"
    else:
        values = "no value stands out in them"
    where = "none recurring at one place" + ("" if small else " or on the same windows")
    sentence = (
        f"{share(covered, total)} hit {places} different batch(es) in {epochs} epochs, {where}, and {values}; "
        f"{why}: the spikes are the noise of a small batch's mean loss"
    )
    new = size * BATCH_GROWTH
    advice = f"Use larger batches (`data.batch_size: {new}`, {BATCH_GROWTH}x; the learning rate may be scaled with it)."
    confidence = 0.4 + 0.4 * len(covered) / total
    return Finding("batch_noise", sentence, confidence, advice, {"data.batch_size": new}, len(covered))


def _unscaled(spikes: list[SpikeRecord], total: int, ctx: RunContext) -> Finding | None:
    """Whenever ``data.scaler`` is none: scaling is a hypothesis the doctor tries; conclusive when the targets sit far
    from 0 or spread widely."""
    if ctx.scaler != "none":
        return None
    median, std = ctx.target_median, ctx.target_std
    sentence = "The data are unscaled (`data.scaler: none`)"
    if median is None or not std:
        return Finding(
            "unscaled", sentence, 0.4, "Scale the data (`data.scaler: standard`).", {"data.scaler": "standard"}
        )
    level = abs(median) / std
    sentence += f": the targets' median is {median:.4g}, their spread {std:.3g}"
    confidence = 0.6 if std > 10 or level >= UNSCALED_LEVEL else 0.4
    if ctx.final_loss is not None and ctx.final_loss > 0.1 * std**2:
        sentence += (
            f"; the training loss at the end, {ctx.final_loss:.3g}, is still {ctx.final_loss / std**2:.2g}x their "
            "variance: the model has not learnt their level"
        )
        confidence = 0.9
    overlay: dict = {"data.scaler": "standard"}
    advice = "Scale the data (`data.scaler: standard`)"
    if level >= UNSCALED_LEVEL:
        overlay["data.window_norm"] = "last"
        advice += (
            " and feed each window relative to its last value (`data.window_norm: last`), as its level is far from 0"
        )
    return Finding("unscaled", sentence, confidence, advice + ".", overlay, 0)


def gradients(spikes: list[SpikeRecord], total: int, ctx: RunContext) -> Finding | None:
    """Bursts led by an outsized gradient: the update it drove kept the loss up for the next steps."""
    median = ctx.grad_norm_quantiles.get("q50")
    if not median or nonfinite_number(median):
        return None
    led = [
        burst
        for burst in bursts(spikes)
        if len(burst) >= 2
        and burst[0].grad_spike
        and not nonfinite_number(burst[0].grad_norm)
        and burst[0].grad_norm >= GRAD_SPIKE_RATIO * median
    ]
    covered = [s for burst in led for s in burst]
    if not strong(covered, total):
        return None
    leads = [burst[0].grad_norm for burst in led]
    low, high = min(leads), max(leads)
    q95, clip = ctx.grad_norm_quantiles.get("q95", high), ctx.gradient_clip_val
    seen = (
        f"{share(covered, total)} came in {len(led)} burst(s), each led by a gradient norm of {low:.3g}-{high:.3g} "
        f"({low / median:.0f}x or more the median step's {median:.3g}) and followed by a high loss for the next "
        "steps: the outsized update damaged the model"
    )
    if clip is not None and low > clip:
        return Finding(
            "note",
            f"{seen}; clipping at {clip:g} already bounded those updates, so the step size (the "
            "learning rate), not the gradient, is what to lower",
            0.5,
        )
    if q95 > 0.5 * low:
        return Finding(
            "note",
            f"{seen}, but 5% of all steps had norms as high ({q95:.3g}): a clip that stops them would slow every step",
            0.4,
        )
    advice = f"Set `trainer.gradient_clip_val: {q95:.3g}` (the 95th percentile of this run's norms)."
    if clip is not None:
        advice = f"Lower `trainer.gradient_clip_val` from {clip:g} to {q95:.3g} (the bursts' norms never reached it)."
    return Finding(
        "gradients",
        seen,
        0.4 + 0.5 * len(covered) / total,
        advice,
        {"trainer.gradient_clip_val": float(f"{q95:.3g}")},
        len(covered),
    )


def lr_suspect(spike: SpikeRecord, finding: Finding | None, ctx: RunContext) -> bool:
    """A finite spike right after a learning-rate increase or at a high learning rate."""
    return not spike.nonfinite and (after_increase(spike, ctx) or at_high_lr(spike, ctx))


def learning_rate(spikes: list[SpikeRecord], total: int, ctx: RunContext) -> Finding | None:
    covered = [s for s in spikes if lr_suspect(s, None, ctx)]
    best, final = ctx.val_mae_best, ctx.val_mae_final
    diverged = bool(covered) and best is not None and final is not None and final >= DIVERGED_RATIO * best
    if not (strong(covered, total) or diverged):
        return None
    n_after = sum(after_increase(s, ctx) for s in covered)
    why = (
        f"within {LR_RECENT_STEPS} steps of a learning-rate increase"
        if n_after >= len(covered) / 2
        else f"at a high learning rate ({max(s.lr for s in covered):.3g})"
    )
    sentence = f"{share(covered, total)} came {why}, and no data cause explains them"
    if diverged:
        sentence += f"; the validation MAE rose from its best, {best:.4g}, to {final:.4g} at the end"
    lr = ctx.lr_max_seen
    advice = f"Lower `{LR_KEY}` (now {lr:.3g}, e.g. to {lr / 3:.2g}; `doctor` runs an LR range test)."
    return Finding(
        "learning_rate",
        sentence,
        0.3 + 0.4 * len(covered) / total,
        advice,
        {LR_KEY: float(f"{lr / 3:.2g}")},
        len(covered),
    )


def _outliers_idle(spikes: list[SpikeRecord], total: int, ctx: RunContext) -> Finding | None:
    """A note: outlier clipping is on, clipped nothing, and the spikes persist."""
    if total < MIN_SPIKES or ctx.outliers == "none" or ctx.outliers_clipped != 0:
        return None
    sentence = (
        f"`data.outliers: {ctx.outliers}` clipped 0 training values while {total} spikes persist: it did nothing "
        "against them"
    )
    return Finding("note", sentence, 0.9)


def _clip_idle(spikes: list[SpikeRecord], total: int, ctx: RunContext) -> Finding | None:
    """A note: gradient clipping is on and never engaged."""
    norms = ctx.grad_norm_quantiles
    if total < MIN_SPIKES or not ctx.gradient_clip_val or ctx.clip_engaged_steps != 0 or not norms:
        return None
    sentence = (
        f"Gradient clipping at {ctx.gradient_clip_val:g} never engaged (largest norm {norms.get('q100', 0):.3g}): it "
        "neither caused nor stopped these spikes"
    )
    return Finding("note", sentence, 0.9)


@dataclass(frozen=True)
class Cause:
    """One entry of :data:`CAUSES`.

    Attributes:
        rule: ``rule(spikes, total, context)``: the finding (or ``None``) on the spikes no earlier rule explained
            (``total``: all spikes of the run).
        checked: how the "nothing stands out" sentence names what it checked (empty: not named there).
        explains: ``explains(spike, finding, context)``: whether the finding takes the spike from the later rules.
        always: also tried on every spike when the rule found nothing among those left: an earlier rule must not
            hide it (the finding is listed after the others, as one more hypothesis).
    """

    rule: Callable[[list[SpikeRecord], int, RunContext], Finding | None]
    checked: str = ""
    explains: Callable[[SpikeRecord, Finding, RunContext], bool] | None = None
    always: bool = False


def _holds_named(spike: SpikeRecord, finding: Finding, ctx: RunContext) -> bool:
    return any(named_for(spike, a, ctx.window_width) for a in finding.anomalies)


def _holds_peak(spike: SpikeRecord, finding: Finding, ctx: RunContext) -> bool:
    return any(named_for(spike, a, ctx.window_width) for a in target_peaks(ctx))


CAUSES: tuple[Cause, ...] = (
    Cause(_nonfinite, "non-finite losses", lambda spike, finding, ctx: spike.nonfinite),
    Cause(_bad_values, "bad values or level shifts in their windows", _holds_named),
    Cause(_level_shift, "", _holds_named),
    Cause(_heavy_tail, "real peaks of the target under mse", _holds_peak),
    Cause(
        _last_batch,
        "the last partial batch",
        lambda spike, finding, ctx: spike.is_last_batch and spike.is_partial_batch,
    ),
    Cause(_recurring, "recurring data", always=True),
    Cause(gradients, "gradient-led bursts"),
    Cause(learning_rate, "the learning rate", lr_suspect),
    Cause(_batch_noise, "small-batch noise"),
    Cause(_unscaled),
    Cause(_outliers_idle),
    Cause(_clip_idle),
)
"""Every cause, in the order the rules run (the diagnosis names the findings with advice by the spikes they explain)."""
