"""The optimizer's rules: gradient-led bursts (clip), spikes at a high or rising learning rate, and clipping notes.

A gradient spike is blamed only when the loss stays up for the steps after it (the update it drove did the damage);
a gradient spike at a hard batch, with normal steps after it, is the batch's doing and no reason to clip.
"""

from __future__ import annotations

from lightning_lstm.spikes.records import SpikeRecord
from lightning_lstm.spikes.rules import (
    BURST_GAP,
    DIVERGED_RATIO,
    GRAD_SPIKE_RATIO,
    HIGH_LR_ABSOLUTE,
    HIGH_LR_FRACTION,
    LR_RECENT_STEPS,
    MIN_SPIKES,
    Finding,
    RunContext,
    nonfinite_number,
    share,
    strong,
)

LR_KEY = "model.optimizer.init_args.lr"


def bursts(spikes: list[SpikeRecord]) -> list[list[SpikeRecord]]:
    """Spikes grouped into bursts: runs whose steps are at most ``BURST_GAP`` apart."""
    bursts: list[list[SpikeRecord]] = []
    for spike in spikes:
        if bursts and spike.global_step - bursts[-1][-1].global_step <= BURST_GAP:
            bursts[-1].append(spike)
        else:
            bursts.append([spike])
    return bursts


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


def learning_rate(spikes: list[SpikeRecord], total: int, ctx: RunContext) -> Finding | None:
    increases = sorted(ctx.lr_increased_steps)

    def after_increase(spike: SpikeRecord) -> bool:
        return any(0 <= spike.global_step - step <= LR_RECENT_STEPS for step in increases)

    def at_high_lr(spike: SpikeRecord) -> bool:
        near_max = spike.lr >= HIGH_LR_FRACTION * ctx.lr_max_seen
        return spike.lr >= HIGH_LR_ABSOLUTE or (near_max and spike.lr > ctx.lr_initial * (1 + 1e-9))

    covered = [s for s in spikes if not s.nonfinite and (after_increase(s) or at_high_lr(s))]
    best, final = ctx.val_mae_best, ctx.val_mae_final
    diverged = bool(covered) and best is not None and final is not None and final >= DIVERGED_RATIO * best
    if not (strong(covered, total) or diverged):
        return None
    n_after = sum(after_increase(s) for s in covered)
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


def clipping_notes(spikes: list[SpikeRecord], ctx: RunContext) -> list[Finding]:
    notes = []
    if len(spikes) >= MIN_SPIKES and ctx.outliers != "none" and ctx.outliers_clipped == 0:
        notes.append(
            Finding(
                "note",
                f"`data.outliers: {ctx.outliers}` clipped 0 training values while {len(spikes)} "
                "spikes persist: it did nothing against them",
                0.9,
            )
        )
    norms = ctx.grad_norm_quantiles
    if len(spikes) >= MIN_SPIKES and ctx.gradient_clip_val and ctx.clip_engaged_steps == 0 and norms:
        notes.append(
            Finding(
                "note",
                f"Gradient clipping at {ctx.gradient_clip_val:g} never engaged (largest norm "
                f"{norms.get('q100', 0):.3g}): it neither caused nor stopped these spikes",
                0.9,
            )
        )
    return notes
