"""What of the data travels in a checkpoint: the fitted statistics and the settings they only make sense with.

Plain tensors, numbers, strings and lists only, so a checkpoint loads with ``torch.load(weights_only=True)`` and no
pickled object is ever executed. Restoring checks that the columns, window sizes and ``window_norm`` match the config.
"""

from __future__ import annotations

from lightning_lstm.data.frame import SeriesFrame
from lightning_lstm.data.statistics import FittedStatistics

STATE_FORMAT = 1
MUST_MATCH = ("feature_columns", "target_columns", "lookback", "horizon", "window_norm")


def data_state(stats: FittedStatistics, frame: SeriesFrame | None, settings: dict[str, object]) -> dict:
    """The checkpoint entry: ``settings`` (the ``data.`` keys of :data:`MUST_MATCH`, scaler, outliers), time step and
    statistics."""
    time_step = frame.time_step if frame is not None and frame.time_step is not None else -1
    return {
        "format": STATE_FORMAT,
        **settings,
        "time_step": int(time_step),
        "is_datetime": bool(frame.is_datetime) if frame is not None else False,
        "statistics": stats.state_dict(),
    }


def restore_statistics(state: dict, settings: dict[str, object], columns: list[str]) -> FittedStatistics:
    """The statistics of a checkpoint entry; a ValueError naming the key when it was written for other data.

    Args:
        state: what :func:`data_state` wrote.
        settings: this config's values of the :data:`MUST_MATCH` keys.
        columns: the columns this data module reads (targets, then features, without repeats).
    """
    if state.get("format") != STATE_FORMAT or "statistics" not in state:
        raise ValueError(
            f"the checkpoint's data state has format {state.get('format')!r}, this version reads {STATE_FORMAT}: "
            "retrain, or predict with the version that wrote it"
        )
    for key in MUST_MATCH:
        if state.get(key) != settings[key]:
            raise ValueError(
                f"the checkpoint was trained with data.{key} = {state.get(key)}, but the config gives {settings[key]}. "
                f"Use the same data.{key} as in training (see config.yaml in the run folder)."
            )
    stats = FittedStatistics.from_state_dict(state["statistics"])
    if stats.columns != columns:
        raise ValueError(
            f"the checkpoint's statistics cover columns {stats.columns}, but this data module reads {columns} "
            "(targets, then features). Use the target and feature columns of training."
        )
    return stats
