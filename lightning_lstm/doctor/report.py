"""``report.md``: the cause in plain words, its evidence, the before/after table, which hypotheses the runs confirmed
and which they refuted, what each remedy cost, the time."""

from __future__ import annotations

import math
from typing import Any

from lightning_lstm.doctor.ranking import Row
from lightning_lstm.doctor.verdicts import CONFIRMED, outcomes, verdicts
from lightning_lstm.spikes.data_notes import data_notes_markdown


def _num(value: float | None, digits: str = ".4g") -> str:
    return "n/a" if value is None or not math.isfinite(value) else format(value, digits)


def _diagnosis(findings: list[dict[str, Any]], probe: dict[str, Any]) -> list[str]:
    causes = [f for f in findings if f.get("advice")]
    notes = [f for f in findings if not f.get("advice")]
    spikes, steps = len(probe.get("spikes", [])), len(probe["recorder"].get("steps", []))
    lines = ["## Diagnosis", "", f"The probe had {spikes} loss spike(s) in {steps} optimizer steps.", ""]
    if not causes:
        lines += [
            "**Nothing stands out**: no rule found evidence for a cause, so nothing is changed and no remedy was "
            "tried.",
            "",
        ]
    else:
        first = causes[0]
        lines += [
            f"**Cause: {first['cause'].replace('_', ' ')}.** {first['sentence']} (confidence "
            f"{first['confidence']:.2f}).",
            "",
            f"What to do: {first['advice']}",
            "",
        ]
        for other in causes[1:]:
            lines.append(
                f"- Also ({other['cause'].replace('_', ' ')}, confidence {other['confidence']:.2f}): "
                f"{other['sentence']}. {other['advice']}"
            )
    lines += [f"- Checked: {note['sentence']}." for note in notes]
    named = [a for f in causes for a in f.get("anomalies", [])]
    if named:
        lines += [
            "",
            "| kind | column | time | value | neighbours' median | robust score | spikes whose windows hold it |",
            "|---|---|---|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {a['kind'].replace('_', ' ')} | {a['column']} | {a['time']} | {_num(a['value'])} | "
            f"{_num(a['reference'])} | {_num(a['score'], '.3g')} | {a['spikes']} |"
            for a in named
        ]
    return [*lines, ""]


def _table(rows: list[Row], winner: Row | None, tolerance: float) -> list[str]:
    base = rows[0]
    lines = [
        "## Before and after",
        "",
        "Same seed, data split and budget for every run. Validation MAE: the mean of the last third of the epochs, on "
        f"the original scale (the test split is never read). A remedy is refused if it worsens it by more than "
        f"{tolerance:.0%} or adds spikes.",
        "",
        "| run | change | spikes | spikes removed | val MAE | vs probe | verdict | cost | wall s |",
        "|---|---|---:|---:|---:|---:|---|---|---:|",
    ]
    for row in rows:
        removed = "" if row is base or row.spikes is None or not base.spikes else f"{1 - row.spikes / base.spikes:.0%}"
        change = row.mae_change(base.val_mae)
        verdict = (
            "baseline"
            if row is base
            else "**winner**"
            if row is winner
            else (f"refused: {row.refused}" if row.refused else "accepted")
        )
        lines.append(
            f"| {row.name} | {row.what} | {'-' if row.spikes is None else row.spikes} | {removed} | "
            f"{_num(row.val_mae)} | {'' if change is None or row is base else f'{change:+.1%}'} | {verdict} | "
            f"{row.cost} | {_num(row.wall_s, '.1f')} |"
        )
    return [*lines, ""]


def _data_notes(probe: dict[str, Any]) -> list[str]:
    """The probe's data notes: values implausible for their column, whether or not they caused spikes."""
    context = probe.get("context") or {}
    notes = context.get("data_notes", [])
    return ["## Data notes", "", data_notes_markdown(notes, context.get("data_notes_total")), ""]


