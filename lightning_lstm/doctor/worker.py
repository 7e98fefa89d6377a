"""One doctor run in its own process: fit a config for the probe budget, or run an LR range test, write a result.

``python -m lightning_lstm.doctor.worker fit CONFIG.yaml RESULT.json`` (``probe`` also writes masked copies of the data
for the values its findings name, in ``<out>/data/``; ``lr_find`` runs Lightning's ``Tuner.lr_find``). The config is a
complete ``fit`` config written by the doctor; the result holds what ranking and the report need (see
:func:`fit_result`). Each epoch prints one progress line.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import Callback

from lightning_lstm.callbacks.run_io import run_dir
from lightning_lstm.cli import build_cli
from lightning_lstm.doctor.masking import write_masked_copy
from lightning_lstm.doctor.recorder import ValidationScores, recorder_summary
from lightning_lstm.spikes import LossSpikeCallback
from lightning_lstm.spikes.diagnosis import find_causes, findings_dicts


class _Progress(Callback):
    """One line per epoch, ``NAME  epoch 3/6  spikes 2  val MAE 0.41``, through ``write``."""

    def __init__(self, name: str, write: Callable[[str], None]) -> None:
        self.name, self.write = name, write

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        spikes = next((len(c.records) for c in trainer.callbacks if isinstance(c, LossSpikeCallback)), 0)
        mae = trainer.callback_metrics.get("val/mae")
        val = f"  val MAE {float(mae):.4g}" if mae is not None else ""
        self.write(f"{self.name:<18} epoch {trainer.current_epoch + 1}/{trainer.max_epochs}  spikes {spikes}{val}")


def fit_result(config: Path, progress: Callable[[str], None] = print, masks: bool = False) -> dict[str, Any]:
    """Fits ``config`` with :class:`ValidationScores`; returns the run's numbers, spikes, anomalies and findings, read
    in memory from the spike callback (its run history, records and diagnosis) and the validation scores.

    With ``masks`` (the probe), each finding that names values gets the masked copy of the data as its overlay.
    """
    start = time.perf_counter()
    cli = build_cli(["--config", str(config)], run=False)
    trainer, datamodule = cli.trainer, cli.datamodule
    spikes = next((c for c in trainer.callbacks if isinstance(c, LossSpikeCallback)), None)
    if spikes is None:
        raise ValueError(f"{config}: the doctor needs the spike callback (the `spikes` group), found none")
    scores = ValidationScores()
    trainer.callbacks.extend([scores, _Progress(config.stem, progress)])
    trainer.fit(cli.model, datamodule=datamodule)
    records = spikes.records
    clip = float(trainer.gradient_clip_val) if trainer.gradient_clip_val else None
    summary = recorder_summary(spikes.history, scores.val, clip)
    # The callback's own context (norms, data evidence), plus what only the doctor saw: validation MAE per epoch.
    context = replace(spikes.context, val_mae_best=summary["best_val_mae"], val_mae_final=summary["final_val_mae"])
    anomalies = context.anomalies
    findings = find_causes(records, context)
    for finding in findings:  # masking is a data file, written here where the data are at hand
        if masks and finding.advice and finding.anomalies:
            path = config.parent.parent / "data" / f"masked_{finding.cause}.csv"
            finding.overlay = write_masked_copy(datamodule, finding.anomalies, path, finding.cause == "level_shift")
    facts = {k: v for k, v in asdict(context).items() if k not in ("anomalies", "lr_increased_steps")}
    return {
        "kind": "fit",
        "run_dir": str(run_dir(trainer)),
        "wall_s": time.perf_counter() - start,
        "train_windows": len(datamodule.window_index("train")),
        "context": facts,
        "recorder": summary,
        "diagnosis": spikes.diagnosis,
        "spikes": [r.to_dict() for r in records],
        "anomalies": [a.to_dict() for a in anomalies],
        "findings": findings_dicts(findings),
    }


def lr_find_result(config: Path) -> dict[str, Any]:
    """Lightning's LR range test (100 steps, 1e-6 to 1) on ``config``: the suggestion and the curve."""
    from lightning.pytorch.tuner import Tuner

    start = time.perf_counter()
    cli = build_cli(["--config", str(config)], run=False)
    finder = Tuner(cli.trainer).lr_find(
        cli.model, datamodule=cli.datamodule, min_lr=1e-6, max_lr=1.0, num_training=100, update_attr=False
    )
    lrs = [float(x) for x in finder.results.get("lr", [])] if finder else []
    losses = [float(x) for x in finder.results.get("loss", [])] if finder else []
    suggestion = finder.suggestion() if finder else None
    return {
        "kind": "lr_find",
        "wall_s": time.perf_counter() - start,
        "suggestion": float(suggestion) if suggestion else None,
        "lrs": lrs,
        "losses": losses,
    }


def run(kind: str, config: Path, result: Path, progress: Callable[[str], None] = print) -> None:
    """Runs ``kind`` (``probe``, ``fit`` or ``lr_find``) on ``config`` and writes the result as JSON."""
    if kind == "lr_find":
        payload = lr_find_result(config)
    else:
        payload = fit_result(config, progress, masks=kind == "probe")
    result.write_text(json.dumps(payload, indent=1, default=float))


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in ("probe", "fit", "lr_find"):
        sys.exit("usage: python -m lightning_lstm.doctor.worker {probe,fit,lr_find} CONFIG.yaml RESULT.json")
    run(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]))
