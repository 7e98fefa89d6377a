"""The command line: ``python -m lightning_lstm {fit,validate,test,predict}`` (the ``lightning-lstm`` script).

:func:`main` builds the LightningCLI (:mod:`.app`); :mod:`.checkpoints` resolves ``--ckpt_path last`` and checks the
checkpoint once per subcommand.
"""

from lightning_lstm.cli.app import LightningLSTMCLI, configure_logging, main

__all__ = ["LightningLSTMCLI", "configure_logging", "main"]
