"""The doctor's figure: the training loss of every step, before (the probe) and after (the winner), spikes marked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def _series(result: dict[str, Any]) -> tuple[list[int], list[float], list[int], list[float]]:
    recorder = result.get("recorder", {})
    steps, losses = recorder.get("steps", []), recorder.get("losses", [])
    loss_at = dict(zip(steps, losses, strict=False))
    marks = [s["global_step"] for s in result.get("spikes", []) if s["global_step"] in loss_at]
    return steps, losses, marks, [loss_at[m] for m in marks]


def loss_figure(before: dict[str, Any], after: dict[str, Any] | None, path: Path, title: str) -> Path:
    """Writes the per-step training loss of ``before`` and ``after`` (log scale), spikes as red markers, to ``path``."""
    panels = [("before: your config", before)] + ([("after: " + after["name"], after)] if after else [])
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 2.6 * len(panels)), sharex=True, sharey=True, squeeze=False)
    for ax, (label, result) in zip(axes[:, 0], panels, strict=True):
        steps, losses, marks, marked = _series(result)
        ax.plot(steps, losses, lw=0.8, color="tab:blue")
        ax.scatter(marks, marked, color="tab:red", s=14, zorder=3, label=f"{len(result.get('spikes', []))} spikes")
        if any(v > 0 for v in losses):
            ax.set_yscale("log")
        ax.set_ylabel("training loss")
        ax.set_title(label, fontsize=9, loc="left")
        ax.legend(loc="upper right", fontsize=8)
    axes[-1, 0].set_xlabel("optimizer step")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
