"""The loss-spike callback through the CLI on a series with outliers injected at known timestamps.

No outlier clipping and no shuffling: the batches holding the outliers come back at the same place every epoch, and
the report must name those timestamps; clipping at the 1% quantiles (the outliers are 0.7% of the training span) must
leave fewer spikes. The same fit's TensorBoard events are read back (scalars, texts, the Stability layout), and a
resume from a mid-run checkpoint must detect exactly what the uninterrupted run detected. About 30 s on two quiet cores.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.custom_scalar import metadata as custom_scalars
from tensorboard.util import tensor_util

from lightning_lstm.cli import build_cli
from lightning_lstm.spikes.outputs import LOGGED_TAGS, SCALAR_TAGS, exact
from tests.helpers import REPO, write_weekly_sine

START = pd.Timestamp("2020-01-01")
INJECTED = {100: 30.0, 210: 40.0, 330: 25.0}  # row: factor; all in the training span (rows 0-419 of 600)
INJECTED_DAYS = sorted(START + pd.Timedelta(days=row) for row in INJECTED)  # 2020-04-10, 2020-07-29, 2020-11-26
EPOCHS = 8
STEPS_PER_EPOCH = 26  # 403 training windows (lookback 14, horizon 4) in batches of 16
RESUME_EPOCH = 3  # resume from the checkpoint written at the end of this epoch


def write_series(path: Path) -> Path:
    """600 noisy daily values of a weekly sine around 10, a few multiplied by 25-40."""
    return write_weekly_sine(path, steps=600, start=START, scale_rows=INJECTED)


def fit_args(root: Path, csv: Path, *extra: str) -> list[str]:
    return [
        "fit",
        "--config",
        str(REPO / "configs" / "default.yaml"),
        f"--trainer.max_epochs={EPOCHS}",
        "--trainer.num_sanity_val_steps=0",
        "--trainer.gradient_clip_val=null",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        f"--trainer.logger.init_args.save_dir={root}",
        "--model.hidden_size=8",
        "--model.num_layers=1",
        "--model.optimizer.init_args.lr=0.01",
        "--model.scheduler=null",
        f"--data.path={csv}",
        "--data.target_columns=[value]",
        "--data.lookback=14",
        "--data.batch_size=16",
        "--data.window_norm=none",
        "--data.shuffle=false",
        "--forecast_plot.every_n_epochs=0",
        "--checkpoint.save_top_k=-1",  # one checkpoint per epoch: the resume test starts from a mid-run one
        *extra,
    ]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same fit without clipping and with 1% quantile clipping; returns their run folders (and the series)."""
    threads = torch.get_num_threads()
    root = tmp_path_factory.mktemp("outliers")
    csv = write_series(root / "series.csv")
    folders = {"csv": csv}
    with pytest.MonkeyPatch.context() as env:
        env.setenv("OMP_NUM_THREADS", "1")  # one torch thread per fit (a tiny model; the machine is shared)
        for outliers in ("none", "quantile"):
            build_cli(
                fit_args(root / outliers, csv, f"--data.outliers={outliers}", "--data.outlier_quantiles=[0.01,0.99]")
            )
            folders[outliers] = root / outliers / "default" / "version_0"
        yield folders
    torch.set_num_threads(threads)


def report(run: Path) -> dict:
    return json.loads((run / "spikes.json").read_text())


def days(first: str, last: str) -> list[pd.Timestamp]:
    return [d for d in INJECTED_DAYS if pd.Timestamp(first) <= d <= pd.Timestamp(last)]


def events(run: Path) -> EventAccumulator:
    accumulator = EventAccumulator(str(run), size_guidance={"scalars": 0, "tensors": 0})
    accumulator.Reload()
    return accumulator


def texts(accumulator: EventAccumulator, tag: str) -> list[tuple[int, str]]:
    return [(e.step, e.tensor_proto.string_val[0].decode()) for e in accumulator.Tensors(f"{tag}/text_summary")]