def _hypotheses(summary, rows: list[Row], tolerance: float) -> list[str]:
    """Each hypothesis of the probe (a finding with advice) and what its own remedies' runs said of it
    (:func:`~lightning_lstm.doctor.verdicts.verdicts`); remedies combined from two hypotheses are reported on their
    own line."""
    probe_findings = summary.get("probe_findings", summary["findings"])
    causes = [f["cause"] for f in probe_findings if f.get("advice")]
    if not causes or len(rows) < 2:
        return []
    base, by_name = rows[0], {r.name: r for r in rows[1:]}
    groups = causes + [c["cause"] for c in summary["candidates"] if c["cause"] not in causes]
    said = verdicts([g for g in dict.fromkeys(groups) if "+" not in g], summary["candidates"], rows, tolerance)
    lines = ["## Hypotheses and what the runs said", ""]
    sentinels = {f["cause"] for f in probe_findings if f.get("advice") and f.get("sentinels")}
    for group in dict.fromkeys(groups):
        tried = [by_name[c["name"]] for c in summary["candidates"] if c["cause"] == group and c["name"] in by_name]
        name = " + ".join(part.replace("_", " ") for part in group.split("+"))
        if "+" in group:
            lines.append(f"- **{name}** together: {outcomes(tried, base)}.")
        elif not tried:
            lines.append(f"- **{name}**: not tried (over `doctor.max_candidates`).")
        elif group in sentinels and said[group][0] != CONFIRMED:
            lines.append(
                f"- **{name}** (sentinels, named for what they are, not for spikes): masking them did not help this "
                f"run ({outcomes(tried, base)}); they are still no readings of their column: fix them at the source."
            )
        else:
            lines.append(f"- **{name}**: {said[group][0]} by the runs ({outcomes(tried, base)}).")
    return [*lines, ""]


def _more_spikes(winner: Row | None, base: Row) -> list[str]:
    """Why a winner with more spikes than the probe still wins."""
    if winner is None or winner.spikes is None or base.spikes is None or winner.spikes <= base.spikes:
        return []
    change = winner.mae_change(base.val_mae)
    lower = f"{-change:.1%} lower" if change is not None else "lower"
    return [
        f"`{winner.name}` has more spikes than the probe ({winner.spikes} against {base.spikes}) and a validation MAE "
        f"{lower}: the detector counts spikes relative to each run's own loss, and this remedy's loss is on another "
        "(smaller or bounded) scale, so smaller bumps count as spikes. The MAE is what your forecasts are scored on.",
        "",
    ]


def report_markdown(summary, rows: list[Row], winner: Row | None, probe, lr_test, options) -> str:
    """The whole report as markdown."""
    lines = ["# doctor report", ""]
    if summary.get("command"):
        lines += [f"`{summary['command']}`", ""]
    runs = f", {summary['jobs']} at a time" if summary["candidates"] else " (the probe only)"
    lines += [
        f"Every run trained {summary['probe_epochs']} epoch(s) ({len(probe['recorder']['steps'])} steps){runs}.",
        "",
    ]
    lines += _diagnosis(summary["findings"], probe)
    lines += _data_notes(probe)
    if len(rows) > 1:
        lines += _table(rows, winner, options.tolerance)
        lines += _hypotheses(summary, rows, options.tolerance)
        lines += _more_spikes(winner, rows[0])
    if lr_test:
        used = next((c["overlay"] for c in summary["candidates"] if c["cause"] == "learning_rate"), {})
        lines += [
            f"LR range test (Lightning `Tuner.lr_find`, 100 steps from 1e-6 to 1, {lr_test['wall_s']:.1f} s): "
            f"Lightning's suggestion {_num(lr_test.get('suggestion'), '.2g')}; candidates tried "
            f"{', '.join(_num(v, '.2g') for v in used.values()) or 'none'}.",
            "",
        ]
    if winner is not None:
        lines += [
            f"**Fix**: `{summary['fixed_yaml']}` is your config plus `{winner.name}` ({winner.what}). Train it "
            "with `python -m lightning_lstm fit --config fixed.yaml`.",
            "",
        ]
    elif len(rows) > 1:
        lines += [
            "**No remedy passed**: none removed spikes or lowered the validation MAE by more than the tolerance "
            "without worsening it; no fixed.yaml was written.",
            "",
        ]
    lines += ["![training loss before and after](loss.png)", ""]
    lines += [
        "## Time",
        "",
        f"The doctor took {summary['wall_s']:.0f} s: the probe alone, then {len(summary['candidates'])} candidate(s) "
        f"{summary['jobs']} at a time. One probe took {probe['wall_s']:.1f} s, so probe x (1 + candidates / jobs) = "
        f"{summary['estimate_s']:.0f} s; the rest is each process's start, reading the data"
        + (" and the LR range test." if lr_test else "."),
        "",
        "Every run's TensorBoard folder, `spikes.json` and console log are under `runs/<name>/` and `configs/`.",
        "",
    ]
    return "\n".join(lines)
