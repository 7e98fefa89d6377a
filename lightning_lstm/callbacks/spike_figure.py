"""The "loss with spikes" figure: per-step loss, the detector's threshold band, spike markers, epoch boundaries.

Written by :class:`~.loss_spikes.LossSpikeCallback` at the end of fit to TensorBoard (Images tab, tag
``stability/loss_with_spikes``) and as ``loss_with_spikes.png`` in the run folder; on demand from a checkpoint with
:func:`loss_figure_from_checkpoint`. The history it draws (:class:`LossHistory`) is 20 bytes a step and travels in
the checkpoint with the callback's state, so a resumed fit draws the whole run.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import torch

from lightning_lstm.spikes.detector import SpikeVerdict
from lightning_lstm.spikes.records import SpikeRecord

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after choosing the headless backend

log = logging.getLogger(__name__)

FIGURE_TAG = "stability/loss_with_spikes"
FIGURE_FILE = "loss_with_spikes.png"
DPI = 100  # TensorBoard's image: 550 x 330 px, about the width of its image card, so the text stays legible
FIGSIZE = (5.5, 3.3)
PNG_DPI = 200  # the run folder's PNG: the same figure, 1100 x 660 px


class LossHistory:
    """Every scored step's loss, the detector's baseline (rolling median) and threshold (in the loss's units) and
    epoch, in arrays that grow by doubling: int64 step, three float32 values and an int32 epoch a step."""

    def __init__(self) -> None:
        self.size = 0
        self.steps = np.empty(0, dtype=np.int64)
        self.values = np.empty((0, 3), dtype=np.float32)  # loss, baseline, threshold; NaN where undefined (warm-up)
        self.epochs = np.empty(0, dtype=np.int32)

    def append(self, step: int, loss: float, verdict: SpikeVerdict, threshold: float, epoch: int) -> None:
        """One scored step: ``verdict`` from the loss detector, ``threshold`` its z-score threshold."""
        if self.size == len(self.steps):
            capacity = max(1024, 2 * self.size)
            self.steps = np.resize(self.steps, capacity)
            self.values = np.resize(self.values, (capacity, 3))
            self.epochs = np.resize(self.epochs, capacity)
        line = verdict.baseline + threshold * verdict.spread if verdict.warm else float("nan")
        self.steps[self.size], self.epochs[self.size] = step, epoch
        self.values[self.size] = (loss, verdict.baseline, line)
        self.size += 1

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(steps, loss, baseline, threshold, epochs)`` of the steps recorded so far (views, no copies)."""
        values = self.values[: self.size]
        return self.steps[: self.size], values[:, 0], values[:, 1], values[:, 2], self.epochs[: self.size]

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Plain tensors (a checkpoint loads them with ``weights_only=True``)."""
        n = self.size
        return {name: torch.from_numpy(getattr(self, name)[:n].copy()) for name in ("steps", "values", "epochs")}

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        """Restores :meth:`state_dict`; ``None`` (a checkpoint from before the history was kept) leaves it empty."""
        if state is None:
            return
        self.steps = np.asarray(state["steps"], dtype=np.int64).copy()
        self.values = np.asarray(state["values"], dtype=np.float32).reshape(-1, 3).copy()
        self.epochs = np.asarray(state["epochs"], dtype=np.int32).copy()
        self.size = len(self.steps)


def loss_figure(history: LossHistory, records: list[SpikeRecord]):
    """The figure (5.5 x 3.3 in at 100 dpi): the loss of every scored step, the band from the rolling median to the
    spike threshold, a marker on each spike, a dotted line where each epoch begins. The loss axis is logarithmic when
    the loss spans more than two decades (a spike 1000x the loss would flatten the rest)."""
    steps, loss, baseline, threshold, epochs = history.arrays()
    figure, ax = plt.subplots(figsize=FIGSIZE, dpi=DPI)
    ax.plot(steps, loss, color="tab:blue", linewidth=1, label="loss per step")
    ax.fill_between(
        steps, baseline, threshold, color="tab:orange", alpha=0.25, linewidth=0, label="median .. threshold"
    )
    ax.plot(steps, threshold, color="tab:orange", linewidth=0.8)
    spikes = [(r.global_step, r.loss) for r in records if np.isfinite(r.loss)]
    if spikes:
        x, y = zip(*spikes, strict=True)
        ax.scatter(x, y, marker="v", s=70, color="tab:red", zorder=3, label=f"spike ({len(records)})")
    starts = steps[1:][np.diff(epochs) != 0] if len(steps) else steps
    for i, start in enumerate(starts):
        ax.axvline(start, color="0.5", linestyle=":", linewidth=1, label="epoch start" if i == 0 else None)
    finite = loss[np.isfinite(loss)]
    if len(finite) and finite.min() > 0 and finite.max() / finite.min() > 100:
        ax.set_yscale("log")
    epochs_seen = len(np.unique(epochs))
    ax.set_title(f"Loss with spikes: {len(records)} spikes in {len(steps)} steps, {epochs_seen} epochs", fontsize=12)
    ax.set_xlabel("global step", fontsize=11)
    ax.set_ylabel("training loss", fontsize=11)
    ax.tick_params(labelsize=10)
    ax.legend(loc="best", fontsize=9, framealpha=0.8)
    ax.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def write_loss_figure(writer, folder: Path, history: LossHistory, records: list[SpikeRecord], step: int) -> Path | None:
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
    history = LossHistory()
    history.load_state_dict(spike_state["loss_history"])
    return loss_figure(history, [SpikeRecord.from_dict(r) for r in spike_state["records"]])