def test_unclipped_outliers_give_spikes_every_epoch_attributed_to_their_timestamps(runs):
    spikes = report(runs["none"])["spikes"]
    assert spikes and {s["epoch"] for s in spikes} == set(range(1, EPOCHS))  # epoch 0 is mostly warm-up
    for spike in spikes:
        worst = spike["top_windows"][0]
        assert len(days(worst["target_start"], worst["target_end"])) == 1, worst  # an outlier is what it predicts
        assert spike["loss"] > 100 * spike["baseline"]
    covered = {d for s in spikes for w in s["top_windows"] for d in days(w["target_start"], w["target_end"])}
    assert covered == set(INJECTED_DAYS)
    # The same batch positions (the batches holding the outliers) in every epoch.
    assert {s["batch_idx"] for s in spikes} == {5, 12, 19}


def test_the_diagnosis_names_the_outlier_values_and_their_timestamps(runs):
    (first, *_) = report(runs["none"])["findings"]
    assert first["cause"] == "bad_values" and first["advice"].startswith("Fix or mask these timestamps")
    assert sorted(a["time"] for a in first["anomalies"]) == [f"{d:%Y-%m-%d}" for d in INJECTED_DAYS]
    (sentence,) = [s for s in report(runs["none"])["diagnosis"] if "far from their neighbours" in s]
    for day in INJECTED_DAYS:  # "value = 301.2 at 2020-04-10 is 29.7x the median of the neighbouring days"
        assert re.search(rf"value = [0-9.]+ at {day:%Y-%m-%d} is [0-9.]+x the median of the neighbouring days",
                         sentence), sentence  # fmt: skip
    assert "`data.shuffle: true`" not in sentence  # the bad values, not the order, make these spikes


def test_clipping_the_outliers_leaves_fewer_and_smaller_spikes(runs):
    unclipped, clipped = report(runs["none"])["spikes"], report(runs["quantile"])["spikes"]
    assert len(clipped) < 0.75 * len(unclipped), (len(clipped), len(unclipped))
    assert max(s["loss"] for s in clipped) < 0.1 * min(s["loss"] for s in unclipped)
    clipped_diagnosis = " ".join(report(runs["quantile"])["diagnosis"])
    assert "`data.outliers: quantile` would clip" not in clipped_diagnosis  # no advice to set what is in use
    assert "`data.outliers: quantile` in use clips them only to its bounds" in clipped_diagnosis


