"""The learning rates a fit used, as far as the diagnosis needs them: first, highest, and the steps where it rose."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MAX_INCREASES = 10_000
"""At most this many rise steps are kept (a cyclic schedule rises every step)."""


@dataclass
class LearningRateHistory:
    """Fed once per optimizer step with the first parameter group's learning rate.

    Attributes:
        initial: the learning rate of the first step seen (``None`` before it).
        highest: the highest learning rate seen.
        previous: the learning rate of the last step seen.
        increased_steps: global steps at which the learning rate rose above the previous step's.
    """

    initial: float | None = None
    highest: float = 0.0
    previous: float | None = None
    increased_steps: list[int] = field(default_factory=list)

    def update(self, lr: float, step: int) -> None:
        if self.initial is None:
            self.initial = lr
        rose = self.previous is not None and lr > self.previous * (1 + 1e-9)
        if rose and len(self.increased_steps) < MAX_INCREASES:
            self.increased_steps.append(step)
        self.previous, self.highest = lr, max(self.highest, lr)

    def state_dict(self) -> dict[str, Any]:
        """The checkpoint keys of the spike callback's state that hold the history (unchanged since version 0.1)."""
        return {
            "lr_initial": self.initial,
            "lr_max": self.highest,
            "lr_previous": self.previous,
            "lr_increased_steps": list(self.increased_steps),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.initial, self.highest = state["lr_initial"], state["lr_max"]
        self.previous = state["lr_previous"]
        self.increased_steps = list(state["lr_increased_steps"])
