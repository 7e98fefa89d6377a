"""The command line's LightningCLI: ``python -m lightning_lstm {fit,validate,test,predict}`` (the ``lightning-lstm``
script; its entry point, lightning_lstm/__main__.py, also runs ``doctor``).

:func:`main` runs it and returns the exit status (:mod:`.errors`); :func:`build_cli` builds the LightningCLI
(:mod:`.app`) and returns it, errors propagating; :mod:`.checkpoints` resolves ``--ckpt_path last`` and checks the
checkpoint once per subcommand.
"""

from lightning_lstm.cli.app import LightningLSTMCLI, build_cli, configure_logging, main

__all__ = ["LightningLSTMCLI", "build_cli", "configure_logging", "main"]
