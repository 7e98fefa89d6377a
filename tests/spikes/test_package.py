"""The spike feature as one package: its old class paths still load through the CLI, its plain modules import no
Lightning, its choices come from their one definition, and the run history the doctor reads equals every step seen."""

from __future__ import annotations

import ast
import math
from pathlib import Path
from typing import get_args

import numpy as np
import pytest
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.demos.boring_classes import BoringDataModule, BoringModel

import lightning_lstm.spikes as spikes_package
from lightning_lstm.data.outliers import OutlierMethod
from lightning_lstm.doctor.recorder import recorder_summary
from lightning_lstm.spikes import LossSpikeCallback, RunHistory, SpikeVerdict
from lightning_lstm.spikes.bad_values import CLIP_METHODS, target_level
from lightning_lstm.spikes.causes import CAUSES
from lightning_lstm.spikes.diagnosis import diagnose
from lightning_lstm.spikes.records import RunContext, SpikeRecord
from tests.spikes.test_loss_spikes import SPIKE, fit, spike_callback

PACKAGE = Path(spikes_package.__file__).parent
PLAIN_MODULES = [
    "detector", "pending", "history", "records", "bad_values", "causes", "evidence", "diagnosis", "data_notes",
    "intervention",
]  # fmt: skip


@pytest.mark.parametrize("class_path", ["lightning_lstm.callbacks.LossSpikeCallback",
                                        "lightning_lstm.callbacks.loss_spikes.LossSpikeCallback"])  # fmt: skip
def test_an_old_class_path_in_trainer_callbacks_still_loads_with_a_warning_naming_the_new_one(
    tmp_path: Path, class_path: str
):
    # A user's own LightningCLI with the callback in trainer.callbacks (ours adds it as the `spikes` group instead).
    args = [
        f"--trainer.default_root_dir={tmp_path}", "--trainer.logger=false",
        f'--trainer.callbacks+={{"class_path": "{class_path}", "init_args": {{"threshold": 9.0}}}}',
    ]  # fmt: skip
    with pytest.warns(DeprecationWarning, match=r"moved to lightning_lstm\.spikes\.LossSpikeCallback"):
        cli = LightningCLI(BoringModel, BoringDataModule, args=args, run=False)
    (found,) = [c for c in cli.trainer.callbacks if isinstance(c, LossSpikeCallback)]
    assert found.loss_detector.threshold == 9.0 and found.state_key == "LossSpikeCallback"  # checkpoint key unchanged


def test_an_unknown_name_in_the_old_modules_is_an_attribute_error():
    import lightning_lstm.callbacks as callbacks

    with pytest.raises(AttributeError, match="SpikeDetector"):
        callbacks.SpikeDetector  # noqa: B018


@pytest.mark.parametrize("module", PLAIN_MODULES)
def test_the_plain_modules_import_nothing_from_lightning(module: str):
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    names = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    names += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert not [name for name in names if name.split(".")[0] == "lightning"], names


def test_at_most_thirteen_modules_and_the_public_names():
    assert len(list(PACKAGE.glob("*.py"))) <= 13  # issue 22 added intervention.py, data_notes.py and evidence.py
    assert {"LossSpikeCallback", "SpikeDetector", "SpikeRecord", "RunContext", "diagnose"} <= set(
        spikes_package.__all__
    )


def test_the_clip_methods_are_every_outlier_method_but_none():
    assert CLIP_METHODS == tuple(m for m in get_args(OutlierMethod) if m != "none") and "none" not in CLIP_METHODS


def test_the_quiet_diagnosis_names_every_cause_the_registry_checks():
    context = RunContext(1, 10, True, False, 10, 10, None, "none", 0.01, 0.01, 10)
    record = SpikeRecord(0, 5, 5, 10, 2.0, 1.0, 7.0, 6.0, 1.0, 0.0, False, 0.01, 10, 10, False, False)
    (sentence,) = diagnose([record], context)
    checked = [cause.checked for cause in CAUSES if cause.checked]
    assert "nothing stands out" in sentence and f"No cause ({', '.join(checked)})" in sentence


@pytest.mark.parametrize("rows", [101, 100])  # an odd and an even count of finite values
def test_the_target_level_reads_one_column_at_a_time_and_matches_numpy_in_float64(tmp_path: Path, rows: int):
    rng = np.random.default_rng(rows)
    values = np.lib.format.open_memmap(tmp_path / "values.npy", mode="w+", dtype=np.float32, shape=(2 * rows, 3))
    values[:] = rng.normal(50, 5, size=values.shape).astype(np.float32)
    values[7, 0] = np.nan
    values[rows + 3, 2] = np.inf
    spans, targets = [(0, rows - 20), (rows, 2 * rows - 10)], [0, 2]
    pooled = np.concatenate([np.asarray(values[a:b, targets], dtype=np.float64).ravel() for a, b in spans])
    pooled = pooled[np.isfinite(pooled)]
    median = float(np.median(pooled))
    expected = (median, float(1.4826 * np.median(np.abs(pooled - median))))
    assert target_level(values, spans, targets) == expected  # exactly: no float32 rounding on the way
    assert target_level(values, [(0, 0)], [1]) is None


def test_an_old_checkpoints_history_loads_with_the_new_columns_unknown():
    history = RunHistory()
    for step in range(5):
        verdict = SpikeVerdict(False, 0.5, 1.0, 0.1, 1.0 + step, step >= 2)
        history.append(step, 0, verdict, 6.0, 0.1 * step, 1e-3, clip=0.25)
    state = history.state_dict()
    restored = RunHistory()
    restored.load_state_dict(state)
    assert restored.per_step() == history.per_step() and restored.norms.clipped == 2
    old = {**state, "loss_history": {k: state["loss_history"][k] for k in ("steps", "values", "epochs")}}
    del old["grad_norms"]
    restored = RunHistory()
    restored.load_state_dict(old)  # written before the per-step norm and learning rate were kept
    assert restored.size == 5 and np.isnan(restored.per_step()["grad_norms"]).all()
    assert restored.learning_rate.initial == 1e-3 and restored.norms.steps == 0


class EveryStep(Callback):
    """What the doctor's recorder used to read at each optimizer step, read here independently."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, int, float, float, float]] = []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        loss, norm = float(pl_module.last_train_step["loss"]), float(pl_module.pre_clip_grad_norm())
        self.rows.append((trainer.global_step, trainer.current_epoch, loss, norm, optimizer.param_groups[0]["lr"]))


def test_the_run_history_holds_every_step_as_the_doctor_read_it(tmp_path: Path, sine_csv: Path, one_thread):
    probe, spikes = EveryStep(), spike_callback()
    fit(tmp_path, sine_csv, (SPIKE,), spikes, probe, gradient_clip_val=0.5)
    series = spikes.history.per_step()
    assert list(zip(*series.values(), strict=True)) == probe.rows  # steps, epochs, losses, grad_norms, lrs
    norms = np.asarray([row[3] for row in probe.rows])
    summary = recorder_summary(spikes.history, [], 0.5)
    assert summary["grad_norm_quantiles"]["q95"] == float(np.quantile(norms, 0.95))
    assert summary["clip_engaged_steps"] == int((norms > 0.5).sum()) and math.isfinite(summary["losses"][-1])
    assert [r.global_step for r in spikes.records] == [SPIKE]
