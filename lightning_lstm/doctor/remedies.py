"""From the probe's findings to the candidate remedies the doctor tries: each a named config overlay with its cost.

One candidate per finding with advice, plus, where the findings offer them, the outlier clip that would cut every named
bad value with the fewest real values, the LR range test's learning rate, and the first two remedies together.
Nothing here is tried without a finding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from lightning_lstm.spikes.causes import LR_KEY

NAMES = {"order": "shuffle", "last_batch": "drop_last", "gradients": "clip_gradients", "unscaled": "scale"}


@dataclass
class Candidate:
    """One remedy to try.

    Attributes:
        name: a short folder-safe name (``shuffle``, ``mask_bad_values``, ``lr_3e-4``).
        cause: the finding it answers.
        overlay: the dotted config keys it sets.
        what: the change in words, for the report.
        cost: what it gives up, as far as known before the run ("clips 3 bad values and 2 real values").
    """

    name: str
    cause: str
    overlay: dict[str, Any]
    what: str
    cost: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def range_test_lr(result: dict[str, Any] | None, current: float) -> float | None:
    """The learning rate the LR range test points to: a tenth of where its smoothed loss was lowest (fastai's rule).

    At most 100x below ``current``; ``None`` when the test gave no curve or its point is not below ``current / 1.5``
    (the test does not call the current rate too high). Lightning's own suggestion (the steepest descent) is reported
    beside it; on short, smooth curves it often lands at the test's start.
    """
    if not result or not result.get("losses"):
        return None
    pairs = [(lr, loss) for lr, loss in zip(result["lrs"], result["losses"], strict=False) if math.isfinite(loss)]
    if len(pairs) < 10:
        return None
    lowest = min(pairs[10:] or pairs, key=lambda p: p[1])[0]  # the first steps' smoothing bias is no minimum
    if lowest / 10 >= current / 1.5:
        return None  # by the range test the current learning rate is not too high
    return float(f"{max(lowest / 10, current / 100):.2g}")


def _name(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


def candidates_for(findings: list[dict[str, Any]], context: dict[str, Any], lr_test: dict | None, limit: int):
    """The candidates for the probe's ``findings`` (dicts of :class:`~lightning_lstm.spikes.records.Finding`).

    Args:
        findings: the probe's findings, the first-named first.
        context: the probe's run context (settings, clip effects, learning rate).
        lr_test: the LR range test's result, if one ran.
        limit: at most this many candidates.
    """
    out: list[Candidate] = []
    for finding in findings:
        if not finding.get("advice"):  # a note: nothing to try
            continue
        cause, overlay = finding["cause"], dict(finding["overlay"])
        named = finding.get("anomalies", [])
        if named and "data.path" in overlay:
            times = ", ".join(sorted({a["time"] for a in named}))
            drop = overlay.get("data.missing") == "drop"
            cost = f"{len(named)} timestamp(s) masked" + (" (windows touching them skipped)" if drop else " (filled)")
            out.append(Candidate(f"mask_{cause}", cause, overlay, f"mask {times}", cost))
        elif cause == "learning_rate" or (cause == "nonfinite" and LR_KEY in overlay):
            out.append(Candidate(f"lr_{overlay[LR_KEY]:.2g}", cause, overlay, f"learning rate {overlay[LR_KEY]:.2g}"))
        elif overlay:
            what = ", ".join(f"{k.split('.', 1)[1]}: {v}" for k, v in overlay.items())
            out.append(Candidate(NAMES.get(cause, _name(cause)), cause, overlay, what, _cost(cause, context)))
        if cause in ("bad_values", "nonfinite") and named:
            clip = _outlier_clip(context, len(named))
            if clip is not None:
                out.append(clip)
    current = float(context.get("lr_max_seen") or 0.0)
    tested = range_test_lr(lr_test, current) if current else None
    if tested is not None and all(c.overlay.get(LR_KEY) != tested for c in out):
        out.append(
            Candidate(
                f"lr_{tested:.2g}",
                "learning_rate",
                {LR_KEY: tested},
                f"learning rate {tested:.2g} (LR range test)",
                extra={"range_test": lr_test.get("suggestion")},
            )
        )
    distinct = [c for i, c in enumerate(out) if c.cause not in {d.cause for d in out[:i]}]
    if len(distinct) >= 2 and not set(distinct[0].overlay) & set(distinct[1].overlay):
        first, second = distinct[:2]
        out.append(
            Candidate(
                f"{first.name}+{second.name}",
                f"{first.cause}+{second.cause}",
                {**first.overlay, **second.overlay},
                f"{first.what} and {second.what}",
                "; ".join(c for c in (first.cost, second.cost) if c),
            )
        )
    return out[:limit]


def _outlier_clip(context: dict[str, Any], named: int) -> Candidate | None:
    """The outlier method that clips all ``named`` bad values with the fewest other training values."""
    effects = context.get("clip_effects") or {}
    cutting = {m: e for m, e in effects.items() if e.get("anomalies", 0) >= named and m != context.get("outliers")}
    if not cutting:
        return None
    method, effect = min(cutting.items(), key=lambda item: item[1]["clipped"])
    real = effect["clipped"] - effect["anomalies"]
    return Candidate(
        f"outliers_{method}",
        "bad_values",
        {"data.outliers": method},
        f"data.outliers: {method}",
        f"clips the {effect['anomalies']} bad value(s) and {real} real training value(s)",
    )


def _cost(cause: str, context: dict[str, Any]) -> str:
    if cause == "last_batch":
        return f"{context.get('last_batch_size')} window(s) left out of each epoch (others each epoch when shuffled)"
    if cause == "gradients":
        return "rescales the steps above the clip"
    if cause == "order":
        return "none: the same windows, in a random order each epoch"
    return ""
