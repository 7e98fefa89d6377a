"""Switching ``model.optimizer`` / ``model.scheduler`` class names each argument carried over from the old class."""

from __future__ import annotations

import warnings

import pytest

from lightning_lstm.cli import build_cli
from tests.helpers import REPO

DEFAULT = ["--config", str(REPO / "configs" / "default.yaml")]


def parsed(*args: str) -> tuple[object, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cli = build_cli([*DEFAULT, *args], run=False)
    return cli.config, [str(w.message) for w in caught if "switching from" in str(w.message)]


def test_adam_over_adamw_names_the_carried_weight_decay_and_lr_and_how_to_drop_them():
    config, messages = parsed("--model.optimizer", "torch.optim.Adam")
    assert config.model.optimizer.init_args.weight_decay == 0.01  # what jsonargparse does: carried over
    (message,) = messages
    assert message.startswith("model.optimizer: switching from torch.optim.AdamW to torch.optim.Adam")
    assert "weight_decay=0.01 (Adam's default: 0)" in message and "lr=0.003 (Adam's default: 0.001)" in message
    assert "--model.optimizer.init_args.weight_decay=0" in message
    assert "betas" not in message  # equal to Adam's default: nothing to say


def test_arguments_set_for_the_new_class_are_not_reported():
    config, messages = parsed("--model.optimizer", "torch.optim.Adam", "--model.optimizer.init_args.weight_decay=0")
    assert config.model.optimizer.init_args.weight_decay == 0
    (message,) = messages
    assert "weight_decay" not in message and "lr=0.003" in message
    _, none = parsed(
        "--model.optimizer=torch.optim.Adam", "--model.optimizer.lr=0.003", "--model.optimizer.weight_decay=0"
    )
    assert none == []


@pytest.mark.parametrize(
    "args",
    [
        [],  # no switch
        ["--config", str(REPO / "configs/remedies/01_vanilla.yaml")],  # the switch spells out lr and weight_decay
        ["--model.scheduler", "torch.optim.lr_scheduler.StepLR", "--model.scheduler.step_size=5"],  # nothing shared
    ],
    ids=["default", "vanilla-remedy", "steplr"],
)
def test_no_warning_without_carried_arguments(args):
    assert parsed(*args)[1] == []


def test_a_scheduler_switch_names_what_it_keeps():
    # ReduceLROnPlateau's factor 0.5 (the lr multiplier on a plateau) would become ConstantLR's warm-up factor
    config, messages = parsed("--model.scheduler", "torch.optim.lr_scheduler.ConstantLR")
    assert config.model.scheduler.init_args.factor == 0.5
    (message,) = messages
    assert message.startswith("model.scheduler: switching from torch.optim.lr_scheduler.ReduceLROnPlateau to ")
    assert "factor=0.5 (ConstantLR's default: 0.3333333333333333)" in message
    assert "patience" not in message  # ConstantLR has no patience: jsonargparse dropped it
