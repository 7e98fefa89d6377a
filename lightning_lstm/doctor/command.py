"""``python -m lightning_lstm doctor``: fit's config and flags plus the ``--doctor.*`` options, then :func:`run_doctor`.

``python -m lightning_lstm doctor --config cfg.yaml [--data.path ...] [--doctor.out_dir DIR] [--doctor.jobs N]``.
The entry point (lightning_lstm/__main__.py) sends ``doctor`` here and everything else to the LightningCLI. The
arguments are parsed by the CLI's own parser (:class:`DoctorCLI`: ``fit``'s arguments and the ``doctor`` group), so
``doctor`` accepts every key ``fit`` does and ``doctor --help`` documents both.
"""

from __future__ import annotations

import shlex
import warnings
from typing import Any

import lightning.pytorch as pl
import yaml
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from lightning_lstm.cli import LightningLSTMCLI, build_cli
from lightning_lstm.cli.errors import program_name
from lightning_lstm.doctor.options import DoctorOptions
from lightning_lstm.doctor.run import run_doctor

DOCTOR_HELP = "Find why the loss spikes on this config, try the remedies the diagnosis points to, write the best."


class DoctorCLI(LightningLSTMCLI):
    """The CLI's parser for ``doctor``: ``fit``'s config and arguments (``--ckpt_path`` too) plus ``--doctor.*``.

    Built with ``run=False``: it parses and instantiates (a bad value fails here, by its key) but runs no Trainer
    method; the doctor trains in its own worker processes.
    """

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        super().add_arguments_to_parser(parser)
        parser.add_method_arguments(pl.Trainer, "fit", skip=set(LightningCLI.subcommands()["fit"]))
        parser.add_class_arguments(DoctorOptions, "doctor", instantiate=False)


def doctor(args: list[str]) -> dict[str, Any]:
    """Runs ``doctor`` on its command line (the arguments after ``doctor``) and returns the summary it writes."""
    with warnings.catch_warnings():  # sys.argv holds these arguments after "doctor": not a second command line
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
        cli = build_cli(
            list(args),
            run=False,
            cli_class=DoctorCLI,
            parser_kwargs={"prog": f"{program_name()} doctor", "description": DOCTOR_HELP},
        )
    config = yaml.safe_load(cli.parser.dump(cli.config))
    options = DoctorOptions(**dict(cli.config["doctor"]))
    return run_doctor(config, options, command="python -m lightning_lstm " + shlex.join(["doctor", *args]))
