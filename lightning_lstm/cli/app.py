"""The command line: LightningCLI with the package's DataModule, LightningModule and always-on callbacks.

``python -m lightning_lstm fit --config configs/default.yaml`` (also ``validate``, ``test``, ``predict``,
``--print_config``). Each always-on callback has its own config group: ``checkpoint``, ``lr_monitor``,
``spikes``, ``forecast_plot``, ``predictions``; ``runtime`` holds the allocator and thread settings.
``--ckpt_path last`` finds the newest ``last.ckpt`` under ``<save_dir>/<name>/version_*/checkpoints/`` (see
lightning_lstm/cli/checkpoints.py).
"""

from __future__ import annotations

import logging

import lightning.pytorch as pl
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.utilities import rank_zero_only

from lightning_lstm.callbacks import ForecastPlot, ForecastWriter, LossSpikeCallback
from lightning_lstm.cli.checkpoints import (
    SPECIAL_PATHS,
    check_readable,
    monitor_train_loss_without_validation,
    resolve_ckpt_path,
)
from lightning_lstm.data.datamodule import TimeSeriesDataModule
from lightning_lstm.model.module import LSTMForecaster, validation_runs
from lightning_lstm.runtime.setup import apply_runtime


class LightningLSTMCLI(LightningCLI):
    """LightningCLI that links the data's sizes to the model and adds the project's callbacks as config groups."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument(
            "--runtime.malloc_tuning",
            type=bool,
            default=True,
            help="Keep glibc malloc from returning the LSTM's large buffers to the OS after every step (1.4-1.6x "
            "faster on CPU, about +90 MiB peak). Also off with LIGHTNING_LSTM_MALLOC_TUNING=0.",
        )
        parser.add_argument(
            "--runtime.num_threads",
            type=int | None,
            default=None,
            help="torch threads per process; default: OMP_NUM_THREADS, else the usable CPUs divided by ranks per node.",
        )
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults(
            {
                "checkpoint.monitor": "val/loss",
                "checkpoint.mode": "min",
                "checkpoint.save_last": True,
                "checkpoint.filename": "best-epoch{epoch:03d}-step{step}",
                "checkpoint.auto_insert_metric_name": False,
                "checkpoint.save_on_exception": True,
            }
        )
        parser.add_lightning_class_args(LearningRateMonitor, "lr_monitor")
        parser.set_defaults({"lr_monitor.logging_interval": "step"})
        parser.add_lightning_class_args(LossSpikeCallback, "spikes")
        parser.add_lightning_class_args(ForecastPlot, "forecast_plot")
        parser.add_lightning_class_args(ForecastWriter, "predictions")
        # Sizes the model needs come from the data config, without running setup() (Lightning issue #17275).
        parser.link_arguments("data.num_features", "model.input_size", apply_on="instantiate")
        parser.link_arguments("data.num_targets", "model.num_targets", apply_on="instantiate")
        parser.link_arguments("data.horizon", "model.horizon", apply_on="parse")

    def _parse_ckpt_path(self) -> None:
        # LightningCLI reads the checkpoint's hyperparameters while parsing: refuse a corrupt file by name first.
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if ckpt_path and ckpt_path not in SPECIAL_PATHS:
            check_readable(ckpt_path)  # the one check of a given file; "last" is checked once it is resolved
        super()._parse_ckpt_path()

    def _resolve_ckpt_path(self) -> None:
        config = self.config_init[self.subcommand]
        config["ckpt_path"] = resolve_ckpt_path(self.trainer, config.get("ckpt_path"))

    def before_fit(self) -> None:
        self._resolve_ckpt_path()
        monitor_train_loss_without_validation(self.trainer, validation_runs(self.trainer, self.datamodule))

    before_validate = before_test = before_predict = _resolve_ckpt_path

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        apply_runtime(config.runtime.malloc_tuning, config.runtime.num_threads, dict(config.trainer))


def configure_logging() -> None:
    """Show the package's INFO messages (missing values filled, values clipped, spikes) on the console, rank 0 only."""
    package = logging.getLogger("lightning_lstm")
    if not package.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("[lightning_lstm] %(message)s"))
        handler.addFilter(lambda record: rank_zero_only.rank == 0)  # one copy, not one per DDP rank
        package.addHandler(handler)
        package.setLevel(logging.INFO)


def main(args: list[str] | None = None, run: bool = True) -> LightningLSTMCLI:
    """Build the CLI (``args`` default to ``sys.argv``); the same entry point as the ``lightning-lstm`` script."""
    configure_logging()
    return LightningLSTMCLI(
        LSTMForecaster,
        TimeSeriesDataModule,
        trainer_class=pl.Trainer,
        save_config_kwargs={"overwrite": True},
        auto_configure_optimizers=False,
        args=args,
        run=run,
    )
