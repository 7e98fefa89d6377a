"""Loss-spike detection: streaming robust scoring, per-spike records and a plain-English diagnosis.

Everything here is pure Python (no Lightning, no Trainer); the Lightning callback that feeds it lives elsewhere.
"""

from lightning_lstm.spikes.detector import SpikeDetector, SpikeVerdict
from lightning_lstm.spikes.diagnosis import RunContext, diagnose
from lightning_lstm.spikes.records import SpikeRecord

__all__ = ["RunContext", "SpikeDetector", "SpikeRecord", "SpikeVerdict", "diagnose"]
