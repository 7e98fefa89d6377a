"""Averaging the forecasts of several checkpoints (seeds) at predict (``--predictions.ensemble``; README, "Average
several seeds"): the written forecast is the members' mean on the original scale (the scaling is affine and shared,
so it equals the mean in scaled units).

Members may differ in width, depth, head or training recipe, but must read the same inputs and forecast the same
steps the same way (``input_size``, ``num_targets``, ``horizon``, ``future_size``, ``quantiles``, ``residual``), and
must have been trained on the same data:
their stored scaling and clip bounds must equal those the batches were built with.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch

from lightning_lstm.model.regressor import LSTMRegressor
from lightning_lstm.model.residual import add_seasonal_base

SAME_SHAPE = ("input_size", "num_targets", "horizon", "future_size", "quantiles", "residual")
DEFAULTS = {"future_size": 0, "quantiles": None, "residual": "none"}  # absent in older checkpoints
NET_KEYS = ("hidden_size", "num_layers", "dropout", "bidirectional", "head", "series_embedding")
EMBEDDING = "net.series_vectors.weight"  # (S, N) with model.series_embedding


def _read(path: str) -> dict:
    if not Path(path).is_file():
        raise ValueError(f"predictions.ensemble: checkpoint {path!r} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as err:  # truncated or foreign
        raise ValueError(
            f"predictions.ensemble: {path!r} is not a readable checkpoint ({type(err).__name__}: {err})"
        ) from err


def _data_state(checkpoint: dict) -> dict | None:
    return next((v for v in checkpoint.values() if isinstance(v, dict) and "statistics" in v), None)


def _same_statistics(mine: dict, theirs: dict) -> bool:
    if mine["series_names"] != theirs["series_names"] or mine["columns"] != theirs["columns"]:
        return False
    return all(torch.equal(mine[k], theirs[k]) for k in ("clip_low", "clip_high", "center", "scale"))


def load_member(path: str, hparams: dict, data_state: dict | None = None) -> LSTMRegressor:
    """The network of checkpoint ``path`` in eval mode; a ValueError naming ``path`` when it does not fit.

    Args:
        path: a checkpoint written by ``fit``.
        hparams: the predicting model's hyperparameters (``input_size``, ``num_targets``, ``horizon``, ...).
        data_state: the data module's checkpoint entry (``TimeSeriesDataModule.state_dict()``); when given, the
            member's stored statistics must equal it.
    """
    checkpoint = _read(path)
    hp = dict(checkpoint.get("hyper_parameters", {}))
    hp = {**DEFAULTS, **hp}  # checkpoints written before these options
    for key in SAME_SHAPE:
        if hp.get(key) != hparams.get(key, DEFAULTS.get(key)):
            raise ValueError(
                f"predictions.ensemble: {path} has model.{key} = {hp.get(key)}, the predicting model "
                f"{hparams.get(key)}; members must read the same inputs and forecast the same steps"
            )
    theirs = _data_state(checkpoint)
    if data_state and (theirs is None or not _same_statistics(data_state["statistics"], theirs["statistics"])):
        raise ValueError(
            f"predictions.ensemble: {path} was trained with other data statistics (scaling or clip bounds) than "
            "the --ckpt_path checkpoint: members must be trained on the same data, splits and data settings"
        )
    net = LSTMRegressor(
        hp["input_size"],
        hp["num_targets"],
        hp["horizon"],
        future_size=hp["future_size"],
        quantiles=hp["quantiles"],
        **{key: hp[key] for key in NET_KEYS if key in hp},
    )
    if net.series_embedding:  # one row per training series: the same series as the predicting model's statistics
        net.set_num_series(checkpoint["state_dict"][EMBEDDING].shape[0])
    prefix = "net."
    net.load_state_dict({k[len(prefix) :]: v for k, v in checkpoint["state_dict"].items() if k.startswith(prefix)})
    return net.eval()


def ensemble_mean(
    first: torch.Tensor,
    members: list[LSTMRegressor],
    x: torch.Tensor,
    known: torch.Tensor | None = None,
    seasonal_base: torch.Tensor | None = None,
    series: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean of ``first`` (B, H, T) and each member's forecast of ``x`` (B, L, F) / ``known`` / ``series`` (B,)
    -> (B, H, T); the same for quantiles (B, H, T, Q), whose mean never crosses either. With ``model.residual`` the
    members' outputs are corrections: ``seasonal_base`` (B, H, T) is added to each (``first`` holds it already)."""
    if not members:
        return first
    forecasts = [member(x, known, series) for member in members]
    if seasonal_base is not None:
        forecasts = [add_seasonal_base(forecast, seasonal_base) for forecast in forecasts]
    return torch.stack([first, *forecasts]).mean(dim=0)  # (M, B, H, T[, Q]) -> (B, H, T[, Q])
