"""Optimizer parameter groups: weight decay on weight matrices only, never on biases or normalisation weights."""

from __future__ import annotations

from torch import nn


def weight_decay_groups(module: nn.Module) -> list[dict]:
    """Two groups: matrices (decayed with the optimizer's ``weight_decay``) and 1-D tensors (``weight_decay=0``).

    Biases and the weights of normalisation layers are 1-D; decaying them only pulls offsets and gains to zero.
    """
    decay, no_decay = [], []
    for _, parameter in module.named_parameters():
        if parameter.requires_grad:
            (decay if parameter.ndim >= 2 else no_decay).append(parameter)
    groups = [{"params": decay, "name": "weights"}]  # names become the LR monitor's tags
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0, "name": "no_decay"})
    return groups
