"""Loss-spike detection: streaming robust scoring, per-spike records, a plain-English diagnosis and the report text.

Everything here is pure Python (no Lightning, no Trainer); the Lightning callback that feeds it is
:class:`lightning_lstm.callbacks.LossSpikeCallback`.
"""

from lightning_lstm.spikes.detector import SpikeDetector, SpikeVerdict
from lightning_lstm.spikes.diagnosis import RunContext, diagnose
from lightning_lstm.spikes.learning_rate import LearningRateHistory
from lightning_lstm.spikes.records import SpikeRecord

__all__ = ["LearningRateHistory", "RunContext", "SpikeDetector", "SpikeRecord", "SpikeVerdict", "diagnose"]
