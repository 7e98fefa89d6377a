"""What the spike feature shows: TensorBoard's Stability series and layout, the "loss with spikes" figure,
``spikes.json`` and the text (a console line and a markdown table per spike, the end-of-fit summary).

The detector's series are the only new TensorBoard tags, written at the steps Lightning writes the step metrics
(:func:`lightning_lstm.model.module.logs_this_step`) and at every spike step; the Stability dashboard charts them beside
series already logged, one chart per scale. The figure (:func:`loss_figure`) is also drawn from a checkpoint
(:func:`loss_figure_from_checkpoint`) and before and after the doctor's remedy (:func:`before_after_figure`).
"""

from __future__ import annotations

import json
import logging
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib
import numpy as np
import torch

from lightning_lstm.callbacks import run_io
from lightning_lstm.checkpoint_io import write_atomically
from lightning_lstm.spikes.detector import SpikeVerdict
from lightning_lstm.spikes.diagnosis import Finding, findings_dicts
from lightning_lstm.spikes.history import RunHistory
from lightning_lstm.spikes.records import SpikeRecord

if TYPE_CHECKING:
    import lightning.pytorch as pl

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after choosing the headless backend

log = logging.getLogger(__name__)


# -- TensorBoard -------------------------------------------------------------------------------------------------------

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
    # Lightning holds a GradClipAlgorithmType: equal to "norm", though its str() is "GradClipAlgorithmType.NORM"
    return float(value) if value and (algorithm is None or algorithm == "norm") else None


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
    """Writes one step's detector series (keys of :data:`SCALAR_TAGS`) and the gradient clip value
    (:func:`clip_norm`) when it is set, so the norm chart draws it as a line: one event."""
    tagged = {SCALAR_TAGS[key]: finite_or_zero(value) for key, value in values.items()}
    if clip_val is not None:
        tagged[CLIP_TAG] = clip_val
    run_io.write_scalars(writer, tagged, step)


# -- the "loss with spikes" figure -------------------------------------------------------------------------------------

FIGURE_TAG = "stability/loss_with_spikes"
FIGURE_FILE = "loss_with_spikes.png"
DPI = 100  # TensorBoard's image: 550 x 330 px, about the width of its image card, so the text stays legible
FIGSIZE = (5.5, 3.3)
PNG_DPI = 200  # the run folder's PNG: the same figure, 1100 x 660 px


def draw_loss(ax, steps, loss, spikes: list[tuple[int, float]], count: int, epochs=None, band=None) -> None:
    """The "loss with spikes" panel on ``ax``: the loss of every scored step, the band from the rolling median to the
    spike threshold (``band``: ``(baseline, threshold)``, if known), a marker on each spike at ``(step, loss)``
    (``count``: spikes in all, finite or not), a dotted line where each epoch begins (``epochs``: per step). The loss
    axis is logarithmic when the loss spans more than two decades (a spike 1000x the loss would flatten the rest)."""
    steps, loss = np.asarray(steps), np.asarray(loss, dtype=float)
    ax.plot(steps, loss, color="tab:blue", linewidth=1, label="loss per step")
    if band is not None:
        baseline, threshold = band
        ax.fill_between(
            steps, baseline, threshold, color="tab:orange", alpha=0.25, linewidth=0, label="median .. threshold"
        )
        ax.plot(steps, threshold, color="tab:orange", linewidth=0.8)
    marks = [(step, value) for step, value in spikes if np.isfinite(value)]
    if marks:
        x, y = zip(*marks, strict=True)
        ax.scatter(x, y, marker="v", s=70, color="tab:red", zorder=3, label=f"spike ({count})")
    if epochs is not None and len(steps):
        for i, start in enumerate(steps[1:][np.diff(np.asarray(epochs)) != 0]):
            ax.axvline(start, color="0.5", linestyle=":", linewidth=1, label="epoch start" if i == 0 else None)
    finite = loss[np.isfinite(loss)]
    if len(finite) and finite.min() > 0 and finite.max() / finite.min() > 100:
        ax.set_yscale("log")
    ax.set_ylabel("training loss", fontsize=11)
    ax.tick_params(labelsize=10)
    ax.legend(loc="best", fontsize=9, framealpha=0.8)
    ax.grid(alpha=0.3)


def loss_figure(history: RunHistory, records: list[SpikeRecord]):
    """The callback's figure (5.5 x 3.3 in at 100 dpi): :func:`draw_loss` of the run's history and spikes."""
    steps, loss, baseline, threshold, epochs = history.arrays()
    figure, ax = plt.subplots(figsize=FIGSIZE, dpi=DPI)
    spikes = [(r.global_step, r.loss) for r in records]
    draw_loss(ax, steps, loss, spikes, len(records), epochs, (baseline, threshold))
    epochs_seen = len(np.unique(epochs))
    ax.set_title(f"Loss with spikes: {len(records)} spikes in {len(steps)} steps, {epochs_seen} epochs", fontsize=12)
    ax.set_xlabel("global step", fontsize=11)
    figure.tight_layout()
    return figure


