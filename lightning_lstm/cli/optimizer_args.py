"""Name the arguments jsonargparse carries over when ``model.optimizer`` or ``model.scheduler`` switches class.

``--model.optimizer torch.optim.Adam`` on top of configs/default.yaml (AdamW, ``lr: 0.003``, ``weight_decay: 0.01``)
gives ``Adam(lr=0.003, weight_decay=0.01)``: jsonargparse keeps every earlier ``init_args`` value the new class
accepts, and Adam applies that weight decay as an L2 term of the loss (coupled), a regulariser the user did not ask
for. :func:`recorded_class_switches` records each class switch while the CLI parses; :func:`warn_carried_init_args`
then warns once per switched group, naming each carried value that differs from the new class's default and the flag
that drops it. An argument given again after the switch (``--model.optimizer.init_args.lr=0.003``) is the user's: no
warning for it.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import jsonargparse._typehints as typehints
from lightning.pytorch.utilities import rank_zero_warn

GROUPS = ("model.optimizer", "model.scheduler")
Switch = tuple[str, str, dict[str, Any]]  # (old class_path, new class_path, carried init_args)


def class_defaults(class_path: str) -> dict[str, Any] | None:
    """The keyword defaults of ``class_path``'s ``__init__`` (``inspect.Parameter.empty`` when required)."""
    module, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
        return {p.name: p.default for p in inspect.signature(cls).parameters.values()}
    except (ImportError, AttributeError, TypeError, ValueError):
        return None


def as_dict(init_args: Any) -> dict[str, Any]:
    if init_args is None:
        return {}
    return (
        dict(vars(init_args)) if hasattr(init_args, "__dict__") and not isinstance(init_args, dict) else dict(init_args)
    )


@contextmanager
def recorded_class_switches() -> Iterator[list[Switch]]:
    """Record, while jsonargparse parses, each subclass switch whose earlier ``init_args`` the new class accepts."""
    switches: list[Switch] = []
    original = typehints.discard_init_args_on_class_path_change

    def recording(parser_or_action, prev_val, value):
        original(parser_or_action, prev_val, value)
        old, new = (prev_val or {}).get("class_path"), (value or {}).get("class_path")
        earlier = as_dict((prev_val or {}).get("init_args"))
        defaults = class_defaults(new) if old and new and old != new and earlier else None
        if defaults is not None:
            given = as_dict(value.get("init_args"))
            carried = {k: v for k, v in earlier.items() if k in defaults and k not in given and v != defaults[k]}
            if carried:
                switches.append((old, new, carried))

    typehints.discard_init_args_on_class_path_change = recording
    try:
        yield switches
    finally:
        typehints.discard_init_args_on_class_path_change = original


def given_later(group: str, key: str, args: Sequence[str]) -> bool:
    """Whether the command line sets ``group``'s ``key`` itself (``--group.init_args.key`` or ``--group.key``)."""
    flags = (f"--{group}.init_args.{key}", f"--{group}.{key}")
    return any(arg == flag or arg.startswith(flag + "=") for arg in args for flag in flags)


def carried_init_args(config: Any, switches: list[Switch], args: Sequence[str]) -> dict[str, tuple[Switch, dict]]:
    """Per group (``model.optimizer``): the switch into its final class and the carried values it still holds."""
    found = {}
    for group in GROUPS:
        spec = config.get(group) if hasattr(config, "get") else None
        if not spec or not spec.get("class_path"):
            continue
        final = as_dict(spec.get("init_args"))
        for old, new, carried in reversed(switches):
            if new != spec["class_path"]:
                continue
            still = {
                k: v for k, v in carried.items() if k in final and final[k] == v and not given_later(group, k, args)
            }
            if still:
                found[group] = ((old, new, carried), still)
            break
    return found


def warn_carried_init_args(config: Any, switches: list[Switch], args: Sequence[str]) -> None:
    """One warning per switched group naming each carried argument, the new class's default and how to drop it."""
    for group, ((old, new, _), still) in carried_init_args(config, switches, args).items():
        defaults = class_defaults(new) or {}
        short = new.rpartition(".")[2]
        listed = ", ".join(f"{k}={v!r} ({short}'s default: {defaults.get(k)!r})" for k, v in still.items())
        drop = " ".join(f"--{group}.init_args.{k}={defaults.get(k)!r}" for k in still)
        rank_zero_warn(
            f"{group}: switching from {old} to {new} keeps init_args given for the old class: {listed}. "
            f"To use {short}'s defaults instead: {drop}; to keep a value, set it explicitly "
            f"(--{group}.init_args.NAME=VALUE) and this warning goes."
        )
