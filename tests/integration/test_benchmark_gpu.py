"""``scripts/benchmark_gpu.py --quick`` runs every arm on the CPU (as CI does): about 15 s on two quiet cores."""

from __future__ import annotations

import math

import torch

from scripts import benchmark_gpu


def test_quick_run_covers_every_arm_with_no_host_read_per_step(capsys, one_thread):
    rows = benchmark_gpu.main(["--quick"])
    arms = {(r["arm"], r["data"], r["precision"]) for r in rows}
    assert len(arms) == len(rows) == 8  # plain / fit x loader / device-resident x fp32 / bf16
    assert all(r["steps_per_s"] > 0 and math.isfinite(r["val_loss"]) for r in rows)
    assert [r["syncs_per_step"] for r in rows] == [0.0] * 8  # outside logging steps, in both loops
    by_arm = {(r["arm"], r["data"], r["precision"]): r["val_loss"] for r in rows}
    # The same seed, model, batches and order: the loader and device-resident paths train alike.
    assert by_arm[("fit", "loader", "fp32")] == by_arm[("fit", "device-resident", "fp32")]
    assert by_arm[("plain", "loader", "fp32")] == by_arm[("plain", "device-resident", "fp32")]
    table = capsys.readouterr().out
    assert table.count("\n| 8 / 16 |") == 8 and table.startswith("CPU,") != torch.cuda.is_available()
