"""``spikes.on_device: true`` on the CPU: the same spikes, records and actions as the host decision.

Reuses the injected-spike fits of ``test_loss_spikes``; about 15 s on two quiet cores.
"""

from __future__ import annotations

import json
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch

from tests.spikes.test_loss_spikes import SPIKE, StepProbe, fit, same, spike_callback


@pytest.mark.parametrize(
    ("actions", "spike_steps", "shift"),
    [(["log"], (SPIKE,), 20.0), (["skip"], (SPIKE,), 20.0), (["log", "save_batch"], (SPIKE, SPIKE + 1), float("nan"))],
    ids=["log", "skip", "save_batch-nonfinite"],
)
def test_device_decisions_equal_host_decisions(tmp_path: Path, sine_csv: Path, one_thread, actions, spike_steps, shift):
    runs = {}
    for on_device in (False, True):
        pl.seed_everything(0)  # the same initial weights in both runs
        probe = StepProbe((SPIKE,))
        spikes = spike_callback(actions=actions, on_device=on_device)
        trainer, _ = fit(tmp_path / str(on_device), sine_csv, spike_steps, spikes, probe, shift=shift)
        runs[on_device] = (spikes, probe, trainer)
    (host, host_probe, _), (device, device_probe, _) = runs[False], runs[True]
    assert len(host.records) > 0
    assert json.dumps([r.to_dict() for r in device.records]) == json.dumps([r.to_dict() for r in host.records])  # NaN
    assert device.loss_detector.state_dict() == host.loss_detector.state_dict()
    if shift == shift:  # finite: the same update (or the same skip); a NaN update leaves NaN weights in both
        assert same(device_probe.after[SPIKE], host_probe.after[SPIKE])
    if "skip" in actions:
        assert device.records[0].skipped and same(device_probe.before[SPIKE], device_probe.after[SPIKE])
    if "save_batch" in actions:
        saved = sorted((tmp_path / "True").rglob("step*.pt"))
        assert (
            len(saved) == len(device.records)
            and torch.load(saved[0], weights_only=False)["record"]["global_step"] == SPIKE
        )
