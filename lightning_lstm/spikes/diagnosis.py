"""Turns a run's spike records into plain-English findings: each cause with its evidence, a confidence and the change.
:func:`find_causes` runs the rules of :data:`~lightning_lstm.spikes.causes.CAUSES` in their order and names the
findings with advice first; with no evidence, the diagnosis says that nothing stands out. No Lightning here.
"""

from __future__ import annotations

from lightning_lstm.spikes.causes import CAUSES, sentinels
from lightning_lstm.spikes.records import Finding, RunContext, SpikeRecord

__all__ = ["Finding", "RunContext", "diagnose", "find_causes", "findings_dicts"]


def find_causes(spikes: list[SpikeRecord], ctx: RunContext) -> list[Finding]:
    """Every finding with evidence, the cause to name first at the front (notes last, in the order they were found).

    Each rule of :data:`~lightning_lstm.spikes.causes.CAUSES` sees the spikes no earlier finding explained; a rule
    marked ``always`` that found nothing there is tried again on every spike, and its finding (a hypothesis an
    earlier rule would have hidden) is listed after the others with advice. Values far beyond their column's range
    (:func:`~lightning_lstm.spikes.causes.sentinels`) are named with advice even without a spike, unless a finding
    already names bad values.
    """
    spikes = sorted(spikes, key=lambda s: s.global_step)
    total, found, more, left = len(spikes), [], [], list(spikes)
    for cause in CAUSES:
        finding = cause.rule(left, total, ctx)
        if finding is None and cause.always and len(left) < total:
            hidden = cause.rule(spikes, total, ctx)
            if hidden is not None and hidden.advice:
                more.append(hidden)
            continue
        if finding is None:
            continue
        found.append(finding)
        if cause.explains is not None:
            left = [s for s in left if not cause.explains(s, finding, ctx)]
    if not any(f.cause == "bad_values" or f.anomalies for f in found if f.advice):
        found += [f for f in (sentinels(ctx),) if f is not None]
    causes = sorted((f for f in found if f.advice), key=lambda f: (f.cause != "nonfinite", -f.explained, -f.confidence))
    return causes + more + [f for f in found if not f.advice]


def diagnose(spikes: list[SpikeRecord], context: RunContext, findings: list[Finding] | None = None) -> list[str]:
    """Explains a run's loss spikes in plain English.

    Args:
        spikes: every spike recorded in the run.
        context: the run's settings, norms, learning rates and (if known) data evidence.
        findings: the rules' findings, if already computed (``find_causes(spikes, context)``).

    Returns:
        Sentences: one summary, then one per cause with evidence (the first-named first), each with its confidence
        and the config change; then what was checked and did not help. With no spikes and no cause, one sentence.
    """
    span = f"{context.num_epochs_run} epoch(s) ({context.total_steps} steps)"
    findings = find_causes(spikes, context) if findings is None else findings
    causes = [f for f in findings if f.advice]
    notes = [f"{f.sentence}." for f in findings if not f.advice]
    if not spikes and not causes:
        return [f"No loss spikes were detected in {span}."]
    if not causes:
        checked = ", ".join(cause.checked for cause in CAUSES if cause.checked)
        quiet = (
            f"{len(spikes)} loss spike(s) in {span}: nothing stands out. No cause ({checked}) explains at least half "
            "of them, so no change is suggested."
        )
        return [quiet, *notes]
    epochs = len({s.epoch for s in spikes})
    summary = (
        f"{len(spikes)} loss spike(s) were detected in {epochs} of {span}."
        if spikes
        else (f"No loss spikes were detected in {span}, but the run shows a cause of poor training.")
    )
    return [summary, *(f.text() for f in causes), *notes]


def findings_dicts(findings: list[Finding]) -> list[dict]:
    """The findings as JSON-able dicts (for ``spikes.json``), the named values included."""
    return [
        {
            "cause": f.cause,
            "sentence": f.sentence,
            "confidence": round(f.confidence, 3),
            "advice": f.advice,
            "overlay": f.overlay,
            "explained": f.explained,
            "anomalies": [a.to_dict() for a in f.anomalies],
            **({"sentinels": True} if f.sentinels else {}),
        }
        for f in findings
    ]
