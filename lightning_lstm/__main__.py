"""Entry point: ``python -m lightning_lstm {fit,validate,test,predict,doctor} ...``, and the ``lightning-lstm`` script.

fit/validate/test/predict are LightningCLI's (lightning_lstm/cli); every other command maps to a plain function that
takes the arguments after its name (``doctor``: lightning_lstm/doctor/command.py). ``--help`` lists them all.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from lightning_lstm.cli import main as cli_main
from lightning_lstm.cli.errors import exit_status
from lightning_lstm.doctor.command import DOCTOR_HELP, doctor

COMMANDS: dict[str, tuple[Callable[[list[str]], object], str]] = {"doctor": (doctor, DOCTOR_HELP)}
"""Commands beside the LightningCLI's: name -> (function, one-line help)."""


def main(args: list[str] | None = None) -> int:
    """Runs the command in ``args`` (default ``sys.argv[1:]``) and returns the exit status: 0 on success, 2 with one
    message on a user error (lightning_lstm/cli/errors.py)."""
    argv = sys.argv[1:] if args is None else list(args)
    if argv and argv[0] in COMMANDS:
        return exit_status(COMMANDS[argv[0]][0], argv[1:])
    return cli_main(args, commands={name: help_text for name, (_, help_text) in COMMANDS.items()})


if __name__ == "__main__":
    sys.exit(main())
