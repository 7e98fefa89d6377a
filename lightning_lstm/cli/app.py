"""The command line: LightningCLI with the package's DataModule, LightningModule and always-on callbacks.

``python -m lightning_lstm fit --config configs/default.yaml`` (also ``validate``, ``test``, ``predict``,
``--print_config``, ``--version``; the entry point, lightning_lstm/__main__.py, runs ``doctor`` beside them). Each
always-on callback has its own config group: ``checkpoint``, ``lr_monitor``, ``progress_bar``, ``spikes``,
``forecast_plot``, ``predictions``; ``runtime`` holds the allocator, thread and subnormal-float settings. Checkpoints:
lightning_lstm/cli/checkpoints.py.
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import lightning.pytorch as pl
from jsonargparse import ActionSubCommands
from lightning.pytorch.callbacks import LearningRateMonitor, TQDMProgressBar
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.exceptions import SIGTERMException

from lightning_lstm.callbacks import ForecastPlot, ForecastWriter, RunCheckpoint
from lightning_lstm.callbacks.idle_hooks import skip_idle_hooks
from lightning_lstm.checkpoint_io import with_atomic_checkpoint_io
from lightning_lstm.cli.checkpoints import (
    SPECIAL_PATHS,
    check_readable,
    monitor_train_loss_without_validation,
    prepare_run_folders,
    resolve_ckpt_path,
)
from lightning_lstm.cli.errors import exit_status
from lightning_lstm.cli.optimizer_args import recorded_class_switches, warn_carried_init_args
from lightning_lstm.cli.run_folder import RunFolder, check_predict_written
from lightning_lstm.cli.run_logger import (
    RunLogger,
    defer_config_save,
    follow_checkpoint_run,
    save_deferred_config,
    without_checkpointing,
    without_progress_bar,
)
from lightning_lstm.data.datamodule import TimeSeriesDataModule
from lightning_lstm.distributed import silence_synced_metric_advice
from lightning_lstm.model.module import LSTMForecaster, validation_runs
from lightning_lstm.runtime.setup import apply_runtime
from lightning_lstm.spikes import LossSpikeCallback

PROGRESS_BAR_REFRESH_RATE = 20
"""Steps between two redraws of the progress bar (``progress_bar.refresh_rate``; Lightning's default is 1)."""
DESCRIPTION = (
    "Train LSTM regressors on messy time series with PyTorch Lightning, and find, explain and repair loss spikes."
)


def package_version() -> str:
    """The installed version of this package (``lightning-lstm --version``)."""
    try:
        return version("lightning-lstm")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


class CommandsParser(LightningArgumentParser):
    """LightningCLI's parser that keeps its subcommands action, so that commands run beside the LightningCLI (the
    entry point's ``doctor``) are listed with fit/validate/test/predict."""

    subcommands_action: ActionSubCommands | None = None

    def add_subcommands(self, required: bool = True, dest: str = "subcommand", **kwargs: Any) -> ActionSubCommands:
        self.subcommands_action = super().add_subcommands(required=required, dest=dest, **kwargs)
        return self.subcommands_action


class LightningLSTMCLI(LightningCLI):
    """LightningCLI that links the data's sizes to the model and adds the project's callbacks as config groups.

    Args:
        commands: name and one-line help of each command that the entry point (lightning_lstm/__main__.py) runs
            itself; ``--help`` lists them beside fit/validate/test/predict, parsing them here is refused.
    """

    def __init__(self, *args: Any, commands: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        self.commands = dict(commands or {})
        kwargs.setdefault("parser_class", CommandsParser)
        super().__init__(*args, **kwargs)

    def setup_parser(
        self, add_subcommands: bool, main_kwargs: dict[str, Any], subparser_kwargs: dict[str, Any]
    ) -> None:
        super().setup_parser(add_subcommands, main_kwargs, subparser_kwargs)
        if not add_subcommands:
            return
        self.parser.add_argument("--version", action="version", version=f"lightning-lstm {package_version()}")
        for name, help_text in self.commands.items():
            self.parser.subcommands_action.add_subcommand(name, self.init_parser(description=help_text), help=help_text)

    def add_core_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        """LightningCLI's trainer, model and data groups; ``data.dataframe`` (Python only) is no option or key."""
        parser.add_lightning_class_args(self.trainer_class, "trainer")
        parser.set_defaults({"trainer." + k: v for k, v in self.trainer_defaults.items() if k != "callbacks"})
        parser.add_lightning_class_args(self._model_class, "model", subclass_mode=self.subclass_mode_model)
        data = self._datamodule_class
        parser.add_class_arguments(data, "data", fail_untyped=False, sub_configs=True, skip={"dataframe"})

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
        parser.add_argument(
            "--runtime.fill_uninitialized_memory",
            type=bool,
            default=False,
            help="With trainer.deterministic, fill every new tensor with NaN (torch's default, a debugging aid: a "
            "kernel reading memory it never wrote shows up). Off: the same results, up to ~130 MiB less peak RSS on "
            "CPU.",
        )
        parser.add_argument(
            "--runtime.flush_denormal",
            type=bool,
            default=True,
            help="Treat floats below 1.2e-38 as zero on the CPU (torch.set_flush_denormal): subnormal arithmetic is "
            "10-100x slower on x86 and can halve a step's speed. No effect on GPU kernels.",
        )
        parser.add_lightning_class_args(RunCheckpoint, "checkpoint")
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
        parser.add_lightning_class_args(TQDMProgressBar, "progress_bar")
        # Lightning's default redraws the bar after every step: ~0.3 ms of host time, more than a small model's step.
        parser.set_defaults({"progress_bar.refresh_rate": PROGRESS_BAR_REFRESH_RATE})
        parser.add_lightning_class_args(LossSpikeCallback, "spikes")
        parser.add_lightning_class_args(ForecastPlot, "forecast_plot")
        parser.add_lightning_class_args(ForecastWriter, "predictions")
        # Sizes the model needs come from the data config, without running setup() (Lightning issue #17275).
        parser.link_arguments("data.num_features", "model.input_size", apply_on="instantiate")
        parser.link_arguments("data.num_targets", "model.num_targets", apply_on="instantiate")
        parser.link_arguments("data.num_known_features", "model.future_size", apply_on="instantiate")
        parser.link_arguments("data.horizon", "model.horizon", apply_on="parse")

    def parse_arguments(self, parser: LightningArgumentParser, args) -> None:
        with recorded_class_switches() as switches:  # name what a new optimizer/scheduler class inherits
            super().parse_arguments(parser, args)
        if self.config.get("subcommand") in self.commands:  # listed for --help; the entry point runs it
            raise ValueError(f"{self.config.subcommand} runs through lightning_lstm.__main__.main, not LightningCLI")
        config = self.config.get(self.config.get("subcommand") or "", self.config)
        warn_carried_init_args(config, switches, sys.argv[1:] if args is None else args)

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
        follow_checkpoint_run(self.trainer, config["ckpt_path"], self.subcommand)  # the checkpoint's run folder
        self._deferred_config = defer_config_save(self.trainer)  # an existing config.yaml: rewritten on success only
        self._run_folder = RunFolder(self.trainer)  # where this subcommand writes, before it writes

    def _instantiate_trainer(self, config: dict, callbacks: list) -> pl.Trainer:
        callbacks = without_progress_bar(config, without_checkpointing(config, callbacks))
        trainer = super()._instantiate_trainer(config, callbacks)
        if isinstance(trainer.logger, RunLogger):
            trainer.logger.follow_root_dir(trainer.default_root_dir)
        skip_idle_hooks(trainer)  # no per-step dispatch of callbacks' empty hooks (callbacks/idle_hooks.py)
        return trainer

    def instantiate_trainer(self, **kwargs) -> pl.Trainer:
        plugins = self._get(self.config_init, "trainer", default={}).get("plugins")
        kwargs.setdefault("plugins", with_atomic_checkpoint_io(plugins))
        return super().instantiate_trainer(**kwargs)

    def before_fit(self) -> None:
        prepare_run_folders(self.trainer)
        self._resolve_ckpt_path()
        monitor_train_loss_without_validation(self.trainer, validation_runs(self.trainer, self.datamodule))

    before_validate = before_test = before_predict = _resolve_ckpt_path

    def after_predict(self) -> None:
        check_predict_written(self.trainer)  # predict never ends with status 0 without its output
        self._save_deferred_config()

    def _save_deferred_config(self) -> None:
        save_deferred_config(self.trainer, getattr(self, "_deferred_config", None), self.subcommand)

    after_fit = after_validate = after_test = _save_deferred_config

    def _run_subcommand(self, subcommand: str) -> None:
        # A failed run, or a predict writing elsewhere, leaves no run folder of bookkeeping only (cli/run_folder.py).
        self._run_folder: RunFolder | None = None
        try:
            super()._run_subcommand(subcommand)
        except BaseException:
            if self._run_folder is not None:
                self._run_folder.clean_up(subcommand, failed=True)
            raise
        if self._run_folder is not None:
            self._run_folder.clean_up(subcommand, failed=False)

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        runtime = config.runtime
        trainer = dict(config.trainer)
        apply_runtime(
            runtime.malloc_tuning, runtime.num_threads, trainer, runtime.fill_uninitialized_memory,
            runtime.flush_denormal,
        )  # fmt: skip


def configure_logging() -> None:
    """Show the package's INFO messages (missing values filled, values clipped, spikes) on the console, rank 0 only."""
    package = logging.getLogger("lightning_lstm")
    if not package.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("[lightning_lstm] %(message)s"))
        handler.addFilter(lambda record: rank_zero_only.rank == 0)  # one copy, not one per DDP rank
        package.addHandler(handler)
        package.setLevel(logging.INFO)


def build_cli(
    args: list[str] | None = None, run: bool = True, cli_class: type[LightningLSTMCLI] = LightningLSTMCLI, **kwargs: Any
) -> LightningLSTMCLI:
    """Build the CLI (``args`` default to ``sys.argv``) and, with ``run``, run its subcommand; errors propagate.

    For tests and Python callers that want the CLI object (``cli.trainer``, ``cli.model``); the console script is
    ``lightning_lstm.__main__.main``.

    Args:
        args: the command line without the program name.
        run: parse a subcommand and run it; ``False``: parse ``fit``'s config without one and instantiate only.
        cli_class: this CLI or a subclass that adds arguments (the doctor's ``DoctorCLI``).
        **kwargs: more :class:`LightningLSTMCLI` arguments (``commands``, ``parser_kwargs``).
    """
    configure_logging()
    silence_synced_metric_advice()
    kwargs.setdefault("parser_kwargs", {"description": DESCRIPTION})
    try:
        return cli_class(
            LSTMForecaster,
            TimeSeriesDataModule,
            trainer_class=pl.Trainer,
            save_config_kwargs={"overwrite": True},
            auto_configure_optimizers=False,
            args=args,
            run=run,
            **kwargs,
        )
    except SIGTERMException as stopped:  # a SystemExit with code None: the shell would see success
        raise SystemExit(128 + signal.SIGTERM) from stopped


def main(args: list[str] | None = None, commands: Mapping[str, str] | None = None) -> int:
    """Runs a LightningCLI subcommand: exit status 0 on success, 2 with one message on a user error, 1 with the
    traceback on a bug (lightning_lstm/cli/errors.py). ``commands``: listed in ``--help`` (:class:`LightningLSTMCLI`).

    The ``lightning-lstm`` script and ``python -m lightning_lstm`` are ``lightning_lstm.__main__.main``, which calls
    this for fit/validate/test/predict.
    """
    return exit_status(lambda argv: build_cli(argv, commands=commands), args)
