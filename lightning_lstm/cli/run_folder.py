"""No empty run folders: what a failed run, or a ``predict`` run, leaves in its run folder holding nothing but
Lightning's bookkeeping is removed again, and ``predict`` never ends successfully without writing its output.

Lightning opens the TensorBoard writer (a new ``version_<n>/``) and writes ``config.yaml`` / ``hparams.yaml`` before
the data module's ``setup`` runs: a run refused for its data left a folder that looks like a run. When a subcommand
fails, or a ``predict`` in a new run folder ends, the files it created are removed if all of them are bookkeeping
(``config.yaml``, ``hparams.yaml``, event files without a logged value), then the folder if it was new and is empty.
Files that were there before the subcommand are never touched.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import lightning.pytorch as pl
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

from lightning_lstm.callbacks import ForecastWriter

log = logging.getLogger(__name__)

BOOKKEEPING = ("config.yaml", "hparams.yaml")
EVENTS = "events.out.tfevents."


def logs_nothing(events: Path) -> bool:
    """Whether a TensorBoard event file holds no value but the hyperparameters and the ``hp_metric`` placeholder."""
    try:
        for event in EventFileLoader(str(events)).Load():
            if any(not (v.tag.startswith("_hparams_/") or v.tag == "hp_metric") for v in event.summary.value):
                return False
    except Exception:  # noqa: BLE001 - an unreadable event file is kept, as if it held values
        return False
    return True


def is_bookkeeping(path: Path) -> bool:
    return path.name in BOOKKEEPING or (path.name.startswith(EVENTS) and logs_nothing(path))


def only_bookkeeping(folder: Path) -> bool:
    """Whether ``folder`` holds nothing but :func:`is_bookkeeping` files directly (empty sub-folders aside)."""
    return all(path.parent == folder and is_bookkeeping(path) for path in folder.rglob("*") if not path.is_dir())


def files_in(folder: Path | None) -> set[Path]:
    return {p for p in folder.rglob("*") if not p.is_dir()} if folder is not None and folder.is_dir() else set()


class RunFolder:
    """The run folder of one subcommand and the files in it, noted before the subcommand writes (once its logger
    points where it will write); :meth:`clean_up` afterwards.

    Args:
        trainer: the subcommand's trainer; its logger's ``log_dir`` is the folder (rank zero notes and removes).
    """

    def __init__(self, trainer: pl.Trainer) -> None:
        logger = trainer.logger
        log_dir = getattr(logger, "log_dir", None) if logger is not None and trainer.global_rank == 0 else None
        self.folder = Path(log_dir) if log_dir else None
        self.existed = self.folder is not None and self.folder.exists()
        self.before = files_in(self.folder)

    def clean_up(self, subcommand: str, failed: bool) -> bool:
        """Remove what the subcommand left of bookkeeping only (see the module docstring); whether it removed any."""
        folder = self.folder
        if folder is None or not folder.is_dir():
            return False
        in_a_run = (folder.parent / "config.yaml").is_file() or (folder.parent / "checkpoints").is_dir()
        if not failed and (subcommand != "predict" or self.existed or in_a_run):
            return False
        new = files_in(folder) - self.before
        if not new or not all(path.parent == folder and is_bookkeeping(path) for path in new):
            return False
        for path in new:
            path.unlink(missing_ok=True)
        if not self.existed:
            for root, _, _ in sorted(os.walk(folder), key=lambda entry: -len(entry[0])):  # deepest first
                if not os.listdir(root):
                    os.rmdir(root)
        what = f"the run folder {folder}" if not folder.exists() else f"{len(new)} files in {folder}"
        log.info("removed %s: the %s run left nothing else in it%s", what, subcommand, " (it failed)" if failed else "")
        return True


def check_predict_written(trainer: pl.Trainer) -> None:
    """After ``predict``: a ValueError when the prediction writer wrote nothing, so predict never exits 0 silently."""
    writers = [c for c in trainer.callbacks if isinstance(c, ForecastWriter)]
    if trainer.global_rank == 0 and writers and all(w.written is None for w in writers):
        datamodule = trainer.datamodule
        source = getattr(getattr(datamodule, "frame", None), "source", "the predict data")
        raise ValueError(
            f"{source}: predict wrote no forecasts: no window reached the prediction writer "
            f"(predictions.output_path {writers[0].output_path!r} not written). Check data.predict_mode, "
            "data.predict_split and trainer.limit_predict_batches."
        )
