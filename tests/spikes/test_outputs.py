"""The Stability dashboard and the "loss with spikes" figure, from a real fit with a spike injected at a known step.

The custom-scalars layout (one chart per scale, categories open, the clip value on the norm chart) and the "loss with
spikes" image (TensorBoard and PNG, also from a checkpoint). About 5 s on two quiet cores.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from lightning.pytorch.callbacks import LearningRateMonitor
from PIL import Image
from tensorboard.plugins.custom_scalar import layout_pb2

from lightning_lstm.spikes.outputs import (
    CLIP_TAG,
    FIGURE_FILE,
    FIGURE_TAG,
    LOGGED_TAGS,
    SCALAR_TAGS,
    exact,
    loss_figure,
    loss_figure_from_checkpoint,
)
from tests.helpers import write_weekly_sine
from tests.spikes.test_loss_spikes import SPIKE, STEPS_PER_EPOCH, events, fit, spike_callback

STEPS = SPIKE + 6  # three epochs of 17 steps: epoch starts at 17 and 34


@pytest.fixture(scope="module")
def spiked_run(tmp_path_factory, one_thread):
    """A fit of STEPS steps, clipping at 0.5, with one spike at SPIKE, and a checkpoint saved at its end."""
    root = tmp_path_factory.mktemp("dashboard")
    csv = root / "sine.csv"
    write_weekly_sine(csv, steps=400)
    spikes = spike_callback(log_every_n_steps=1)
    lr_monitor = LearningRateMonitor(logging_interval="step")  # the dashboard charts its learning rates
    trainer, _ = fit(
        root, csv, (SPIKE,), spikes, lr_monitor, max_steps=STEPS, log_every_n_steps=1, gradient_clip_val=0.5
    )
    trainer.save_checkpoint(root / "end.ckpt")
    return trainer, spikes, root


def test_layout_gives_each_scale_its_chart_opens_the_category_and_draws_the_clip_value(spiked_run):
    trainer, _, _ = spiked_run
    accumulator = events(Path(trainer.log_dir))
    (event,) = accumulator.Tensors("custom_scalars__config__")
    layout = layout_pb2.Layout.FromString(event.tensor_proto.string_val[0])
    (category,) = layout.category
    assert category.title == "Stability" and category.closed is False
    charts = {chart.title: list(chart.multiline.tag) for chart in category.chart}
    loss_chart = next(tags for title, tags in charts.items() if title.startswith("loss"))
    assert loss_chart == [exact(LOGGED_TAGS["loss"]), exact(SCALAR_TAGS["loss_threshold"])]  # the logged loss
    marker_charts = [tags for tags in charts.values() if any(re.match(t, SCALAR_TAGS["spike"]) for t in tags)]
    assert marker_charts == [[exact(SCALAR_TAGS["spike"])]]  # the 0/1 marker alone, never on the loss's axis
    norm_chart = next(tags for title, tags in charts.items() if title.startswith("gradient norm"))
    norm_tags = [LOGGED_TAGS["grad_norm"], SCALAR_TAGS["grad_norm_threshold"], CLIP_TAG]
    assert norm_chart == [exact(tag) for tag in norm_tags]
    clip = accumulator.Scalars(CLIP_TAG)
    assert [e.step for e in clip] == list(range(STEPS)) and {e.value for e in clip} == {0.5}
    written = accumulator.Tags()["scalars"]
    for tags in charts.values():
        assert all(any(re.match(pattern, tag) for tag in written) for pattern in tags), (tags, written)


def test_loss_with_spikes_image_in_tensorboard_and_the_run_folder(spiked_run):
    trainer, spikes, root = spiked_run
    run = Path(trainer.log_dir)
    (image,) = events(run).Images(FIGURE_TAG)
    assert (image.width, image.height) == (550, 330) and image.step == STEPS  # about TensorBoard's card width
    with Image.open(run / FIGURE_FILE) as png:
        assert png.size == (1100, 660) and round(png.info["dpi"][0]) == 200

    history = spikes.history
    steps, loss, baseline, threshold, epochs = history.arrays()
    assert steps.tolist() == list(range(STEPS)) and loss.dtype == np.float32
    assert epochs.tolist() == [s // STEPS_PER_EPOCH for s in range(STEPS)]
    assert np.isnan(threshold[:10]).all() and (threshold[10:] > baseline[10:]).all()  # no threshold in warm-up
    assert loss[SPIKE] > threshold[SPIKE]

    for figure in (loss_figure(history, spikes.records), loss_figure_from_checkpoint(root / "end.ckpt")):
        (ax,) = figure.axes
        assert figure.dpi == 100 and tuple(figure.get_size_inches() * figure.dpi) == (550, 330)
        (markers,) = ax.collections[1:]  # [0] is the threshold band
        assert markers.get_offsets().tolist() == [[SPIKE, pytest.approx(spikes.records[0].loss)]]
        epoch_lines = [line.get_xdata()[0] for line in ax.lines if line.get_linestyle() == ":"]
        assert epoch_lines == [STEPS_PER_EPOCH, 2 * STEPS_PER_EPOCH]
        assert ax.lines[0].get_xydata().shape == (STEPS, 2)  # every step's loss
        assert ax.get_title() == f"Loss with spikes: 1 spikes in {STEPS} steps, 3 epochs"


def test_the_clip_value_line_is_drawn_when_the_config_names_the_norm_algorithm():
    """configs/default.yaml sets ``gradient_clip_algorithm: norm``; Lightning stores it as an enum whose str() is not
    "norm" (the line was missing from every run of that config)."""
    import lightning.pytorch as pl

    from lightning_lstm.spikes.outputs import clip_norm

    def clip(**settings) -> float | None:
        return clip_norm(pl.Trainer(logger=False, enable_checkpointing=False, **settings))

    assert clip(gradient_clip_val=1.0, gradient_clip_algorithm="norm") == 1.0
    assert clip(gradient_clip_val=0.5) == 0.5  # Lightning's default algorithm: the norm
    assert clip(gradient_clip_val=1.0, gradient_clip_algorithm="value") is None  # not the norm's units
    assert clip() is None
