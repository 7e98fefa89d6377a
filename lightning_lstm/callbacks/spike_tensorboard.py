"""What the spike callback shows in TensorBoard: the Stability dashboard and the detector's own series.

The dashboard charts series that are already logged (``train/loss_step`` and ``train/grad_norm`` by the module,
the learning rates by ``LearningRateMonitor``) beside the detector's series, which are the only new tags. The
detector's series are written at the same steps Lightning writes the step metrics (see
:func:`lightning_lstm.model.module.logs_this_step`), and at every spike step.

One chart per scale: the loss with its threshold; the 0/1 spike marker alone (on the loss's axis a loss of 0.002
could not be read); the gradient norm with its threshold and ``trainer.gradient_clip_val`` (norm clipping only).
The "loss with spikes" image beside it is :mod:`.spike_figure`'s.
"""

from __future__ import annotations

import math
import re

from lightning_lstm.spikes.detector import SpikeVerdict

SCALAR_TAGS = {
    "loss_threshold": "stability/loss_threshold",
    "loss_score": "stability/loss_score",
    "grad_norm_threshold": "stability/grad_norm_threshold",
    "grad_norm_score": "stability/grad_norm_score",
    "spike": "stability/spike",
    "spike_count": "stability/spike_count",
}
"""The detector's series, written by this callback."""

CLIP_TAG = "stability/grad_clip_val"
"""``trainer.gradient_clip_val``, written beside them when it clips the norm: a line on the norm's chart."""

LOGGED_TAGS = {
    "loss": "train/loss_step",
    "grad_norm": "train/grad_norm",
    "lr": r"lr[-/]",  # a regex: every LearningRateMonitor tag (lr/<group>; lr-<Optimizer>[/<group>] unnamed)
}
"""Series other parts already log, charted in the dashboard (custom-scalar chart tags are regexes)."""


def exact(tag: str) -> str:
    """A chart regex for exactly ``tag``: unanchored, ``stability/spike`` would chart ``stability/spike_count`` too."""
    return f"^{re.escape(tag)}$"


STABILITY_LAYOUT = {
    "Stability": {
        "loss and its spike threshold": [
            "Multiline",
            [exact(LOGGED_TAGS["loss"]), exact(SCALAR_TAGS["loss_threshold"])],
        ],
        "spike marker (1 at a spike step)": ["Multiline", [exact(SCALAR_TAGS["spike"])]],
        "gradient norm before clipping, its threshold and the clip value": [
            "Multiline",
            [
                exact(LOGGED_TAGS["grad_norm"]),
                exact(SCALAR_TAGS["grad_norm_threshold"]),
                exact(CLIP_TAG),
            ],
        ],
        "learning rate": ["Multiline", [LOGGED_TAGS["lr"]]],
        "robust scores (z, median/MAD)": [
            "Multiline",
            [exact(SCALAR_TAGS["loss_score"]), exact(SCALAR_TAGS["grad_norm_score"])],
        ],
        "spikes so far": ["Multiline", [exact(SCALAR_TAGS["spike_count"])]],
    }
}
"""Category -> chart title -> (chart type, tag regexes), in display order."""


def stability_layout(clipping: bool) -> dict:
    """:data:`STABILITY_LAYOUT`, without the clip-value line when the run does not clip the gradient norm."""
    if clipping:
        return STABILITY_LAYOUT
    charts = {
        title: [kind, [tag for tag in tags if tag != exact(CLIP_TAG)]]
        for title, (kind, tags) in STABILITY_LAYOUT["Stability"].items()
    }
    return {"Stability": charts}


def write_layout(writer, clipping: bool) -> None:
    """Writes the Stability layout to a ``SummaryWriter``'s run; its categories are open (the proto's default)."""
    writer.add_custom_scalars(stability_layout(clipping))


def clip_norm(trainer) -> float | None:
    """``trainer.gradient_clip_val`` when it clips the norm (the chart's units), else ``None``."""
    value, algorithm = trainer.gradient_clip_val, trainer.gradient_clip_algorithm
    return float(value) if value and str(algorithm or "norm") == "norm" else None


def finite_or_zero(value: float | None) -> float:
    """TensorBoard plots NaN badly: scalars that are not yet defined (warm-up) are written as 0."""
    return value if value is not None and math.isfinite(value) else 0.0


def detector_values(
    loss: SpikeVerdict, grad: SpikeVerdict, loss_threshold: float, grad_threshold: float, spike: bool, count: int
) -> dict[str, float]:
    """One step's detector series (keys of :data:`SCALAR_TAGS`): thresholds in the loss's and norm's units."""
    return {
        "loss_threshold": loss.baseline + loss_threshold * loss.spread,
        "loss_score": loss.score,
        "grad_norm_threshold": grad.baseline + grad_threshold * grad.spread,
        "grad_norm_score": grad.score,
        "spike": float(spike),
        "spike_count": float(count),
    }


def write_scalars(writer, values: dict[str, float], step: int, clip_val: float | None = None) -> None:
    """Writes one step's detector series (keys of :data:`SCALAR_TAGS`), one ``add_scalar`` each, and the gradient
    clip value (:func:`clip_norm`) when it is set, so the norm chart draws it as a line.

    Six or seven events per written step: each costs TensorBoard's writer thread ~0.1 ms of CPU (its CRC is pure
    Python).
    """
    for key, value in values.items():
        writer.add_scalar(SCALAR_TAGS[key], finite_or_zero(value), step)
    if clip_val is not None:
        writer.add_scalar(CLIP_TAG, clip_val, step)
