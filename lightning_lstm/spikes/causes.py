"""The rules, one per cause: data first (non-finite, bad values, level shift, last batch, order), then the optimizer.

Each rule sees only the spikes no earlier rule explained, so a gradient spike that a bad value caused is not blamed on
the optimizer. See :mod:`.rules` for the evidence thresholds and :func:`find_causes` for the order of the findings.
"""

from __future__ import annotations

from collections import defaultdict

from lightning_lstm.spikes.optimizer_causes import LR_KEY, clipping_notes, gradients, learning_rate
from lightning_lstm.spikes.records import SpikeRecord
from lightning_lstm.spikes.rules import (
    EPOCH_START,
    MAX_SPIKE_DENSITY,
    MIN_EPOCHS,
    POSITION_TOLERANCE,
    UNSCALED_LEVEL,
    Finding,
    RunContext,
    covering,
    listing,
    share,
    strong,
    time_list,
    window_rows,
)


def _nonfinite(spikes: list[SpikeRecord], ctx: RunContext) -> Finding | None:
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
    covered = covering(spikes, values, ctx.window_width)
    if not strong(covered, total):
        return None
    rows = set().union(*(window_rows(s, ctx.window_width) for s in covered))
    named = sorted((a for a in values if a.row in rows), key=lambda a: (-a.spikes, a.row))
    sentence = (
        f"{share(covered, total)} had a top window holding one of {len(named)} value(s) far from their "
        f"neighbours: {listing(named, ctx.neighbour_words)}"
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


def _same_place(spikes: list[SpikeRecord], ctx: RunContext) -> list[SpikeRecord]:
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


def _recurring(spikes: list[SpikeRecord], total: int, ctx: RunContext) -> Finding | None:
    """Spikes at the same place of the epoch (unshuffled) or on the same windows, in several epochs."""
    by_batch = not ctx.shuffle and ctx.steps_per_epoch is not None
    by_batch = by_batch and total / max(ctx.num_epochs_run, 1) <= MAX_SPIKE_DENSITY * ctx.steps_per_epoch
    epochs_of: dict[tuple, set[int]] = defaultdict(set)
    for spike in spikes:
        for w in spike.top_windows:
            epochs_of[(w["series"], w["window_id"])].add(spike.epoch)
    again = {key for key, epochs in epochs_of.items() if len(epochs) >= MIN_EPOCHS}
    same = {id(s) for s in _same_place(spikes, ctx)} if by_batch else set()
    covered = [
        s for s in spikes if id(s) in same or again.intersection((w["series"], w["window_id"]) for w in s.top_windows)
    ]
    if not strong(covered, total):
        return None
    epochs = len({s.epoch for s in covered})
    first = covered[0].top_windows[0] if covered[0].top_windows else None
    example = f"e.g. {first['series']} {first['input_start']} to {first['target_end']}" if first else ""
    quantile = ctx.clip_effects.get("quantile")
    cut = f", and `data.outliers: quantile` would cut {quantile['clipped']} real training values" if quantile else ""
    plain = f"their windows hold no value far from its neighbours ({example}): clipping outliers would not help{cut}"
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


def _unscaled(ctx: RunContext) -> Finding | None:
    median, std = ctx.target_median, ctx.target_std
    if ctx.scaler != "none" or median is None or not std:
        return None
    level = abs(median) / std
    if std <= 10 and level < UNSCALED_LEVEL:
        return None
    sentence = (
        f"The data are unscaled (`data.scaler: none`): the targets' median is {median:.4g}, their spread {std:.3g}"
    )
    confidence = 0.6
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


def find_causes(spikes: list[SpikeRecord], ctx: RunContext) -> list[Finding]:
    """Every finding with evidence, the cause to name first at the front (notes last)."""
    spikes = sorted(spikes, key=lambda s: s.global_step)
    total, found, left = len(spikes), [], list(spikes)
    first = _nonfinite(spikes, ctx)
    if first is not None:
        found.append(first)
        left = [s for s in left if not s.nonfinite]
    for rule in (_bad_values, _level_shift, _last_batch, _recurring, gradients, learning_rate):
        finding = rule(left, total, ctx) if total else None
        if finding is not None:
            found.append(finding)
            if finding.cause in ("bad_values", "level_shift"):
                explained = {id(s) for s in covering(left, finding.anomalies, ctx.window_width)}
                left = [s for s in left if id(s) not in explained]
            elif finding.cause == "last_batch":
                left = [s for s in left if not (s.is_last_batch and s.is_partial_batch)]
    scaled = _unscaled(ctx)
    if scaled is not None:
        found.append(scaled)
    found += clipping_notes(spikes, ctx)
    causes = sorted((f for f in found if f.advice), key=lambda f: (f.cause != "nonfinite", -f.explained, -f.confidence))
    return causes + [f for f in found if not f.advice]