def before_after_figure(before: dict[str, Any], after: dict[str, Any] | None, path: Path, title: str) -> Path:
    """The doctor's ``loss.png``: :func:`draw_loss` of the probe (``before``) and of the winning remedy (``after``,
    if any), one panel each on one y scale, from their result files (``recorder`` steps, losses, epochs, and
    ``spikes``)."""
    panels = [("before: your config", before)] + ([("after: " + after["name"], after)] if after else [])
    figure, axes = plt.subplots(len(panels), 1, figsize=(9, 2.6 * len(panels)), sharex=True, sharey=True, squeeze=False)
    for ax, (label, result) in zip(axes[:, 0], panels, strict=True):
        steps = result.get("recorder", {})
        spikes = [(s["global_step"], s["loss"]) for s in result.get("spikes", [])]
        draw_loss(ax, steps.get("steps", []), steps.get("losses", []), spikes, len(spikes), steps.get("epochs"))
        ax.set_title(label, fontsize=9, loc="left")
    axes[-1, 0].set_xlabel("optimizer step", fontsize=11)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI)
    plt.close(figure)
    return path


def write_loss_figure(writer, folder: Path, history: RunHistory, records: list[SpikeRecord], step: int) -> Path | None:
    """Writes :func:`loss_figure` as ``loss_with_spikes.png`` in ``folder`` and, with a TensorBoard ``writer``, under
    :data:`FIGURE_TAG`. Returns the PNG's path; ``None`` when no step was scored."""
    if history.size == 0:
        return None
    figure = loss_figure(history, records)
    path = Path(folder) / FIGURE_FILE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=PNG_DPI)
    except OSError as err:  # a full disk: the figure is a picture, not worth failing the fit
        log.warning("no %s: %s", path, err)
        path = None
    if writer is not None:
        writer.add_figure(FIGURE_TAG, figure, global_step=step)  # closes the figure
    plt.close(figure)
    return path


def loss_figure_from_checkpoint(checkpoint: str | Path):
    """The "loss with spikes" figure of the fit that wrote ``checkpoint`` (its spike callback's state)."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)  # plain tensors and values
    callbacks = state.get("callbacks", {})
    spike_state = next((v for k, v in callbacks.items() if str(k).startswith("LossSpikeCallback")), None)
    if spike_state is None or "loss_history" not in spike_state:
        raise ValueError(f"{checkpoint}: no LossSpikeCallback state with a loss history (spikes group off, or older)")
    history = RunHistory()
    history.load_state_dict(spike_state)
    return loss_figure(history, [SpikeRecord.from_dict(r) for r in spike_state["records"]])


# -- spikes.json and text ----------------------------------------------------------------------------------------------
def write_report(
    path: Path,
    trainer: pl.Trainer,
    records: list[SpikeRecord],
    *,
    epochs: int,
    stop_reason: str | None,
    sentences: list[str],
    settings: dict[str, Any],
    ranks: list[dict[str, Any]],
    findings: list[Finding] | None = None,
    data_notes: list[dict[str, Any]] | None = None,
    data_notes_total: int = 0,
) -> None:
    """Writes ``spikes.json`` (rank zero, atomically: a kill or a full disk never leaves half a file); logs an error
    when the ranks' decisions differ."""
    report = {
        "total_steps": trainer.global_step,
        "epochs": epochs,
        "stop_reason": stop_reason,
        "diagnosis": sentences,
        "findings": findings_dicts(findings or []),
        "settings": settings,
        "ranks": ranks,
        "spikes": [r.to_dict() for r in records],
        "data_notes": list(data_notes or []),  # column, series, row, time, value, reference, why
        "data_notes_total": data_notes_total,
    }
    text = json.dumps(report, indent=2).encode()
    key = "trainer.logger.init_args.save_dir" if trainer.logger is not None else "trainer.default_root_dir"
    write_atomically(path, lambda file: file.write(text), key)
    if len({(r["spikes"], r["skipped"], r["steps_digest"]) for r in ranks}) > 1:
        log.error("the ranks disagree on the loss spikes (a bug, please report): %s", ranks)


def log_spike(record: SpikeRecord) -> None:
    """One console line per spike (rank zero): where, how big, the worst windows, whether the update was skipped."""
    several = len({w["series"] for w in record.top_windows}) > 1
    where = ", ".join((f"{w['series']} " if several else "") + f"{w['target_start']}" for w in record.top_windows[:2])
    log.info(
        "loss spike at step %d (epoch %d, batch %d): loss %.4g vs baseline %.4g, score %.1f%s%s",
        record.global_step,
        record.epoch,
        record.batch_idx,
        record.loss,
        record.baseline,
        record.score,
        f"; worst windows {where}" if where else "",
        "; update skipped" if record.skipped else "",
    )


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
        ("largest share one value explains", "not tested" if record.explained_share is None
         else f"{record.explained_share:.0%} (replaced by its neighbours, re-scored without an update)"),
    ]  # fmt: skip
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
    records: list[SpikeRecord],
    total_steps: int,
    epochs: int,
    sentences: list[str],
    stop_reason: str | None = None,
    left_out: int = 0,
) -> str:
    """End-of-fit summary: counts, why the fit stopped early (if it did), the diagnosis in plain sentences, and how
    many spikes the per-spike text report left out beyond its cap (``left_out``)."""
    nonfinite = sum(r.nonfinite for r in records)
    skipped = sum(r.skipped for r in records)
    epochs_with = len({r.epoch for r in records})
    head = (
        f"{len(records)} loss spikes in {total_steps} steps over {epochs} epochs "
        f"({epochs_with} epochs with at least one; {nonfinite} non-finite; {skipped} updates skipped)."
    )
    stop = [f"The fit was stopped early: {stop_reason}."] if stop_reason else []
    cap = (
        [f"The per-spike report (spikes/report) shows the first {len(records) - left_out}; {left_out} more spikes "
         "beyond its cap (spikes.max_text_entries) were left out of it. spikes.json has every spike."]
        if left_out else []
    )  # fmt: skip
    return "\n\n".join([head, *stop, *(f"- {s}" for s in sentences), *cap])
