"""Configs the doctor writes: the user's resolved ``fit`` config, with an overlay, cut to the probe budget.

An overlay is a flat dict of dotted keys (``{"data.shuffle": True}``, as the command line's ``--data.shuffle``).
``fixed.yaml`` is the user's config plus the winning overlay; the probe keys (epochs, run folder, no plots) only go
into the doctor's own run configs.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

Overlay = dict[str, Any]

DOCTOR_ONLY_KEYS = ("doctor", "config", "ckpt_path", "subcommand")
"""Keys of a parsed ``doctor`` namespace that are no part of a ``fit`` config file."""


def get_key(config: dict, dotted: str, default: Any = None) -> Any:
    """The value at ``a.b.c`` in a nested dict, or ``default``."""
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def set_key(config: dict, dotted: str, value: Any) -> None:
    """Sets ``a.b.c`` in a nested dict, creating the dicts on the way."""
    *parents, last = dotted.split(".")
    node = config
    for part in parents:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[last] = value


def apply_overlay(config: dict, overlay: Overlay) -> dict:
    """A deep copy of ``config`` with the overlay's keys set."""
    result = copy.deepcopy(config)
    for key, value in overlay.items():
        set_key(result, key, value)
    return result


def fit_config(config: dict) -> dict:
    """``config`` without the keys only the doctor subcommand knows (``doctor``, ``config``, ``ckpt_path``)."""
    return {k: copy.deepcopy(v) for k, v in config.items() if k not in DOCTOR_ONLY_KEYS}


def probe_config(config: dict, overlay: Overlay, name: str, runs_dir: Path, epochs: int | None) -> dict:
    """The run config of one doctor run: the overlay, ``epochs`` epochs, TensorBoard in ``runs_dir/name``, no plots.

    Everything else (seed, model, data, spike detector) stays as the user set it, so runs differ by the overlay only.
    ``epochs=None`` keeps ``trainer.max_epochs`` (the probe's :class:`~lightning_lstm.doctor.options.ProbeBudget`
    sets its epochs once its data are read).
    """
    result = apply_overlay(fit_config(config), overlay)
    if epochs is not None:
        set_key(result, "trainer.max_epochs", int(epochs))
    set_key(result, "trainer.max_steps", -1)
    set_key(result, "trainer.enable_progress_bar", False)
    set_key(result, "trainer.enable_model_summary", False)
    set_key(
        result,
        "trainer.logger",
        {
            "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
            "init_args": {"save_dir": str(runs_dir), "name": name, "version": ""},
        },
    )
    set_key(result, "forecast_plot.every_n_epochs", 0)
    set_key(result, "checkpoint.save_top_k", 0)  # the doctor reads metrics, not weights
    set_key(result, "checkpoint.save_last", False)
    return result


def write_yaml(config: dict, path: Path, header: str = "") -> Path:
    """Writes ``config`` as YAML, with ``header`` lines as comments on top."""
    path.parent.mkdir(parents=True, exist_ok=True)
    comments = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    path.write_text(comments + yaml.safe_dump(config, sort_keys=False))
    return path