def test_event_files_hold_the_stability_scalars_texts_and_layout(runs):
    run = runs["none"]
    spikes = report(run)["spikes"]
    accumulator = events(run)
    total = EPOCHS * STEPS_PER_EPOCH

    # The detector's series at the steps Lightning writes step metrics (every trainer.log_every_n_steps, 10 in
    # configs/default.yaml, counted from 1), and at every spike step. The loss, gradient norm and learning rate are
    # the module's and the LR monitor's own tags, at those same steps (no copies).
    logged = list(range(9, total, 10))
    written = sorted({*logged, *(s["global_step"] for s in spikes)})
    scalars = accumulator.Tags()["scalars"]
    for tag in SCALAR_TAGS.values():
        assert tag in scalars and [e.step for e in accumulator.Scalars(tag)] == written, tag
    lr_tags = [t for t in scalars if re.match(LOGGED_TAGS["lr"], t)]
    assert lr_tags and not {"stability/loss", "stability/grad_norm", "stability/lr"} & set(scalars)
    for tag in (LOGGED_TAGS["loss"], LOGGED_TAGS["grad_norm"], *lr_tags):
        assert [e.step for e in accumulator.Scalars(tag)] == logged, tag
    marked = [e.step for e in accumulator.Scalars(SCALAR_TAGS["spike"]) if e.value == 1.0]
    assert marked == [s["global_step"] for s in spikes]
    assert accumulator.Scalars(SCALAR_TAGS["spike_count"])[-1].value == len(spikes)
    assert all(e.value == pytest.approx(0.01) for tag in lr_tags for e in accumulator.Scalars(tag))
    by_step = {e.step: e.value for e in accumulator.Scalars(LOGGED_TAGS["loss"])}
    threshold = {e.step: e.value for e in accumulator.Scalars(SCALAR_TAGS["loss_threshold"])}
    score = {e.step: e.value for e in accumulator.Scalars(SCALAR_TAGS["loss_score"])}
    assert all(score[s["global_step"]] >= s["threshold"] and threshold[s["global_step"]] > 0 for s in spikes)
    on_logged_steps = [s["global_step"] for s in spikes if s["global_step"] in by_step]
    assert on_logged_steps and all(by_step[step] > threshold[step] for step in on_logged_steps)
    calm = [step for step in logged if step not in marked and step >= 20]  # after the warm-up of 20 steps
    assert calm and all(by_step[step] < threshold[step] for step in calm)

    reports = texts(accumulator, "spikes/report")
    assert [step for step, _ in reports] == [s["global_step"] for s in spikes]
    for (_, markdown), spike in zip(reports, spikes, strict=True):
        worst = spike["top_windows"][0]
        assert f"| global step | {spike['global_step']} |" in markdown
        assert f"| {worst['target_start']} .. {worst['target_end']} |" in markdown
    ((_, summary),) = texts(accumulator, "spikes/summary")
    assert summary.startswith(f"{len(spikes)} loss spikes in {total} steps over {EPOCHS} epochs")
    ((_, diagnosis),) = texts(accumulator, "spikes/diagnosis")
    assert "far from their neighbours" in diagnosis

    (config,) = accumulator.Tensors(custom_scalars.CONFIG_SUMMARY_TAG)  # written once
    assert accumulator.SummaryMetadata(custom_scalars.CONFIG_SUMMARY_TAG).plugin_data.plugin_name == "custom_scalars"
    layout = layout_pb2.Layout.FromString(tensor_util.make_ndarray(config.tensor_proto).item())
    (category,) = layout.category
    charts = {chart.title: list(chart.multiline.tag) for chart in category.chart}
    assert category.title == "Stability"
    assert charts["loss and its spike threshold"] == [exact(LOGGED_TAGS["loss"]), exact(SCALAR_TAGS["loss_threshold"])]
    assert {exact(LOGGED_TAGS["grad_norm"]), LOGGED_TAGS["lr"], exact(SCALAR_TAGS["spike"])} <= {
        t for ts in charts.values() for t in ts
    }
    for pattern in {t for ts in charts.values() for t in ts}:  # chart tags are regexes: each charts a written series
        assert any(re.match(pattern, tag) for tag in scalars), pattern


def test_resume_from_a_mid_run_checkpoint_continues_detection_without_a_new_warmup(runs):
    run = runs["none"]
    steps = (RESUME_EPOCH + 1) * STEPS_PER_EPOCH
    (middle,) = (run / "checkpoints").glob(f"best-epoch{RESUME_EPOCH:03d}-step{steps}.ckpt")
    saved = torch.load(middle, weights_only=True)["callbacks"]["LossSpikeCallback"]
    assert saved["loss_detector"]["steps_seen"] == steps

    root = run.parents[1]
    # a folder of its own (by default a resumed fit continues the checkpoint's run) to compare with the original
    build_cli(
        fit_args(
            root,
            runs["csv"],
            "--data.outliers=none",
            f"--ckpt_path={middle}",
            "--trainer.logger.init_args.version=resumed",
        )
    )
    resumed = root / "default" / "resumed"

    original, again = report(run), report(resumed)
    assert again["total_steps"] == original["total_steps"] == EPOCHS * STEPS_PER_EPOCH
    assert [s["global_step"] for s in again["spikes"]] == [s["global_step"] for s in original["spikes"]]
    first_after = min(s["global_step"] for s in again["spikes"] if s["global_step"] >= steps)
    assert first_after - steps < 10  # the first outlier batch after the resume: well within the warm-up of 20
    for a, b in zip(again["spikes"], original["spikes"], strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4) and a["score"] == pytest.approx(b["score"], rel=1e-3)
    last = torch.load(resumed / "checkpoints" / "last.ckpt", weights_only=True)["callbacks"]["LossSpikeCallback"]
    assert last["loss_detector"]["steps_seen"] == EPOCHS * STEPS_PER_EPOCH

    accumulator = events(resumed)  # the new run folder gets its own dashboard, and scalars from the resumed step on
    assert len(accumulator.Tensors(custom_scalars.CONFIG_SUMMARY_TAG)) == 1
    assert steps <= accumulator.Scalars(LOGGED_TAGS["loss"])[0].step < steps + 10
