"""The remedy configs and scripts/compare_runs.py: one change per step, and a table that says what the runs logged.

Each remedy is an overlay on configs/default.yaml and the steps before it (``compare_runs.DEFAULT_CONFIGS``).
"""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lightning_lstm.cli import build_cli
from scripts import compare_runs
from tests.helpers import REPO

REMEDIES = sorted((REPO / "configs" / "remedies").glob("*.yaml"))
CHAINS = dict(zip((p.stem for p in REMEDIES), compare_runs.DEFAULT_CONFIGS, strict=True))  # stem -> layers
SCRIPT = REPO / "scripts" / "compare_runs.py"

LOGGER = "trainer.logger.init_args.name"
STEPS = {  # what each file changes from the previous one, as its header comment says
    "02_clip": {"trainer.gradient_clip_val", "trainer.gradient_clip_algorithm"},
    "03_decay_plateau": {
        "model.optimizer.class_path",
        "model.optimizer.init_args.weight_decay",
        "model.scheduler.class_path",
        "model.scheduler.init_args.mode",
        "model.scheduler.init_args.factor",
        "model.scheduler.init_args.patience",
        "model.scheduler.init_args.threshold",
        "model.scheduler.init_args.min_lr",
    },
    "04_stable": {"data.scaler", "data.outliers", "data.window_norm"},
}
RESTATED = {"03_decay_plateau": {"model.optimizer.init_args.lr"}}  # written again, unchanged, beside a new class_path


def flat(path: Path) -> dict[str, object]:
    return compare_runs.flatten(yaml.safe_load(path.read_text()))


def test_each_remedy_changes_only_what_its_header_says():
    assert [p.stem for p in REMEDIES] == ["01_vanilla", "02_clip", "03_decay_plateau", "04_stable"]
    for previous, current in zip(REMEDIES[:-1], REMEDIES[1:], strict=True):
        a, b = (compare_runs.flatten(compare_runs.merged(CHAINS[p.stem])) for p in (previous, current))
        changed = {k for k in set(a) | set(b) if a.get(k) != b.get(k)} - {LOGGER}
        assert changed == STEPS[current.stem], current.name
        assert set(flat(current)) - {LOGGER} == STEPS[current.stem] | RESTATED.get(current.stem, set()), current.name
        header = "".join(line for line in current.read_text().splitlines(keepends=True) if line.startswith("#"))
        assert f"to {previous.name}" in header, current.name


@pytest.mark.parametrize("config", REMEDIES, ids=lambda p: p.stem)
def test_each_remedy_config_on_its_base(config: Path, tmp_path: Path):
    layers = [arg for layer in CHAINS[config.stem] for arg in ("--config", str(layer))]
    cli = build_cli([*layers, f"--trainer.logger.init_args.save_dir={tmp_path}"], run=False)
    step = int(config.stem[:2])
    assert cli.trainer.gradient_clip_val == (1.0 if step >= 2 else None)
    configured = cli.model.configure_optimizers()
    optimizer = configured["optimizer"] if isinstance(configured, dict) else configured
    assert type(optimizer) is (torch.optim.AdamW if step >= 3 else torch.optim.Adam)
    assert optimizer.defaults["lr"] == 0.01
    assert optimizer.defaults["weight_decay"] == (0.01 if step >= 3 else 0.0)
    assert isinstance(configured, dict) == (step >= 3)  # a scheduler only from step 3
    hp = cli.datamodule.hparams
    assert (hp.scaler, hp.outliers, hp.window_norm) == (("standard", "iqr", "last") if step == 4 else ("none",) * 3)
    assert (cli.model.hparams.hidden_size, cli.model.hparams.num_layers, cli.trainer.max_epochs) == (32, 2, 30)


def test_seeds_overrides_and_spread():
    assert compare_runs.parse_seeds("3") == [0, 1000, 2000]  # no shared shuffle orders (seed + epoch)
    assert compare_runs.parse_seeds("0,7") == [0, 7]
    compared = compare_runs.compared_keys(compare_runs.DEFAULT_CONFIGS)
    assert {"data.scaler", "trainer.gradient_clip_val", "model.optimizer.class_path"} <= compared
    assert "data.path" not in compared and LOGGER not in compared
    compare_runs.check_overrides(["--data.path=x.csv", "--model.hidden_size", "8"], compared)
    for clash in ("--data.scaler=standard", "--model.optimizer=torch.optim.SGD", "--trainer.gradient_clip_val=5"):
        with pytest.raises(ValueError, match="on which the configs differ"):
            compare_runs.check_overrides([clash], compared)
    for own in ("--seed_everything=3", "--trainer.logger.init_args.save_dir=x"):
        with pytest.raises(ValueError, match="sets .* itself"):
            compare_runs.check_overrides([own], compared)
    assert compare_runs.mean_spread([1.0, 3.0]) == "2 ± 1.4"
    assert compare_runs.mean_spread([None, None]) == "none"
    assert compare_runs.mean_spread([4.0, None]) == "4 [1 of 2 runs]"
    assert compare_runs.mean_spread([math.inf, 7.0]) == "inf (1 non-finite)"


