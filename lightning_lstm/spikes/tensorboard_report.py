"""What the spike callback shows in TensorBoard: the Stability dashboard, per-step scalars, per-spike text, summary."""

from __future__ import annotations

import math

from tensorboard.compat.proto.summary_pb2 import Summary
from torch.utils.tensorboard import SummaryWriter

from lightning_lstm.spikes.records import SpikeRecord

SCALAR_TAGS = {
    "loss": "stability/loss",
    "loss_threshold": "stability/loss_threshold",
    "loss_score": "stability/loss_score",
    "grad_norm": "stability/grad_norm",
    "grad_norm_threshold": "stability/grad_norm_threshold",
    "grad_norm_score": "stability/grad_norm_score",
    "lr": "stability/lr",
    "spike": "stability/spike",
    "spike_count": "stability/spike_count",
}

STABILITY_LAYOUT = {
    "Stability": {
        "loss and its spike threshold": ["Multiline", [SCALAR_TAGS["loss"], SCALAR_TAGS["loss_threshold"]]],
        "gradient norm before clipping": [
            "Multiline",
            [SCALAR_TAGS["grad_norm"], SCALAR_TAGS["grad_norm_threshold"]],
        ],
        "robust scores (z, median/MAD)": [
            "Multiline",
            [SCALAR_TAGS["loss_score"], SCALAR_TAGS["grad_norm_score"]],
        ],
        "learning rate": ["Multiline", [SCALAR_TAGS["lr"]]],
        "spikes (marker and running count)": [
            "Multiline",
            [SCALAR_TAGS["spike"], SCALAR_TAGS["spike_count"]],
        ],
    }
}


def finite_or_zero(value: float | None) -> float:
    """TensorBoard plots NaN badly: scalars that are not yet defined (warm-up) are written as 0."""
    return value if value is not None and math.isfinite(value) else 0.0


def write_scalars(writer, values: dict[str, float], step: int) -> None:
    """Writes one step's Stability scalars (keys of :data:`SCALAR_TAGS`) as a single event holding all of them.

    TensorBoard's writer thread frames every event with two CRC32Cs computed in pure Python and holds the GIL
    meanwhile, so each event costs the training thread too: nine ``add_scalar`` events took ~0.8 ms of writer CPU
    (and filled torch's 10-event queue, so writes blocked), one event holding nine values ~0.3 ms. TensorBoard reads
    an event's values as separate scalars.
    """
    if isinstance(writer, SummaryWriter):  # torch's writer; tensorboardX has its own proto classes
        summary = Summary(
            value=[Summary.Value(tag=SCALAR_TAGS[k], simple_value=finite_or_zero(v)) for k, v in values.items()]
        )
        writer._get_file_writer().add_summary(summary, step)
        return
    for key, value in values.items():
        writer.add_scalar(SCALAR_TAGS[key], finite_or_zero(value), step)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def spike_markdown(record: SpikeRecord) -> str:
    """One spike as a markdown table plus the windows that contributed most to the loss."""
    position = record.position_in_epoch
    rows = [
        ("epoch", record.epoch),
        ("global step", record.global_step),
        ("batch index", f"{record.batch_idx} of {record.batches_in_epoch or '?'}"),
        ("position within the epoch", "n/a" if position is None else f"{position:.0%}"),
        ("loss", _fmt(record.loss)),
        ("baseline (rolling median)", _fmt(record.baseline)),
        ("score (robust z)", f"{_fmt(record.score)} (threshold {_fmt(record.threshold)})"),
        ("gradient norm before clipping", f"{_fmt(record.grad_norm)} (score {_fmt(record.grad_score)})"),
        ("learning rate", _fmt(record.lr)),
        ("batch size", f"{record.batch_size} of {record.nominal_batch_size}"),
        ("update skipped", "yes" if record.skipped else "no"),
    ]
    lines = ["| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)]
    if record.top_windows:
        lines += [
            "",
            "Windows with the highest loss in this batch:",
            "",
            "| series | inputs from | targets | window loss |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {w['series']} | {w['input_start']} | {w['target_start']} .. {w['target_end']} | {w['loss']:.4g} |"
            for w in record.top_windows
        ]
    return "\n".join(lines)


def summary_markdown(
    records: list[SpikeRecord], total_steps: int, epochs: int, sentences: list[str], stop_reason: str | None = None
) -> str:
    """End-of-fit summary: counts, why the fit stopped early (if it did), then the diagnosis in plain sentences."""
    nonfinite = sum(r.nonfinite for r in records)
    skipped = sum(r.skipped for r in records)
    epochs_with = len({r.epoch for r in records})
    head = (
        f"{len(records)} loss spikes in {total_steps} steps over {epochs} epochs "
        f"({epochs_with} epochs with at least one; {nonfinite} non-finite; {skipped} updates skipped)."
    )
    stop = [f"The fit was stopped early: {stop_reason}."] if stop_reason else []
    return "\n\n".join([head, *stop, *(f"- {s}" for s in sentences)])
