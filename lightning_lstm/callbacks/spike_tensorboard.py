"""What the spike callback shows in TensorBoard: the Stability dashboard and the detector's own series.

The dashboard charts series that are already logged (``train/loss_step`` and ``train/grad_norm`` by the module,
the learning rates by ``LearningRateMonitor``) beside the detector's series, which are the only new tags. The
detector's series are written at the same steps Lightning writes the step metrics (see
:func:`lightning_lstm.model.module.logs_this_step`), and at every spike step.
"""

from __future__ import annotations

import math

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

LOGGED_TAGS = {
    "loss": "train/loss_step",
    "grad_norm": "train/grad_norm",
    "lr": r"lr[-/]",  # a regex: every LearningRateMonitor tag (lr/<group>; lr-<Optimizer>[/<group>] unnamed)
}
"""Series other parts already log, charted in the dashboard (custom-scalar chart tags are regexes)."""

STABILITY_LAYOUT = {
    "Stability": {
        "loss and its spike threshold": ["Multiline", [LOGGED_TAGS["loss"], SCALAR_TAGS["loss_threshold"]]],
        "gradient norm before clipping": [
            "Multiline",
            [LOGGED_TAGS["grad_norm"], SCALAR_TAGS["grad_norm_threshold"]],
        ],
        "robust scores (z, median/MAD)": ["Multiline", [SCALAR_TAGS["loss_score"], SCALAR_TAGS["grad_norm_score"]]],
        "learning rate": ["Multiline", [LOGGED_TAGS["lr"]]],
        "spikes (marker and running count)": ["Multiline", [SCALAR_TAGS["spike"], SCALAR_TAGS["spike_count"]]],
    }
}


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


def write_scalars(writer, values: dict[str, float], step: int) -> None:
    """Writes one step's detector series (keys of :data:`SCALAR_TAGS`), one ``add_scalar`` each.

    Six events per written step: each costs TensorBoard's writer thread ~0.1 ms of CPU (its CRC is pure Python).
    """
    for key, value in values.items():
        writer.add_scalar(SCALAR_TAGS[key], finite_or_zero(value), step)
