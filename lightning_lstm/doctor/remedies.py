"""From the probe's findings to the candidate remedies the doctor tries: each a named config overlay with its cost.

Each hypothesis (a finding with advice) gets its own remedy first, in the diagnosis' order, so every hypothesis is
tried within ``max_candidates``; then, where the findings offer them, the variants: the outlier clip that would cut
every named bad value with the fewest real values, the LR range test's learning rate, the larger batch with its
learning rate scaled, the ``l1`` loss beside ``huber``, shuffling with ``data.window_norm: last`` where windows are
fed on their own level (``none``), and the first two remedies together. A larger batch runs for ``BATCH_GROWTH``
times the probe's epochs: as many optimizer steps as the probe, so it is not judged on a quarter of the updates.
Nothing here is tried without a finding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from lightning_lstm.spikes.causes import BATCH_GROWTH, LR_KEY

NAMES = {
    "order": "shuffle",
    "last_batch": "drop_last",
    "gradients": "clip_gradients",
    "unscaled": "scale",
    "heavy_tail": "huber_loss",
}
BATCH_LR_SCALE = 2.0
"""The learning rate's factor beside a 4x batch (the square-root rule for adaptive optimizers)."""
STEPS_WORDS = f", {BATCH_GROWTH}x the epochs (the probe's optimizer steps)"


def _steps() -> dict[str, Any]:
    """A larger batch's run: ``BATCH_GROWTH`` times the epochs, as many optimizer steps as the probe made."""
    return {"epochs_factor": BATCH_GROWTH}


@dataclass
class Candidate:
    """One remedy to try.

    Attributes:
        name: a short folder-safe name (``shuffle``, ``mask_bad_values``, ``lr_3e-4``).
        cause: the finding it answers.
        overlay: the dotted config keys it sets.
        what: the change in words, for the report.
        cost: what it gives up, as far as known before the run ("clips 3 bad values and 2 real values").
        extra: more facts for the run: ``epochs_factor``, the probe's epochs times this (a larger batch: as many
            optimizer steps as the probe); ``range_test``, the LR range test's suggestion.
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


def _remedy(finding: dict[str, Any], context: dict[str, Any]) -> Candidate | None:
    """The finding's own remedy: masking the values it names, its learning rate, or its config overlay."""
    cause, overlay = finding["cause"], dict(finding["overlay"])
    named = finding.get("anomalies", [])
    if named and "data.path" in overlay:
        times = ", ".join(sorted({a["time"] for a in named}))
        drop = overlay.get("data.missing") == "drop"
        cost = f"{len(named)} timestamp(s) masked" + (" (windows touching them skipped)" if drop else " (filled)")
        return Candidate(f"mask_{cause}", cause, overlay, f"mask {times}", cost)
    if cause == "learning_rate" or (cause == "nonfinite" and LR_KEY in overlay):
        return Candidate(f"lr_{overlay[LR_KEY]:.2g}", cause, overlay, f"learning rate {overlay[LR_KEY]:.2g}")
    if cause == "batch_noise" and "data.batch_size" in overlay:
        size = overlay["data.batch_size"]
        return Candidate(
            f"batch_{size}", cause, overlay, f"batch_size: {size}{STEPS_WORDS}", _cost(cause, context), _steps()
        )
    if overlay:
        what = ", ".join(f"{k.split('.', 1)[1]}: {v}" for k, v in overlay.items())
        return Candidate(NAMES.get(cause, _name(cause)), cause, overlay, what, _cost(cause, context))
    return None


def _variants(finding: dict[str, Any], context: dict[str, Any]) -> list[Candidate]:
    """More remedies for the same hypothesis, tried after every hypothesis' own one."""
    cause, overlay, named = finding["cause"], finding["overlay"], finding.get("anomalies", [])
    out = []
    if cause in ("bad_values", "nonfinite") and named:
        clip = _outlier_clip(context, len(named))
        if clip is not None:
            out.append(clip)
    lr = float(context.get("lr_max_seen") or 0.0)
    if cause == "batch_noise" and "data.batch_size" in overlay and lr:
        size, scaled = overlay["data.batch_size"], float(f"{lr * BATCH_LR_SCALE:.2g}")
        out.append(
            Candidate(
                f"batch_{size}+lr_{scaled:.2g}",
                cause,
                {"data.batch_size": size, LR_KEY: scaled},
                f"batch_size: {size}, learning rate {scaled:.2g} ({BATCH_LR_SCALE:g}x){STEPS_WORDS}",
                _cost(cause, context),
                _steps(),
            )
        )
    if cause == "heavy_tail":
        out.append(Candidate("l1_loss", cause, {"model.loss": "l1"}, "loss: l1", _cost(cause, context)))
    if cause == "order" and context.get("window_norm") == "none":
        # unshuffled, the model follows the series' level through the epoch and ends on the latest one; shuffled, it
        # must read the level from each window, which window_norm: last hands it
        out.append(
            Candidate(
                "shuffle+window_norm_last",
                cause,
                {"data.shuffle": True, "data.window_norm": "last"},
                "shuffle: True, window_norm: last",
                _cost(cause, context) + "; each window fed relative to its last value",
            )
        )
    return out


def candidates_for(findings: list[dict[str, Any]], context: dict[str, Any], lr_test: dict | None, limit: int):
    """The candidates for the probe's ``findings`` (dicts of :class:`~lightning_lstm.spikes.records.Finding`).

    Args:
        findings: the probe's findings, the first-named first.
        context: the probe's run context (settings, clip effects, learning rate).
        lr_test: the LR range test's result, if one ran.
        limit: at most this many candidates: each hypothesis' own remedy first, then the variants.
    """
    hypotheses = [f for f in findings if f.get("advice")]  # a note: nothing to try
    out = [c for c in (_remedy(f, context) for f in hypotheses) if c is not None]
    more = [c for f in hypotheses for c in _variants(f, context)]
    current = float(context.get("lr_max_seen") or 0.0)
    tested = range_test_lr(lr_test, current) if current else None
    if tested is not None:
        more.append(
            Candidate(
                f"lr_{tested:.2g}",
                "learning_rate",
                {LR_KEY: tested},
                f"learning rate {tested:.2g} (LR range test)",
                extra={"range_test": lr_test.get("suggestion")},
            )
        )
    if len(out) >= 2 and not set(out[0].overlay) & set(out[1].overlay):
        first, second = out[:2]
        more.append(
            Candidate(
                f"{first.name}+{second.name}",
                f"{first.cause}+{second.cause}",
                {**first.overlay, **second.overlay},
                f"{first.what} and {second.what}",
                "; ".join(c for c in (first.cost, second.cost) if c),
                {"epochs_factor": max(epochs_factor(first), epochs_factor(second))},
            )
        )
    unique: list[Candidate] = []
    for candidate in out + more:
        if all(candidate.overlay != c.overlay for c in unique):
            unique.append(candidate)
    return unique[:limit]


def epochs_factor(candidate: Candidate) -> int:
    """How many times the probe's epochs the candidate runs (1 but for a larger batch: ``_steps``)."""
    return int(candidate.extra.get("epochs_factor") or 1)


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
    if cause == "batch_noise":
        return f"{BATCH_GROWTH}x the windows per step and as many steps as the probe ({BATCH_GROWTH}x the epochs)"
    if cause == "heavy_tail":
        return "none on the data: the peaks stay, each window's pull on the loss is bounded"
    return ""