def scalars(folder: Path) -> tuple[dict[str, list], float]:
    """Every scalar event in ``folder`` by tag, and the time of the first event."""
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    events.Reload()
    return {tag: events.Scalars(tag) for tag in events.Tags()["scalars"]}, events.FirstEventTimestamp()


def summary_rows(table: str) -> dict[str, dict[str, str]]:
    """The first markdown table of the file: config -> {header: cell}."""
    lines = [line for line in table.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = {}
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0] == "config":  # the per-run table starts
            break
        rows[cells[0]] = dict(zip(header, cells, strict=True))
    return rows


def close(cell: str, value: float) -> bool:
    return math.isclose(float(cell), value, rel_tol=5e-3, abs_tol=1e-12)  # the table keeps 3 significant digits


@pytest.mark.slow  # trains the four remedies twice (~25 s): keeps `make test` under 5 minutes on 2 cores
def test_compare_runs_table_matches_the_event_files(tmp_path: Path):
    out = tmp_path / "out"
    tiny = (
        "--model.hidden_size=4 --model.num_layers=1 --spikes.warmup=3 --spikes.window=8 --spikes.threshold=2 "
        "--forecast_plot.every_n_epochs=0 --trainer.enable_model_summary=false"
    )
    result = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--configs",
            "+".join(map(str, CHAINS["01_vanilla"])),
            "+".join(map(str, CHAINS["04_stable"])),
            "--seeds",
            "1",
            "--max-epochs",
            "3",
            "--jobs",
            "2",
            "--out",
            str(out),
            f"--override={tiny}",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = summary_rows((out / "comparison.md").read_text())
    assert set(rows) == {"01_vanilla", "04_stable"}
    for name, row in rows.items():
        run = out / name / "seed0"
        (fit, start), (test, _) = scalars(run / "fit"), scalars(run / "test")
        report = json.loads((run / "fit" / "spikes.json").read_text())
        spikes = report["spikes"]
        assert report["epochs"] == 3 and report["total_steps"] == len(fit["train/loss_step"])
        assert len(spikes) == fit["stability/spike_count"][-1].value == sum(e.value for e in fit["stability/spike"])
        assert close(row["spikes / epoch"], len(spikes) / 3)
        assert close(row["epochs with a spike"], len({s["epoch"] for s in spikes}))
        last = sum(s["batch_idx"] == s["batches_in_epoch"] - 1 for s in spikes)
        assert row["spikes on an epoch's last batch ⁵"] == f"{last} of {len(spikes)}"
        largest = max((s["score"] for s in spikes), default=None)
        assert row["largest spike score"] == "none" if largest is None else close(row["largest spike score"], largest)
        assert close(row["final val loss ²"], fit["val/loss"][-1].value)
        assert close(row["final val MAE ³"], fit["val/mae"][-1].value)
        assert close(row["test MAE ³"], test["test/mae"][-1].value)
        assert close(row["test MAE / naive ⁴"], test["test/mae_ratio_naive"][-1].value)
        assert close(row["train wall time (s)"], max(e.wall_time for v in fit.values() for e in v) - start)
        ends = [e.step for e in fit["train/loss_epoch"]]
        loss = pd.Series([e.value for e in fit["train/loss_step"]], index=[e.step for e in fit["train/loss_step"]])
        epochs = [loss[(loss.index > a) & (loss.index <= b)] for a, b in zip(ends[:-1], ends[1:], strict=True)]
        assert close(row["in-epoch peak ¹"], statistics.median(e.max() / e.median() for e in epochs))
        ratio = loss / loss.rolling(ends[1] - ends[0], center=True, min_periods=1).median()
        first, second = (ratio[e.index].to_numpy() for e in epochs)
        assert close(row["epoch-to-epoch repeat ⁶"], float(np.corrcoef(first, second)[0, 1]))
    assert any(json.loads((out / n / "seed0" / "fit" / "spikes.json").read_text())["spikes"] for n in rows)
    figure = out / "comparison.png"
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(figure) as image:
        image.verify()
        assert image.size[0] > 500 and image.size[1] > 300
