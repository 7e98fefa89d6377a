"""The loss-spike feature, in one package: detect spikes while training, act on them, explain them.

- :mod:`.callback`: :class:`LossSpikeCallback`, the Lightning callback (options, hooks, decisions, actions);
- :mod:`.detector`: :class:`SpikeDetector` (host) and its device twin, robust streaming scores;
- :mod:`.pending`: the steps on their way to the host (read one step late, or scored in batches);
- :mod:`.history`: :class:`RunHistory`, the one per-step history (loss, threshold, gradient norm, learning rate);
- :mod:`.records`: :class:`SpikeRecord`, :class:`LocalAnomaly`, :class:`RunContext` and :class:`Finding`;
- :mod:`.bad_values`: the values behind a spike, and the data's evidence for the diagnosis;
- :mod:`.causes` (the rules and their registry) and :mod:`.diagnosis` (:func:`diagnose`, :func:`find_causes`);
- :mod:`.outputs`: TensorBoard series and layout, the "loss with spikes" figure, ``spikes.json``, the text.

Only :mod:`.callback` imports Lightning; the detector, the history, the records and the diagnosis are plain Python.
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
