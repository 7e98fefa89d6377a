"""``model.series_embedding``: a learned vector per training series, and the series names that travel with it.

A panel (``data.series_column``) trains one global model on many series. With ``model.series_embedding: N`` the
network (:class:`~lightning_lstm.model.regressor.LSTMRegressor`) holds an ``nn.Embedding(S, N)``, one row per series
the data statistics were fitted on, and reads row ``series_id`` of each window (the batch's training-series index,
:class:`~lightning_lstm.data.dataset.WindowDataset`). ``S`` is known only once the data is read, so the table is built
at fit's setup (:func:`training_series`) and, from a checkpoint, from the names saved beside the weights
(:func:`restore_series`). A file to predict may hold any subset of the training series, in any order; a series the
model never saw has no vector and is refused before any window is built.
"""

from __future__ import annotations

from typing import Any

from lightning_lstm.model.regressor import LSTMRegressor

SERIES_KEY = "series_embedding_names"  # checkpoint entry: the embedding's rows, in order
WEIGHT_KEY = "net.series_vectors.weight"  # (S, N) in the checkpoint's state_dict


def training_series(datamodule: Any, size: int) -> list[str]:
    """The series the data module fitted its statistics on (its ``training_series``), one embedding row each; a
    ValueError naming ``model.series_embedding`` when the data module cannot say."""
    names = list(getattr(datamodule, "training_series", None) or [])
    if not names:
        raise ValueError(
            f"model.series_embedding = {size} needs the training series' names, which the package's "
            "TimeSeriesDataModule gives after its setup (data.series_column names the series of a panel); "
            f"got none from {type(datamodule).__name__}"
        )
    return names


def restore_series(net: LSTMRegressor, checkpoint: dict, size: int, datamodule: Any = None) -> list[str]:
    """Rebuild ``net``'s embedding table with the checkpoint's series (its weights are loaded next) and return their
    names; ``[]`` without an embedding. A ValueError naming the key when the checkpoint and the config disagree on
    ``model.series_embedding``, and naming the series when ``datamodule``'s file holds a series not seen in training.

    Args:
        net: the network whose ``state_dict`` is about to be loaded.
        checkpoint: the checkpoint dict (``hyper_parameters``, ``state_dict``, :data:`SERIES_KEY`).
        size: this config's ``model.series_embedding``.
        datamodule: the run's data module (its ``frame`` holds the series to predict), or None.
    """
    trained = checkpoint.get("hyper_parameters", {}).get("series_embedding", 0)  # absent before the option: 0
    if trained != size:
        raise ValueError(
            f"the checkpoint was trained with model.series_embedding = {trained}, but the config gives {size}. Use "
            "the model.series_embedding of training (see config.yaml in the run folder)."
        )
    if not size:
        return []
    names, weight = checkpoint.get(SERIES_KEY), checkpoint.get("state_dict", {}).get(WEIGHT_KEY)
    if names is None or weight is None or weight.shape[0] != len(names):
        rows = None if weight is None else weight.shape[0]
        count = None if names is None else len(names)
        raise ValueError(
            f"the checkpoint has model.series_embedding = {size} but {count} series names ({SERIES_KEY!r}) for an "
            f"embedding table of {rows} rows ({WEIGHT_KEY!r}): it was not written by this package's fit"
        )
    net.set_num_series(len(names))
    frame = getattr(datamodule, "frame", None)
    unknown = [] if frame is None else [n for n in frame.series_names if n not in names]
    if unknown:
        raise ValueError(
            f"model.series_embedding: series {unknown[:5]} of {frame.source} were not in the training data, so the "
            f"model has no embedding vector for them (it learned one for each of {len(names)} series: "
            f"{names[:10]}{' ...' if len(names) > 10 else ''}). Predict series seen in training, or retrain with "
            "these series in the file."
        )
    return list(names)
