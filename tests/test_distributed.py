"""Lightning's per-metric ``sync_dist=True`` advice is silenced for exactly the metrics that are already synced."""

from __future__ import annotations

import warnings

from lightning.pytorch.trainer.connectors.logger_connector import result
from lightning.pytorch.utilities.warnings import PossibleUserWarning

from lightning_lstm.distributed import silence_synced_metric_advice


def advice(name: str) -> str:
    """The advice as Lightning 2.6 words it (checked against its source below)."""
    return (
        f"It is recommended to use `self.log({name!r}, ..., sync_dist=True)` when logging on epoch level in "
        "distributed setting to accumulate the metric across devices."
    )


def test_the_advice_text_is_lightnings_own():
    source = open(result.__file__).read()
    assert "It is recommended to use `self.log({result_metric.meta.name!r}, ..., sync_dist=True)`" in source
    assert '" when logging on epoch level in distributed setting to accumulate the metric across"' in source


def test_synced_metrics_are_silenced_and_others_still_advised():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        silence_synced_metric_advice()
        for name in ("train/loss_epoch", "hp_metric", "test/mae_ratio_naive", "val/new_tensor_metric"):
            warnings.warn(advice(name), PossibleUserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == [advice("val/new_tensor_metric")]
