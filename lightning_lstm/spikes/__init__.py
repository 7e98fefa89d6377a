"""The loss-spike feature, in one package: detect spikes while training, act on them, explain them.

:mod:`.callback` (the Lightning callback), :mod:`.detector` (host and device detectors), :mod:`.pending` (the steps on
their way to the host), :mod:`.history` (the one per-step history), :mod:`.records` (the records), :mod:`.bad_values`
(the values behind a spike and the data's evidence), :mod:`.intervention` (which values' replacement removes a
spike's excess loss), :mod:`.data_notes` (values implausible for their column, noted at fit time), :mod:`.causes` and
:mod:`.diagnosis` (the rules and their run), :mod:`.outputs` (TensorBoard, the figure, ``spikes.json``, the text).
Only :mod:`.callback` imports Lightning.
"""

from lightning_lstm.spikes.callback import LossSpikeCallback
from lightning_lstm.spikes.detector import SpikeDetector, SpikeVerdict
from lightning_lstm.spikes.diagnosis import diagnose, find_causes
from lightning_lstm.spikes.history import RunHistory
from lightning_lstm.spikes.records import Finding, RunContext, SpikeRecord

__all__ = [
    "Finding",
    "LossSpikeCallback",
    "RunContext",
    "RunHistory",
    "SpikeDetector",
    "SpikeRecord",
    "SpikeVerdict",
    "diagnose",
    "find_causes",
]
