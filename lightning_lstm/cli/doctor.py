"""The ``doctor`` subcommand beside fit/validate/test/predict: fit's config and flags, plus the ``--doctor.*`` options.

``python -m lightning_lstm doctor --config cfg.yaml [--data.path ...] [--doctor.out_dir DIR] [--doctor.jobs N]``.
LightningCLI builds each subcommand from the Trainer method of that name; the Trainer has no ``doctor``, so this
mixin gives it ``fit``'s arguments, adds :class:`~lightning_lstm.doctor.options.DoctorOptions` as the ``doctor``
group, and runs :func:`~lightning_lstm.doctor.run.run_doctor` on the resolved config instead of a Trainer method.
"""

from __future__ import annotations

import shlex
import sys
from typing import Any

import yaml
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from lightning_lstm.doctor.options import DoctorOptions

DOCTOR_HELP = "Find why the loss spikes on this config, try the remedies the diagnosis points to, write the best."


class DoctorSubcommand:
    """Mixin for a :class:`~lightning.pytorch.cli.LightningCLI` subclass (put it first among the bases)."""

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        commands = LightningCLI.subcommands()
        return {**commands, "doctor": set(commands["fit"])}

    def _add_subcommands(self, parser: LightningArgumentParser, **kwargs: Any) -> None:
        self._subcommand_parsers = {}
        commands = parser.add_subcommands()
        trainer_class = self.trainer_class
        for name in self.subcommands():
            method = "fit" if name == "doctor" else name
            options = dict(kwargs.get(name, {}))
            options.setdefault("description", DOCTOR_HELP if name == "doctor" else _short(getattr(trainer_class, name)))
            subparser = self._prepare_subcommand_parser(trainer_class, method, **options)
            if name == "doctor":
                subparser.add_class_arguments(DoctorOptions, "doctor", instantiate=False)
            self._subcommand_parsers[name] = subparser
            commands.add_subcommand(name, subparser, help=options["description"])

    def _run_subcommand(self, subcommand: str) -> None:
        if subcommand != "doctor":
            super()._run_subcommand(subcommand)
            return
        from lightning_lstm.doctor.run import run_doctor

        namespace = self.config["doctor"]
        options = DoctorOptions(**dict(namespace["doctor"]))
        config = yaml.safe_load(self._subcommand_parsers["doctor"].dump(namespace))
        run_doctor(config, options, command="python -m lightning_lstm " + shlex.join(sys.argv[1:]))


def _short(method: Any) -> str | None:
    """The first line of a Trainer method's docstring, as LightningCLI shows it."""
    doc = (method.__doc__ or "").strip()
    return doc.splitlines()[0] if doc else None
